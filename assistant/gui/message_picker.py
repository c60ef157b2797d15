"""The "Answer an email…" dialog of the Compose page: find a stored email by words of its subject or text, or
its sender, and pick it as the email a draft answers. Searching runs off the GUI thread (core
``search_messages``)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from assistant.gui import tasks
from assistant.store.fts import index_pending, search_messages
from assistant.workspace import Workspace

SEARCH_LIMIT = 100


def _search(ws: Workspace, query: str) -> list[dict[str, Any]]:
    db = ws.db
    index_pending(db)  # mail stored by an import that stopped before indexing is found too
    return search_messages(db, query, SEARCH_LIMIT)


class MessagePicker(QDialog):
    """Finds a stored email by words of its subject or text, or its sender; Enter answers the selected one.

    Signals: chosen(dict) with the search row (``message_id``, ``subject``, ``from_addr``...).
    """

    chosen = Signal(dict)

    def __init__(self, ws: Workspace | str, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = Workspace.of(ws)
        self.rows: list[dict[str, Any]] = []
        self._asked = 0  # the newest search sent; older answers are dropped
        self.setWindowTitle("Answer an email")
        self.resize(760, 460)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search your mail: words of the subject or text, the sender's name or address")
        self.search.setClearButtonEnabled(True)
        self.results = QTreeWidget()
        self.results.setHeaderLabels(["Date", "From", "Subject"])
        self.results.setRootIsDecorated(False)
        self.results.setUniformRowHeights(True)
        self.results.setColumnWidth(0, 90)
        self.results.setColumnWidth(1, 230)
        self.preview = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.status = QLabel("Searching…", wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.answer_button = self.buttons.addButton("&Answer this email", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.timer = QTimer(self, singleShot=True, interval=200)  # search when typing pauses
        self.timer.timeout.connect(self.run_search)
        self.search.textChanged.connect(lambda _text: self.timer.start())
        self.results.currentItemChanged.connect(lambda *_a: self._show_current())
        self.results.itemActivated.connect(lambda *_a: self.accept())
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.preview)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.answer_button.setDefault(True)  # once in the dialog: Enter answers, Esc cancels
        self.search.setFocus()
        self.run_search()

    def run_search(self) -> None:
        self._asked += 1
        asked, ws, query = self._asked, self.workspace, self.search.text()
        tasks.call(self, lambda: _search(ws, query), lambda rows: self.show_rows(asked, rows), self.failed)

    def show_rows(self, asked: int, rows: list[dict[str, Any]]) -> None:
        if asked != self._asked:
            return
        self.rows = rows
        self.results.clear()
        for row in rows:
            sender = (row["from_name"] or row["from_addr"] or "") + (" (you)" if row["sent_by_me"] else "")
            item = QTreeWidgetItem([(row["date"] or "")[:10], sender, row["subject"] or "(no subject)"])
            item.setToolTip(1, row["from_addr"] or "")
            item.setToolTip(2, row["snippet"])
            self.results.addTopLevelItem(item)
        if rows:
            self.results.setCurrentItem(self.results.topLevelItem(0))
        query = self.search.text().strip()
        more = " (the newest; type more words to narrow them)" if len(rows) == SEARCH_LIMIT else ""
        if rows:
            self.status.setText(f"{len(rows)} emails{more}. Enter answers the selected one; ↓ moves to the list.")
        elif query:
            self.status.setText(f"No stored email has every word of “{query}”: try fewer or other words.")
        else:
            self.status.setText("No mail is stored yet: import yours on the Mail page (Ctrl+1).")
        self._show_current()

    def failed(self, message: str) -> None:
        self.status.setText(message)

    def current(self) -> dict[str, Any] | None:
        index = self.results.indexOfTopLevelItem(self.results.currentItem()) if self.results.currentItem() else -1
        return self.rows[index] if 0 <= index < len(self.rows) else None

    def _show_current(self) -> None:
        row = self.current()
        self.answer_button.setEnabled(row is not None)
        self.preview.setText(row["snippet"] if row else "")

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.search.hasFocus() and event.key() == Qt.Key.Key_Down and self.rows:  # from the search into the list
            self.results.setFocus()
            return
        super().keyPressEvent(event)

    def accept(self) -> None:
        row = self.current()
        if row is None:
            return
        super().accept()
        self.chosen.emit(row)
