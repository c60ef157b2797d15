"""The Compose page: say what the email should do, optionally pick the email it answers, and watch drafts stream in.

Tone, length and the number of alternatives go to the same core call as ``mailvoice draft``; each alternative
streams into its own tab. A draft can be stopped, written again (Regenerate), edited and saved, copied, or opened
in the user's mail app as a ``mailto:`` link. Drafting, searching and saving run off the GUI thread; the page
keeps one engine, so the model loads once per session.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from assistant.drafting.backend import Backend
from assistant.drafting.drafts import DraftResult, draft, update_draft
from assistant.drafting.prompting import PromptError, ReplyContext, reply_from_store
from assistant.gui import tasks
from assistant.gui.compat import keep_none_alive
from assistant.gui.message_picker import MessagePicker
from assistant.gui.workers import CallWorker
from assistant.paths import data_dir
from assistant.store import open_store

TONES = ("", "friendly", "formal", "warm", "brief and direct", "apologetic", "enthusiastic")
REPLY_CHARS = 1500  # of the email answered, shown on the page (the prompt takes what fits the model)


def mailto_url(to: str, subject: str, body: str) -> str:
    """A ``mailto:`` URL (RFC 6068): addresses, then subject and body percent-encoded as UTF-8, lines ended CRLF."""
    addresses = ",".join(a.strip() for a in re.split(r"[,;]", to) if a.strip())
    fields = [(name, value) for name, value in (("subject", subject), ("body", body)) if value]
    query = "&".join(f"{name}={quote(_crlf(value), safe='')}" for name, value in fields)
    return f"mailto:{quote(addresses, safe='@,')}" + (f"?{query}" if query else "")


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def reply_subject(subject: str) -> str:
    """``Re: subject``, without piling up ``Re: Re:``."""
    subject = " ".join(subject.split())
    return subject if re.match(r"(?i)re\s*:", subject) or not subject else f"Re: {subject}"


def _load_reply(root: str, message_id: str) -> ReplyContext:
    try:
        return reply_from_store(open_store(data_dir(root)), message_id)
    except PromptError as exc:
        raise PromptError(
            "That email is no longer stored (deleted, or your data was forgotten): pick another with Answer an email…"
        ) from exc


def _write(root: str, request: dict[str, Any], backend: Backend | None, progress, cancel) -> DraftResult:
    """The core call of one request, in the worker thread; each chunk goes out as ``(alternative, text)``."""
    return draft(
        open_store(data_dir(root)),
        request["instruction"],
        reply_to=request["reply_to"],
        to=request["to"],
        tone=request["tone"],
        length=request["length"],
        n=request["n"],
        seed=request["seed"],
        backend=backend,
        on_chunk=lambda i, text: progress((i, text)),
        cancel=cancel,
    )


def _save_edit(root: str, draft_id: int, text: str) -> int:
    update_draft(open_store(data_dir(root)), draft_id, text)
    return draft_id


class ComposePage(QWidget):
    """Args:
    root: the data folder.
    backend_factory: makes the drafting engine once (tests pass a fake); llama.cpp on the chosen model when None.
    open_url: opens the ``mailto:`` link (default: ``QDesktopServices.openUrl``); returns whether it could.
    """

    def __init__(self, root: str, backend_factory=None, parent: QWidget | None = None, *,
                 open_url: Callable[[QUrl], bool] | None = None):  # fmt: skip
        super().__init__(parent)
        keep_none_alive()  # every streamed word makes Qt calls: see assistant.gui.compat
        self.root = root
        self.backend_factory = backend_factory
        self.open_url = open_url or QDesktopServices.openUrl
        self.backend: Backend | None = None
        self.thread = None
        self.worker: CallWorker | None = None
        self.picker: MessagePicker | None = None
        self.reply: ReplyContext | None = None  # the email the next draft answers
        self.request: dict[str, Any] | None = None  # what the drafts shown were written for (Regenerate repeats it)
        self.drafts: list[dict[str, Any]] = []  # per tab: {"id", "subject"} once saved
        self.writing = False
        self.seed: int | None = None  # the first alternative's seed for reproducible drafts; None: random
        self._follow = True  # the tabs follow the alternative being written until the user picks one
        self._build()
        self.set_reply(None)
        self.reset_tabs(1)
        self.set_busy(False)

    # --- building ---------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.instruction = QPlainTextEdit()
        self.instruction.setPlaceholderText("What should the email do? e.g. tell Anna I can't make Thursday, "
                                            "propose Monday instead")  # fmt: skip
        self.instruction.setMaximumHeight(80)
        self.instruction.setTabChangesFocus(True)
        self.reply_button = QPushButton("Answer an &email…  (Ctrl+R)")
        self.clear_reply_button = QPushButton("&Not a reply")
        self.reply_label = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.reply_view = QPlainTextEdit(readOnly=True)
        self.reply_view.setMaximumHeight(110)
        self.reply_view.setTabChangesFocus(True)
        self.to = QLineEdit()
        self.to.setPlaceholderText("Recipient's address (optional): your mail to them shapes the tone")
        self.tone = QComboBox(editable=True)
        self.tone.addItems(TONES)
        self.tone.lineEdit().setPlaceholderText("as you usually write")
        self.tone.setMinimumWidth(160)
        self.length = QComboBox()
        self.length.addItems(["short", "medium", "long"])
        self.length.setCurrentText("medium")
        self.alternatives = QSpinBox(minimum=1, maximum=10, value=1)
        self.alternatives.setToolTip("How many different drafts to write; each gets its own tab.")
        self.generate_button = QPushButton("Generate  (Ctrl+Enter)")  # no Alt+G: that opens the Go menu
        self.regenerate_button = QPushButton("&Regenerate")
        self.regenerate_button.setToolTip("Write the last request again, with another seed.")
        self.stop_button = QPushButton("&Stop  (Esc)")
        self.copy_button = QPushButton("&Copy")
        self.mail_button = QPushButton("Open in &mail app")
        self.save_button = QPushButton("Save e&dits  (Ctrl+S)")
        self.save_button.setToolTip("Keep your changes to this draft in your saved drafts.")
        self.tabs = QTabWidget(documentMode=True, tabBarAutoHide=True)
        self.tabs.tabBar().tabBarClicked.connect(lambda _i: setattr(self, "_follow", False))
        self.tabs.currentChanged.connect(lambda _i: self._update_buttons())
        self.status = QLabel("", wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.reply_button.clicked.connect(self.pick_reply)
        self.clear_reply_button.clicked.connect(lambda: self.set_reply(None))
        self.generate_button.clicked.connect(self.generate)
        self.regenerate_button.clicked.connect(self.regenerate)
        self.stop_button.clicked.connect(self.stop)
        self.copy_button.clicked.connect(self.copy)
        self.mail_button.clicked.connect(self.open_in_mail_app)
        self.save_button.clicked.connect(self.save_edits)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, activated=self.generate)
        QShortcut(QKeySequence("Ctrl+R"), self, activated=self.pick_reply)
        QShortcut(QKeySequence("Ctrl+S"), self, activated=self.save_edits)
        QShortcut(QKeySequence("Esc"), self, activated=self.stop)
        self._layout()

    def _layout(self) -> None:
        def label(text: str, buddy: QWidget) -> QLabel:
            widget = QLabel(text)
            widget.setBuddy(buddy)
            return widget

        reply_row = QHBoxLayout()
        reply_row.addWidget(self.reply_label, 1)
        reply_row.addWidget(self.reply_button)
        reply_row.addWidget(self.clear_reply_button)
        options = QHBoxLayout()
        options.addWidget(label("T&o:", self.to))
        options.addWidget(self.to, 3)
        options.addWidget(label("&Tone:", self.tone))
        options.addWidget(self.tone, 1)
        options.addWidget(label("&Length:", self.length))
        options.addWidget(self.length)
        options.addWidget(label("Alternati&ves:", self.alternatives))
        options.addWidget(self.alternatives)
        buttons = QHBoxLayout()
        for b in (self.generate_button, self.regenerate_button, self.stop_button):
            buttons.addWidget(b)
        buttons.addStretch()
        for b in (self.copy_button, self.mail_button, self.save_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(label("<b>&Instruction</b>", self.instruction))
        layout.addWidget(self.instruction)
        layout.addLayout(reply_row)
        layout.addWidget(self.reply_view)
        layout.addLayout(options)
        layout.addLayout(buttons)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)

    # --- the email answered -----------------------------------------------------------------------------
    def pick_reply(self) -> MessagePicker | None:
        """Open the search for the email to answer (the same dialog each time, with its last search)."""
        if self.writing:
            return None
        if self.picker is None:
            self.picker = MessagePicker(self.root, self)
            self.picker.chosen.connect(self.choose_reply)
        elif not self.picker.isVisible():
            self.picker.run_search()  # mail may have been imported since
        self.picker.open()
        self.picker.search.setFocus()
        self.picker.search.selectAll()
        return self.picker

    def choose_reply(self, row: dict[str, Any], prefill_to: bool = True) -> None:
        """Answer the stored email of a search row: its whole text is read off the GUI thread."""
        root, message_id = self.root, row["message_id"]
        self.reply_label.setText(f"Reading “{html.escape(row.get('subject') or message_id)}”…")
        tasks.call(self, lambda: _load_reply(root, message_id), lambda reply: self.set_reply(reply, prefill_to),
                   lambda message: self.reply_failed(message_id, message))  # fmt: skip

    def set_reply(self, reply: ReplyContext | None, prefill_to: bool = True) -> None:
        """Draft in reply to ``reply`` (None: a new email); the recipient becomes its sender."""
        previous, self.reply = self.reply, reply
        if reply is not None and self.request is not None and self.request.get("reply_to") == reply.source:
            self.request["reply_subject"] = reply.subject  # a reopened draft's: for the mail app's subject
        self.reply_view.setVisible(reply is not None)
        self.clear_reply_button.setEnabled(reply is not None)
        if reply is None:
            self.reply_view.clear()
            self.reply_label.setText("A new email. To answer one, find it in your mail: Answer an email…")
            if previous is not None and self.to.text().strip() == previous.sender_addr:
                self.to.clear()
            return
        name, addr = html.escape(reply.sender_name), html.escape(reply.sender_addr)
        who = f"{name} &lt;{addr}&gt;" if name and addr else name or addr or "an unknown sender"
        when = f", {reply.date[:10]}" if reply.date else ""
        subject = html.escape(reply.subject or "(no subject)")
        self.reply_label.setText(f"Answering <b>{subject}</b> from {who}{when}")
        body = reply.body.strip()
        self.reply_view.setPlainText(body if len(body) <= REPLY_CHARS else body[:REPLY_CHARS].rstrip() + " […]")
        if reply.sender_addr and prefill_to:
            self.to.setText(reply.sender_addr)

    def reply_failed(self, message_id: str, message: str) -> None:
        self.set_reply(None)
        if self.request is not None and self.request.get("reply_to") == message_id:  # a reopened draft's
            self.request["reply_to"] = None
            message = "The email this draft answered is no longer stored: Regenerate writes a new email instead."
        self.status.setText(message)

    # --- drafting ---------------------------------------------------------------------------------------
    def current_request(self) -> dict[str, Any]:
        return {
            "instruction": self.instruction.toPlainText(),
            "reply_to": self.reply.source if self.reply is not None else None,
            "reply_subject": self.reply.subject if self.reply is not None else None,
            "to": self.to.text().strip() or None,
            "tone": self.tone.currentText().strip() or None,
            "length": self.length.currentText(),
            "n": self.alternatives.value(),
            "seed": self.seed,
        }

    def busy(self) -> bool:
        """Whether drafts are being written (the thread itself ends a moment after)."""
        return self.writing

    def generate(self) -> None:
        """Write drafts for what the page says now."""
        self.run(self.current_request())

    def regenerate(self) -> None:
        """Write the last request again (a new seed, so new drafts)."""
        if self.request is None or self.writing:
            return
        seed = self.request["seed"]
        self.run({**self.request, "seed": None if seed is None else seed + self.request["n"]})

    def run(self, request: dict[str, Any]) -> None:
        if self.busy():
            return
        if self.backend is None and self.backend_factory is not None:
            self.backend = self.backend_factory()
        self.request = request
        self.reset_tabs(request["n"])
        self._follow = True
        n = request["n"]
        self.status.setText("Writing…" if n == 1 else f"Writing {n} alternatives…")
        self.worker = CallWorker(functools.partial(_write, self.root, request, self.backend))
        self.worker.progress.connect(self.on_chunk)
        self.worker.finished.connect(self.on_finished)
        self.worker.failed.connect(self.on_failed)
        self.set_busy(True)
        self.thread = tasks.start(self, self.worker)

    def on_chunk(self, chunk: tuple[int, str]) -> None:
        i, text = chunk
        editor = self.editor(i)
        editor.moveCursor(QTextCursor.MoveOperation.End)
        editor.insertPlainText(text)
        if self._follow and self.tabs.currentIndex() != i:
            self.tabs.setCurrentIndex(i)

    def stop(self) -> None:
        if self.worker is not None and self.busy():
            self.worker.cancel()
            self.status.setText("Stopping…")

    def on_finished(self, result: DraftResult) -> None:
        for i, saved in enumerate(result.drafts):
            editor = self.editor(i)
            editor.setPlainText(saved.text)  # the saved, fully cleaned text
            editor.document().setModified(False)
            self.drafts[i] = {"id": saved.id, "subject": saved.subject}
        self.set_busy(False)
        ids = ", ".join(f"#{d.id}" for d in result.drafts)
        adapter = f" + {result.adapter}" if result.adapter else ""
        notices = " ".join(result.notices)
        self.status.setText(f"Saved as draft {ids}. {result.tokens_per_second:.0f} tokens/s with "
                            f"{result.model}{adapter}. {notices}".strip())  # fmt: skip

    def on_failed(self, message: str) -> None:
        self.set_busy(False)
        if message == "Stopped.":
            message = "Stopped: the draft being written was not saved. Generate or Regenerate writes a new one."
        self.status.setText(message)

    # --- tabs -------------------------------------------------------------------------------------------
    def reset_tabs(self, n: int) -> None:
        """``n`` empty editors, one per alternative."""
        while self.tabs.count():
            widget = self.tabs.widget(0)
            self.tabs.removeTab(0)
            widget.deleteLater()
        self.drafts = []
        for _ in range(n):
            self._add_tab()

    def _add_tab(self) -> QPlainTextEdit:
        editor = QPlainTextEdit()
        editor.setPlaceholderText("Your draft appears here, in your own voice. Edit it, then Save edits.")
        editor.document().modificationChanged.connect(lambda _m: self._update_buttons())
        self.drafts.append({})
        self.tabs.addTab(editor, f"Draft {self.tabs.count() + 1}")
        return editor

    def editor(self, i: int) -> QPlainTextEdit:
        while self.tabs.count() <= i:
            self._add_tab()
        return self.tabs.widget(i)

    @property
    def output(self) -> QPlainTextEdit:
        """The editor of the draft shown."""
        return self.tabs.currentWidget()

    def current_draft(self) -> dict[str, Any]:
        i = self.tabs.currentIndex()
        return self.drafts[i] if 0 <= i < len(self.drafts) else {}

    def set_busy(self, busy: bool) -> None:
        self.writing = busy
        self.generate_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.reply_button.setEnabled(not busy)
        for i in range(self.tabs.count()):
            self.tabs.widget(i).setReadOnly(busy)
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.writing
        self.regenerate_button.setEnabled(not busy and self.request is not None)
        editor = self.output
        has_text = editor is not None and bool(editor.toPlainText().strip())
        self.copy_button.setEnabled(has_text)
        self.mail_button.setEnabled(has_text)
        edited = editor is not None and editor.document().isModified()
        self.save_button.setEnabled(not busy and edited and bool(self.current_draft().get("id")))

    # --- using a draft ----------------------------------------------------------------------------------
    def subject(self) -> str:
        """The subject for the mail app: ``Re: ...`` when answering, else the one the model wrote, if any."""
        answered = (self.request or {}).get("reply_subject")
        return reply_subject(answered) if answered else self.current_draft().get("subject") or ""

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.output.toPlainText())
        self.status.setText("Copied: paste it into your mail.")

    def mailto(self) -> str:
        return mailto_url(self.to.text(), self.subject(), self.output.toPlainText())

    def open_in_mail_app(self) -> None:
        url = self.mailto()
        if not self.open_url(QUrl.fromEncoded(url.encode("ascii"))):
            message = ("No mail app opened the draft: set a default mail app for mailto: links in your system's "
                       "settings, or use Copy and paste it into your mail.")  # fmt: skip
            self.status.setText(message)
            tasks.show_error(self, message)
            return
        self.status.setText("Opened in your mail app.")

    def save_edits(self) -> None:
        """Keep the edited text of the draft shown (the model's text stays with it, see ``update_draft``)."""
        draft_id = self.current_draft().get("id")
        if not draft_id or self.busy() or not self.save_button.isEnabled():
            return
        editor, root, text = self.output, self.root, self.output.toPlainText()
        self.save_button.setEnabled(False)
        tasks.call(self, lambda: _save_edit(root, draft_id, text), lambda _id: self.edits_saved(editor, draft_id),
                   self.save_failed)  # fmt: skip

    def edits_saved(self, editor: QPlainTextEdit, draft_id: int) -> None:
        editor.document().setModified(False)
        self.status.setText(f"Saved your edits to draft #{draft_id}.")

    def save_failed(self, message: str) -> None:
        self._update_buttons()
        self.status.setText(message)
        tasks.show_error(self, message, "Not saved")

    # --- from the Drafts page ---------------------------------------------------------------------------
    def open_draft(self, row: dict[str, Any]) -> None:
        """Show a saved draft to edit, copy or send; Regenerate writes its request again."""
        if self.writing:
            self.stop()
            self.status.setText("Stop the draft being written first, then open this one again.")
            return
        try:
            params = json.loads(row.get("params") or "{}")
        except ValueError:
            params = {}
        self.set_reply(None)
        self.instruction.setPlainText(row.get("instruction") or "")
        self.to.setText(row.get("recipient") or "")
        length = row.get("length") or params.get("length")
        if length in ("short", "medium", "long"):
            self.length.setCurrentText(length)
        self.tone.setCurrentText(params.get("tone") or "")
        self.alternatives.setValue(1)
        self.reset_tabs(1)
        self.output.setPlainText(row.get("text") or "")
        self.output.document().setModified(False)
        self.drafts[0] = {"id": row.get("id"), "subject": row.get("subject") or ""}
        answered = row.get("context") if row.get("context_kind") == "message" else None
        self.request = {**self.current_request(), "reply_to": answered, "reply_subject": None}
        if answered:
            self.choose_reply({"message_id": answered}, prefill_to=False)
        self.status.setText(f"Draft #{row.get('id')} of {(row.get('created_at') or '')[:10]}: edit it and Save "
                            "edits, or Regenerate writes a new one.")  # fmt: skip
        self._update_buttons()

    def shutdown(self) -> None:
        if self.thread is not None and self.thread.isRunning():
            self.stop()
            self.thread.quit()
            self.thread.wait(15000)
