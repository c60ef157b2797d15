"""The one way the app runs work off the GUI thread, and the one place errors become messages.

A worker is a QObject with a ``run()`` slot and ``finished``/``cancelled``/``failed`` signals: the one for a
core call is :class:`CallWorker`, which calls the headless core with plain callbacks (progress, cancel) and
re-emits them as signals, which Qt delivers on the GUI thread (the training process has its own,
:class:`assistant.gui.workers.TrainingWorker`). :func:`call` wraps a plain function as a CallWorker (like
Anki's ``QueryOp``): the function never touches widgets; its result or error comes back on the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from assistant.errors import Cancelled, MailvoiceError
from assistant.workspace import Workspace

log = logging.getLogger("mailvoice.gui")


def start(owner: QObject | None, worker: QObject, *, quit_at_once: bool = False) -> QThread:
    """Run ``worker.run`` in a new thread owned by ``owner``; the thread ends when the worker does.

    The thread's ``finished`` comes after the GUI thread has handled the worker's ``finished``, unless
    ``quit_at_once``: then the thread ends as soon as the worker does, so the GUI thread can wait for it
    (at shutdown) without running its event loop.
    """
    thread = QThread(owner)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    kind = Qt.ConnectionType.DirectConnection if quit_at_once else Qt.ConnectionType.AutoConnection
    worker.finished.connect(thread.quit, kind)
    worker.failed.connect(thread.quit, kind)
    cancelled = getattr(worker, "cancelled", None)  # a worker that tells a stop apart from a failure
    if cancelled is not None:
        cancelled.connect(thread.quit, kind)
    thread.start()
    return thread


def describe(exc: BaseException) -> str:
    """The message a person sees: ours say what to do; anything else is a bug, logged with its traceback."""
    if isinstance(exc, MailvoiceError):
        return str(exc)
    log.error("unexpected error", exc_info=exc)
    return f"Something went wrong ({type(exc).__name__}: {exc}). Try again; if it keeps happening, report it."


Work = Callable[[Callable[[Any], None], Callable[[], bool]], Any]  # fn(progress, cancel) -> result


class CallWorker(QObject):
    """Runs ``fn(progress, cancel)`` off the GUI thread. Signals: progress(object), then one of finished(object),
    cancelled() (``fn`` raised ``Cancelled`` after :meth:`cancel`) or failed(str) (any other error, as
    :func:`describe` puts it): a thread always ends with exactly one of the three.
    """

    progress = Signal(object)
    finished = Signal(object)
    cancelled = Signal()
    failed = Signal(str)

    def __init__(self, fn: Work):
        super().__init__()
        self.fn = fn
        self.cancel_event = threading.Event()

    def run(self) -> None:
        try:
            result = self.fn(self.progress.emit, self.cancel_event.is_set)
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # noqa: BLE001 - every failure must end the thread and reach the user
            self.failed.emit(describe(exc))
        else:
            self.finished.emit(result)

    def cancel(self) -> None:
        self.cancel_event.set()


class _Relay(QObject):
    """Lives on the GUI thread, so the worker's signals reach the callbacks there (queued)."""

    def __init__(self, parent: QObject, on_done: Callable[[Any], None], on_failed: Callable[[str], None]):
        super().__init__(parent)
        self.on_done, self.on_failed = on_done, on_failed

    @Slot(object)
    def done(self, result: Any) -> None:
        self.on_done(result)

    @Slot(str)
    def fail(self, message: str) -> None:
        self.on_failed(message)


# Threads of calls, and their workers, are owned here (not by a widget, which may be deleted first) and
# dropped once they have stopped.
_running: list[tuple[QThread, CallWorker]] = []


def call(
    owner: QWidget,
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_failed: Callable[[str], None] | None = None,
) -> QThread:
    """Run ``fn()`` off the GUI thread; then ``on_done(result)`` or ``on_failed(message)`` on it.

    Without ``on_failed`` the message is shown in a dialog over ``owner``.
    """
    worker = CallWorker(lambda _progress, _cancel: fn())
    relay = _Relay(owner, on_done, on_failed or (lambda message: show_error(owner, message)))
    worker.finished.connect(relay.done, Qt.ConnectionType.QueuedConnection)
    worker.failed.connect(relay.fail, Qt.ConnectionType.QueuedConnection)
    _running[:] = [(t, w) for t, w in _running if not t.isFinished()]
    thread = start(None, worker, quit_at_once=True)
    _running.append((thread, worker))
    return thread


