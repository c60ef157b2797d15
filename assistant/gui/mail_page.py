"""The Mail page: what is stored, the messages themselves (list and reading pane), the import wizard's door (button
or drag and drop), and which addresses are yours.

Ticking or unticking an address applies at once: mail is re-labelled off the GUI thread, one change at a time
(ticks made meanwhile follow when it ends), and no refresh puts back ticks that were not applied yet.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from assistant.gui import tasks
from assistant.gui.mail_view import MailView
from assistant.gui.wizard import IdentityList, choose_me
from assistant.identities import load_me, propose, stats
from assistant.workspace import Workspace

MESSAGES_TAB, ADDRESSES_TAB = range(2)


def _load(ws: Workspace) -> tuple[dict, list[dict], list[str]]:
    db = ws.db
    return stats(db), propose(db), load_me(db)


def _same(a: list[str], b: list[str]) -> bool:
    return sorted(x.strip().lower() for x in a) == sorted(x.strip().lower() for x in b)


class MailPage(QWidget):
    """Signals: import_requested(list) with paths to start from (empty: choose in the wizard); refreshed();
    identities_applied(dict) with the stats after addresses were applied."""

    import_requested = Signal(list)
    refreshed = Signal()
    identities_applied = Signal(dict)

    def __init__(self, ws: Workspace | str, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = Workspace.of(ws)
        self.stats: dict | None = None
        self.applied_me: list[str] = []  # the addresses stored as the user's, as last read or applied
        self.applying = False
        self._populating = False  # ticks set by the page itself, not by the person
        self._asked = 0  # the newest refresh; older answers are dropped
        self._seen: tuple | None = None  # what the list was read from: a change in the store reads it again
        self.setAcceptDrops(True)
        self.summary = QLabel("Reading what is stored…", wordWrap=True)
        self.folders = QLabel(wordWrap=True)
        self.import_button = QPushButton("&Import mail…  (Ctrl+I)")
        self.import_button.setToolTip("Or drag mbox files, maildirs or .eml files onto this page.")
        self.import_button.clicked.connect(lambda: self.import_requested.emit([]))
        self.view = MailView(self.workspace)
        self.view.import_requested.connect(lambda: self.import_requested.emit([]))
        self.identities = IdentityList()
        self.identities.list.itemChanged.connect(self._ticked)
        self.identities.list.model().rowsInserted.connect(lambda *_a: self._ticked(None))
        self.identities_status = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.view, "&Messages")
        self.tabs.addTab(self._addresses(), "Your &addresses")
        title = QHBoxLayout()
        title.addWidget(QLabel("<h2>Your mail</h2>"))
        title.addStretch()
        title.addWidget(self.import_button)
        layout = QVBoxLayout(self)
        layout.addLayout(title)
        layout.addWidget(self.summary)
        layout.addWidget(self.folders)
        layout.addWidget(self.tabs, 1)

    def _addresses(self) -> QWidget:
        box = QWidget()
        inner = QVBoxLayout(box)
        inner.addWidget(QLabel("Mail sent from the ticked addresses is yours and teaches Mailvoice how you write. "
                               "A change applies at once.", wordWrap=True))  # fmt: skip
        inner.addWidget(self.identities, 1)
        inner.addWidget(self.identities_status)
        return box

    # -- what is stored -------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._asked += 1
        asked, ws = self._asked, self.workspace
        tasks.call(self, lambda: _load(ws), lambda loaded: self.show_stats(loaded, asked))

    def show_stats(self, loaded: tuple[dict, list[dict], list[str]], asked: int | None = None) -> None:
        if asked is not None and asked != self._asked:
            return  # a newer refresh is on its way
        s, candidates, me = loaded
        self.stats = s
        self.summary.setText(_summary(s, self.workspace))
        folders = ", ".join(f"{name or '(none)'} {count:,}" for name, count in list(s["folders"].items())[:8])
        self.folders.setText(f"Folders: {folders}" if folders else "")
        self.folders.setVisible(bool(folders))
        self.view.set_counts(s["messages"], s["classes"])
        seen = (s["messages"], tuple(s["classes"].items()), s["import_runs"], tuple(s["date_range"]), tuple(me))
        if seen != self._seen:
            self._seen = seen
            self.view.reload()
        if not self.applying:  # ticks not applied yet stay as the person left them
            self._show_identities(candidates, me)
        self.refreshed.emit()

    def _show_identities(self, candidates: list[dict], me: list[str]) -> None:
        self._populating = True
        try:
            self.identities.set_candidates(candidates, me)
        finally:
            self._populating = False
        self.applied_me = list(me)

    # -- your addresses -------------------------------------------------------------------------------
    def _ticked(self, item: QTreeWidgetItem | None, _column: int = 0) -> None:
        """A tick changed or an address was added: apply it now (the last address stays ticked)."""
        if self._populating:
            return
        if not self.identities.checked():
            if item is not None:
                self._populating = True
                item.setCheckState(0, Qt.CheckState.Checked)
                self._populating = False
            self.identities_status.setText("At least one address stays yours: tick your other address first, then "
                                           "untick this one.")  # fmt: skip
            return
        self.apply_identities()

    def apply_identities(self) -> None:
        """Store the ticked addresses as the user's and re-label mail, off the GUI thread, one change at a time."""
        chosen, ws = self.identities.checked(), self.workspace
        if self.applying or not chosen or _same(chosen, self.applied_me):
            return  # a running change applies the newest ticks when it ends
        self.applying = True
        self.identities_status.setText("Re-labelling your mail as sent or received…")
        tasks.call(self, lambda: choose_me(ws, chosen), self._applied, self._apply_failed)

    def _applied(self, s: dict) -> None:
        self.applying = False
        self.applied_me = list(s["me"])
        if not _same(self.identities.checked(), self.applied_me) and self.identities.checked():
            self.apply_identities()  # ticked again while this change ran
            return
        who = ", ".join(s["me"])
        self.identities_status.setText(f"Saved: {s['sent']:,} stored messages are sent by you ({who}).")
        self.identities_applied.emit(s)
        self.refresh()

    def _apply_failed(self, message: str) -> None:
        self.applying = False
        self.identities_status.setText(f"Your addresses were not changed: {message}")
        tasks.show_error(self, message)
        self.refresh()  # show the addresses as they are stored

    # -- importing ------------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        event.acceptProposedAction()
        if paths:
            self.import_requested.emit(paths)


def _summary(s: dict, ws: Workspace) -> str:
    if not s["messages"]:
        return f"<b>0</b> messages stored yet. Data folder: {html.escape(str(ws.root))}"
    first, last = s["date_range"]
    span = f" from {first[:10]} to {last[:10]}" if first and last else ""
    who = ", ".join(s["me"]) or "not chosen yet: tick yours under Your addresses"
    c = s["classes"]
    kinds = (f"{c.get('yours', 0):,} yours, {c.get('received', 0):,} received, {c.get('list', 0):,} from lists, "
             f"{c.get('automated', 0):,} automated")  # fmt: skip
    return (
        f"<b>{s['messages']:,}</b> messages{span} ({kinds}); <b>{s['sent']:,}</b> sent by you ({who}); "
        f"{s['threads']:,} conversations; {s['drafts']:,} drafts. Data folder: {html.escape(str(ws.root))}"
    )
