"""The Drafts page: every saved draft in a searchable, sortable table; read, delete, export to CSV, reopen in Compose.

Export calls the same core as ``mailvoice export drafts`` (:func:`assistant.drafting.export_drafts`); Mail merge…
opens :class:`assistant.gui.mailmerge_dialog.MailMergeDialog` (a draft per row of a CSV of recipients). A draft
that looks unfinished says why in the Check column and above its text; Enter (or a double click) opens the
selected draft in Compose. With no drafts, the page says where to write one.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from assistant.drafting import delete_drafts, export_drafts, list_drafts
from assistant.drafting.incomplete import describe
from assistant.gui import tasks
from assistant.gui.mailmerge_dialog import MailMergeDialog
from assistant.workspace import Workspace

COLUMNS = (
    ("id", "#"),
    ("created_at", "Created"),
    ("instruction", "Instruction"),
    ("recipient", "To"),
    ("model", "Model"),
    ("adapter", "Adapter"),
    ("flag", "Check"),
    ("text", "Draft"),  # last: it takes the width left; the whole draft shows below the table
)
_EXCEL = "CSV for Excel (*.csv)"
EMPTY = "No drafts yet — write one on Compose."


class DraftsModel(QAbstractTableModel):
    """Saved drafts as rows. Display text is shortened to one line; UserRole holds the full value (search, sort)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802 - Qt's name
        return 0 if parent is not None and parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802 - Qt's name
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        key = COLUMNS[index.column()][0]
        value = self.rows[index.row()].get(key)
        if role == Qt.ItemDataRole.UserRole:
            return value if value is not None else ""
        if role == Qt.ItemDataRole.DisplayRole:
            if key == "created_at":
                return (value or "")[:16].replace("T", " ")
            if key == "flag":
                return "⚠ incomplete" if value else ""
            text = " ".join(str(value if value is not None else "").split())
            return text if len(text) <= 120 else text[:119] + "…"
        if role == Qt.ItemDataRole.ToolTipRole and key in ("instruction", "text"):
            return value
        if role == Qt.ItemDataRole.ToolTipRole and key == "flag" and value:
            return f"Looks incomplete: {describe(value)}. Open it in Compose to write it again."
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][1]
        return None


def _delete(ws: Workspace, ids: list[int]) -> int:
    return delete_drafts(ws.db, ids)


