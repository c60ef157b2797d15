"""The import wizard: choose mail, preview it, import it with progress, say which addresses are yours, read the summary.

The wizard calls the same core as ``mailvoice import`` (:func:`assistant.importer.import_paths`) and
``mailvoice me`` (:func:`assistant.identities.relabel`), off the GUI thread. The preview is quick: archives
up to :data:`EXACT_BYTES` are counted exactly; bigger ones are sampled in evenly spaced windows and the
message count is estimated from the messages per byte found there.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QDate, QSettings, Qt, QThread
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDateEdit,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from assistant.durations import format_duration
from assistant.gui import tasks
from assistant.identities import load_me, propose, relabel, stats
from assistant.importer import ImportProgress, ImportReport, import_paths
from assistant.mail.preview import Preview, human_size, known_locations, preview
from assistant.workspace import Workspace

log = logging.getLogger("mailvoice.gui")


def importing(ws: Workspace, paths: list[str], since: dt.date | None = None,
              until: dt.date | None = None) -> tasks.Work:
    """One import, as a :class:`tasks.CallWorker` runs it: progress(ImportProgress), cancel between messages."""

    def work(progress, cancel) -> ImportReport:
        db = ws.db  # SQLite connections stay on the thread that made them
        return import_paths(db, paths, since=since, until=until, progress=progress, cancel=cancel)

    return work


LAST_FOLDER_KEY = "import/last_folder"  # QSettings: where the file dialogs opened mail last
EMPTY_IDENTITIES = (
    "No address to propose: Mailvoice proposes the addresses your mail was sent from, and none of the mail "
    "stored looks sent by you (no Sent folder, and no sender writes often enough to be you). "
    "Type your address below and press Enter to add it."
)


class AddressEdit(QLineEdit):
    """A line edit whose Enter stays here: it adds the address, and never also presses the dialog's default button."""

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().keyPressEvent(event)  # emits returnPressed, then lets the key go on to the dialog
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()


