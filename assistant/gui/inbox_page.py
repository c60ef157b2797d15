"""The Inbox page: the newest mail sorted by what it asks of you, with its suggested folder, events and tasks.

It shows what :mod:`assistant.inbox.triage` stored (``mailvoice triage`` stores the same): a list filtered by
category, and for the message chosen why it got its category, its events (in your local time) and tasks, and its
text. Triage new mail runs the core off the GUI thread on the mail not triaged yet, with progress, time left and
Stop (what was triaged before a stop is kept); Export events… writes every event found as an .ics file, as
``mailvoice events --ics`` does; Draft a reply hands the message to Compose (signal ``reply_requested``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from assistant.durations import format_duration
from assistant.errors import MailvoiceError
from assistant.gui import tasks
from assistant.gui.inbox_view import CATEGORY, DATE, EVENTS, FOLDER, FROM, SUBJECT, TASKS, InboxModel, detail_html
from assistant.inbox import triage
from assistant.inbox.categories import CATEGORIES, LABELS
from assistant.inbox.ics import to_ics
from assistant.workspace import Workspace

LIMIT = 500  # the newest messages listed (of the category chosen)
NOTHING_STORED = (
    "<h3>No mail imported yet</h3>Import your mail on the Mail page (Ctrl+1), then triage it here: Mailvoice sorts "
    "it by what it asks of you, suggests a folder for each message and finds the events and tasks in it."
)
NOTHING_TRIAGED = (
    "<h3>Nothing triaged yet</h3>Triage sorts your mail into what needs a reply, what waits on someone, meetings, "
    "tasks, FYI, newsletters and personal mail; suggests a folder for each message from how you file yours; and "
    "finds the events and tasks in it. It runs on this computer, in seconds for thousands of emails."
)
NO_FOLDERS = ("No folder suggestions: Mailvoice learns them from the folders you file mail in, and none of your "
              "mail is filed in folders it can learn from.")  # fmt: skip


@dataclass
class Loaded:
    """What the page shows, read off the GUI thread."""

    stored: int = 0  # messages in the store
    waiting: int = 0  # messages not triaged yet
    counts: dict[str, int] = field(default_factory=dict)  # triaged messages per category
    rows: list[triage.Triaged] = field(default_factory=list)

    @property
    def triaged(self) -> int:
        return sum(self.counts.values())


def _load(ws: Workspace, category: str | None) -> Loaded:
    db = ws.db
    counts = dict(db.execute("SELECT category, COUNT(*) FROM triage GROUP BY category").fetchall())
    return Loaded(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0], len(triage.pending_ids(db)),
                  counts, triage.newest(db, limit=LIMIT, category=category))  # fmt: skip


def _body(ws: Workspace, message: int) -> str | None:
    row = ws.db.execute("SELECT body FROM messages WHERE id = ?", [message]).fetchone()
    return None if row is None else row[0] or ""


def _export(ws: Workspace, path: str) -> int:
    events = [{k: v for k, v in e.items() if k != "message"} for e in triage.all_events(ws.db)]
    try:
        Path(path).write_text(to_ics(events), encoding="utf-8", newline="")
    except OSError as exc:
        raise MailvoiceError(f"Cannot write {path}: {exc.strerror or exc}. Choose another file.") from exc
    return len(events)


class InboxPage(QWidget):
    """Signals: reply_requested(dict) with the message to answer (``message_id``, ``subject``); refreshed()
    after the list was read; triaged(object) with the :class:`~assistant.inbox.triage.Summary` of a run."""

    reply_requested = Signal(dict)
    refreshed = Signal()
    triaged = Signal(object)

    def __init__(self, ws: Workspace | str, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = Workspace.of(ws)
        self.loaded = Loaded()
        self.summary: triage.Summary | None = None  # of the last run
        self.worker: tasks.CallWorker | None = None
        self.thread = None
        self.progress: tuple[int, int] | None = None
        self.started = 0.0
        self._asked = self._asked_body = 0
        self._build()
        self._layout()
        self.set_running(False)
        self.show_loaded(self.loaded)

    # --- building ---------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.category = QComboBox()
        self.category.setAccessibleName("Category")
        self.category.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.category.addItem("All", None)
        for name in CATEGORIES:
            self.category.addItem(LABELS[name], name)
        self.category.currentIndexChanged.connect(lambda _i: self.refresh())
        self.triage_button = QPushButton("&Triage new mail")
        self.triage_button.setToolTip("Sort the mail not triaged yet; what was triaged before is kept.")
        self.triage_button.clicked.connect(self.run_triage)
        self.export_button = QPushButton("&Export events…")
        self.export_button.setToolTip("Every event found in your mail, as a calendar file (.ics) any calendar imports.")
        self.export_button.clicked.connect(self.choose_export)
        self.stop_button = QPushButton("&Stop")
        self.stop_button.clicked.connect(self.stop)
        self.bar = QProgressBar(textVisible=False)
        self.bar.setRange(0, 1000)
        self.run_status = QLabel(wordWrap=True)
        self.filing_note = QLabel(wordWrap=True)
        self.filing_note.setObjectName("filingNote")
        self.filing_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # quiet: a fact, not an error
        self.model = InboxModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setAccessibleName("Triaged mail")
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(DATE, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(SUBJECT, QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        metrics = self.fontMetrics()
        widths = {
            DATE: metrics.horizontalAdvance("2024-12-31 23:59") + 16,
            FROM: 150,
            CATEGORY: metrics.horizontalAdvance("Needs a reply (not sure)") + 40,
            FOLDER: 110,
            EVENTS: metrics.horizontalAdvance("Events") + 20,
            TASKS: metrics.horizontalAdvance("Tasks") + 20,
        }
        for col, width in widths.items():
            self.table.setColumnWidth(col, width)
        self.table.selectionModel().currentRowChanged.connect(lambda *_a: self.show_current())
        self.table.doubleClicked.connect(lambda _i: self.draft_reply())
        self.detail = QTextBrowser()
        self.detail.setAccessibleName("Message")
        self.detail.setOpenLinks(False)  # mail text is shown, never followed
        self.detail.setTabChangesFocus(True)
        self.detail.setPlaceholderText("Choose a message to see why it is in its category, its events and tasks, "
                                       "and its text.")  # fmt: skip
        self.empty = QLabel(NOTHING_TRIAGED, wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.empty.setObjectName("emptyInbox")
        self.empty.setMaximumWidth(self.fontMetrics().averageCharWidth() * 90)  # lines short enough to read
        self.empty_triage = QPushButton("&Triage my mail")
        self.empty_triage.clicked.connect(self.run_triage)
        self.reply_button = QPushButton("&Draft a reply")
        self.reply_button.setToolTip("Answer the selected email in Compose, in your voice (or double-click it).")
        self.reply_button.clicked.connect(self.draft_reply)
        self.status = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)

    def _layout(self) -> None:
        self.top_bar = QWidget()
        top = QHBoxLayout(self.top_bar)
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Sho&w:", buddy=self.category))
        top.addWidget(self.category)
        top.addStretch()
        top.addWidget(self.triage_button)
        top.addWidget(self.export_button)
        running = QHBoxLayout()
        running.addWidget(self.bar, 1)
        running.addWidget(self.stop_button)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        self.list_or_empty = QStackedWidget()
        self.list_or_empty.addWidget(split)
        self.list_or_empty.addWidget(self._empty_state())
        bottom = QHBoxLayout()
        bottom.addWidget(self.reply_button)
        bottom.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.top_bar)
        layout.addLayout(running)
        layout.addWidget(self.run_status)
        layout.addWidget(self.filing_note)
        layout.addWidget(self.list_or_empty, 1)
        layout.addLayout(bottom)
        QWidget.setTabOrder(self.table, self.detail)

    def _empty_state(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout()
        column.addStretch()
        column.addWidget(self.empty)
        column.addWidget(self.empty_triage, 0, Qt.AlignmentFlag.AlignLeft)
        column.addStretch(2)
        row = QHBoxLayout(box)
        row.addStretch()
        row.addLayout(column, 3)
        row.addStretch()
        return box

    # --- the list ---------------------------------------------------------------------------------------
    def current_category(self) -> str | None:
        return self.category.currentData()

    def refresh(self) -> None:
        """Read the counts and the newest triaged mail of the category chosen, off the GUI thread."""
        self._asked += 1
        asked, ws, category = self._asked, self.workspace, self.current_category()
        tasks.call(self, lambda: _load(ws, category), lambda loaded: self.show_loaded(loaded, asked),
                   self.status.setText)  # fmt: skip

    def show_loaded(self, loaded: Loaded, asked: int | None = None) -> None:
        if asked is not None and asked != self._asked:
            return  # an older read: a newer one is on its way
        chosen = self.current_row()
        self.loaded = loaded
        self.category.setItemText(0, f"All ({loaded.triaged:,})")
        for i, name in enumerate(CATEGORIES, 1):
            self.category.setItemText(i, f"{LABELS[name]} ({loaded.counts.get(name, 0):,})")
        self.model.set_rows(loaded.rows)
        self.table.setColumnHidden(FOLDER, not any(t.filing for t in loaded.rows))  # no filing learned: no column
        self._select(chosen.id if chosen is not None else None)
        empty = loaded.triaged == 0
        self.empty.setText("Reading…" if asked is None else NOTHING_STORED if loaded.stored == 0 else NOTHING_TRIAGED)
        self.list_or_empty.setCurrentIndex(1 if empty else 0)
        self.top_bar.setVisible(not empty)  # with nothing to show, the empty state has the one button there is
        self.reply_button.setVisible(not empty)
        self._update_buttons()
        self._show_filing_note()
        if asked is not None:
            self.status.setText(self._counts_text())
            self.refreshed.emit()

    def _counts_text(self) -> str:
        loaded, shown = self.loaded, len(self.loaded.rows)
        if loaded.stored == 0 or loaded.triaged == 0:
            return ""
        total = loaded.counts.get(self.current_category(), 0) if self.current_category() else loaded.triaged
        listed = f"The newest {shown:,} of {total:,} shown." if shown < total else f"{shown:,} shown."
        waiting = f" {loaded.waiting:,} new messages to triage." if loaded.waiting else " Everything is triaged."
        return listed + waiting

    def _show_filing_note(self) -> None:
        if self.summary is not None and self.summary.pending:
            note = f"No folder suggestions: {self.summary.filing}" if self.summary.filing else ""
        else:  # no run yet: the stored rows say whether there was filing to learn from
            note = NO_FOLDERS if self.loaded.rows and not any(t.filing for t in self.loaded.rows) else ""
        self.filing_note.setText(note)
        self.filing_note.setVisible(bool(note))

    def _select(self, message: int | None) -> None:
        rows = [i for i, t in enumerate(self.model.rows) if t.id == message]
        row = self.proxy.mapFromSource(self.model.index(rows[0], 0)).row() if rows else 0
        if self.proxy.rowCount():
            self.table.selectRow(row)
        else:
            self.show_current()

    def current_row(self) -> triage.Triaged | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        source = self.proxy.mapToSource(index).row()
        return self.model.rows[source] if 0 <= source < len(self.model.rows) else None

    def show_current(self) -> None:
        """The chosen message's details at once; its text when it has been read off the GUI thread."""
        self._update_buttons()
        t = self.current_row()
        self._asked_body += 1
        if t is None:
            self.detail.clear()
            return
        self.detail.setHtml(detail_html(t, None))
        asked, ws = self._asked_body, self.workspace
        tasks.call(self, lambda: _body(ws, t.id), lambda body: self._show_body(asked, t, body), self.status.setText)

    def _show_body(self, asked: int, t: triage.Triaged, body: str | None) -> None:
        if asked == self._asked_body:
            text = body if body is not None else "(no longer stored)"
            self.detail.setHtml(detail_html(t, text))

    def _update_buttons(self) -> None:
        self.reply_button.setEnabled(self.current_row() is not None)
        self.export_button.setEnabled(self.loaded.triaged > 0 and not self.running)
        self.triage_button.setEnabled(self.loaded.stored > 0 and not self.running)
        self.empty_triage.setEnabled(self.triage_button.isEnabled())

    # --- triage -----------------------------------------------------------------------------------------
    # A busy flag, not QThread.isRunning(): the thread quits only after the slots of its last signal ran, so
    # the buttons set when a run ends would still see it running.
    running = False

    def set_running(self, busy: bool) -> None:
        self.running = busy
        self.bar.setVisible(busy)
        self.stop_button.setVisible(busy)
        self.stop_button.setEnabled(busy)
        self._update_buttons()
        if busy:
            for button in (self.triage_button, self.empty_triage, self.export_button):
                button.setEnabled(False)

    def run_triage(self) -> None:
        """Triage the mail not triaged yet (rules and the filing model, without the language model)."""
        if self.running:
            return
        ws = self.workspace

        def work(progress, cancel) -> triage.Summary:
            return triage.run(ws.db, ws.root, progress=lambda done, total: progress((done, total)), cancel=cancel)

        self.worker = tasks.CallWorker(work)
        self.worker.progress.connect(self.on_progress)
        self.worker.finished.connect(self.on_finished)
        self.worker.failed.connect(self.on_failed)
        self.worker.cancelled.connect(self.on_stopped)
        self.progress, self.started = None, time.monotonic()
        self.bar.setRange(0, 0)  # busy until the first chunk is done: the folders are learned first
        self.run_status.setText("Learning your folders and reading the new mail…")
        self.run_status.show()
        self.thread = tasks.start(self, self.worker)
        self.set_running(True)

    def stop(self) -> None:
        if self.worker is not None and self.running:
            self.worker.cancel()
            self.stop_button.setEnabled(False)
            self.run_status.setText("Stopping after this message; what was triaged is kept…")

    def on_progress(self, p: tuple[int, int]) -> None:
        done, total = self.progress = p
        self.bar.setRange(0, 1000)
        self.bar.setValue(int(done / total * 1000) if total else 1000)
        elapsed = time.monotonic() - self.started
        eta = f", about {format_duration(elapsed / done * (total - done))} left" if 0 < done < total else ""
        if self.stop_button.isEnabled():
            self.run_status.setText(f"Triaging… {done:,} of {total:,} messages{eta}")
        if done < total:
            self.refresh()  # what each chunk stored shows at once

    def on_finished(self, summary: triage.Summary) -> None:
        self.summary = summary
        self.set_running(False)
        self.run_status.setText(summary_text(summary))
        self.triaged.emit(summary)
        self.refresh()

    def on_failed(self, message: str) -> None:
        self.set_running(False)
        self.run_status.setText(message + " What was triaged before is kept.")
        self.refresh()

    def on_stopped(self) -> None:
        """The run was stopped before it had a summary to give."""
        self.on_failed("Stopped.")

    def running_job(self) -> str | None:
        """What runs on this page, for the status bar and the question before quitting; None when nothing."""
        if not self.running:
            return None
        done = f": {self.progress[0]:,} of {self.progress[1]:,} messages" if self.progress else ""
        return f"Mail is being triaged{done}. Quitting stops it; what was triaged is kept."

    def shutdown(self, wait_ms: int = 30000) -> None:
        if self.worker is not None and self.thread is not None and self.thread.isRunning():
            self.worker.cancel()
            self.thread.quit()
            self.thread.wait(wait_ms)
        if self.thread is not None and self.thread.isFinished():
            self.running = False  # the run has ended, though its last slot, queued, will not run before the quit

    # --- export and reply -------------------------------------------------------------------------------
    def choose_export(self) -> None:
        path, _kind = QFileDialog.getSaveFileName(self, "Export events", "events.ics", "Calendar (*.ics)")
        if path:
            self.export_to(path)

    def export_to(self, path: str) -> None:
        """Write every event found to ``path`` as iCalendar, off the GUI thread."""
        ws = self.workspace
        self.status.setText(f"Writing {path}…")
        tasks.call(self, lambda: _export(ws, path), lambda n: self.exported(path, n), self.export_failed)

    def exported(self, path: str, count: int) -> None:
        self.status.setText(f"Wrote {count:,} event{'s' * (count != 1)} to {path}.")

    def export_failed(self, message: str) -> None:
        self.status.setText(message)
        tasks.show_error(self, message, "Export failed")

    def draft_reply(self) -> None:
        t = self.current_row()
        if t is not None:
            self.reply_requested.emit({"message_id": t.message_id or str(t.id), "subject": t.subject})


def summary_text(s: triage.Summary) -> str:
    """One run in a sentence."""
    if not s.pending:
        return "No new mail to triage: everything stored is triaged."
    found = f"{s.events:,} event{'s' * (s.events != 1)} and {s.tasks:,} task{'s' * (s.tasks != 1)} found"
    if s.cancelled:
        return (f"Stopped: {s.triaged:,} of {s.pending:,} messages triaged and kept ({found}). Triage new mail "
                "goes on from there.")  # fmt: skip
    by_size = sorted(s.categories.items(), key=lambda kv: -kv[1])
    parts = ", ".join(f"{n:,} {_lower(LABELS.get(c, c))}" for c, n in by_size)
    return f"Triaged {s.triaged:,} messages in {format_duration(s.seconds)}: {parts}; {found}."


def _lower(label: str) -> str:
    return label if label.isupper() else label.lower()  # "FYI" stays
