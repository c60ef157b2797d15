"""The Settings page: the model (with its GGUF metadata), the Models panel (the recommended models and what
they need here), threads and GPU layers, how many emails are labelled and drafts written at once, the adapter in
use, the data folder, and privacy (the network guard's state, and forgetting everything).

Settings are stored in the store's settings table under the keys drafting and labelling read (``model_path``,
``adapter``, ``n_threads``, ``n_gpu_layers``, ``label_width``, ``draft_width``), through the same core calls as
``mailvoice model`` and ``mailvoice use``. The data folder is an app preference (QSettings): it cannot live
inside itself.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from assistant import netguard
from assistant.drafting.backend import default_threads
from assistant.drafting.drafts import WIDTH_KEY as DRAFT_WIDTH
from assistant.drafting.models import choose_model, current_model, model_info
from assistant.errors import MailvoiceError
from assistant.forget import ForgetReport, forget
from assistant.gui import tasks
from assistant.gui.models_panel import ModelsPanel
from assistant.gui.wizard import human_size
from assistant.identities import stats
from assistant.paths import foreign_entries, is_data_folder
from assistant.store.adapters import list_adapters, use_adapter
from assistant.store.db import get_setting, set_setting
from assistant.workspace import Workspace
from trainer.pairs.build import WIDTH_KEY as LABEL_WIDTH

DATA_DIR_KEY = "data_dir"  # QSettings key: the data folder chosen here, used from the next start


def _forget(ws: Workspace) -> ForgetReport:
    ws.release()  # every thread's connection: nothing may hold the database while it goes
    report = forget(ws.root)
    # A new, empty store now, before the pages reload: two threads migrating a new database at once can
    # find it locked. Not where the person's own files were kept: Mailvoice no longer uses that folder.
    if not report.kept:
        ws.db  # noqa: B018 - opening makes the new store
    return report


def _load(ws: Workspace) -> dict[str, Any]:
    db = ws.db
    path, source = current_model(db)
    try:
        info, problem = model_info(path), ""
    except MailvoiceError as exc:  # the chosen file was moved or deleted: say so, keep the page usable
        info, problem = None, str(exc)
    return {
        "model_path": str(path),
        "source": source,
        "info": info,
        "problem": problem,
        "n_threads": get_setting(db, "n_threads"),
        "n_gpu_layers": get_setting(db, "n_gpu_layers"),
        LABEL_WIDTH: get_setting(db, LABEL_WIDTH),
        DRAFT_WIDTH: get_setting(db, DRAFT_WIDTH),
        "adapters": list_adapters(db),
    }


class SettingsPage(QWidget):
    """Signals: forgotten() after everything was deleted; forget_ended() after any attempt; refreshed();
    model_changed(dict) with the new model.

    Args:
        busy: what is running that forgetting would break ("" when nothing): then forgetting is refused.
        release: called before deleting, to stop whatever else holds the database (the Train page).
    """

    forgotten = Signal()
    forget_ended = Signal()
    refreshed = Signal()
    model_changed = Signal(dict)

    def __init__(self, ws: Workspace | str, qsettings: QSettings, *, recorder: netguard.Recorder | None = None,
                 busy: Callable[[], str] = lambda: "", release: Callable[[], None] = lambda: None,
                 parent: QWidget | None = None):  # fmt: skip
        super().__init__(parent)
        self.workspace = Workspace.of(ws)
        self.qsettings = qsettings
        self.recorder = recorder
        self.busy = busy
        self.release = release
        self.loaded: dict[str, Any] | None = None
        self.models = ModelsPanel(self.workspace)
        self.models.model_changed.connect(self.model_chosen)
        content = QWidget()
        page = QVBoxLayout(content)
        columns = QHBoxLayout()
        page.addLayout(columns)
        page.addWidget(self.models)  # the whole width: its table has five columns
        left, right = QVBoxLayout(), QVBoxLayout()
        columns.addLayout(left, 3)
        columns.addLayout(right, 2)
        left.addWidget(self._model_box())
        left.addWidget(self._engine_box())
        left.addStretch()
        right.addWidget(self._adapter_box())
        right.addWidget(self._data_box())
        right.addWidget(self._privacy_box())
        right.addStretch()
        self.scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)

    # -- building ----------------------------------------------------------------------------------
    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        self.model_path = QLineEdit()
        self.model_path.setReadOnly(True)
        browse = QPushButton("&Browse…")
        browse.clicked.connect(self.browse_model)
        self.default_button = QPushButton("Use the &embedded model")
        self.default_button.clicked.connect(lambda: self.choose_model_file(None))
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(browse)
        # What a model file says of itself is shown as text, never read as markup.
        self.meta = {key: QLabel(textFormat=Qt.TextFormat.PlainText)
                     for key in ("name", "parameters", "quantisation", "context_length", "architecture",
                                 "chat_template", "size_bytes")}  # fmt: skip
        form = QFormLayout()
        for key, label in (("name", "Name"), ("parameters", "Parameters"), ("quantisation", "Quantisation"),
                           ("context_length", "Context"), ("architecture", "Architecture"),
                           ("chat_template", "Chat template"), ("size_bytes", "File size")):  # fmt: skip
            self.meta[key].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(f"{label}:", self.meta[key])
        self.model_message = QLabel()
        self.model_message.setWordWrap(True)
        layout = QVBoxLayout(box)
        layout.addLayout(row)
        layout.addLayout(form)
        layout.addWidget(self.model_message)
        layout.addWidget(self.default_button, 0, Qt.AlignmentFlag.AlignLeft)
        return box

    def _engine_box(self) -> QGroupBox:
        box = QGroupBox("Speed")
        self.threads = QSpinBox()
        self.threads.setRange(0, max(64, (os.cpu_count() or 1) * 2))
        self.threads.setSpecialValueText(f"Automatic ({default_threads()})")
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(-1, 999)
        self.gpu_layers.setSpecialValueText("Automatic (all, when llama.cpp has GPU support)")
        self.threads.valueChanged.connect(lambda v: self.save("n_threads", v or None))
        self.gpu_layers.valueChanged.connect(lambda v: self.save("n_gpu_layers", None if v < 0 else v))
        # Several sequences at once on one model: labelling and batches of drafts (merge, evaluation).
        self.label_width, self.draft_width = QSpinBox(), QSpinBox()
        for spin, key in ((self.label_width, LABEL_WIDTH), (self.draft_width, DRAFT_WIDTH)):
            spin.setRange(0, 16)
            spin.setSpecialValueText("Automatic (by model size and memory)")
            spin.valueChanged.connect(functools.partial(self._save_width, key))
        form = QFormLayout(box)
        form.addRow("CPU &threads:", self.threads)
        form.addRow("&GPU layers:", self.gpu_layers)
        form.addRow("Emails &labelled at once:", self.label_width)
        form.addRow("Drafts &written at once:", self.draft_width)
        note = QLabel("0 GPU layers runs on the CPU only. Several at once pays where the model is large or on a "
                      "GPU; a small model on the CPU is fastest one at a time. Changes apply to the next draft.")
        note.setWordWrap(True)
        form.addRow(note)
        return box

    def _save_width(self, key: str, value: int) -> None:
        self.save(key, value or None)

    def _adapter_box(self) -> QGroupBox:
        box = QGroupBox("Your style (adapter)")
        self.adapter = QComboBox()
        self.adapter.activated.connect(self.choose_adapter)
        self.adapter_message = QLabel()
        self.adapter_message.setWordWrap(True)
        layout = QVBoxLayout(box)
        layout.addWidget(self.adapter)
        layout.addWidget(self.adapter_message)
        return box

    def _data_box(self) -> QGroupBox:
        box = QGroupBox("Data folder")
        self.data_path = QLabel(str(self.workspace.root))
        self.data_path.setWordWrap(True)
        self.data_path.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.data_message = QLabel()
        self.data_message.setWordWrap(True)
        open_button, change = QPushButton("&Open"), QPushButton("&Change…")
        open_button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.workspace.root))))
        change.clicked.connect(self.browse_data_dir)
        row = QHBoxLayout()
        row.addWidget(open_button)
        row.addWidget(change)
        row.addStretch()
        layout = QVBoxLayout(box)
        layout.addWidget(self.data_path)
        layout.addLayout(row)
        layout.addWidget(self.data_message)
        self._show_data_dir()
        return box

    def _privacy_box(self) -> QGroupBox:
        box = QGroupBox("Privacy")
        self.offline = QLabel()
        self.offline.setWordWrap(True)
        self.forget_button = QPushButton("&Forget everything…")
        self.forget_button.clicked.connect(self.ask_forget)
        self.forget_message = QLabel()
        self.forget_message.setWordWrap(True)
        layout = QVBoxLayout(box)
        layout.addWidget(self.offline)
        layout.addWidget(self.forget_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.forget_message)
        return box

    # -- showing -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        ws = self.workspace
        self.show_offline()
        tasks.call(self, lambda: _load(ws), self.show_loaded)
        self.models.refresh()

    def show_models(self) -> None:
        """Bring the Models panel into view, its top first (Compose's model badge leads here)."""
        top = self.models.mapTo(self.scroll.widget(), QPoint(0, 0)).y()
        self.scroll.verticalScrollBar().setValue(max(0, top - 8))
        self.models.choose_button.setFocus()

    def show_loaded(self, loaded: dict[str, Any]) -> None:
        self.loaded = loaded
        self.model_path.setText(loaded["model_path"])
        self.model_path.setToolTip(loaded["model_path"])
        self.default_button.setEnabled(loaded["source"] != "embedded")
        self.show_model(loaded["info"])
        if loaded["problem"]:
            self.model_message.setText(loaded["problem"])
        for spin, value in ((self.threads, loaded["n_threads"]), (self.gpu_layers, loaded["n_gpu_layers"]),
                            (self.label_width, loaded[LABEL_WIDTH]), (self.draft_width, loaded[DRAFT_WIDTH])):
            spin.blockSignals(True)
            spin.setValue(spin.minimum() if value is None else int(value))
            spin.blockSignals(False)
        self.show_adapters(loaded["adapters"])
        self.refreshed.emit()

    def show_model(self, info: dict[str, Any] | None) -> None:
        self.model_message.clear()
        if info is None:
            for label in self.meta.values():
                label.setText("–")
            return
        context = info["context_length"]
        self.meta["name"].setText(str(info["name"]))
        self.meta["parameters"].setText(str(info["parameters"]))
        self.meta["quantisation"].setText(str(info["quantisation"]))
        self.meta["context_length"].setText(f"{context:,} tokens" if context else "unknown")
        self.meta["architecture"].setText(str(info["architecture"]))
        self.meta["chat_template"].setText("yes" if info["chat_template"] else "no (cannot draft)")
        self.meta["size_bytes"].setText(human_size(info["size_bytes"]))

    def show_adapters(self, adapters: list[dict[str, Any]]) -> None:
        self.adapter.clear()
        self.adapter.addItem("None: the base model alone", None)
        for a in adapters:
            loss = a["metrics"].get("eval_loss")
            score = f", validation loss {loss:.3f}" if isinstance(loss, float) else ""
            self.adapter.addItem(f"{a['name']} ({a['created_at'][:10]}{score})", a["name"])
            if a["in_use"]:
                self.adapter.setCurrentIndex(self.adapter.count() - 1)
        self.adapter_message.setText(
            "Adapters are trained on the Train page." if not adapters else "Drafts use the adapter chosen here."
        )

    def show_offline(self) -> None:
        switches = sum(os.environ.get(k) == v for k, v in netguard.OFFLINE_ENV.items())
        if netguard.installed():
            refused = f" {len(self.recorder.refused):,} attempts refused since start." if self.recorder else ""
            text = (f"<b>Offline</b>: connections to other machines are refused before anything is sent.{refused} "
                    f"Offline switches set for {switches} of {len(netguard.OFFLINE_ENV)} libraries.")  # fmt: skip
        else:
            text = "<b>The network guard is not on</b> (start Mailvoice with mailvoice gui to turn it on)."
        self.offline.setText(text)

    def _show_data_dir(self) -> None:
        chosen = self.qsettings.value(DATA_DIR_KEY)
        if os.environ.get("MAILVOICE_HOME"):
            note = "Set by MAILVOICE_HOME, which wins over a folder chosen here."
        elif chosen and Path(chosen).expanduser().resolve() != self.workspace.root:
            note = f"Mailvoice will use {chosen} from its next start."
        else:
            note = "A new folder takes effect when Mailvoice starts again; the mail already imported stays here."
        self.data_message.setText(note)

    # -- changing ----------------------------------------------------------------------------------
    def save(self, key: str, value: Any) -> None:
        tasks.write(self, self.workspace, lambda db: set_setting(db, key, value))

    def browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF model", "", "GGUF models (*.gguf);;All (*)")
        if path:
            self.choose_model_file(path)

    def choose_model_file(self, path: str | None) -> None:
        """Check ``path`` (None: the embedded model) and draft with it from now on; refused files change nothing."""
        ws = self.workspace
        self.model_message.setText("Reading the model's metadata…")
        tasks.call(self, lambda: choose_model(ws.db, path), self.model_chosen, self.model_refused)

    def model_chosen(self, info: dict[str, Any]) -> None:
        self.model_path.setText(info["path"])
        self.show_model(info)
        self.model_message.setText(f"Drafts now use {info['name']}.")
        self.model_changed.emit(info)
        self.refresh()

    def model_refused(self, message: str) -> None:
        self.model_message.setText(message)
        tasks.show_error(self, message, "Not a usable model")

    def choose_adapter(self, index: int) -> None:
        name = self.adapter.itemData(index)
        said = f"Drafts now use {name}." if name else "Drafts now use no adapter."
        tasks.write(self, self.workspace, lambda db: use_adapter(db, name or "none"),
                    lambda _chosen: self.adapter_message.setText(said))  # fmt: skip

    def browse_data_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the data folder", str(self.workspace.root))
        if folder:
            self.set_data_dir(folder)

    def set_data_dir(self, folder: str) -> None:
        """Use ``folder`` from the next start; a folder of someone else's files is refused now, not then."""
        path = Path(folder).expanduser()
        if path.is_file() or (path.is_dir() and not is_data_folder(path)):
            what = (
                "is a file"
                if path.is_file()
                else f"already holds files that are not Mailvoice's ({', '.join(foreign_entries(path)[:3])})"
            )
            tasks.show_error(self, f"{path} {what}. Choose a new or empty folder, e.g. {path / 'mailvoice'}.")
            return
        self.qsettings.setValue(DATA_DIR_KEY, folder)
        self.qsettings.sync()
        self._show_data_dir()

    def ask_forget(self) -> tasks.QMessageBox | None:
        reason = self.busy()
        if reason:
            tasks.show_error(self, f"{reason}. Stop it first, then forget everything.")
            return None
        s = stats(self.workspace.db)
        return tasks.confirm(
            self,
            "Forget everything",
            f"Delete everything Mailvoice stored in {self.workspace.root}: {s['messages']:,} messages, {s['pairs']:,} "
            f"training pairs, {s['drafts']:,} drafts, {s['adapters']:,} adapters, checkpoints and caches?\n\n"
            "This cannot be undone. Your original mail files are not touched.",
            "&Forget everything",
            self.forget_now,
        )

    def forget_now(self) -> None:
        ws = self.workspace
        self.forget_button.setEnabled(False)
        self.forget_message.setText("Deleting…")
        self.release()
        tasks.wait_all()  # quick loads in flight finish first: nothing may open the database while it goes
        tasks.writer(ws).wait()  # and the writes asked for before
        tasks.call(self, lambda: _forget(ws), self.forget_done, self.forget_failed)

    def forget_done(self, report: ForgetReport) -> None:
        self.forget_button.setEnabled(True)
        done = f"Deleted {report.removed_files:,} files ({human_size(report.removed_bytes)})."
        if report.kept:
            shown = ", ".join(report.kept[:5]) + (f" and {len(report.kept) - 5:,} more" if len(report.kept) > 5 else "")
            done += (f" Files that are not Mailvoice's were left as they were: {shown}. Choose a new or empty data "
                     "folder before importing again.")  # fmt: skip
        else:
            done += " The data folder is empty."
        self.forget_message.setText(done)
        self.forgotten.emit()
        self.forget_ended.emit()
        self.refresh()

    def forget_failed(self, message: str) -> None:
        self.forget_button.setEnabled(True)
        self.forget_message.setText(message)
        self.forget_ended.emit()
        tasks.show_error(self, message)
