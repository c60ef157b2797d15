"""The mail merge dialog: a CSV of recipients and one instruction; a preview of three drafts, then the rest.

It calls the same core as ``mailvoice batch RECIPIENTS.csv --instruction`` (:func:`assistant.drafting.mailmerge
.mail_merge`), off the GUI thread through :class:`assistant.gui.tasks.CallWorker`. The preview is the merge
itself stopped after three rows: "Draft the rest" keeps those three and goes on. A stopped merge (Stop, closing
the dialog, a crash) is resumed by running it again with the same file, instruction, tone and length: the rows
already drafted are kept, never drafted twice.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from assistant.drafting.backend import Backend
from assistant.drafting.mailmerge import PREVIEW_ROWS, MergeProgress, MergeReport, mail_merge
from assistant.drafting.merge_csv import scan_recipients
from assistant.durations import format_duration
from assistant.gui import tasks
from assistant.workspace import Workspace

LENGTHS = (("As usual", None), ("Short", "short"), ("Medium", "medium"), ("Long", "long"))
HINT = "e.g. invite {name} to our stand at the fair; {column} takes each row's value"


def _run(ws: Workspace, job: dict[str, Any], backend: Backend | None, progress, cancel) -> MergeReport:
    """The core call, in the worker thread. Each progress goes out as a copy: the core reuses its object."""
    return mail_merge(ws.db, job["csv"], job["instruction"], job["out"], limit=job["limit"], backend=backend,
                      progress=lambda p: progress(dataclasses.replace(p)), cancel=cancel, tone=job["tone"],
                      length=job["length"])  # fmt: skip


def _scan(path: str) -> str:
    r = scan_recipients(path)
    email = f"; addresses in {r.columns[r.email]}" if r.email is not None else "; no email column"
    return f"{r.rows:,} rows · columns: {', '.join(r.columns)}{email}"


def _skipped(report: MergeReport) -> str:
    if not report.skipped:
        return ""
    named = "; ".join(f"row {s['row']}: {s['reason']}" for s in report.skipped[:3])
    more = f"; and {len(report.skipped) - 3:,} more" if len(report.skipped) > 3 else ""
    return f" {len(report.skipped):,} rows skipped ({named}{more})."


class MailMergeDialog(QDialog):
    """Signals: previewed(object) with the preview's :class:`MergeReport`; merged(object) with a whole run's
    (``cancelled`` when stopped); failed(str) with the message shown.

    Args:
        ws: the workspace (or its data folder).
        backend_factory: makes the drafting engine once (tests pass a fake); llama.cpp on the chosen model when None.
    """

    previewed = Signal(object)
    merged = Signal(object)
    failed = Signal(str)

    def __init__(self, ws: Workspace | str, backend_factory=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Mail merge")
        self.workspace = Workspace.of(ws)
        self.backend_factory = backend_factory
        self.backend: Backend | None = None
        self.worker: tasks.CallWorker | None = None
        self.thread = None
        self.job: dict[str, Any] | None = None  # what is running
        self.previewed_job: dict[str, Any] | None = None  # what the preview shown was drafted for
        self.results: list[dict[str, Any]] = []
        self._build()
        self._update_buttons()

    def _build(self) -> None:
        self.csv = QLineEdit()
        self.csv.setPlaceholderText("A CSV file with a header row: name, email, company…")
        self.csv.textChanged.connect(self._inputs_changed)
        self.csv.editingFinished.connect(self.check_csv)
        choose = QPushButton("&Choose…")
        choose.clicked.connect(self.choose_csv)
        self.columns = QLabel(wordWrap=True)
        self.instruction = QLineEdit()
        self.instruction.setPlaceholderText(HINT)
        self.instruction.textChanged.connect(self._inputs_changed)
        self.tone = QLineEdit()
        self.tone.setPlaceholderText("optional, e.g. friendly")
        self.tone.textChanged.connect(self._inputs_changed)
        self.length = QComboBox()
        for text, value in LENGTHS:
            self.length.addItem(text, value)
        self.length.currentIndexChanged.connect(self._inputs_changed)
        self.preview_button = QPushButton(f"&Preview {PREVIEW_ROWS} drafts")
        self.preview_button.clicked.connect(self.preview)
        self.rest_button = QPushButton("&Draft the rest…")
        self.rest_button.clicked.connect(self.choose_out)
        self.stop_button = QPushButton("&Stop")
        self.stop_button.clicked.connect(self.stop)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel(wordWrap=True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self.show_result)
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setPlaceholderText("The drafts appear here as they are written.")

        file_row = QHBoxLayout()
        file_row.addWidget(self.csv, 1)
        file_row.addWidget(choose)
        form = QFormLayout()
        form.addRow("Recipients", file_row)
        form.addRow("", self.columns)
        form.addRow("&Instruction", self.instruction)
        form.addRow("&Tone", self.tone)
        form.addRow("&Length", self.length)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.list)
        splitter.addWidget(self.text)
        splitter.setSizes([220, 420])
        buttons = QHBoxLayout()
        for b in (self.preview_button, self.rest_button, self.stop_button):
            buttons.addWidget(b)
        buttons.addStretch()
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.resize(760, 560)

    # --- inputs -----------------------------------------------------------------------------------------------
    def request(self) -> dict[str, Any]:
        return {"csv": self.csv.text().strip(), "instruction": self.instruction.text().strip(),
                "tone": self.tone.text().strip() or None, "length": self.length.currentData()}  # fmt: skip

    def choose_csv(self) -> None:
        path, _kind = QFileDialog.getOpenFileName(self, "Recipients", "", "CSV (*.csv);;All files (*)")
        if path:
            self.csv.setText(path)
            self.check_csv()

    def check_csv(self) -> None:
        """Say what the file holds (rows, columns), or why it cannot be used, off the GUI thread."""
        path = self.csv.text().strip()
        if not path:
            self.columns.clear()
            return
        self.columns.setText("Reading…")
        tasks.call(self, functools.partial(_scan, path), self._scanned(path), self._scanned(path))

    def _scanned(self, path: str):
        return lambda text: self.columns.setText(text) if self.csv.text().strip() == path else None

    def _inputs_changed(self, *_args: Any) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.job is not None
        asked = self.request()
        ready = bool(asked["csv"] and asked["instruction"])
        self.preview_button.setEnabled(ready and not running)
        self.rest_button.setEnabled(not running and self.previewed_job == asked)
        self.stop_button.setEnabled(running)
        for w in (self.csv, self.instruction, self.tone, self.length):
            w.setEnabled(not running)

    # --- running ----------------------------------------------------------------------------------------------
    def preview(self) -> None:
        """Draft the first rows (those already drafted for this merge are shown as they are)."""
        self.start({**self.request(), "out": None, "limit": PREVIEW_ROWS})

    def choose_out(self) -> None:
        stem = Path(self.csv.text().strip()).stem or "recipients"
        out, _kind = QFileDialog.getSaveFileName(self, "Save the drafts as", f"{stem}-drafts.csv", "CSV (*.csv)")
        if out:
            self.draft_rest(out)

    def draft_rest(self, out: str) -> None:
        """Draft every row not drafted yet, and write all of them to ``out``."""
        self.start({**self.request(), "out": out, "limit": None})

    def start(self, job: dict[str, Any]) -> None:
        if self.job is not None:
            return
        if self.backend is None and self.backend_factory is not None:
            self.backend = self.backend_factory()
        self.job = job
        self.results = []
        self.list.clear()
        self.text.clear()
        self.progress.setRange(0, 0)  # busy until the first progress says how many rows
        self.status.setText("Drafting the preview…" if job["limit"] else "Drafting…")
        self.worker = tasks.CallWorker(functools.partial(_run, self.workspace, job, self.backend))
        self.worker.progress.connect(self.on_progress)
        self.worker.finished.connect(self.on_finished)
        self.worker.failed.connect(self.on_failed)
        self.thread = tasks.start(self, self.worker, quit_at_once=True)  # closing may wait for it
        self._update_buttons()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.status.setText("Stopping after this draft…")

    def on_progress(self, p: MergeProgress) -> None:
        if self.job is None:
            return
        total = min(p.total, self.job["limit"]) if self.job["limit"] else p.total
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(len(self.results) if self.job["limit"] else p.done, total))
        if p.result is not None:
            self.results.append(p.result)
            r = p.result
            who = r.get("name") or r.get("to") or "no address"
            self.list.addItem(f"Row {r['row']} · {who}" + (" ⚠" if r.get("incomplete") else ""))
            if self.list.currentRow() < 0:
                self.list.setCurrentRow(0)
        if not self.job["limit"]:
            eta = f", about {format_duration(p.eta)} left" if p.eta is not None else ""
            kept = f" ({p.earlier:,} drafted before, kept)" if p.earlier else ""
            self.status.setText(f"{p.done:,} of {p.total:,} rows{kept}{eta}")

    def show_result(self, index: int) -> None:
        if 0 <= index < len(self.results):
            r = self.results[index]
            subject = f"Subject: {r['subject']}\n\n" if r.get("subject") else ""
            to = f"To: {r['to']}\n" if r.get("to") else ""
            self.text.setPlainText(f"{to}{subject}{r['text']}")
        else:
            self.text.clear()

    def on_finished(self, report: MergeReport) -> None:
        job, self.job = self.job, None
        assert job is not None
        self.status.setText(f"{self._summary(report, bool(job['limit']))}{_skipped(report)}")
        if job["limit"]:
            self.previewed_job = {k: job[k] for k in ("csv", "instruction", "tone", "length")}
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
        self._update_buttons()
        (self.previewed if job["limit"] else self.merged).emit(report)

    @staticmethod
    def _summary(report: MergeReport, preview: bool) -> str:
        if preview:
            rest = max(report.instructions - report.written - len(report.skipped), 0)
            return (f"Preview: {report.written} drafts. If they read right, Draft the rest writes the other rows "
                    f"(up to {rest:,}) and keeps these.")  # fmt: skip
        if report.cancelled:
            return (f"Stopped: {report.written:,} of {report.instructions:,} rows drafted, in {report.out}. Draft "
                    "the rest again to resume: the drafted rows are kept.")  # fmt: skip
        took = format_duration(report.seconds)
        return f"Wrote {report.written:,} drafts to {report.out} in {took} (also on the Drafts page)."

    def on_failed(self, message: str) -> None:
        self.job = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText(message)
        self._update_buttons()
        self.failed.emit(message)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing stops a running merge (what is drafted is kept) and waits for its thread."""
        if self.worker is not None and self.thread is not None and self.thread.isRunning():
            self.worker.cancel()
            self.thread.wait(30_000)
        super().closeEvent(event)
