"""The Mail page's message list and reading pane: what was imported, and which words teach Mailvoice your style.

The list pages through stored mail lazily (:class:`MessagesModel`: ``canFetchMore``/``fetchMore``, one page of
:data:`assistant.mail.browse.PAGE` rows at a time, read off the GUI thread), filtered by class and by words; the
message chosen is read off the GUI thread too and shown in the reading pane (:mod:`assistant.gui.mail_pane`).

Keyboard: Tab goes filter, search, list, pane; ↑/↓ move through messages; Enter in the list moves into the
pane, Esc in the pane back to the list; ↓ or Enter in the search field goes to the list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from assistant.gui import tasks
from assistant.gui.mail_pane import CLASS_NAMES, ReadingPane
from assistant.mail.browse import PAGE, Cursor, cursor_of, list_messages, message_detail, teaching
from assistant.mail.identity import AUTOMATED, LIST, RECEIVED, YOURS
from assistant.workspace import Workspace

FILTERS = (("all", "All mail"), (YOURS, "Yours"), (RECEIVED, "Received"), (LIST, "Lists"), (AUTOMATED, "Automated"))
NOUNS = {"all": "messages", YOURS: "messages of yours", RECEIVED: "received messages", LIST: "list messages",
         AUTOMATED: "automated messages"}  # fmt: skip
COLUMNS = ("Date", "From", "Subject", "Kind")
EMPTY = (
    "<h3>No mail imported yet</h3>Import your mail to see it here: an mbox file (Gmail Takeout, Thunderbird, Apple "
    "Mail), a maildir, or a folder of .eml files. Mailvoice reads it on this computer only."
)
CHECKING = {"used": None, "reason": "", "why": "Checking whether it teaches your style…"}  # until the verdict comes
Page = Callable[[str, str, Cursor | None], list[dict[str, Any]]]


def read_page(ws: Workspace) -> Page:
    """The list's pages, read from the store of workspace ``ws`` (each call on the thread that runs it)."""

    def page(kind: str, query: str, after: Cursor | None) -> list[dict[str, Any]]:
        return list_messages(ws.db, kind, query, after)

    return page


class MessagesModel(QAbstractTableModel):
    """Stored messages, newest first, a page at a time as the view scrolls; pages are read off the GUI thread.

    Signals: page_loaded() after each page arrives (also an empty one); failed(str) with a message.
    """

    page_loaded = Signal()
    failed = Signal(str)

    def __init__(self, owner: QWidget, read: Page):
        super().__init__(owner)
        self.owner, self.read = owner, read
        self.rows: list[dict[str, Any]] = []
        self.kind, self.query = "all", ""
        self.more, self.loading = False, False
        self._after: Cursor | None = None
        self._generation = 0  # pages asked for before the last reset are dropped when they arrive

    def reset(self, kind: str, query: str) -> None:
        """Start again from the newest message of ``kind`` holding the words of ``query``."""
        self.beginResetModel()
        self.rows, self.kind, self.query, self._after = [], kind, query.strip(), None
        self.more, self.loading = True, False
        self._generation += 1
        self.endResetModel()
        self.fetchMore(QModelIndex())

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:  # noqa: B008, N802
        return not parent.isValid() and self.more and not self.loading

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:  # noqa: B008, N802
        if not self.canFetchMore(parent):
            return
        self.loading = True
        generation, read, kind, query, after = self._generation, self.read, self.kind, self.query, self._after
        tasks.call(self.owner, lambda: read(kind, query, after), lambda rows: self._arrived(generation, rows),
                   lambda message: self._failed(generation, message))  # fmt: skip

    def _arrived(self, generation: int, rows: list[dict[str, Any]]) -> None:
        if generation != self._generation:
            return
        self.loading, self.more = False, len(rows) >= PAGE
        if rows:
            self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(rows) - 1)
            self.rows += rows
            self._after = cursor_of(rows[-1])
            self.endInsertRows()
        self.page_loaded.emit()

    def _failed(self, generation: int, message: str) -> None:
        if generation == self._generation:
            self.loading, self.more = False, False
            self.failed.emit(message)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.UserRole:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            return _cell(row, index.column())
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 1:
            return row["from_addr"] or None
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 2:
            return row["subject"] or None
        return None


