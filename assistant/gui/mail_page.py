"""The Mail page: what is stored, the import wizard's door (button or drag and drop), and which addresses are yours."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from assistant.gui import tasks
from assistant.gui.wizard import IdentityList, choose_me
from assistant.identities import load_me, propose, stats
from assistant.paths import data_dir
from assistant.store import open_store


def _load(root: str) -> tuple[dict, list[dict], list[str]]:
    db = open_store(data_dir(root))
    return stats(db), propose(db), load_me(db)


class MailPage(QWidget):
    """Signals: import_requested(list) with paths to start from (empty: choose in the wizard); refreshed()."""

    import_requested = Signal(list)
    refreshed = Signal()

    def __init__(self, root: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.root = root
        self.stats: dict | None = None
        self.setAcceptDrops(True)
        self.summary = QLabel("Reading what is stored…")
        self.summary.setWordWrap(True)
        self.folders = QLabel()
        self.folders.setWordWrap(True)
        self.status = QLabel(
            "Import your mail: an mbox file (Gmail Takeout, Thunderbird, Apple Mail), a maildir, or a folder of "
            ".eml files. Drag files here or use the button; importing the same mail again adds nothing."
        )
        self.status.setWordWrap(True)
        self.import_button = QPushButton("&Import mail…  (Ctrl+I)")
        self.import_button.clicked.connect(lambda: self.import_requested.emit([]))
        self.identities = IdentityList()
        self.save_button = QPushButton("Save my &addresses")
        self.save_button.clicked.connect(self.save_identities)
        box = QGroupBox("Your addresses")
        inner = QVBoxLayout(box)
        inner.addWidget(QLabel("Mail sent from the ticked addresses teaches Mailvoice how you write."))
        inner.addWidget(self.identities, 1)
        inner.addWidget(self.save_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.import_button)
        buttons.addStretch()
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Your mail</h2>"))
        for w in (self.summary, self.folders, self.status):
            layout.addWidget(w)
        layout.addLayout(buttons)
        layout.addWidget(box, 1)

    def refresh(self) -> None:
        root = self.root
        tasks.call(self, lambda: _load(root), self.show_stats)

    def show_stats(self, loaded: tuple[dict, list[dict], list[str]]) -> None:
        s, candidates, me = loaded
        self.stats = s
        first, last = s["date_range"]
        span = f" from {first[:10]} to {last[:10]}" if first and last else ""
        who = ", ".join(s["me"]) or "not chosen yet"
        self.summary.setText(
            f"<b>{s['messages']:,}</b> messages{span}; <b>{s['sent']:,}</b> sent by you ({who}); "
            f"{s['threads']:,} conversations; {s['drafts']:,} drafts. Data folder: {self.root}"
        )
        folders = ", ".join(f"{name or '(none)'} {count:,}" for name, count in list(s["folders"].items())[:8])
        self.folders.setText(f"Folders: {folders}" if folders else "")
        self.identities.set_candidates(candidates, me)
        self.save_button.setEnabled(bool(candidates or me))
        self.refreshed.emit()

    def save_identities(self) -> None:
        chosen, root = self.identities.checked(), self.root
        if not chosen:
            tasks.show_error(self, "Tick at least one address of yours, or add one, then save.")
            return
        self.save_button.setEnabled(False)
        self.status.setText("Re-labelling your mail as sent or received…")
        tasks.call(self, lambda: choose_me(root, chosen), self.saved, self.save_failed)

    def saved(self, s: dict) -> None:
        self.status.setText(f"Saved: {s['sent']:,} stored messages are sent by you.")
        self.refresh()

    def save_failed(self, message: str) -> None:
        self.save_button.setEnabled(True)
        self.status.setText(message)
        tasks.show_error(self, message)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        event.acceptProposedAction()
        if paths:
            self.import_requested.emit(paths)
