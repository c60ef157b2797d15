"""An error no page caught: a user error is said as its message, a bug as a bug with a report to copy."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from assistant.errors import StoreError
from assistant.gui import bugs, tasks


def raised(exc: BaseException):
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - the hook receives whatever escaped
        return type(caught), caught, caught.__traceback__


def test_a_bug_is_shown_as_a_bug_with_its_report_to_copy(qtbot):
    window = QWidget()
    qtbot.addWidget(window)
    handle = bugs.hook(lambda: window)
    handle(*raised(TypeError("unsupported operand type(s) for +: 'int' and 'str'")))
    box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
    assert "Mailvoice hit a bug (TypeError: unsupported operand" in box.text() and "safe" in box.text()
    assert "Traceback" in box.detailedText() and "test_gui_bugs.py" in box.detailedText()
    copy = next(b for b in box.buttons() if b.text() == "&Copy report")
    copy.click()
    assert QApplication.clipboard().text() == box.detailedText() and box.isVisible()  # copying keeps it open
    box.close()


def test_a_user_error_that_escaped_a_page_is_said_as_its_message(qtbot, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(tasks, "show_error", lambda _parent, message: shown.append(message))
    bugs.hook(lambda: None)(*raised(StoreError("The database is busy. Try again when it has finished.")))
    assert shown == ["The database is busy. Try again when it has finished."]


def test_install_replaces_the_hook_and_hands_back_the_one_before(qtbot):
    before = sys.excepthook
    previous = bugs.install(lambda: None)
    try:
        assert previous is before and sys.excepthook is not before
    finally:
        sys.excepthook = previous
