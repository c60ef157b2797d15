"""The Mail page's message list and reading pane: what was imported, and which words teach Mailvoice your style.

The list pages through stored mail lazily (:class:`MessagesModel`: ``canFetchMore``/``fetchMore``, one page of
:data:`assistant.mail.browse.PAGE` rows at a time, read off the GUI thread), filtered by class and by words. The
reading pane shows exactly the text kept as the author's own words, and apart from it what was taken out (quoted
text, signature), why mail is automated, its folder, labels and attachments, and for the user's own mail whether
it teaches their style (the pair builder's rule: :func:`assistant.mail.browse.message_detail`).

Keyboard: Tab goes filter, search, list, pane; ↑/↓ move through messages; Enter in the list moves into the
pane, Esc in the pane back to the list; ↓ or Enter in the search field goes to the list.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QPalette, QTextBlockFormat, QTextCharFormat, QTextCursor, QTextFrameFormat
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
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from assistant.gui import tasks
from assistant.mail.browse import PAGE, Cursor, cursor_of, list_messages, message_detail
from assistant.mail.identity import AUTOMATED, LIST, RECEIVED, YOURS
from assistant.paths import data_dir
from assistant.store import open_store

CLASS_NAMES = {YOURS: "Yours", RECEIVED: "Received", LIST: "List", AUTOMATED: "Automated"}
FILTERS = (("all", "All mail"), (YOURS, "Yours"), (RECEIVED, "Received"), (LIST, "Lists"), (AUTOMATED, "Automated"))
NOUNS = {"all": "messages", YOURS: "messages of yours", RECEIVED: "received messages", LIST: "list messages",
         AUTOMATED: "automated messages"}  # fmt: skip
COLUMNS = ("Date", "From", "Subject", "Kind")
EMPTY = (
    "<h3>No mail imported yet</h3>Import your mail to see it here: an mbox file (Gmail Takeout, Thunderbird, Apple "
    "Mail), a maildir, or a folder of .eml files. Mailvoice reads it on this computer only."
)
Page = Callable[[str, str, Cursor | None], list[dict[str, Any]]]


def read_page(root: str) -> Page:
    """The list's pages, read from the store in data folder ``root`` (each call on the thread that runs it)."""

    def page(kind: str, query: str, after: Cursor | None) -> list[dict[str, Any]]:
        return list_messages(open_store(data_dir(root)), kind, query, after)

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


class ReadingPane(QTextBrowser):
    """One message: its header, the text kept as the author's own words, and apart from it what was taken out.

    Esc goes back to the list (signal ``leave``). ``shown`` is the message on display (None for none).
    """

    leave = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.shown: dict[str, Any] | None = None
        self.setOpenLinks(False)  # mail text is shown, never followed
        self.setTabChangesFocus(True)
        self.setPlaceholderText("Choose a message to read it.")

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() == Qt.Key.Key_Escape:
            self.leave.emit()
            return
        super().keyPressEvent(event)

    def show_message(self, detail: dict[str, Any] | None) -> None:
        self.shown = detail
        self.clear()
        if detail is None:
            return
        cursor = QTextCursor(self.document())
        cursor.insertHtml(_header_html(detail))
        cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        _heading(cursor, "Your words, as Mailvoice kept them" if detail["sent_by_me"] else "The author's words")
        _plain(cursor, detail["body"] or "(none: every line was quoted text or a signature)")
        taken = [("Quoted text (not the author's words)", detail["quoted"]), ("Signature", detail["signature"])]
        taken = [(title, text) for title, text in taken if text.strip()]
        if taken:
            self._set_apart(cursor, taken)
        self.moveCursor(QTextCursor.MoveOperation.Start)

    def _set_apart(self, cursor: QTextCursor, parts: list[tuple[str, str]]) -> None:
        """What was taken out, in a framed box on the palette's alternate colour (light and dark themes alike)."""
        frame = QTextFrameFormat()
        frame.setBorder(1)
        frame.setBorderBrush(self.palette().color(QPalette.ColorRole.Mid))
        frame.setBackground(self.palette().color(QPalette.ColorRole.AlternateBase))
        frame.setPadding(6)
        frame.setTopMargin(10)
        cursor.insertFrame(frame)
        _heading(cursor, "Taken out: not used as words of the author", size=1)
        for title, text in parts:
            _heading(cursor, title)
            _plain(cursor, text)


