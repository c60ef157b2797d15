"""Python's garbage collection, run on the GUI thread only while the app runs.

Python starts a cyclic collection in whichever thread is allocating when a generation's count crosses its threshold.
When that is a worker thread (an import, a draft, a database write) and the garbage holds Qt objects caught in
reference cycles (a widget and a slot that refers to it), their C++ side is deleted from that thread, and Qt
crashes: widgets belong to the GUI thread. So while the window is open, automatic collection is off and a timer on
the GUI thread collects each generation when its count has crossed the threshold Python itself would use. No
library does this for PySide6; the same few lines are a known remedy in PyQt applications.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500  # twice a second: cheap when there is nothing to collect, soon enough for memory


class GuiThreadCollector(QObject):
    """Turns automatic collection off until :meth:`stop` and collects on the GUI thread instead."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        self.was_enabled = gc.isenabled()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> int | None:
        """Collects the oldest generation whose count is past its threshold; returns it, or None."""
        due = None
        for generation, (count, threshold) in enumerate(zip(gc.get_count(), self.thresholds, strict=True)):
            if threshold and count > threshold:
                due = generation
            else:
                break  # an older generation is only looked at when the younger one is due, as Python does
        if due is not None:
            gc.collect(due)
        return due

    def stop(self) -> None:
        """Gives collection back to Python (at quit, before the window and its threads go)."""
        self.timer.stop()
        if self.was_enabled:
            gc.enable()
