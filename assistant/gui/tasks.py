"""The one way the app runs work off the GUI thread: a worker object moved into its own QThread.

A worker is a QObject with a ``run()`` slot and ``finished``/``failed`` signals; it calls the headless
core with plain callbacks (progress, cancel) and re-emits them as signals, which Qt delivers on the GUI
thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread


def start(owner: QObject, worker: QObject) -> QThread:
    """Run ``worker.run`` in a new thread owned by ``owner``; the thread ends when the worker does."""
    thread = QThread(owner)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    worker.failed.connect(thread.quit)
    thread.start()
    return thread