class IdentityList(QWidget):
    """Proposed own addresses with their evidence, as checkboxes, and a field to add another one.

    With nothing to propose, a line says why the list is empty and what to do.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = QTreeWidget()
        self.list.setHeaderLabels(["Address", "Name", "Why it is proposed"])
        self.list.setRootIsDecorated(False)
        self.list.setColumnWidth(0, 280)
        self.list.setColumnWidth(1, 150)
        self.empty = QLabel(EMPTY_IDENTITIES, wordWrap=True)
        self.empty.setObjectName("emptyIdentities")
        self.empty.hide()
        self.extra = AddressEdit()
        self.extra.setPlaceholderText("Another address of yours, e.g. me@work.example")
        self.add_button = QPushButton("&Add")
        self.add_button.clicked.connect(self.add_extra)
        self.extra.returnPressed.connect(self.add_extra)
        row = QHBoxLayout()
        row.addWidget(self.extra, 1)
        row.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty)
        layout.addLayout(row)

    def set_candidates(self, candidates: list[dict], chosen: list[str]) -> None:
        self.list.clear()
        shown = set()
        for c in candidates:
            self._add(c["address"], c["name"], "; ".join(c["reasons"]), c["chosen"])
            shown.add(c["address"].lower())
        for address in chosen:  # chosen earlier but no longer among the top senders
            if address.lower() not in shown:
                self._add(address, "", "chosen before", True)
        self.empty.setVisible(self.list.topLevelItemCount() == 0)

    def _add(self, address: str, name: str, why: str, checked: bool) -> None:
        item = QTreeWidgetItem([address, name, why])
        item.setToolTip(2, why)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(0, Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.list.addTopLevelItem(item)

    def add_extra(self) -> None:
        address = self.extra.text().strip()
        if "@" not in address:
            return
        self._add(address, "", "added by you", True)
        self.extra.clear()
        self.empty.hide()

    def items(self) -> list[QTreeWidgetItem]:
        return [self.list.topLevelItem(i) for i in range(self.list.topLevelItemCount())]

    def states(self) -> dict[str, bool]:
        """Every address listed, and whether it is ticked."""
        return {i.text(0): i.checkState(0) == Qt.CheckState.Checked for i in self.items()}

    def check(self, address: str, on: bool = True) -> None:
        for item in self.items():
            if item.text(0).lower() == address.lower():
                item.setCheckState(0, Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def checked(self) -> list[str]:
        return [address for address, on in self.states().items() if on]


class SourcesPage(QWizardPage):
    """Choose mbox files or folders: file dialogs, drag and drop, and the mail folders found on this computer."""

    def __init__(self, home: Path | None, settings: QSettings | None = None):
        super().__init__()
        self.home = Path(home) if home is not None else Path.home()
        self.qsettings = settings
        self.setTitle("Choose your mail")
        self.setSubTitle("mbox files (Gmail Takeout, Thunderbird, Apple Mail), maildirs, .eml files, or folders "
                         "of them. You can also drag them here.")  # fmt: skip
        self.setAcceptDrops(True)
        self.chosen = QListWidget()
        self.chosen.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.found = QListWidget()
        self.found.itemDoubleClicked.connect(lambda item: self.add_paths([item.data(Qt.ItemDataRole.UserRole)]))
        for label, path in known_locations(home):
            item = QListWidgetItem(f"{label}: {path}")
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            self.found.addItem(item)
        files, folder, remove = QPushButton("Add &files…"), QPushButton("Add f&older…"), QPushButton("&Remove")
        files.clicked.connect(self.choose_files)
        folder.clicked.connect(self.choose_folder)
        remove.clicked.connect(self.remove_selected)
        add_found = QPushButton("Add &selected")
        add_found.clicked.connect(
            lambda: self.add_paths([i.data(Qt.ItemDataRole.UserRole) for i in self.found.selectedItems()])
        )
        buttons = QHBoxLayout()
        for b in (files, folder, remove):
            buttons.addWidget(b)
        buttons.addStretch()
        layout = QVBoxLayout(self)
        if self.found.count():
            layout.addWidget(QLabel("<b>Found on this computer</b> (double-click to add):"))
            self.found.setMaximumHeight(110)
            layout.addWidget(self.found)
            layout.addWidget(add_found, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(QLabel("<b>To import:</b>"))
        layout.addWidget(self.chosen, 1)
        layout.addLayout(buttons)

    def paths(self) -> list[str]:
        return [self.chosen.item(i).text() for i in range(self.chosen.count())]

    def add_paths(self, paths: Iterable[str]) -> None:
        have = set(self.paths())
        for p in paths:
            if p and p not in have:
                self.chosen.addItem(p)
                have.add(p)
        self.completeChanged.emit()

    def remove_selected(self) -> None:
        for item in self.chosen.selectedItems():
            self.chosen.takeItem(self.chosen.row(item))
        self.completeChanged.emit()

    def start_folder(self) -> str:
        """Where the file dialogs open: the folder mail was last chosen from, else the home folder."""
        last = self.qsettings.value(LAST_FOLDER_KEY) if self.qsettings is not None else None
        return str(last) if last and Path(str(last)).is_dir() else str(self.home)

    def remember_folder(self, folder: str | Path) -> None:
        if self.qsettings is not None:
            self.qsettings.setValue(LAST_FOLDER_KEY, str(folder))

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Choose mail files", self.start_folder(),
                                                "Mail (*.mbox *.mbx *.eml *);;All (*)")  # fmt: skip
        if files:
            self.remember_folder(Path(files[0]).parent)
        self.add_paths(files)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a mail folder", self.start_folder())
        if folder:
            self.remember_folder(Path(folder).parent)
        self.add_paths([folder])

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.add_paths([url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()])
        event.acceptProposedAction()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return self.chosen.count() > 0


class PreviewPage(QWizardPage):
    """How much mail, from when, how big; and the optional date filter."""

    def __init__(self):
        super().__init__()
        self.setTitle("What will be imported")
        self.setCommitPage(True)
        self.result: Preview | None = None
        self.cancel_event = threading.Event()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.messages, self.dates, self.size = QLabel(), QLabel(), QLabel()
        self.since_box, self.until_box = QCheckBox("Only mail &since"), QCheckBox("Only mail &until")
        self.since, self.until = QDateEdit(), QDateEdit()
        for box, edit in ((self.since_box, self.since), (self.until_box, self.until)):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
            box.toggled.connect(edit.setEnabled)
        form = QFormLayout()
        form.addRow("Messages:", self.messages)
        form.addRow("Dates:", self.dates)
        form.addRow("Size:", self.size)
        form.addRow(self.since_box, self.since)
        form.addRow(self.until_box, self.until)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.busy)
        layout.addLayout(form)
        layout.addStretch()

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        self.wizard().setButtonText(QWizard.WizardButton.CommitButton, "&Import")
        self.result = None
        self.cancel_event.set()  # a preview of paths chosen before is no longer wanted
        self.cancel_event = cancel = threading.Event()
        self.busy.show()
        self.status.setText("Looking at your files…")
        for label in (self.messages, self.dates, self.size):
            label.clear()
        paths = self.wizard().sources_page.paths()
        tasks.call(self, lambda: preview(paths, cancel=cancel.is_set),
                   lambda pv: None if cancel.is_set() else self.show_preview(pv), self.show_failure)  # fmt: skip
        self.completeChanged.emit()

    def show_preview(self, pv: Preview) -> None:
        self.busy.hide()
        self.result = pv
        about = "about " if pv.estimated else ""
        self.messages.setText(f"{about}{pv.messages:,}" + (" (estimated from samples)" if pv.estimated else ""))
        self.dates.setText(f"{pv.first[:10]} to {pv.last[:10]}" if pv.first and pv.last else "unknown")
        self.size.setText(f"{human_size(pv.bytes)} in {pv.files:,} mail file{'s' * (pv.files != 1)}")
        for edit, iso in ((self.since, pv.first), (self.until, pv.last)):
            if iso:
                edit.setDate(QDate.fromString(iso[:10], "yyyy-MM-dd"))
        skipped = f" {len(pv.not_mail):,} files are not mail and will be listed as skipped." if pv.not_mail else ""
        if pv.messages:
            self.status.setText(f"Ready to import.{skipped} Importing the same mail again adds nothing.")
        else:
            reasons = "; ".join(sorted({s.reason for s in pv.not_mail}))[:300]
            self.status.setText(f"No mail found ({reasons or 'nothing chosen'}). Go back and choose an mbox file, "
                                "a maildir, or a folder of .eml files.")  # fmt: skip
        self.completeChanged.emit()

    def show_failure(self, message: str) -> None:
        self.busy.hide()
        self.status.setText(message)

    def date_range(self) -> tuple[dt.date | None, dt.date | None]:
        since = self.since.date().toPython() if self.since_box.isChecked() else None
        until = self.until.date().toPython() if self.until_box.isChecked() else None
        return since, until

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return bool(self.result and self.result.messages)

    def cleanupPage(self) -> None:  # noqa: N802 - Qt's name
        self.cancel_event.set()


class ImportPage(QWizardPage):
    """The import itself, off the GUI thread, with progress, speed, time left and a Stop button."""

    def __init__(self, ws: Workspace | str):
        super().__init__()
        self.workspace = Workspace.of(ws)
        self.setTitle("Importing")
        self.report: ImportReport | None = None
        self.worker: tasks.CallWorker | None = None
        self.thread: QThread | None = None
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.stop_button = QPushButton("&Stop")
        self.stop_button.clicked.connect(self.stop)
        layout = QVBoxLayout(self)
        for w in (self.status, self.bar, self.detail):
            layout.addWidget(w)
        layout.addWidget(self.stop_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch()

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        since, until = self.wizard().preview_page.date_range()
        self.report = None
        self.bar.setValue(0)
        self.status.setText("Importing… You can stop at any time: the next import continues where this one stopped.")
        self.worker = tasks.CallWorker(importing(self.workspace, self.wizard().sources_page.paths(), since, until))
        self.worker.progress.connect(self.on_progress)
        self.worker.finished.connect(self.on_finished)
        self.worker.failed.connect(self.on_failed)
        self.stop_button.setEnabled(True)
        self.thread = tasks.start(self, self.worker)

    def running(self) -> bool:
        return bool(self.thread and self.thread.isRunning())

    def stop(self) -> None:
        if self.worker:
            self.worker.cancel()
            self.stop_button.setEnabled(False)
            self.status.setText("Stopping after the current batch…")

    def on_progress(self, p: ImportProgress) -> None:
        self.bar.setValue(int(p.fraction * 1000))
        eta = f" · about {format_duration(p.eta)} left" if p.eta is not None else ""
        phase = "" if p.phase == "reading" else f" · {p.phase}"
        done = f"{human_size(p.bytes_done)} of {human_size(p.bytes_total)}"
        speed = f"{p.seen:,} messages read · {p.rate:,.0f} messages/s"
        self.detail.setText(f"{speed}{eta} · {done}{phase}\n{p.current_file}")

    def on_finished(self, report: ImportReport) -> None:
        self.report = report
        self.wizard().report = report
        self.bar.setValue(1000 if report.status == "done" else self.bar.value())
        self.stop_button.setEnabled(False)
        verb = "Stopped" if report.status == "cancelled" else "Done"
        self.status.setText(f"{verb}: {report.imported:,} new messages in {format_duration(report.seconds)}. "
                            "Next: which addresses are yours.")  # fmt: skip
        self.completeChanged.emit()

    def on_failed(self, message: str) -> None:
        self.stop_button.setEnabled(False)
        self.status.setText(message)
        tasks.show_error(self, message, "Import failed")

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return self.report is not None


class IdentitiesPage(QWizardPage):
    """Which addresses are the user's, from the proposals (``mailvoice identities``)."""

    def __init__(self, ws: Workspace | str):
        super().__init__()
        self.workspace = Workspace.of(ws)
        self.loaded = False
        self.setTitle("Which addresses are yours?")
        self.setSubTitle("Mail sent from these addresses teaches Mailvoice how you write. Tick every address "
                         "of yours; the evidence is under each.")  # fmt: skip
        self.identities = IdentityList()
        QVBoxLayout(self).addWidget(self.identities)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        self.loaded = False
        ws = self.workspace
        tasks.call(self, lambda: _proposals(ws), self.show_candidates)

    def show_candidates(self, found: tuple[list[dict], list[str]]) -> None:
        self.identities.set_candidates(*found)
        if not self.identities.items():
            self.identities.extra.setFocus()  # the one thing to do here: type an address
        self.loaded = True
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return self.loaded


