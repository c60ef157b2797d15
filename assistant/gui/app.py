"""The desktop app's entry point and main window (PySide6; the only package that imports Qt).

The window shows what is stored and imports mail off the GUI thread with progress, ETA and cancel,
calling the same core as ``mailvoice import``.
"""

from __future__ import annotations

import sys
import threading

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from assistant import netguard
from assistant.drafting.backend import unload
from assistant.errors import MailvoiceError
from assistant.gui import tasks
from assistant.gui.compose import ComposePage
from assistant.identities import stats
from assistant.importer import ImportProgress, import_paths
from assistant.paths import data_dir
from assistant.store import open_store


class ImportWorker(QObject):
    """Runs one import in a QThread. Signals: progress(object), finished(object), failed(str)."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, root: str, paths: list[str]):
        super().__init__()
        self.root = root
        self.paths = paths
        self.cancel_event = threading.Event()

    def run(self) -> None:
        try:
            db = open_store(data_dir(self.root))  # SQLite connections stay on the thread that made them
            report = import_paths(db, self.paths, progress=self.progress.emit, cancel=self.cancel_event.is_set)
            self.finished.emit(report)
        except MailvoiceError as exc:
            self.failed.emit(str(exc))


class MainWindow(QMainWindow):
    def __init__(self, root: str | None = None, backend_factory=None):
        super().__init__()
        self.root = str(data_dir(root))
        self.setWindowTitle("Mailvoice")
        self.resize(720, 420)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.status = QLabel(
            "Import your mail to begin: an mbox file (Gmail Takeout, Thunderbird, Apple Mail), "
            "a maildir, or a folder of .eml files."
        )
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.hide()
        self.import_file_button = QPushButton("Import mbox or .eml &file…")
        self.import_dir_button = QPushButton("Import &folder…")
        self.cancel_button = QPushButton("&Cancel")
        self.cancel_button.hide()
        self.import_file_button.clicked.connect(self.choose_file)
        self.import_dir_button.clicked.connect(self.choose_folder)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        for b in (self.import_file_button, self.import_dir_button, self.cancel_button):
            buttons.addWidget(b)
        buttons.addStretch()
        layout = QVBoxLayout()
        title = QLabel(
            "<h2>Mailvoice</h2><p>Drafts in your own voice, learned from your own mail. "
            "Nothing leaves this computer.</p>"
        )
        for w in (title, self.summary, self.status, self.bar):
            layout.addWidget(w)
        layout.addLayout(buttons)
        layout.addStretch()
        mail_page = QWidget()
        mail_page.setLayout(layout)
        self.compose = ComposePage(self.root, backend_factory)
        self.tabs = QTabWidget()
        self.tabs.addTab(mail_page, "&Mail")
        self.tabs.addTab(self.compose, "C&ompose")
        self.setCentralWidget(self.tabs)
        self.thread: QThread | None = None
        self.worker: ImportWorker | None = None
        self.refresh()

    def refresh(self) -> None:
        s = stats(open_store(data_dir(self.root), check=True))
        first, last = s["date_range"]
        span = f" from {first[:10]} to {last[:10]}" if first and last else ""
        me = ", ".join(s["me"]) or "not chosen yet"
        self.summary.setText(
            f"<b>{s['messages']:,}</b> messages{span}; <b>{s['sent']:,}</b> sent by you "
            f"({me}); {s['threads']:,} conversations. Data folder: {self.root}"
        )

    def choose_file(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Choose mail files", "", "Mail (*.mbox *.mbx *.eml *);;All (*)")
        if files:
            self.start_import(files)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a mail folder")
        if folder:
            self.start_import([folder])

    def start_import(self, paths: list[str]) -> None:
        self.worker = ImportWorker(self.root, paths)
        self.worker.progress.connect(self.on_progress)
        self.worker.finished.connect(self.on_finished)
        self.worker.failed.connect(self.on_failed)
        self.set_busy(True)
        self.thread = tasks.start(self, self.worker)

    def cancel(self) -> None:
        if self.worker:
            self.worker.cancel_event.set()
            self.status.setText("Stopping after the current batch…")

    def set_busy(self, busy: bool) -> None:
        self.bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.import_file_button.setEnabled(not busy)
        self.import_dir_button.setEnabled(not busy)

    def on_progress(self, p: ImportProgress) -> None:
        self.bar.setValue(int(p.fraction * 1000))
        eta = f", about {int(p.eta)} s left" if p.eta is not None else ""
        self.status.setText(f"Importing… {p.seen:,} messages ({p.rate:,.0f}/s){eta}")

    def on_finished(self, report) -> None:
        self.set_busy(False)
        verb = "Stopped" if report.status == "cancelled" else "Done"
        self.status.setText(
            f"{verb}: {report.imported:,} new, {report.duplicates:,} already stored, {len(report.skipped):,} skipped."
        )
        self.refresh()

    def on_failed(self, message: str) -> None:
        self.set_busy(False)
        self.status.setText(message)
        QMessageBox.warning(self, "Import failed", message)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.compose.shutdown()
        if self.worker and self.thread and self.thread.isRunning():
            self.worker.cancel_event.set()
            self.thread.quit()
            self.thread.wait(10000)
        super().closeEvent(event)


def run(root: str | None = None, argv: list[str] | None = None) -> int:
    app = QApplication.instance() or QApplication(argv or sys.argv)
    try:
        window = MainWindow(root)
    except MailvoiceError as exc:
        QMessageBox.critical(None, "Mailvoice", str(exc))
        return 1
    window.show()
    code = app.exec()
    window.compose.shutdown()
    unload()  # free llama.cpp while Qt and Python are still whole: freeing it at interpreter exit crashes
    return code


def main() -> None:
    netguard.install()  # before anything can open a connection: Mailvoice works offline
    sys.exit(run())
