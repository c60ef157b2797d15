"""The Compose page: say what the email should do, optionally pick the email it answers, and watch drafts stream in.

Tone, length and the number of alternatives go to the same core call as ``mailvoice draft``; each alternative
streams into its own tab. A draft can be stopped, written again (Regenerate), edited and saved, copied, or opened
in the user's mail app as an unsent email (.eml) in the thread it answers (a ``mailto:`` link when no app opens
the file). The text of a tab can be refined (shorter, longer, more formal, friendlier, fixed, translated) as
``mailvoice refine`` does: it streams into the tab, Undo brings the text back, and what the rewrite left out is
named. Drafting, refining, searching and saving run off the GUI thread; the page keeps one engine, so the model
loads once per session.

Words are never lost: whatever would replace text the user has not saved (Generate, Regenerate, opening a
saved draft, quitting) asks Save / Discard / Cancel first; the drafts shown stay until the new ones start to
arrive; a stopped draft can be saved, marked as partial. A badge names the model and voice writing, and a
draft that looks unfinished says why, beside it, with Regenerate at hand.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PySide6.QtCore import SIGNAL, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from assistant.drafting import handoff
from assistant.drafting.backend import Backend
from assistant.drafting.corrections import capture
from assistant.drafting.drafts import DraftResult, SavedDraft, draft, save_partial, update_draft
from assistant.drafting.incomplete import describe
from assistant.drafting.prompting import PromptError, ReplyContext, reply_from_store
from assistant.drafting.refine import RefineResult, refine
from assistant.errors import MailvoiceError
from assistant.gui import tasks
from assistant.gui.compat import keep_none_alive
from assistant.gui.message_picker import MessagePicker
from assistant.gui.model_badge import ModelBadge
from assistant.gui.models_panel import ModelsDialog
from assistant.gui.unsaved import DISCARD, SAVE, Ask, ask_save_discard, question
from assistant.workspace import Workspace

TONES = ("", "friendly", "formal", "warm", "brief and direct", "apologetic", "enthusiastic")
REPLY_CHARS = 1500  # of the email answered, shown on the page (the prompt takes what fits the model)
EMPTY_INSTRUCTION = 'The instruction is empty: say what the email should do, e.g. "ask Rosa to fix the tap".'
# The refine buttons under the editor: (how, label, tooltip).
REFINE_BUTTONS = (
    ("shorter", "Shorter", "Say the same in fewer words, in your voice."),
    ("longer", "Longer", "A fuller version, without adding facts."),
    ("formal", "More formal", "The same email, more formal."),
    ("friendly", "Friendlier", "The same email, friendlier and warmer."),
    ("fix", "Fix", "Fix spelling, grammar and punctuation only."),
    ("translate", "Translate…", "Translate the email into another language."),
)
LANGUAGES = ("English", "German", "French", "Spanish", "Italian", "Portuguese", "Dutch", "Polish", "Swedish",
             "Japanese", "Chinese")  # fmt: skip
NO_MAIL_APP = ("No mail app opened the draft: set a default mail app for .eml files and mailto: links in your "
               "system's settings, or use Copy and paste it into your mail.")  # fmt: skip


def mailto_url(to: str, subject: str, body: str) -> str:
    """A ``mailto:`` URL (RFC 6068): addresses, then subject and body percent-encoded as UTF-8, lines ended CRLF."""
    addresses = ",".join(a.strip() for a in re.split(r"[,;]", to) if a.strip())
    fields = [(name, value) for name, value in (("subject", subject), ("body", body)) if value]
    query = "&".join(f"{name}={quote(_crlf(value), safe='')}" for name, value in fields)
    return f"mailto:{quote(addresses, safe='@,')}" + (f"?{query}" if query else "")


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def reply_subject(subject: str) -> str:
    """``Re: subject``, without piling up ``Re: Re:`` (nor ``Re: AW:``)."""
    return handoff.reply_subject(subject)


def ask_language_dialog(parent: QWidget, last: str = "") -> str | None:
    """Ask which language to translate into (a list to pick from, or type one); None when cancelled."""
    choices = list(dict.fromkeys([last, *LANGUAGES] if last else LANGUAGES))
    language, ok = QInputDialog.getItem(parent, "Translate", "Translate the email into:", choices, 0, True)
    if not ok:
        return None
    return language.strip() or None


def _load_reply(ws: Workspace, message_id: str) -> ReplyContext:
    try:
        return reply_from_store(ws.db, message_id)
    except PromptError as exc:
        raise PromptError(
            "That email is no longer stored (deleted, or your data was forgotten): pick another with Answer an email…"
        ) from exc


def _write(ws: Workspace, request: dict[str, Any], backend: Backend | None, progress, cancel) -> DraftResult:
    """The core call of one request, in the worker thread; each chunk goes out as ``(alternative, text)``, each
    saved alternative as ``(alternative, SavedDraft)``."""
    return draft(
        ws.db,
        request["instruction"],
        reply_to=request["reply_to"],
        to=request["to"],
        tone=request["tone"],
        length=request["length"],
        n=request["n"],
        seed=request["seed"],
        backend=backend,
        on_chunk=lambda i, text: progress((i, text)),
        on_saved=lambda i, saved: progress((i, saved)),  # a stop later keeps it: the page must know its id
        cancel=cancel,
    )


def _hand_off(ws: Workspace, job: dict[str, Any], open_file: Callable[[Path], bool]) -> tuple[Path, bool]:
    """Write the draft as an unsent email in the thread it answers, and open it; in a worker thread.

    Returns the file and whether an app opened it."""
    reply = None
    if job["reply_to"]:
        try:
            reply = reply_from_store(ws.db, job["reply_to"])
        except PromptError:  # deleted since: the draft goes as a new email
            reply = None
    data = handoff.draft_eml(job["text"], to=job["to"], subject=job["subject"], reply=reply, db=ws.db)
    path = handoff.save_handoff(ws.root, data, job["id"])
    return path, bool(open_file(path))


def _refine(ws: Workspace, job: dict[str, Any], backend: Backend | None, progress, cancel) -> RefineResult:
    """The core call of one refine, in the worker thread; each chunk of the rewrite goes out as text."""
    return refine(ws.db, job["text"], job["how"], language=job["language"], backend=backend, cancel=cancel,
                  on_chunk=progress)  # fmt: skip


def _save(db: Any, jobs: list[dict[str, Any]]) -> tuple[list[int], str]:
    """Store each job's text: an edit of a saved draft, or a draft never saved (a stopped one: partial).

    Returns the ids of the drafts saved, in order, and why the next one could not be ("" when all were): those
    saved before a failure must be known, or saving again would store them twice.
    """
    ids: list[int] = []
    for job in jobs:
        request = job["request"]
        try:
            if job["id"]:
                update_draft(db, job["id"], job["text"])
                ids.append(job["id"])
            else:
                ids.append(save_partial(db, request["instruction"], job["text"], reply_to=request["reply_to"],
                                        to=request["to"], tone=request["tone"], length=request["length"],
                                        flag=job["flag"]))  # fmt: skip
        except MailvoiceError as exc:
            return ids, str(exc)
    return ids, ""


log = logging.getLogger("mailvoice.gui")

USUAL_LENGTH = "usual"  # the length the user usually writes (the core decides: length=None)


class ComposePage(QWidget):
    """Signals: models_requested() when the model badge's button is clicked (with nothing connected, the Models
    panel opens as a dialog).

    Args:
        ws: the workspace (or its data folder).
        backend_factory: makes the drafting engine once (tests pass a fake); llama.cpp on the chosen model when None.
        open_url: opens the ``mailto:`` link (default: ``QDesktopServices.openUrl``); returns whether it could.
        open_file: opens the draft's .eml file in the mail app, in a worker thread (default:
            :func:`assistant.drafting.handoff.open_in_mail_app`); returns whether it could.
        ask: asks Save / Discard / Cancel before unsaved text would be replaced (default: a message box).
        ask_language: asks which language Translate… translates into; None when cancelled (default: a dialog).
    """

    models_requested = Signal()

    def __init__(self, ws: Workspace | str, backend_factory=None, parent: QWidget | None = None, *,
                 open_url: Callable[[QUrl], bool] | None = None, ask: Ask | None = None,
                 open_file: Callable[[Path], bool] | None = None,
                 ask_language: Callable[[QWidget, str], str | None] | None = None):  # fmt: skip
        super().__init__(parent)
        keep_none_alive()  # every streamed word makes Qt calls: see assistant.gui.compat
        self.workspace = Workspace.of(ws)
        self.backend_factory = backend_factory
        self.open_url = open_url or QDesktopServices.openUrl
        self.open_file = open_file or handoff.open_in_mail_app
        self.ask = ask or ask_save_discard
        self.ask_language = ask_language or ask_language_dialog
        self.language = ""  # the last language translated into
        self.refining: dict[str, Any] | None = None  # the refine running: its editor and the text it replaces
        self.backend: Backend | None = None
        self.thread = None
        self.worker: tasks.CallWorker | None = None
        self.picker: MessagePicker | None = None
        self.reply: ReplyContext | None = None  # the email the next draft answers
        self.request: dict[str, Any] | None = None  # what the drafts shown were written for (Regenerate repeats it)
        self.drafts: list[dict[str, Any]] = []  # per tab: {"id", "subject"} once saved; "flag" if unfinished
        self.writing = False
        self.incoming = 0  # alternatives of a run whose text has not started to arrive (old drafts still shown)
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
        self.length.addItems([USUAL_LENGTH, "short", "medium", "long"])
        self.length.setToolTip(
            "Usual: as long as you usually write to this person (for a reply or a new email), learned from your "
            "sent mail. Short, medium and long ask for about 50, 120 and 250 words."
        )
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
        # Not a stop of its own: its focus goes to the tab bar, hidden while there is one draft, and Tab stuck
        # there instead of reaching the draft. The bar, when shown, and the editors are stops themselves.
        self.tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tabs.tabBar().tabBarClicked.connect(lambda _i: setattr(self, "_follow", False))
        self.tabs.currentChanged.connect(lambda _i: self._update_buttons())
        self.status = QLabel("", wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.badge = ModelBadge(self.workspace)
        self.badge.models_requested.connect(self.show_models)
        self._build_flag_bar()
        self.reply_button.clicked.connect(self.pick_reply)
        self.clear_reply_button.clicked.connect(lambda: self.set_reply(None))
        self.generate_button.clicked.connect(self.generate)
        self.regenerate_button.clicked.connect(self.regenerate)
        self.stop_button.clicked.connect(self.stop)
        self.copy_button.clicked.connect(self.copy)
        self.mail_button.clicked.connect(self.open_in_mail_app)
        self.save_button.clicked.connect(self.save_edits)
        self._build_refine_row()
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
        layout.addWidget(self.badge)
        layout.addWidget(label("<b>&Instruction</b>", self.instruction))
        layout.addWidget(self.instruction)
        layout.addLayout(reply_row)
        layout.addWidget(self.reply_view)
        layout.addLayout(options)
        layout.addLayout(buttons)
        layout.addWidget(self.flag_bar)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(self.refine_row)
        layout.addWidget(self.refine_note)
        layout.addWidget(self.status)

    def _build_flag_bar(self) -> None:
        """The note shown above a draft that looks unfinished, with Regenerate beside it."""
        self.flag_bar = QFrame()
        self.flag_bar.setObjectName("draftFlag")
        self.flag_bar.setFrameShape(QFrame.Shape.StyledPanel)
        self.flag_label = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.flag_regenerate = QPushButton("Regenerate")
        self.flag_regenerate.setToolTip("Write the same request again, with another seed.")
        self.flag_regenerate.clicked.connect(self.regenerate)
        row = QHBoxLayout(self.flag_bar)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.flag_label, 1)
        row.addWidget(self.flag_regenerate)
        self.flag_bar.hide()

    def _build_refine_row(self) -> None:
        """The small buttons under the editor that rewrite its text, Undo refine, and the note on what a
        rewrite left out."""
        self.refine_buttons: dict[str, QPushButton] = {}
        self.refine_row = QHBoxLayout()
        self.refine_row.addWidget(QLabel("Refine:"))
        for how, text, tip in REFINE_BUTTONS:
            button = QPushButton(text)
            button.setToolTip(tip + " Keeps every fact, name, number and link; Ctrl+Z brings your text back.")
            button.clicked.connect(functools.partial(self.refine, how))
            self.refine_buttons[how] = button
            self.refine_row.addWidget(button)
        self.undo_refine_button = QPushButton("Undo refine")
        self.undo_refine_button.setToolTip("Bring back the text as it was before the last rewrite (or Ctrl+Z).")
        self.undo_refine_button.clicked.connect(self.undo_refine)
        self.refine_row.addWidget(self.undo_refine_button)
        self.refine_row.addStretch()
        self.refine_note = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.refine_note.setObjectName("refineNote")
        self.refine_note.hide()

    # --- the email answered -----------------------------------------------------------------------------
    def pick_reply(self) -> MessagePicker | None:
        """Open the search for the email to answer (the same dialog each time, with its last search)."""
        if self.writing:
            return None
        if self.picker is None:
            self.picker = MessagePicker(self.workspace, self)
            self.picker.chosen.connect(self.choose_reply)
        elif not self.picker.isVisible():
            self.picker.run_search()  # mail may have been imported since
        self.picker.open()
        self.picker.search.setFocus()
        self.picker.search.selectAll()
        return self.picker

    def choose_reply(self, row: dict[str, Any], prefill_to: bool = True) -> None:
        """Answer the stored email of a search row: its whole text is read off the GUI thread."""
        ws, message_id = self.workspace, row["message_id"]
        self.reply_label.setText(f"Reading “{html.escape(row.get('subject') or message_id)}”…")
        tasks.call(self, lambda: _load_reply(ws, message_id), lambda reply: self.set_reply(reply, prefill_to),
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
            "length": None if self.length.currentText() == USUAL_LENGTH else self.length.currentText(),
            "n": self.alternatives.value(),
            "seed": self.seed,
        }

    def busy(self) -> bool:
        """Whether drafts are being written (the thread itself ends a moment after)."""
        return self.writing

    def generate(self) -> None:
        """Write drafts for what the page says now (an empty instruction is refused before anything changes)."""
        request = self.current_request()
        if self.writing:
            return
        if not request["instruction"].strip():
            self.status.setText(EMPTY_INSTRUCTION)
            self.instruction.setFocus()
            return
        self.replace_drafts(lambda: self.run(request), "writing new drafts")

    def regenerate(self) -> None:
        """Write the last request again (a new seed, so new drafts)."""
        if self.request is None or self.writing:
            return
        seed = self.request["seed"]
        request = {**self.request, "seed": None if seed is None else seed + self.request["n"]}
        self.replace_drafts(lambda: self.run(request), "writing new drafts")

    def run(self, request: dict[str, Any]) -> None:
        if self.busy():
            return
        if self.backend is None and self.backend_factory is not None:
            self.backend = self.backend_factory()
        self.request = request
        self.incoming = request["n"]  # the drafts shown are replaced when the first words arrive
        self._follow = True
        n = request["n"]
        self.status.setText("Writing…" if n == 1 else f"Writing {n} alternatives…")
        self.worker = tasks.CallWorker(functools.partial(_write, self.workspace, request, self.backend))
        self.worker.progress.connect(self.on_chunk)
        self.worker.finished.connect(self.on_finished)
        self.worker.failed.connect(self.on_failed)
        self.worker.cancelled.connect(self.on_stopped)
        self.set_busy(True)
        self.thread = tasks.start(self, self.worker)

    def _arrived(self) -> None:
        """The new drafts start to arrive: now, and not before, the ones shown make way."""
        if self.incoming:
            self.reset_tabs(self.incoming)
            self.incoming = 0

    def on_chunk(self, chunk: tuple[int, Any]) -> None:
        i, payload = chunk
        self._arrived()
        if isinstance(payload, SavedDraft):
            self.show_saved(i, payload)
            return
        editor = self.editor(i)
        editor.moveCursor(QTextCursor.MoveOperation.End)
        editor.insertPlainText(payload)
        if self._follow and self.tabs.currentIndex() != i:
            self.tabs.setCurrentIndex(i)

    def show_saved(self, i: int, saved: SavedDraft) -> None:
        """Alternative ``i`` is written and saved: show the saved, fully cleaned text and any flag."""
        editor = self.editor(i)
        editor.setPlainText(saved.text)
        editor.document().setModified(False)
        flag = saved.incomplete.code if saved.incomplete else ""
        self.drafts[i] = {"id": saved.id, "subject": saved.subject, "flag": flag}
        self._update_tab(i)

    def stop(self) -> None:
        if self.worker is not None and self.busy():
            self.worker.cancel()
            self.status.setText("Stopping…")

    def on_finished(self, result: DraftResult) -> None:
        self._arrived()
        for i, saved in enumerate(result.drafts):
            self.show_saved(i, saved)
        self.set_busy(False)
        ids = ", ".join(f"#{d.id}" for d in result.drafts)
        adapter = f" + {result.adapter}" if result.adapter else ""
        notices = " ".join(result.notices)
        flagged = sum(d.incomplete is not None for d in result.drafts)
        check = (" It looks incomplete: see the note above it." if len(result.drafts) == 1 else
                 f" {flagged} of them look incomplete (⚠): see the note above each.") if flagged else ""  # fmt: skip
        self.status.setText(f"Saved as draft {ids}.{check} {result.tokens_per_second:.0f} tokens/s with "
                            f"{result.model}{adapter}. {notices}".strip())  # fmt: skip
        self.badge.refresh()

    def on_stopped(self) -> None:
        self.on_failed(None)

    def on_failed(self, message: str | None) -> None:
        """Writing ended without drafts: ``message`` says why, or None when the user stopped it."""
        stopped = message is None
        if not self.incoming:  # words arrived: a draft cut short stays on screen, savable as partial
            for i in range(self.tabs.count()):
                if not self.drafts[i].get("id") and self.editor(i).toPlainText().strip():
                    self.drafts[i]["flag"] = "partial"
                    self._update_tab(i)
        if stopped and not self.incoming:
            message = ("Stopped. What was written is kept here but not saved: Save draft keeps it, marked as "
                       "partial; Generate or Regenerate writes a new one.")  # fmt: skip
        elif stopped:
            message = "Stopped before anything was written."
        self.incoming = 0
        self.set_busy(False)
        self.status.setText(message or "")

    # --- unsaved text -----------------------------------------------------------------------------------
    def unsaved_tabs(self) -> list[int]:
        """The tabs whose text the user has not saved: edited, or written but never saved (a stopped draft)."""
        if self.writing:
            return []  # the drafts shown were saved or knowingly discarded before writing began
        return [i for i in range(self.tabs.count())
                if self.editor(i).document().isModified() and self.editor(i).toPlainText().strip()]  # fmt: skip

    def has_unsaved_text(self) -> bool:
        """Whether closing the window now would lose text the user has not saved (see :meth:`confirm_leave`)."""
        return bool(self.unsaved_tabs())

    def replace_drafts(self, then: Callable[[], None], doing: str) -> None:
        """Run ``then``, which replaces the drafts shown, once unsaved text is saved or knowingly discarded."""
        unsaved = self.unsaved_tabs()
        if not unsaved:
            then()
            return
        answer = self.ask(self, question(unsaved, doing))
        if answer == SAVE:
            self.save_tabs(unsaved, then)
        elif answer == DISCARD:
            then()

    def confirm_leave(self) -> bool:
        """Ask before the window closes with unsaved text; return whether it may close.

        Save stores the text here and now (the window is going: nothing else needs the GUI thread), Discard
        lets it go, Cancel (or a failed save, which is shown) keeps the window open.
        """
        unsaved = self.unsaved_tabs()
        if not unsaved:
            return True
        answer = self.ask(self, question(unsaved, "quitting"))
        if answer != SAVE:
            return answer == DISCARD
        jobs = self._save_jobs(unsaved)
        try:
            plain = [{k: v for k, v in job.items() if k != "editor"} for job in jobs]
            saved = tasks.writer(self.workspace).wait_for(lambda db: _save(db, plain))
        except Exception as exc:  # noqa: BLE001 - the window stays open and says why, rather than lose the text
            self.save_failed(tasks.describe(exc))
            return False
        return self.tabs_saved(jobs, saved, None)

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
        editor.setTabChangesFocus(True)  # Tab moves on, as everywhere else on the page
        editor.setReadOnly(self.writing)
        editor.document().modificationChanged.connect(lambda _m: self._update_buttons())
        editor.undoAvailable.connect(lambda available: available or self._refine_undone(editor))
        self.drafts.append({})
        self.tabs.addTab(editor, f"Draft {self.tabs.count() + 1}")
        return editor

    def _update_tab(self, i: int) -> None:
        flagged = bool(self.drafts[i].get("flag"))
        self.tabs.setTabText(i, f"Draft {i + 1}" + (" ⚠" if flagged else ""))
        self.tabs.setTabToolTip(i, f"Looks incomplete: {describe(self.drafts[i]['flag'])}" if flagged else "")
        if i == self.tabs.currentIndex():
            self._update_buttons()

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
        unsaved = not busy and has_text and editor.document().isModified()
        self.save_button.setEnabled(unsaved)
        saved = bool(self.current_draft().get("id"))
        self.save_button.setText("Save e&dits  (Ctrl+S)" if saved else "Save &draft  (Ctrl+S)")
        for button in self.refine_buttons.values():
            button.setEnabled(not busy and has_text)
        refined = self.current_draft().get("refined")
        self.undo_refine_button.setEnabled(not busy and refined is not None)
        self.refine_note.setText(f"⚠ {refined['warning']}" if refined and refined["warning"] else "")
        self.refine_note.setVisible(bool(refined and refined["warning"]) and not busy)
        self._update_flag_bar()

    def _update_flag_bar(self) -> None:
        draft_shown = self.current_draft()
        flag = draft_shown.get("flag")
        self.flag_bar.setVisible(bool(flag) and not self.writing)
        if not flag:
            return
        if flag == "partial" and not draft_shown.get("id"):
            text = "This draft was stopped before it was finished and is not saved: Save draft keeps it, marked " \
                   "as partial."  # fmt: skip
        else:
            text = f"This draft looks incomplete: {describe(flag)}."
        self.flag_label.setText(f"⚠ {text}")
        self.flag_regenerate.setEnabled(self.request is not None and not self.writing)

    # --- using a draft ----------------------------------------------------------------------------------
    def subject(self) -> str:
        """The subject for the mail app: ``Re: ...`` when answering, else the one the model wrote, if any."""
        answered = (self.request or {}).get("reply_subject")
        return reply_subject(answered) if answered else self.current_draft().get("subject") or ""

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.output.toPlainText())
        self.status.setText("Copied: paste it into your mail.")
        self.record_use("copied")

    def record_use(self, how: str, draft_id: int | None = None, text: str | None = None) -> None:
        """A saved draft taken out of the app, as shown now (or ``draft_id`` as ``text`` was taken), is what the
        user kept of it: a correction (or an accepted draft) to learn from. Written in the background; a failure
        only goes to the log."""
        if text is None:
            draft_id, text = self.current_draft().get("id"), self.output.toPlainText()
        if draft_id:
            tasks.write(self, self.workspace, lambda db: capture(db, draft_id, text, how),
                        on_failed=lambda why: log.warning("a correction was not recorded: %s", why))  # fmt: skip

    def mailto(self) -> str:
        return mailto_url(self.to.text(), self.subject(), self.output.toPlainText())

    def open_in_mail_app(self) -> None:
        """Hand the draft shown to the mail app: an unsent email in the thread it answers (written and opened off
        the GUI thread), or a ``mailto:`` link when no app opens the file."""
        request = self.request or {}
        job = {"text": self.output.toPlainText(), "to": self.to.text().strip(), "subject": self.subject(),
               "reply_to": request.get("reply_to"), "id": self.current_draft().get("id")}  # fmt: skip
        job["mailto"] = self.mailto()
        ws, open_file = self.workspace, self.open_file
        self.status.setText("Opening in your mail app…")
        tasks.call(self, lambda: _hand_off(ws, job, open_file), lambda done: self.handed_off(job, *done),
                   lambda message: self.hand_off_failed(job, message))  # fmt: skip

    def handed_off(self, job: dict[str, Any], path: Path, opened: bool) -> None:
        """The .eml is written: opened by a mail app, or the ``mailto:`` link is the last resort."""
        if opened:
            self.status.setText("Opened in your mail app.")
            self.record_use("opened", job["id"], job["text"])
            return
        self.open_mailto(job, f" The draft is also saved as {path}: open that file from your mail app.")

    def hand_off_failed(self, job: dict[str, Any], message: str) -> None:
        log.warning("the draft could not be handed off as a file: %s", message)
        self.open_mailto(job, "")

    def open_mailto(self, job: dict[str, Any], where: str) -> None:
        if not self.open_url(QUrl.fromEncoded(job["mailto"].encode("ascii"))):
            message = NO_MAIL_APP + where
            self.status.setText(message)
            tasks.show_error(self, message)
            return
        unthreaded = " (as a new email: your mail app did not open the reply in its thread)" if job["reply_to"] else ""
        self.status.setText(f"Opened in your mail app{unthreaded}.")
        self.record_use("opened", job["id"], job["text"])

    # --- refining the text of a tab ---------------------------------------------------------------------
    def refine(self, how: str) -> None:
        """Rewrite the text of the tab shown (``how``: see :data:`assistant.drafting.refine.HOWS`), off the GUI
        thread; the rewrite streams in, and Ctrl+Z or Undo refine brings the text back."""
        if self.writing:
            return
        editor = self.output
        text = editor.toPlainText()
        if not text.strip():
            self.status.setText("There is no text to refine: write or generate a draft first.")
            return
        language = None
        if how == "translate":
            language = self.ask_language(self, self.language)
            if not language:
                return
            self.language = language
        if self.backend is None and self.backend_factory is not None:
            self.backend = self.backend_factory()
        self.refining = {"editor": editor, "text": text, "modified": editor.document().isModified(), "started": False}
        job = {"text": text, "how": how, "language": language}
        self.worker = tasks.CallWorker(functools.partial(_refine, self.workspace, job, self.backend))
        self.worker.progress.connect(self.on_refine_chunk)
        self.worker.finished.connect(self.on_refined)
        self.worker.failed.connect(self.on_refine_failed)
        self.worker.cancelled.connect(self.on_refine_stopped)
        self.set_busy(True)
        self.status.setText("Rewriting…")
        self.thread = tasks.start(self, self.worker)

    def on_refine_chunk(self, chunk: str) -> None:
        state = self.refining
        if state is None or self.tabs.indexOf(state["editor"]) < 0:
            return
        editor = state["editor"]
        if not state["started"]:  # the first words: the text makes way (its undo steps are not the rewrite's)
            state["started"] = True
            editor.setUndoRedoEnabled(False)
            editor.clear()
        editor.moveCursor(QTextCursor.MoveOperation.End)
        editor.insertPlainText(chunk)

    def on_refined(self, result: RefineResult) -> None:
        """The rewrite is whole: it replaces the text as one step that Ctrl+Z undoes."""
        state, self.refining = self.refining, None
        self.set_busy(False)
        i = self.tabs.indexOf(state["editor"]) if state else -1
        if i < 0:
            return
        editor = state["editor"]
        self._put_back(state)
        if not result.text.strip():
            self.status.setText("The rewrite came out empty; your text is as it was. Try again.")
            return
        cursor = editor.textCursor()
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(result.text)
        cursor.endEditBlock()
        editor.setTextCursor(cursor)
        self.drafts[i]["refined"] = {"before": state["text"], "after": result.text, "warning": result.warning()}
        self._update_buttons()
        warning = f" {result.warning()}" if result.dropped else ""
        self.status.setText(f"Rewritten {result.done()}. Ctrl+Z or Undo refine brings your text back.{warning}")

    def _put_back(self, state: dict[str, Any]) -> None:
        """The text as it was before the refine, with its unsaved-or-not state, and undo on again."""
        editor = state["editor"]
        if state["started"]:
            editor.setPlainText(state["text"])
            editor.setUndoRedoEnabled(True)
            if state["modified"]:
                editor.document().setModified(True)

    def on_refine_failed(self, message: str) -> None:
        self._refine_ended(message)

    def on_refine_stopped(self) -> None:
        self._refine_ended("Stopped: your text is as it was.")

    def _refine_ended(self, message: str) -> None:
        state, self.refining = self.refining, None
        if state is not None and self.tabs.indexOf(state["editor"]) >= 0:
            self._put_back(state)
        self.set_busy(False)
        self.status.setText(message)

    def undo_refine(self) -> None:
        """Bring back the text of the tab shown as it was before its last rewrite (itself undoable)."""
        i = self.tabs.currentIndex()
        refined = self.current_draft().get("refined")
        if self.writing or refined is None:
            return
        editor = self.output
        if editor.toPlainText() == refined["after"] and editor.document().isUndoAvailable():
            editor.undo()  # the rewrite was the last step: undoing it also restores the saved-or-not state
        else:
            cursor = editor.textCursor()
            cursor.beginEditBlock()
            cursor.select(QTextCursor.SelectionType.Document)
            cursor.insertText(refined["before"])
            cursor.endEditBlock()
        self.drafts[i].pop("refined", None)
        self._update_buttons()
        self.status.setText("Your text is back as it was before the rewrite.")

    def _refine_undone(self, editor: QPlainTextEdit) -> None:
        """Nothing left to undo in ``editor`` (Ctrl+Z took back the rewrite): its refine is over."""
        i = self.tabs.indexOf(editor)
        if 0 <= i < len(self.drafts) and self.drafts[i].pop("refined", None) is not None:
            self._update_buttons()

    def save_edits(self) -> None:
        """Save the draft shown: the user's edits to a saved draft (the model's text stays with it, see
        ``update_draft``), or a draft never saved (a stopped one is marked as partial)."""
        i = self.tabs.currentIndex()
        if self.busy() or not self.save_button.isEnabled() or i not in self.unsaved_tabs():
            return
        self.save_tabs([i], None)

    def _save_jobs(self, tabs: list[int]) -> list[dict[str, Any]]:
        """What saving ``tabs`` stores, read on the GUI thread (the editors stay here)."""
        request = self.request or self.current_request()  # text typed into an empty page: the page's request
        return [{"editor": self.editor(i), "id": self.drafts[i].get("id"), "text": self.editor(i).toPlainText(),
                 "flag": self.drafts[i].get("flag") or "", "request": request} for i in tabs]  # fmt: skip

    def save_tabs(self, tabs: list[int], then: Callable[[], None] | None) -> None:
        """Save ``tabs`` off the GUI thread; then ``then()``, unless saving failed (then nothing is replaced)."""
        jobs = self._save_jobs(tabs)
        plain = [{k: v for k, v in job.items() if k != "editor"} for job in jobs]  # no widget crosses threads
        self.save_button.setEnabled(False)
        tasks.write(self, self.workspace, lambda db: _save(db, plain), lambda saved: self.tabs_saved(jobs, saved, then),
                   self.save_failed)  # fmt: skip

    def tabs_saved(self, jobs: list[dict[str, Any]], saved: tuple[list[int], str],
                   then: Callable[[], None] | None) -> bool:  # fmt: skip
        """Mark the tabs saved; then ``then()`` if every one was, else show why one was not. Returns which."""
        ids, error = saved
        said = []
        for job, draft_id in zip(jobs, ids, strict=False):  # fewer ids: saving stopped at ``error``
            i = self.tabs.indexOf(job["editor"])
            if i < 0:
                continue  # its tab is gone (the page moved on); the text is saved all the same
            new = not self.drafts[i].get("id")
            self.drafts[i] = {**self.drafts[i], "id": draft_id}
            self.drafts[i].setdefault("subject", "")
            if job["editor"].toPlainText() == job["text"]:  # typed on while saving: still unsaved
                job["editor"].document().setModified(False)
            self._update_tab(i)
            partial = ", marked as partial" if new and job["flag"] == "partial" else ""
            said.append(f"Saved draft #{draft_id}{partial}." if new else f"Saved your edits to draft #{draft_id}.")
        self._update_buttons()
        self.status.setText(" ".join(said))
        if error:
            self.save_failed(error)
            return False
        if then is not None:
            then()
        return True

    def save_failed(self, message: str) -> None:
        self._update_buttons()
        self.status.setText(message)
        tasks.show_error(self, message, "Not saved")

    # --- from the Drafts page ---------------------------------------------------------------------------
    def open_draft(self, row: dict[str, Any]) -> None:
        """Show a saved draft to edit, copy or send; Regenerate writes its request again. Unsaved text on the
        page is saved or knowingly discarded first."""
        if self.writing:
            self.stop()
            self.status.setText("Stop the draft being written first, then open this one again.")
            return
        self.replace_drafts(lambda: self._open(row), "opening another draft")

    def _open(self, row: dict[str, Any]) -> None:
        try:
            params = json.loads(row.get("params") or "{}")
        except ValueError:
            params = {}
        self.set_reply(None)
        self.instruction.setPlainText(row.get("instruction") or "")
        self.to.setText(row.get("recipient") or "")
        length = row.get("length") or params.get("length")
        self.length.setCurrentText(length if length in ("short", "medium", "long") else USUAL_LENGTH)
        self.tone.setCurrentText(params.get("tone") or "")
        self.alternatives.setValue(1)
        self.reset_tabs(1)
        self.output.setPlainText(row.get("text") or "")
        self.output.document().setModified(False)
        self.drafts[0] = {"id": row.get("id"), "subject": row.get("subject") or "", "flag": row.get("flag") or ""}
        self._update_tab(0)
        answered = row.get("context") if row.get("context_kind") == "message" else None
        self.request = {**self.current_request(), "reply_to": answered, "reply_subject": None}
        if answered:
            self.choose_reply({"message_id": answered}, prefill_to=False)
        self.status.setText(f"Draft #{row.get('id')} of {(row.get('created_at') or '')[:10]}: edit it and Save "
                            "edits, or Regenerate writes a new one.")  # fmt: skip
        self._update_buttons()

    # --- the model -------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """The page is shown: the badge reads which model and voice draft now (they may have changed)."""
        self.badge.refresh()

    def show_models(self) -> None:
        """The badge's button: the Models panel in Settings when the window listens, else in a dialog."""
        if self.receivers(SIGNAL("models_requested()")) > 0:
            self.models_requested.emit()
            return
        dialog = ModelsDialog(self.workspace, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.panel.model_changed.connect(lambda _info: self.badge.refresh())
        dialog.open()

    def shutdown(self) -> None:
        if self.thread is not None and self.thread.isRunning():
            self.stop()
            self.thread.quit()
            self.thread.wait(15000)