def _proposals(ws: Workspace) -> tuple[list[dict], list[str]]:
    db = ws.db
    return propose(db), load_me(db)


def choose_me(ws: Workspace, chosen: list[str]) -> dict:
    """Store ``chosen`` as the user's addresses when they changed (re-labelling mail); return the stats."""
    db = ws.db
    if chosen and sorted(a.lower() for a in chosen) != sorted(load_me(db)):
        relabel(db, chosen)
    return stats(db)


class SummaryPage(QWizardPage):
    """What the import did, and every skipped item with its reason."""

    def __init__(self, ws: Workspace | str):
        super().__init__()
        self.workspace = Workspace.of(ws)
        self.stats: dict | None = None
        self.setTitle("Summary")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.skipped = QTableWidget(0, 2)
        self.skipped.setHorizontalHeaderLabels(["Skipped", "Why"])
        self.skipped.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.skipped.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.skipped.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.skipped.verticalHeader().hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.skipped, 1)
        self.setFinalPage(True)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        self.stats = None
        self.text.setText("Saving your addresses…")
        chosen, ws = self.wizard().identities_page.identities.checked(), self.workspace
        tasks.call(self, lambda: choose_me(ws, chosen), self.show_summary)
        report = self.wizard().report
        rows = report.skipped if report else []
        self.skipped.setRowCount(len(rows))
        for i, s in enumerate(rows):
            self.skipped.setItem(i, 0, QTableWidgetItem(s.where))
            self.skipped.setItem(i, 1, QTableWidgetItem(s.reason))
        self.skipped.setVisible(bool(rows))

    def show_summary(self, s: dict) -> None:
        self.stats = s
        r = self.wizard().report
        lines = [f"Read <b>{r.seen:,}</b> messages in {format_duration(r.seconds)}: <b>{r.imported:,}</b> new, "
                 f"{r.duplicates:,} already stored, {len(r.skipped):,} skipped."]  # fmt: skip
        if r.outside_dates:
            lines.append(f"{r.outside_dates:,} messages were outside the chosen dates.")
        if r.status == "cancelled":
            lines.append("The import was stopped; import the same mail again to continue where it stopped.")
        me = ", ".join(s["me"]) or "not chosen yet (choose on the Mail page)"
        lines.append(f"You are {me}: <b>{s['sent']:,}</b> messages sent by you, {s['messages']:,} stored in all.")
        if r.skipped:
            lines.append("Skipped items and why:")
        self.text.setText("<br>".join(lines))
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return self.stats is not None