class DraftsPage(QWidget):
    """Signals: open_in_compose(dict) with the draft's row; refreshed().

    ``backend_factory`` makes the mail merge's drafting engine (tests pass a fake); llama.cpp when None.
    """

    open_in_compose = Signal(dict)
    refreshed = Signal()

    def __init__(self, ws: Workspace | str, parent: QWidget | None = None, *, backend_factory=None):
        super().__init__(parent)
        self.workspace = Workspace.of(ws)
        self.backend_factory = backend_factory
        self.merge_dialog: MailMergeDialog | None = None
        self.model = DraftsModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.proxy.setFilterRole(Qt.ItemDataRole.UserRole)
        self.proxy.setFilterKeyColumn(-1)  # search every column
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search drafts (Ctrl+F): instruction, recipient, text, model…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.filter)
        QShortcut(QKeySequence.StandardKey.Find, self, activated=self.search.setFocus)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)  # newest first
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for col, width in enumerate((44, 120, 250, 180, 150, 80, 100)):
            self.table.setColumnWidth(col, width)
        self.table.selectionModel().selectionChanged.connect(self.show_selected)
        self.table.doubleClicked.connect(lambda _i: self.reopen())
        QShortcut(QKeySequence.StandardKey.Delete, self.table, activated=self.delete_selected)
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):  # as a double click: open the draft in Compose
            QShortcut(QKeySequence(key), self.table, activated=self.reopen, context=Qt.ShortcutContext.WidgetShortcut)
        self.empty = QLabel(EMPTY, alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.empty.setObjectName("emptyDrafts")
        self.empty.setFrameShape(QFrame.Shape.StyledPanel)
        self.table_or_empty = QStackedWidget()
        self.table_or_empty.addWidget(self.table)
        self.table_or_empty.addWidget(self.empty)
        self.flag_note = QLabel(wordWrap=True)
        self.flag_note.setObjectName("draftFlag")
        self.flag_note.hide()
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setPlaceholderText("Select a draft to read it here.")
        self.count = QLabel()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.compose_button = QPushButton("&Open in Compose")
        self.delete_button = QPushButton("&Delete")
        self.export_button = QPushButton("&Export to CSV…")
        self.merge_button = QPushButton("&Mail merge…")
        self.merge_button.setToolTip("A draft in your voice for each row of a CSV of recipients, from one instruction")
        self.merge_button.clicked.connect(self.open_merge)
        self.compose_button.clicked.connect(self.reopen)
        self.delete_button.clicked.connect(self.delete_selected)
        self.export_button.clicked.connect(self.choose_export)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.count)
        reading = QWidget()
        reading_layout = QVBoxLayout(reading)
        reading_layout.setContentsMargins(0, 0, 0, 0)
        reading_layout.addWidget(self.flag_note)
        reading_layout.addWidget(self.preview, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table_or_empty)
        splitter.addWidget(reading)
        splitter.setSizes([340, 200])
        buttons = QHBoxLayout()
        for b in (self.compose_button, self.delete_button, self.export_button):
            buttons.addWidget(b)
        buttons.addStretch()
        buttons.addWidget(self.merge_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self.show_selected()

    def refresh(self) -> None:
        ws = self.workspace
        tasks.call(self, lambda: list_drafts(ws.db), self.show_rows)

    def show_rows(self, rows: list[dict[str, Any]]) -> None:
        self.model.set_rows(rows)
        self.update_count()
        self.show_selected()
        self.refreshed.emit()

    def filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        self.update_count()

    def update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count.setText(f"{total:,} drafts" if shown == total else f"{shown:,} of {total:,} drafts")
        if not total:
            self.empty.setText(EMPTY)
        elif not shown:
            self.empty.setText(f"No draft has “{self.search.text().strip()}”. Clear the search to see them all.")
        self.table_or_empty.setCurrentWidget(self.table if shown else self.empty)

    def selected(self) -> list[dict[str, Any]]:
        rows = {self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()}
        return [self.model.rows[r] for r in sorted(rows)]

    def show_selected(self, *_args: Any) -> None:
        chosen = self.selected()
        self.compose_button.setEnabled(len(chosen) == 1)
        self.delete_button.setEnabled(bool(chosen))
        self.export_button.setEnabled(bool(self.model.rows))
        flag = chosen[0].get("flag") if len(chosen) == 1 else ""
        self.flag_note.setVisible(bool(flag))
        self.flag_note.setText(f"⚠ This draft looks incomplete: {describe(flag)}. Open it in Compose to write it "
                               "again." if flag else "")  # fmt: skip
        if len(chosen) == 1:
            d = chosen[0]
            subject = f"Subject: {d['subject']}\n\n" if d.get("subject") else ""
            self.preview.setPlainText(f"{subject}{d['text']}")
        else:
            self.preview.clear()

    def reopen(self) -> None:
        chosen = self.selected()
        if len(chosen) == 1:
            row = dict(chosen[0])
            try:
                row["length"] = json.loads(row.get("params") or "{}").get("length")
            except ValueError:
                row["length"] = None
            self.open_in_compose.emit(row)

    def delete_selected(self) -> QMessageBox | None:
        """Ask, then delete the selected drafts; returns the question (None when nothing is selected)."""
        ids = [d["id"] for d in self.selected()]
        if not ids:
            return None
        what = "this draft" if len(ids) == 1 else f"these {len(ids)} drafts"
        return tasks.confirm(self, "Delete drafts", f"Delete {what}? This cannot be undone.", "&Delete",
                      lambda: self.delete_ids(ids))  # fmt: skip

    def delete_ids(self, ids: list[int]) -> None:
        ws = self.workspace
        tasks.call(self, lambda: _delete(ws, ids), self.deleted)

    def deleted(self, count: int) -> None:
        self.status.setText(f"Deleted {count:,} draft{'s' * (count != 1)}.")
        self.refresh()

    def choose_export(self) -> None:
        path, kind = QFileDialog.getSaveFileName(self, "Export drafts", "drafts.csv", f"CSV (*.csv);;{_EXCEL}")
        if path:
            self.export_to(path, excel=kind == _EXCEL)

    def export_to(self, path: str, excel: bool = False) -> None:
        """Write every saved draft to ``path`` (columns as ``mailvoice export drafts``), off the GUI thread."""
        ws = self.workspace
        self.status.setText(f"Writing {path}…")
        tasks.call(self, lambda: export_drafts(ws.db, path, excel=excel),
                   lambda n: self.status.setText(f"Wrote {n:,} drafts to {path}."), self.export_failed)  # fmt: skip

    def open_merge(self) -> MailMergeDialog:
        """Show the mail merge dialog (one per page, kept with what it shows); drafts it writes appear here."""
        if self.merge_dialog is None:
            self.merge_dialog = MailMergeDialog(self.workspace, self.backend_factory, self)
            self.merge_dialog.previewed.connect(lambda _r: self.refresh())
            self.merge_dialog.merged.connect(lambda _r: self.refresh())
        self.merge_dialog.show()
        self.merge_dialog.raise_()
        return self.merge_dialog

    def export_failed(self, message: str) -> None:
        self.status.setText(message)
        tasks.show_error(self, message, "Export failed")