def _cell(row: dict[str, Any], column: int) -> str:
    if column == 0:
        return (row["date"] or "no date")[:16].replace("T", " ")
    if column == 1:
        return row["from_name"] or row["from_addr"] or "(no sender)"
    if column == 2:
        return " ".join((row["subject"] or "").split()) or "(no subject)"
    return CLASS_NAMES.get(row["mail_class"], row["mail_class"] or "—")


class MessageTable(QTableView):
    """The list: Enter moves into the reading pane (signal ``entered``), one row per message, no grid."""

    entered = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setTabKeyNavigation(False)  # Tab leaves the list for the pane; arrows move between messages
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setAlternatingRowColors(True)
        self.verticalHeader().hide()
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # no measuring of rows
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.activated.connect(lambda _index: self.entered.emit())

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.entered.emit()
            return
        super().keyPressEvent(event)


class SearchField(QLineEdit):
    """The search box: ↓ or Enter goes to the list (signal ``to_list``)."""

    to_list = Signal()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.to_list.emit()
            return
        super().keyPressEvent(event)


class MailView(QWidget):
    """The filter, the search box, the list and the reading pane; with nothing stored, a line and an Import button.

    Signals: import_requested() (the empty state's button); detail_shown(object) with the message now in the pane.
    """

    import_requested = Signal()
    detail_shown = Signal(object)

    def __init__(self, ws: Workspace | str, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = Workspace.of(ws)
        self.counts: dict[str, int] = {}
        self._asked_detail = 0
        self.kind = QComboBox()
        self.kind.setAccessibleName("Show")
        self.kind.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for key, label in FILTERS:
            self.kind.addItem(label, key)
        self.search = SearchField()
        self.search.setPlaceholderText("Search: words of the subject or text, the sender's name or address")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search mail")
        self.model = MessagesModel(self, read_page(self.workspace))
        self.table = MessageTable()
        self.table.setModel(self.model)
        self.table.setAccessibleName("Messages")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        self.table.setColumnWidth(0, self.fontMetrics().horizontalAdvance("2024-12-31 23:59") + 16)
        self.table.setColumnWidth(1, 150)
        self.table.setColumnWidth(3, self.fontMetrics().horizontalAdvance("Automated") + 16)
        self.pane = ReadingPane()
        self.pane.setAccessibleName("Message")
        self.status = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self.timer = QTimer(self, singleShot=True, interval=250)  # search when typing pauses
        self.detail_timer = QTimer(self, singleShot=True, interval=60)  # arrow keys held down read the last only
        self._wire()
        self.stack = QStackedWidget()
        self.stack.addWidget(self._browser())
        self.stack.addWidget(self._empty_state())
        QVBoxLayout(self).addWidget(self.stack)
        self.setContentsMargins(0, 0, 0, 0)
        self.layout().setContentsMargins(0, 0, 0, 0)
        QWidget.setTabOrder(self.kind, self.search)
        QWidget.setTabOrder(self.search, self.table)
        QWidget.setTabOrder(self.table, self.pane)

    def _wire(self) -> None:
        self.kind.currentIndexChanged.connect(lambda _i: self.reload())
        self.search.textChanged.connect(lambda _text: self.timer.start())
        self.search.to_list.connect(self.focus_list)
        self.timer.timeout.connect(self.reload)
        self.model.page_loaded.connect(self._page_loaded)
        self.model.failed.connect(self.status.setText)
        self.model.modelReset.connect(self.clear_detail)
        self.table.selectionModel().currentRowChanged.connect(lambda *_a: self.detail_timer.start())
        self.detail_timer.timeout.connect(self.load_detail)
        self.table.entered.connect(self.pane.setFocus)
        self.pane.leave.connect(self.table.setFocus)

    def _browser(self) -> QWidget:
        filters = QHBoxLayout()
        filters.addWidget(QLabel("&Show:", buddy=self.kind))
        filters.addWidget(self.kind)
        filters.addWidget(self.search, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(self.pane)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)
        return box

    def _empty_state(self) -> QWidget:
        box = QWidget()
        self.empty_label = QLabel(EMPTY, wordWrap=True)
        self.empty_label.setObjectName("emptyMail")
        self.empty_import = QPushButton("&Import mail…")
        self.empty_import.clicked.connect(self.import_requested.emit)
        layout = QVBoxLayout(box)
        layout.addStretch()
        layout.addWidget(self.empty_label)
        layout.addWidget(self.empty_import, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(2)
        return box

    # -- the list -------------------------------------------------------------------------------------
    def set_counts(self, total: int, classes: dict[str, int]) -> None:
        """What is stored (from ``stats``): the filter shows counts; with nothing, the empty state shows."""
        self.counts = {"all": total, **classes}
        for i, (key, label) in enumerate(FILTERS):
            self.kind.setItemText(i, f"{label} ({self.counts.get(key, 0):,})")
        self.stack.setCurrentIndex(1 if total == 0 else 0)

    def is_empty(self) -> bool:
        return self.stack.currentIndex() == 1

    def current_kind(self) -> str:
        return str(self.kind.currentData())

    def reload(self) -> None:
        """Read the list again from its first page (the filter or the words changed, or the store did)."""
        self.timer.stop()
        self.status.setText("Searching…" if self.search.text().strip() else "Reading…")
        self.model.reset(self.current_kind(), self.search.text())

    def _page_loaded(self) -> None:
        shown, kind, query = len(self.model.rows), self.current_kind(), self.model.query
        if not self.table.currentIndex().isValid() and shown:
            self.table.setCurrentIndex(self.model.index(0, 0))
        label = NOUNS[kind]
        more = " — scroll down for more" if self.model.more else ""
        if query:
            found = "No" if not shown else f"{shown:,}" + (" or more" if self.model.more else "")
            tail = "" if shown else ": try fewer or other words, or another filter"
            self.status.setText(f"{found} {label} with every word of “{query}”{tail}{more}.")
        elif shown:
            total = self.counts.get(kind)
            self.status.setText(f"{shown:,} of {total:,} {label} shown{more}." if total else f"{shown:,} {label}.")
        else:
            self.status.setText(f"No {label} stored.")

    def focus_list(self) -> None:
        if self.timer.isActive():  # Enter or ↓ before the pause in typing: search now
            self.reload()
        self.table.setFocus()
        if not self.table.currentIndex().isValid() and self.model.rows:
            self.table.setCurrentIndex(self.model.index(0, 0))

    # -- the pane -------------------------------------------------------------------------------------
    def current_row(self) -> dict[str, Any] | None:
        index = self.table.currentIndex()
        return self.model.rows[index.row()] if index.isValid() and index.row() < len(self.model.rows) else None

    def clear_detail(self) -> None:
        self._asked_detail += 1  # a message still being read belongs to the list before
        self.pane.show_message(None)

    def load_detail(self) -> None:
        """Read the chosen message off the GUI thread, then, for the user's own, whether it teaches their style."""
        row = self.current_row()
        if row is None:
            self.pane.show_message(None)
            return
        self._asked_detail += 1
        asked, ws, message = self._asked_detail, self.workspace, row["id"]
        tasks.call(self, lambda: message_detail(ws.db, message, with_teaching=False),
                   lambda detail: self._show_detail(asked, detail), self.status.setText)  # fmt: skip

    def _show_detail(self, asked: int, detail: dict[str, Any] | None) -> None:
        if asked != self._asked_detail:
            return  # the person moved on to another message meanwhile
        if detail is None:
            self.status.setText("That message is no longer stored (it was forgotten meanwhile).")
        elif detail["sent_by_me"]:
            detail["teaches"] = CHECKING
            ws, mine = self.workspace, dict(detail)
            tasks.call(self, lambda: teaching(ws.db, mine),
                       lambda verdict: self._show_teaching(asked, verdict), self.status.setText)  # fmt: skip
        self.pane.show_message(detail)
        if detail is None or detail["teaches"] is not CHECKING:
            self.detail_shown.emit(detail)

    def _show_teaching(self, asked: int, verdict: dict[str, Any]) -> None:
        if asked != self._asked_detail or self.pane.shown is None:
            return
        self.pane.shown["teaches"] = verdict
        self.pane.show_message(self.pane.shown)  # where the person scrolled to stays in view
        self.detail_shown.emit(self.pane.shown)
