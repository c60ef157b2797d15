"""The Compose page: type a short instruction, watch the draft stream in, stop it, copy it.

Drafting runs in a QThread through the same core call as ``mailvoice draft``; the page keeps one
llama.cpp engine so the model loads once per session.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from assistant.drafting.backend import Backend
from assistant.drafting.drafts import draft
from assistant.errors import Cancelled, MailvoiceError
from assistant.gui import tasks
from assistant.paths import data_dir
from assistant.store import open_store


class DraftWorker(QObject):
    """Writes one draft off the GUI thread. Signals: chunk(str), finished(object), failed(str)."""

    chunk = Signal(str)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, root: str, instruction: str, to: str, length: str, backend: Backend | None):
        super().__init__()
        self.root, self.instruction, self.to, self.length = root, instruction, to, length
        self.backend = backend
        self.cancel_event = threading.Event()

    def run(self) -> None:
        try:
            db = open_store(data_dir(self.root))
            result = draft(
                db,
                self.instruction,
                to=self.to or None,
                length=self.length,
                backend=self.backend,
                on_chunk=lambda _i, text: self.chunk.emit(text),
                cancel=self.cancel_event.is_set,
            )
            self.finished.emit(result)
        except Cancelled:
            self.failed.emit("Stopped.")
        except MailvoiceError as exc:
            self.failed.emit(str(exc))


class ComposePage(QWidget):
    def __init__(self, root: str, backend_factory=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.root = root
        self.backend_factory = backend_factory
        self.backend: Backend | None = None
        self.thread: QThread | None = None
        self.worker: DraftWorker | None = None
        self.instruction = QPlainTextEdit()
        self.instruction.setPlaceholderText("What should the email do? e.g. tell Anna I can't make Thursday, "
                                            "propose Monday instead")  # fmt: skip
        self.instruction.setMaximumHeight(90)
        self.to = QLineEdit()
        self.to.setPlaceholderText("Recipient's address (optional): your mail to them shapes the tone")
        self.length = QComboBox()
        self.length.addItems(["short", "medium", "long"])
        self.length.setCurrentText("medium")
        self.generate_button = QPushButton("&Generate  (Ctrl+Enter)")
        self.stop_button = QPushButton("&Stop")
        self.copy_button = QPushButton("&Copy")
        self.stop_button.setEnabled(False)
        self.output = QPlainTextEdit()
        self.output.setPlaceholderText("Your draft appears here, in your own voice.")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.generate_button.clicked.connect(self.generate)
        self.stop_button.clicked.connect(self.stop)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.output.toPlainText()))
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.generate)
        options = QHBoxLayout()
        options.addWidget(self.to, 3)
        options.addWidget(QLabel("Length:"))
        options.addWidget(self.length)
        buttons = QHBoxLayout()
        for b in (self.generate_button, self.stop_button, self.copy_button):
            buttons.addWidget(b)
        buttons.addStretch()
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Instruction</b>"))
        layout.addWidget(self.instruction)
        layout.addLayout(options)
        layout.addLayout(buttons)
        layout.addWidget(self.output, 1)
        layout.addWidget(self.status)

    def generate(self) -> None:
        if self.thread and self.thread.isRunning():
            return
        if self.backend is None and self.backend_factory is not None:
            self.backend = self.backend_factory()
        self.output.clear()
        self.status.setText("Writing…")
        self.worker = DraftWorker(self.root, self.instruction.toPlainText(), self.to.text().strip(),
                                  self.length.currentText(), self.backend)  # fmt: skip
        self.worker.chunk.connect(self.append)
        self.worker.finished.connect(self.on_finished)
        self.worker.failed.connect(self.on_failed)
        self.set_busy(True)
        self.thread = tasks.start(self, self.worker)

    def append(self, text: str) -> None:
        self.output.insertPlainText(text)

    def stop(self) -> None:
        if self.worker:
            self.worker.cancel_event.set()

    def set_busy(self, busy: bool) -> None:
        self.generate_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)

    def on_finished(self, result) -> None:
        self.set_busy(False)
        if result.drafts:
            self.output.setPlainText(result.drafts[0].text)  # the saved, fully cleaned text
        notices = " ".join(result.notices)
        self.status.setText(f"Saved. {result.tokens_per_second:.0f} tokens/s with {result.model}. {notices}")

    def on_failed(self, message: str) -> None:
        self.set_busy(False)
        self.status.setText(message)

    def shutdown(self) -> None:
        if self.thread and self.thread.isRunning():
            self.stop()
            self.thread.quit()
            self.thread.wait(15000)