def _heading(cursor: QTextCursor, text: str, size: int = 0) -> None:
    """A bold line with space above it, on a block of its own."""
    spaced = QTextBlockFormat()
    spaced.setTopMargin(10)
    if cursor.block().text():
        cursor.insertBlock(spaced)
    else:
        cursor.setBlockFormat(spaced)
    bold = QTextCharFormat()
    bold.setFontWeight(700)
    if size:
        bold.setFontPointSize(cursor.document().defaultFont().pointSizeF() + size)
    cursor.insertText(text, bold)
    cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())


def _plain(cursor: QTextCursor, text: str) -> None:
    """``text`` exactly as stored (every line, every space), in the normal font and without paragraph spacing."""
    cursor.setBlockFormat(QTextBlockFormat())
    cursor.insertText(text, QTextCharFormat())


def _when(date: str | None) -> str:
    """A stored date (ISO 8601, UTC) as people read it."""
    if not date:
        return "none (the message has no date Mailvoice could read)"
    return date.replace("T", " ").removesuffix("+00:00") + (" UTC" if date.endswith("+00:00") else "")


def _header_html(d: dict[str, Any]) -> str:
    def who(people: list[list[str]]) -> str:
        return ", ".join(f"{name} <{addr}>" if name and addr else name or addr for name, addr in people)

    e = html.escape
    kind = CLASS_NAMES.get(d["mail_class"], d["mail_class"] or "not classed")
    if d["mail_class"] == AUTOMATED or d["auto_reason"]:
        kind += f" — {d['auto_reason']}" if d["auto_reason"] else ""
    rows = [
        ("From", who([[d["from_name"], d["from_addr"]]])),
        ("To", who(d["to"])),
        ("Cc", who(d["cc"])),
        ("Date", _when(d["date"])),
        ("Kind", kind),
        ("Folder", d["folder"]),
        ("Labels", ", ".join(d["labels"])),
        ("Attachments", ", ".join(d["attachments"]) + " (names only: files are never stored)" * bool(d["attachments"])),
        ("Forward", "yes" * d["is_forward"]),
        ("Repaired", d["notes"]),
    ]
    table = "".join(f"<tr><td><b>{e(k)}:</b>&nbsp;</td><td>{e(v)}</td></tr>" for k, v in rows if v)
    teaches = d["teaches"]
    verdict = f"<p><b>{e(teaches['why'])}</b></p>" if teaches else ""
    subject = e(" ".join(d["subject"].split()) or "(no subject)")
    return f"<h3>{subject}</h3><table>{table}</table>{verdict}"


class MailView(QWidget):
    """The filter, the search box, the list and the reading pane; with nothing stored, a line and an Import button.

    Signals: import_requested() (the empty state's button); detail_shown(object) with the message now in the pane.
    """

    import_requested = Signal()
    detail_shown = Signal(object)

    def __init__(self, root: str, parent: QWidget | None = None, read: Page | None = None):
        super().__init__(parent)
        self.root = root
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
        self.model = MessagesModel(self, read or read_page(root))
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
        self.model.modelReset.connect(lambda: self.pane.show_message(None))
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
        self.status.setText("Reading…")
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
        self.table.setFocus()
        if not self.table.currentIndex().isValid() and self.model.rows:
            self.table.setCurrentIndex(self.model.index(0, 0))

    # -- the pane -------------------------------------------------------------------------------------
    def current_row(self) -> dict[str, Any] | None:
        index = self.table.currentIndex()
        return self.model.rows[index.row()] if index.isValid() and index.row() < len(self.model.rows) else None

    def load_detail(self) -> None:
        row = self.current_row()
        if row is None:
            self.pane.show_message(None)
            return
        self._asked_detail += 1
        asked, root, message = self._asked_detail, self.root, row["id"]
        tasks.call(self, lambda: message_detail(open_store(data_dir(root)), message),
                   lambda detail: self._show_detail(asked, detail), self.status.setText)  # fmt: skip

    def _show_detail(self, asked: int, detail: dict[str, Any] | None) -> None:
        if asked != self._asked_detail:
            return  # the person moved on to another message meanwhile
        if detail is None:
            self.status.setText("That message is no longer stored (it was forgotten meanwhile).")
        self.pane.show_message(detail)
        self.detail_shown.emit(detail)
