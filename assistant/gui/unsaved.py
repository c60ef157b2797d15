"""The one question asked before text the user has not saved would be replaced: Save, Discard or Cancel.

Pages take the asking function as an argument (tests pass one that answers at once); the default shows a modal
QMessageBox, whose Escape and close button mean Cancel, so nothing is lost by a stray key.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"
Ask = Callable[[QWidget, str], str]  # (parent, question) -> SAVE | DISCARD | CANCEL


def ask_save_discard(parent: QWidget, question: str) -> str:
    """Ask ``question`` with Save, Discard and Cancel; Save is the default button."""
    buttons = QMessageBox.StandardButton
    box = QMessageBox(QMessageBox.Icon.Question, "Unsaved draft", question, buttons.Save | buttons.Discard |
                      buttons.Cancel, parent)  # fmt: skip
    box.setDefaultButton(buttons.Save)
    box.setEscapeButton(buttons.Cancel)
    box.exec()
    clicked = box.standardButton(box.clickedButton()) if box.clickedButton() else buttons.Cancel
    return {buttons.Save: SAVE, buttons.Discard: DISCARD}.get(clicked, CANCEL)


def question(tabs: list[int], doing: str) -> str:
    """The question for the 0-based ``tabs``: "Draft 2 has text you have not saved. Save it before …?"."""
    names = [str(i + 1) for i in tabs]
    if len(names) == 1:
        return f"Draft {names[0]} has text you have not saved. Save it before {doing}?"
    listed = ", ".join(names[:-1]) + f" and {names[-1]}"
    return f"Drafts {listed} have text you have not saved. Save them before {doing}?"
