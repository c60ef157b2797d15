"""Your edits, on the Train page: every draft you saved, copied or opened in your mail app, what the model
wrote against what you kept, with a way to leave one out of training, and the button that refreshes the
voice from them ("Refresh my voice — N new edits")."""

from __future__ import annotations

import html
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from assistant.drafting.corrections import Correction, counts, list_corrections, set_excluded
from assistant.gui import tasks
from assistant.store.adapters import default_adapter, list_adapters
from assistant.workspace import Workspace

COLUMNS = ("Draft", "What you did", "Changed", "How", "Instruction")
KIND_TEXT = {"accepted": "used as written", "small": "small edit", "rewrite": "rewrote"}


@dataclass(frozen=True)
class Loaded:
    corrections: list[Correction]
    counts: dict[str, int]
    adapter: str | None
    new_edits: int  # changed corrections since the adapter drafting uses was made


def load(ws: Workspace) -> Loaded:
    """What the panel shows (off the GUI thread)."""
    from trainer.edits import learnable  # the trainer package loads its own modules; not needed to draw

    db = ws.db
    found = list_corrections(db)
    adapter = default_adapter(db)
    made = next((a["created_at"] for a in list_adapters(db) if a["name"] == adapter), "") if adapter else ""
    new = sum(1 for c in learnable(db) if c.changed and c.updated_at >= made)
    return Loaded(found, counts(db), adapter, new)


def _edits(n: int) -> str:
    return "edit" if n == 1 else "edits"


class CorrectionsPanel(QWidget):
    """Signals: refresh_requested() when "Refresh my voice" is pressed; message(str) for the page's status."""

    refresh_requested = Signal()
    message = Signal(str)

    def __init__(self, ws: Workspace | str, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = Workspace.of(ws)
        self.loaded: Loaded | None = None
        self.refresh_allowed = True  # off while the page trains
        self._asked = 0  # only the latest load is shown
        self.summary = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for col in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._show_current)
        self.model_text = QPlainTextEdit(readOnly=True, placeholderText="What the model wrote")
        self.final_text = QPlainTextEdit(readOnly=True, placeholderText="What you kept")
        for box in (self.model_text, self.final_text):
            box.setTabChangesFocus(True)
        self.exclude_button = QPushButton("E&xclude edit")
        self.exclude_button.setToolTip("Leave the selected edits out of training, or take them back.")
        self.exclude_button.clicked.connect(self.toggle_excluded)
        self.refresh_button = QPushButton("Refresh my voice")
        self.refresh_button.setToolTip("Tune the adapter drafting uses on your edits: your text is preferred "
                                       "to the model's draft (preference tuning).")  # fmt: skip
        self.refresh_button.clicked.connect(self.refresh_requested)
        self._layout()
        self._update_buttons()

    def _layout(self) -> None:
        texts = QSplitter()
        for title, box in (("What the model wrote", self.model_text), ("What you kept", self.final_text)):
            side = QWidget()
            column = QVBoxLayout(side)
            column.setContentsMargins(0, 0, 0, 0)
            column.addWidget(QLabel(title))
            column.addWidget(box)
            texts.addWidget(side)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(texts)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        buttons = QHBoxLayout()
        buttons.addWidget(self.refresh_button)
        buttons.addStretch()
        buttons.addWidget(self.exclude_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Your edits</b>"))
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        layout.addWidget(split, 1)

    # --- loading ----------------------------------------------------------------------------------------

    def reload(self) -> None:
        self._asked += 1
        asked, ws = self._asked, self.workspace
        tasks.call(self, lambda: load(ws), lambda loaded: self.show_loaded(loaded, asked), self.message.emit)

    def show_loaded(self, loaded: Loaded, asked: int | None = None) -> None:
        if asked is not None and asked != self._asked:
            return
        self.loaded = loaded
        c = loaded.counts
        if not c["total"]:
            self.summary.setText("No edits yet. Each draft you edit and save, copy or open in your mail app is kept "
                                 "here: Mailvoice learns from what you changed.")  # fmt: skip
        else:
            self.summary.setText(
                f"{c['total']:,} drafts you used: {c['rewrite']:,} rewritten, {c['small']:,} small edits, "
                f"{c['accepted']:,} used as written" + (f", {c['excluded']:,} left out" if c["excluded"] else "")
                + f". <b>{loaded.new_edits:,}</b> new {_edits(loaded.new_edits)} since "
                + (f"{html.escape(loaded.adapter)} was made." if loaded.adapter else "you have no adapter yet.")
            )  # fmt: skip
        self.refresh_button.setText(f"Refresh my voice — {loaded.new_edits:,} new {_edits(loaded.new_edits)}")
        selected = {c.id for c in self.selected()}
        self.table.setRowCount(len(loaded.corrections))
        for row, k in enumerate(reversed(loaded.corrections)):  # newest first
            cells = (str(k.draft_id), KIND_TEXT.get(k.kind, k.kind) + (" (left out)" if k.excluded else ""),
                     f"{k.distance:.0%}", k.how, k.instruction)  # fmt: skip
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, k)
                if k.excluded:
                    item.setForeground(self.palette().placeholderText())
                self.table.setItem(row, col, item)
            if k.id in selected:
                self.table.selectRow(row)
        self._update_buttons()

    # --- selection and changes --------------------------------------------------------------------------

    def selected(self) -> list[Correction]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in rows if self.table.item(r, 0)]

    def _show_current(self) -> None:
        chosen = self.selected()
        self.model_text.setPlainText(chosen[0].model_text if chosen else "")
        self.final_text.setPlainText(chosen[0].final_text if chosen else "")
        self._update_buttons()

    def _update_buttons(self) -> None:
        chosen = self.selected()
        self.exclude_button.setEnabled(bool(chosen))
        self.exclude_button.setText("&Include edit" if chosen and all(c.excluded for c in chosen) else "E&xclude edit")
        self.refresh_button.setEnabled(self.refresh_allowed and bool(self.loaded and self.loaded.adapter
                                                                     and self.loaded.counts["preference"]))

    def toggle_excluded(self) -> None:
        chosen = self.selected()
        if not chosen:
            return
        exclude = not all(c.excluded for c in chosen)
        ids = [c.id for c in chosen]
        tasks.write(self, self.workspace, lambda db: set_excluded(db, ids, exclude), lambda _n: self.reload(),
                    self.message.emit)  # fmt: skip

    def set_enabled_refresh(self, enabled: bool) -> None:
        """The page turns the refresh off while it trains (a reload then keeps it off)."""
        self.refresh_allowed = enabled
        self._update_buttons()
