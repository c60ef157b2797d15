"""The training process's worker for :func:`assistant.gui.tasks.start` (a core call with progress and cancel is
:class:`assistant.gui.tasks.CallWorker`).

It keeps the rule of ``tasks``: the work runs in its own QThread, only plain Python crosses into it, and what
comes back arrives as signals on the GUI thread. A SQLite connection belongs to the thread that made it, so
the callables open their own store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from assistant.errors import MailvoiceError
from assistant.gui import tasks
from trainer.events import Event, Finished, Unknown, parse

ProcessFactory = Callable[[Path, bool], Any]  # (run_dir, resume) -> an object like trainer.process.TrainingProcess


class TrainingWorker(QObject):
    """Prepares a run (optional), starts its training process and relays every event, parsed.

    Signals: started(object) with the run folder, event(object) with each :class:`trainer.events.Event`,
    finished(object) with the last one (:class:`~trainer.events.Finished`, ``Error``, ``Stopped`` or
    ``Crashed``), failed(str) when the run could not even start. The process's ``cancel`` asks for a
    checkpoint and a clean stop; ``kill`` stops it at once.

    ``register(run_dir, final)``, when given, registers what a finished run exported, in this thread (it writes
    to the store), before finished is emitted: its row is then :attr:`adapter`, or a user error's message
    :attr:`register_error`.
    """

    started = Signal(object)
    event = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, factory: ProcessFactory, run_dir: Path | None, resume: bool,
                 prepare: Callable[[], Path] | None = None,
                 register: Callable[[Path, Finished], dict[str, Any] | None] | None = None):  # fmt: skip
        super().__init__()
        self.factory, self.run_dir, self.resume, self.prepare = factory, run_dir, resume, prepare
        self.register = register
        self.proc: Any = None
        self.final: Event | None = None  # the last event, also readable after the thread ended
        self.adapter: dict[str, Any] | None = None  # the adapter register() registered
        self.register_error: str | None = None  # why register() refused
        self._lock = threading.Lock()
        self._cancelled = False

    def run(self) -> None:
        try:
            run_dir = self.run_dir if self.prepare is None else self.prepare()
            with self._lock:
                if self._cancelled:  # stopped while preparing: nothing ran, nothing to resume
                    self.failed.emit("Stopped before training began.")
                    return
                self.run_dir = run_dir
                self.proc = self.factory(run_dir, self.resume)
                self.proc.start()
            self.started.emit(run_dir)
            last: Event = Unknown()
            for raw in self.proc.events():
                last = parse(raw)
                self.event.emit(last)
            final = parse(self.proc.final) if self.proc.final is not None else last
            if self.register is not None and isinstance(final, Finished) and final.status == "done":
                try:
                    self.adapter = self.register(run_dir, final)
                except MailvoiceError as exc:
                    self.register_error = str(exc)
            self.final = final
            self.finished.emit(self.final)
        except Exception as exc:  # noqa: BLE001 - as above
            self.failed.emit(tasks.describe(exc))

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self.proc is not None:
                self.proc.cancel()

    def kill(self) -> None:
        with self._lock:
            self._cancelled = True
            proc = self.proc
        if proc is not None:
            proc.kill()