class Writer:
    """The app's one database writer (Anki's DB executor is the model): every write the GUI asks for runs on
    one thread, one at a time, in the order asked, with that thread's own connection to the workspace's store;
    its result or error comes back on the GUI thread. Reads go through :func:`call`, in parallel.
    """

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailvoice-writer")

    def write(
        self,
        owner: QWidget,
        fn: Callable[[Any], Any],
        on_done: Callable[[Any], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
    ) -> Future:
        """Run ``fn(db)`` on the writer thread; then ``on_done(result)`` or ``on_failed(message)`` on the GUI
        thread (without ``on_failed`` the message is shown over ``owner``). Nothing is called back once
        ``owner`` is gone; the write itself is done all the same."""
        relay = _Relay(owner, on_done or (lambda _result: None),
                       on_failed or (lambda message: show_error(owner, message)))  # fmt: skip
        signals = _WriteSignals()
        signals.done.connect(relay.done, Qt.ConnectionType.QueuedConnection)
        signals.failed.connect(relay.fail, Qt.ConnectionType.QueuedConnection)

        def run() -> Any:
            try:
                result = fn(self.workspace.db)
            except Exception as exc:  # noqa: BLE001 - every failure must reach the person who asked
                signals.failed.emit(describe(exc))
                return None
            signals.done.emit(result)
            return result

        return self._pool.submit(run)

    def wait_for(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(db)`` on the writer thread after the writes asked before it, wait for it, and return its
        result or raise its error (saving before quitting, where nothing may be left to a later event)."""
        return self._pool.submit(lambda: fn(self.workspace.db)).result()

    def wait(self) -> None:
        """Finish every write asked for so far (before quitting, or before the data is deleted)."""
        self._pool.submit(lambda: None).result()

    def close(self) -> None:
        """Finish what was asked, close the writer's connection and stop its thread."""
        self._pool.submit(self.workspace.release).result()
        self._pool.shutdown(wait=True)
        if _writers.get(self.workspace) is self:
            del _writers[self.workspace]


_writers: weakref.WeakKeyDictionary[Workspace, Writer] = weakref.WeakKeyDictionary()


def writer(workspace: Workspace) -> Writer:
    """The one writer of ``workspace``'s store (made on first use)."""
    if workspace not in _writers:
        _writers[workspace] = Writer(workspace)
    return _writers[workspace]


def write(
    owner: QWidget,
    workspace: Workspace,
    fn: Callable[[Any], Any],
    on_done: Callable[[Any], None] | None = None,
    on_failed: Callable[[str], None] | None = None,
) -> Future:
    """``fn(db)`` on ``workspace``'s writer thread (see :class:`Writer`)."""
    return writer(workspace).write(owner, fn, on_done, on_failed)


class _WriteSignals(QObject):
    done = Signal(object)
    failed = Signal(str)


def show_error(parent: QWidget | None, message: str, title: str = "Mailvoice") -> QMessageBox:
    """Show ``message`` in a dialog that does not block the caller (the message says what to do)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def confirm(parent: QWidget, title: str, text: str, yes_text: str, on_yes: Callable[[], None]) -> QMessageBox:
    """Ask before something that cannot be undone; ``on_yes()`` runs only when ``yes_text`` is clicked.

    Cancel is the default button, so Enter and Esc both keep everything.
    """
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, parent)
    box.addButton(yes_text, QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.buttonClicked.connect(
        lambda button: on_yes() if box.buttonRole(button) == QMessageBox.ButtonRole.DestructiveRole else None
    )
    box.open()
    return box


def wait_all(timeout_ms: int = 15000) -> None:
    """Wait for the threads :func:`call` started (at shutdown)."""
    for thread, _worker in list(_running):
        if thread.isRunning() and not thread.wait(timeout_ms):
            log.warning("a background task did not finish in %d ms", timeout_ms)
