"""The Models panel (in Settings, and as a dialog from Compose's badge): the model and voice drafting now, the
recommended GGUFs with their size, memory needed and expected speed here, where to get them, and a way to choose
a GGUF file.

The catalogue and the estimates come from the core (:mod:`assistant.drafting.catalogue`); the user downloads a
file from the page shown, Mailvoice never does.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from assistant.drafting.catalogue import active_model, estimate_speed, load_catalogue, machine_memory, speed_basis
from assistant.drafting.models import DEFAULT_N_CTX, choose_model
from assistant.gui import tasks
from assistant.workspace import Workspace

HEADERS = ("Model", "File size", "Memory needed", "Expected speed here", "Get it from")


def gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def _load(ws: Workspace) -> dict[str, Any]:
    """What the panel shows, read off the GUI thread."""
    db = ws.db
    catalogue = load_catalogue()
    active = active_model(db)
    basis = speed_basis(db, active)
    memory = machine_memory()
    rows = []
    for model in catalogue.models:
        need = model.memory_bytes(DEFAULT_N_CTX)
        rows.append({"model": model, "memory": need, "fits": need <= memory,
                     "speed": estimate_speed(catalogue, model.size_bytes, basis)})  # fmt: skip
    return {"active": active, "rows": rows, "memory": memory, "basis": rows[0]["speed"]}


class ModelsPanel(QGroupBox):
    """Signals: model_changed(dict) with the chosen model's metadata; refreshed().

    Args:
        open_url: opens a download page in the user's browser (default ``QDesktopServices.openUrl``).
    """

    model_changed = Signal(dict)
    refreshed = Signal()

    def __init__(self, ws: Workspace | str, parent: QWidget | None = None, *,
                 open_url: Callable[[QUrl], bool] | None = None):  # fmt: skip
        super().__init__("Models", parent)
        self.workspace = Workspace.of(ws)
        self.open_url = open_url or QDesktopServices.openUrl
        self.loaded: dict[str, Any] | None = None
        self.loads = 0  # only the latest load is shown: an older one may finish last
        self.active_label = QLabel("Reading…", textFormat=Qt.TextFormat.RichText, wordWrap=True)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        for bar in (self.table.setVerticalScrollBarPolicy, self.table.setHorizontalScrollBarPolicy):
            bar(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # sized to show every row; long cells have tooltips
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _index: self.open_page())
        self.note = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.note.setOpenExternalLinks(True)
        self.choose_button = QPushButton("Choose a &GGUF file…")
        self.choose_button.clicked.connect(self.browse)
        self.page_button = QPushButton("Open its download &page")
        self.page_button.setToolTip("Opens the page in your browser; you download the file, Mailvoice never does.")
        self.page_button.clicked.connect(self.open_page)
        self.copy_button = QPushButton("Cop&y the link")
        self.copy_button.clicked.connect(self.copy_link)
        self.message = QLabel(wordWrap=True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.choose_button)
        buttons.addStretch()
        buttons.addWidget(self.page_button)
        buttons.addWidget(self.copy_button)
        self._update_buttons()
        layout = QVBoxLayout(self)
        layout.addWidget(self.active_label)
        layout.addWidget(QLabel("Recommended models (download one in your browser, then choose the file):"))
        layout.addWidget(self.table)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        layout.addWidget(self.message)

    def refresh(self) -> None:
        ws = self.workspace
        self.loads += 1
        load = self.loads
        tasks.call(self, lambda: _load(ws), lambda loaded: self.show_loaded(loaded, load), self.message.setText)

    def show_loaded(self, loaded: dict[str, Any], load: int | None = None) -> None:
        if load is not None and load != self.loads:
            return
        self.loaded = loaded
        self.show_active(loaded["active"])
        self.table.setRowCount(len(loaded["rows"]))
        for r, row in enumerate(loaded["rows"]):
            self._show_row(r, row, loaded["active"].file)
        self.table.resizeRowsToContents()
        rows = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setFixedHeight(self.table.horizontalHeader().height() + rows + 2 * self.table.frameWidth())
        self._update_buttons()
        basis = loaded["basis"]
        kind = "measured on this machine" if basis.basis == "measured" else "documented, not yet measured here"
        self.note.setText(
            f"Speeds are estimates ({kind}): {html.escape(basis.detail)}. Generating a token reads the whole "
            f"model once, so a file ten times larger drafts about ten times slower on a CPU. Memory needed is the "
            f"file, a {DEFAULT_N_CTX:,}-token context and work buffers; this machine has {gb(loaded['memory'])}."
        )
        self.refreshed.emit()

    def show_active(self, active: Any) -> None:
        voice = html.escape(active.adapter) if active.adapter else "none — the model alone (train one on Train)"
        name = "the built-in demo model (SmolLM2-135M): drafts will be rough" if active.builtin else (
            f"<b>{html.escape(active.name)}</b>")  # fmt: skip
        text = f"Drafting with {name}<br>File: {html.escape(active.path)}<br>Voice: {voice}"
        if active.problem:
            text += f"<br>⚠ {html.escape(active.problem)}"
        self.active_label.setText(text)

    def _show_row(self, r: int, row: dict[str, Any], active_file: str) -> None:
        model = row["model"]
        in_use = " (in use)" if model.file == active_file else ""
        speed = row["speed"]
        memory = gb(row["memory"]) + ("" if row["fits"] else " — more than this machine has")
        cells = [
            f"{model.name} {model.quantisation}{in_use}",
            gb(model.size_bytes),
            memory,
            f"about {speed.tokens_per_second:.1f} tokens/s ({speed.basis})",
            model.url.removeprefix("https://"),
        ]
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(f"{model.notes}\nFile: {model.file}\nLicence: {model.licence}" if c == 0 else text)
            self.table.setItem(r, c, item)

    def selected_url(self) -> str | None:
        """The download page of the model selected in the table."""
        rows = self.table.selectionModel().selectedRows()
        if not rows or self.loaded is None:
            return None
        return self.loaded["rows"][rows[0].row()]["model"].url

    def _update_buttons(self) -> None:
        chosen = self.selected_url() is not None
        self.page_button.setEnabled(chosen)
        self.copy_button.setEnabled(chosen)

    def open_page(self) -> None:
        url = self.selected_url()
        if url is None:
            return
        if not self.open_url(QUrl(url)):
            self.message.setText(f"No browser opened {url}: copy the link and open it yourself.")

    def copy_link(self) -> None:
        url = self.selected_url()
        if url is not None:
            QGuiApplication.clipboard().setText(url)
            self.message.setText(f"Copied {url}.")

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF model", "", "GGUF models (*.gguf);;All (*)")
        if path:
            self.choose_file(path)

    def choose_file(self, path: str) -> None:
        """Check ``path`` and draft with it from now on; a refused file changes nothing and says why."""
        ws = self.workspace
        self.message.setText("Reading the model's metadata…")
        tasks.call(self, lambda: choose_model(ws.db, path), self.chosen, self.refused)

    def chosen(self, info: dict[str, Any]) -> None:
        self.message.setText(f"Drafts now use {info['name']}.")
        self.model_changed.emit(info)
        self.refresh()

    def refused(self, message: str) -> None:
        self.message.setText(message)
        tasks.show_error(self, message, "Not a usable model")


class ModelsDialog(QDialog):
    """The Models panel on its own, for when no Settings page is at hand."""

    def __init__(self, ws: Workspace | str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.panel = ModelsPanel(Workspace.of(ws), self)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.panel)
        layout.addWidget(close)
        self.resize(860, 420)
        self.panel.refresh()