class ImportWizard(QWizard):
    """Sources → preview and dates → import → your addresses → summary. Attribute ``report`` after importing.

    ``settings`` keeps the folder mail was last chosen from (the file dialogs open there next time).
    """

    def __init__(self, ws: Workspace | str, *, home: Path | None = None, paths: Iterable[str] = (),
                 parent: QWidget | None = None, settings: QSettings | None = None):  # fmt: skip
        super().__init__(parent)
        self.workspace = Workspace.of(ws)
        self.report: ImportReport | None = None
        self.setWindowTitle("Import mail")
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        self.sources_page = SourcesPage(home, settings)
        self.preview_page = PreviewPage()
        self.import_page = ImportPage(self.workspace)
        self.identities_page = IdentitiesPage(self.workspace)
        self.summary_page = SummaryPage(self.workspace)
        for page in (self.sources_page, self.preview_page, self.import_page, self.identities_page,
                     self.summary_page):  # fmt: skip
            self.addPage(page)
        self.sources_page.add_paths(paths)
        self.resize(760, 540)

    def done(self, result: int) -> None:
        """Closing (Cancel, Esc, Finish) stops a running import first; what it stored so far is kept."""
        self.preview_page.cancel_event.set()
        page = self.import_page
        if page.running():
            page.stop()
            page.thread.quit()
            page.thread.wait(30000)
        super().done(result)
