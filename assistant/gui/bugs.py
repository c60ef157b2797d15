"""What the app does with an error nothing caught: a user error becomes its message, a bug is shown as a bug.

Qt calls slots from its event loop; an exception escaping one reaches ``sys.excepthook``, whose default only
prints to a terminal the person never sees, and the app goes on as if the click had worked. :func:`install`
puts a hook there that says what happened in a window: a :class:`~assistant.errors.MailvoiceError` (something
the person can act on) as its message, anything else as a bug, with the report to copy.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from types import TracebackType

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from assistant.errors import MailvoiceError
from assistant.gui import tasks
from assistant.gui.about import version

log = logging.getLogger("mailvoice.gui")

Hook = Callable[[type[BaseException], BaseException, TracebackType | None], None]


def report(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> str:
    """The text to copy into a bug report: version, Python, platform and the traceback (no mail content)."""
    trace = "".join(traceback.format_exception(kind, value, tb))
    return f"Mailvoice {version()}, Python {sys.version.split()[0]}, {sys.platform}\n\n{trace}"


def show_bug(parent: QWidget | None, text: str, summary: str) -> QMessageBox:
    """A window that says a bug happened, that the data is safe, and lets the report be copied."""
    box = QMessageBox(
        QMessageBox.Icon.Critical,
        "Mailvoice: something went wrong",
        f"Mailvoice hit a bug ({summary}). Your mail and drafts are safe; what you just did may not have "
        "finished. Copy the report and send it with a line on what you were doing.",
        QMessageBox.StandardButton.Close,
        parent,
    )
    box.setDetailedText(text)
    copy = box.addButton("&Copy report", QMessageBox.ButtonRole.ActionRole)
    copy.clicked.disconnect()  # copying must not close the window
    copy.clicked.connect(lambda: QApplication.clipboard().setText(text))
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def hook(parent: Callable[[], QWidget | None]) -> Hook:
    """The excepthook: ``parent()`` is the window to show it over (the main window, once there is one)."""

    def handle(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        if isinstance(value, MailvoiceError):  # a user error that escaped a page: say it, as pages do
            tasks.show_error(parent(), str(value))
            return
        text = report(kind, value, tb)
        log.error("unhandled error\n%s", text)
        show_bug(parent(), text, f"{kind.__name__}: {value}"[:200])

    return handle


def install(parent: Callable[[], QWidget | None]) -> Hook:
    """Put the hook in place; return the one it replaced."""
    previous = sys.excepthook
    sys.excepthook = hook(parent)
    return previous
