"""The Compose page on the fake backend: picking the email answered, tone, length and alternatives, streaming,
Stop, Regenerate, saving edits, the mailto: link; and one draft streamed from the embedded model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeBackend
from gguf import GGUFWriter
from PySide6.QtCore import QSettings, Qt, QTimer, QUrl
from PySide6.QtWidgets import QApplication, QMessageBox

from assistant.drafting import draft
from assistant.drafting.corrections import list_corrections
from assistant.drafting.drafts import list_drafts
from assistant.drafting.guard import RETRIES
from assistant.drafting.length import CHOICES, Length
from assistant.drafting.models import choose_model
from assistant.gui import tasks
from assistant.gui.app import COMPOSE, DRAFTS, MainWindow
from assistant.gui.compose import ComposePage, mailto_url, reply_subject
from assistant.gui.models_panel import ModelsDialog
from assistant.store.adapters import register, use_adapter
from assistant.store.fts import index_pending

ROSA_BODY = "Hi Alex,\n\nThe plumber can come on Monday at 9 to fix the kitchen faucet. Does that work for you?\n\nRosa"
MAIL = [
    # (message_id, date, from_name, from_addr, subject, body)
    ("rosa-1@x", "2024-03-01T09:00:00+00:00", "Rosa Álvarez", "rosa@properties.example.net", "Plumber on Monday",
     ROSA_BODY),
    ("kenji-1@x", "2024-03-04T09:00:00+00:00", "Kenji Sato", "kenji@finance.example.com", "Budget numbers",
     "Attached are the Q2 budget numbers."),
    ("rosa-0@x", "2024-02-01T09:00:00+00:00", "Rosa Álvarez", "rosa@properties.example.net", "Rent receipt",
     "Here is the receipt for February's rent."),
]  # fmt: skip
ANNA = "Hi Anna,\n\nI can't make Thursday. Could we do Monday instead?\n\nBest,\nAlex"
BASE = {"path": "/models/base.gguf", "size": 123, "sha256": "ab" * 32}


def tiny_gguf(path: Path, kind: str = "model") -> Path:
    """A header-only GGUF: a chat model (enough for metadata, not for llama.cpp), or a LoRA adapter."""
    w = GGUFWriter(str(path), "llama")
    if kind == "adapter":
        w.add_type("adapter")
    else:
        w.add_name("Tiny Chat")
        w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
        w.add_tensor("tok_embd.weight", np.zeros((16, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


class Opener:
    """Records the URLs the page opens; answers whether a mail app took them."""

    def __init__(self, works: bool = True):
        self.urls: list[QUrl] = []
        self.works = works

    def __call__(self, url: QUrl) -> bool:
        self.urls.append(url)
        return self.works


class FileOpener:
    """Records the .eml files the page hands to the mail app (nothing is launched); answers whether one opened."""

    def __init__(self, works: bool = True):
        self.paths: list[Path] = []
        self.works = works

    def __call__(self, path: Path) -> bool:
        self.paths.append(path)
        return self.works


class GatedBackend(FakeBackend):
    """Streams one word, then waits until the page asks to stop (so Stop lands mid-draft every time)."""

    def stream(self, messages, params, cancel=None):
        words = super().stream(messages, params, cancel)
        yield next(words)
        deadline = time.monotonic() + 20
        while cancel is not None and not cancel() and time.monotonic() < deadline:
            time.sleep(0.01)
        yield from words


@pytest.fixture
def mail(db):
    for message_id, date, name, addr, subject, body in MAIL:
        db["messages"].insert({"message_id": message_id, "date": date, "from_name": name, "from_addr": addr,
                               "subject": subject, "body": body, "sent_by_me": 0, "automated": 0})  # fmt: skip
    index_pending(db)
    return db


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def opener() -> Opener:
    return Opener()


def make_page(qtbot, root: Path, backend=None, opener=None, files=None) -> ComposePage:
    """The page; ``files`` opens the .eml handed to the mail app (by default no app opens it: the mailto: link)."""
    page = ComposePage(str(root), (lambda: backend) if backend is not None else None, open_url=opener,
                       open_file=files or FileOpener(works=False))  # fmt: skip
    qtbot.addWidget(page, before_close_func=lambda p: p.shutdown())
    page.resize(1000, 700)
    page.show()
    return page


@pytest.fixture
def page(qtbot, data_home, fake, opener) -> ComposePage:
    return make_page(qtbot, data_home, fake, opener)


def written(qtbot, page: ComposePage, start=None, timeout: int = 30_000) -> None:
    """Start writing (``start``, default Generate) and wait until it ended and its thread stopped."""
    (start or page.generate_button.click)()
    qtbot.waitUntil(lambda: not page.writing and not page.thread.isRunning(), timeout=timeout)


def pick(qtbot, page: ComposePage, words: str, expected_subjects: list[str]) -> None:
    """Search for ``words`` in the picker and answer the first result with Enter, as a person would."""
    picker = page.pick_reply()
    picker.search.clear()
    qtbot.keyClicks(picker.search, words)
    qtbot.waitUntil(lambda: [r["subject"] for r in picker.rows] == expected_subjects, timeout=10_000)
    qtbot.keyClick(picker.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.reply is not None and not picker.isVisible(), timeout=10_000)


def record_chunks(monkeypatch) -> list[tuple[int, str]]:
    """Every chunk the page shows, in order (patched on the class: a method of the page is still called on the
    GUI thread; a plain function connected to the worker would run in the worker's thread)."""
    chunks: list[tuple[int, str]] = []
    shown = ComposePage.on_chunk

    def on_chunk(self, chunk):
        chunks.append(chunk)
        shown(self, chunk)

    monkeypatch.setattr(ComposePage, "on_chunk", on_chunk)
    return chunks


def user_prompt(fake: FakeBackend, i: int = -1) -> str:
    return "\n".join(m["content"] for m in fake.prompts[i] if m["role"] == "user")


def test_a_draft_streams_into_the_editor_and_is_saved(qtbot, page, fake, db, monkeypatch):
    fake.enqueue(ANNA)
    chunks = record_chunks(monkeypatch)
    page.instruction.setPlainText("tell Anna I can't make Thursday, propose Monday")
    written(qtbot, page)
    assert len(chunks) > 10 and {i for i, _ in chunks} == {0}  # word by word, all into the one draft
    assert page.output.toPlainText() == ANNA and page.tabs.count() == 1
    (row,) = list_drafts(db)
    assert page.status.text().startswith(f"Saved as draft #{row['id']}.") and row["text"] == ANNA
    assert "tell Anna I can't make Thursday" in user_prompt(fake) and row["context_kind"] == ""


def test_the_window_drafts_with_its_engine_and_counts_a_draft_as_busy(qtbot, data_home, fake, tmp_path):
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(str(data_home), backend_factory=lambda: fake, settings=settings, wizard_on_first_start=False)
    qtbot.addWidget(window)
    window.nav.setCurrentRow(COMPOSE)
    fake.enqueue(ANNA)
    window.compose.instruction.setPlainText("tell Anna I can't make Thursday")
    window.compose.generate()
    assert window.busy_reason() == "A draft is being written"
    qtbot.waitUntil(lambda: not window.compose.thread.isRunning(), timeout=30_000)
    assert window.compose.output.toPlainText() == ANNA and window.busy_reason() == ""


def test_an_empty_instruction_is_refused_before_the_open_draft_is_touched(qtbot, page, fake):
    fake.enqueue(ANNA)
    page.instruction.setPlainText("tell Anna I can't make Thursday")
    written(qtbot, page)
    page.instruction.setPlainText("  \n")
    page.generate_button.click()
    assert page.status.text().startswith("The instruction is empty") and len(fake.prompts) == 1
    assert not page.writing and page.generate_button.isEnabled() and page.instruction.hasFocus()
    assert page.output.toPlainText() == ANNA and page.current_draft()["id"]  # the draft shown stays


def test_picking_a_stored_email_drafts_a_reply_to_it(qtbot, page, fake, mail, opener):
    pick(qtbot, page, "rosa", ["Plumber on Monday", "Rent receipt"])
    assert page.to.text() == "rosa@properties.example.net"  # the sender of the email answered
    assert "Plumber on Monday" in page.reply_label.text() and "Rosa Álvarez" in page.reply_label.text()
    assert page.reply_view.toPlainText() == ROSA_BODY and page.reply_view.isReadOnly()
    fake.enqueue("Hi Rosa,\n\nMonday at 9 is perfect, thank you!\n\nBest,\nAlex")
    page.instruction.setPlainText("say Monday at 9 works")
    written(qtbot, page)
    prompt = user_prompt(fake)
    assert "Subject: Plumber on Monday" in prompt and "fix the kitchen faucet" in prompt  # the email answered
    assert "From: Rosa Álvarez\n" in prompt  # named as training names the sender of an email answered
    (row,) = list_drafts(mail)
    assert (row["context_kind"], row["context"], row["recipient"]) == ("message", "rosa-1@x", page.to.text())
    page.mail_button.click()
    qtbot.waitUntil(lambda: bool(opener.urls), timeout=10_000)  # no app opened the .eml: the mailto: link
    url = opener.urls[-1].toString(QUrl.ComponentFormattingOption.FullyEncoded)
    assert url.startswith("mailto:rosa@properties.example.net?subject=Re%3A%20Plumber%20on%20Monday&body=Hi%20Rosa")


def test_a_reply_can_be_cleared_and_the_next_draft_is_a_new_email(qtbot, page, fake, mail):
    pick(qtbot, page, "budget", ["Budget numbers"])
    assert page.to.text() == "kenji@finance.example.com"
    page.clear_reply_button.click()
    assert page.reply is None and not page.reply_view.isVisible() and page.to.text() == ""
    page.instruction.setPlainText("ask Kenji for the Q3 numbers")
    written(qtbot, page)
    assert "<email>" not in user_prompt(fake) and "Budget numbers" not in user_prompt(fake)
    assert list_drafts(mail)[0]["context_kind"] == ""


def test_the_picker_searches_subject_text_and_sender_and_says_when_nothing_matches(qtbot, page, mail):
    picker = page.pick_reply()
    qtbot.waitUntil(lambda: len(picker.rows) == 3, timeout=10_000)  # before typing: the newest first
    assert [picker.results.topLevelItem(i).text(2) for i in range(3)] == [
        "Budget numbers", "Plumber on Monday", "Rent receipt"]  # fmt: skip
    assert picker.results.topLevelItem(1).text(0) == "2024-03-01" and picker.results.topLevelItem(1).text(1) == (
        "Rosa Álvarez")  # fmt: skip
    qtbot.keyClicks(picker.search, "faucet")  # a word of the text only
    qtbot.waitUntil(lambda: [r["subject"] for r in picker.rows] == ["Plumber on Monday"], timeout=10_000)
    qtbot.keyClicks(picker.search, " zebra")
    qtbot.waitUntil(lambda: picker.rows == [], timeout=10_000)
    assert "No stored email has every word of “faucet zebra”" in picker.status.text()
    assert not picker.answer_button.isEnabled()
    qtbot.keyClick(picker, Qt.Key.Key_Escape)
    assert not picker.isVisible() and page.reply is None


def test_the_picker_says_to_import_mail_when_none_is_stored(qtbot, page):
    picker = page.pick_reply()
    qtbot.waitUntil(lambda: "import yours on the Mail page" in picker.status.text(), timeout=10_000)


def test_tone_length_and_alternatives_reach_the_core_and_every_alternative_is_shown(qtbot, page, fake, db):
    replies = [f"Hi Bob,\n\nVersion {n} of the thanks.\n\nBest,\nAlex" for n in (1, 2, 3)]
    fake.enqueue(*replies)
    page.instruction.setPlainText("thank Bob for the report")
    page.tone.setCurrentText("formal")
    page.length.setCurrentText("short")
    page.alternatives.setValue(3)
    written(qtbot, page)
    assert len(fake.prompts) == 3 and len({p.seed for p in fake.params}) == 3
    short = Length(CHOICES["short"], "chosen")
    assert all(p.max_tokens == short.max_tokens(fake.n_ctx) for p in fake.params)
    assert "Tone: formal" in user_prompt(fake) and f"Length: {short.guidance}" in user_prompt(fake)
    assert page.tabs.count() == 3 and [page.tabs.tabText(i) for i in range(3)] == ["Draft 1", "Draft 2", "Draft 3"]
    assert [page.tabs.widget(i).toPlainText() for i in range(3)] == replies
    page.tabs.setCurrentIndex(1)
    assert page.output.toPlainText() == replies[1]
    rows = list_drafts(db)
    assert len(rows) == 3 and {json.loads(r["params"])["tone"] for r in rows} == {"formal"}
    assert {json.loads(r["params"])["length"] for r in rows} == {"short"}


def test_regenerate_writes_the_last_request_again(qtbot, page, fake, db):
    fake.enqueue("Hi Anna,\n\nFirst try.\n\nBest,\nAlex", "Hi Anna,\n\nSecond try.\n\nBest,\nAlex")
    assert not page.regenerate_button.isEnabled()  # nothing written yet
    page.instruction.setPlainText("tell Anna I can't make Thursday")
    written(qtbot, page)
    page.instruction.setPlainText("something not asked for yet")
    written(qtbot, page, page.regenerate_button.click)
    assert "tell Anna I can't make Thursday" in user_prompt(fake, 1) and "not asked" not in user_prompt(fake, 1)
    assert fake.params[0].seed != fake.params[1].seed
    assert page.output.toPlainText() == "Hi Anna,\n\nSecond try.\n\nBest,\nAlex"
    assert [r["text"].split("\n\n")[1] for r in list_drafts(db)] == ["Second try.", "First try."]


def test_with_a_seed_regenerate_moves_past_the_seeds_used(qtbot, page, fake):
    page.seed = 7
    page.instruction.setPlainText("tell Anna I can't make Thursday")
    page.alternatives.setValue(2)
    written(qtbot, page)
    written(qtbot, page, page.regenerate_button.click)
    written(qtbot, page, page.regenerate_button.click)
    assert [p.seed for p in fake.params] == [7, 8, 9, 10, 11, 12]


def test_stop_stops_the_draft_and_saves_nothing(qtbot, data_home, db):
    page = make_page(qtbot, data_home, GatedBackend(replies=[ANNA]))
    page.instruction.setPlainText("tell Anna I can't make Thursday")
    page.generate_button.click()
    qtbot.waitUntil(lambda: page.output.toPlainText() != "", timeout=10_000)
    assert page.stop_button.isEnabled() and not page.generate_button.isEnabled()
    page.stop_button.click()
    qtbot.waitUntil(lambda: not page.writing and not page.thread.isRunning(), timeout=10_000)
    assert page.status.text().startswith("Stopped") and page.output.toPlainText() == "Hi"
    assert list_drafts(db) == [] and page.generate_button.isEnabled() and not page.stop_button.isEnabled()


def test_save_stores_the_edited_text(qtbot, page, fake, db):
    fake.enqueue(ANNA)
    page.instruction.setPlainText("tell Anna I can't make Thursday")
    written(qtbot, page)
    assert not page.save_button.isEnabled()  # nothing edited yet
    page.output.moveCursor(page.output.textCursor().MoveOperation.End)
    qtbot.keyClick(page.output, Qt.Key.Key_Return)
    qtbot.keyClicks(page.output, "PS: the cafe on Monday?")
    assert page.save_button.isEnabled()
    page.save_button.click()
    qtbot.waitUntil(lambda: page.status.text().startswith("Saved your edits"), timeout=10_000)
    (row,) = list_drafts(db)
    assert row["text"] == ANNA + "\nPS: the cafe on Monday?"
    assert json.loads(row["params"])["generated_text"] == ANNA
    assert not page.save_button.isEnabled()
    (kept,) = list_corrections(db)  # the edit is a correction to learn from
    assert (kept.draft_id, kept.model_text, kept.kind, kept.how) == (row["id"], ANNA, "rewrite", "saved")


def test_a_deleted_draft_is_not_saved_silently(qtbot, page, fake, db, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("assistant.gui.tasks.show_error", lambda _parent, message, _title="": shown.append(message))
    page.instruction.setPlainText("tell Anna I can't make Thursday")
    written(qtbot, page)
    with db.conn:
        db.execute("DELETE FROM drafts")
    qtbot.keyClicks(page.output, "edited ")
    page.save_button.click()
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert "no longer saved" in shown[0] and "copy the text" in page.status.text()


def test_the_mailto_url_is_exactly_encoded():
    body = "Hi Anna & Bob,\n\nCafé at 10? 50% off = great + cheap\r\nAlex"
    assert mailto_url("anna@example.org; bob@example.com", "Re: Café & cake", body) == (
        "mailto:anna@example.org,bob@example.com?subject=Re%3A%20Caf%C3%A9%20%26%20cake"
        "&body=Hi%20Anna%20%26%20Bob%2C%0D%0A%0D%0ACaf%C3%A9%20at%2010%3F%2050%25%20off%20%3D%20great%20%2B%20cheap"
        "%0D%0AAlex"
    )
    assert mailto_url("", "", "x y") == "mailto:?body=x%20y"
    assert mailto_url("a@b.c", "", "") == "mailto:a@b.c"
    assert [reply_subject(s) for s in ("Lunch", "RE: Lunch", "re:Lunch", "")] == ["Re: Lunch", "RE: Lunch",
                                                                                  "re:Lunch", ""]  # fmt: skip


def test_open_in_mail_app_passes_the_url_unchanged(qtbot, page, fake, opener):
    text = "Hi Zoë,\n\nFish & chips at 7?\n\nAlex"
    fake.enqueue(text)
    page.to.setText("zoe@example.org")
    page.instruction.setPlainText("invite Zoë for fish and chips")
    written(qtbot, page)
    page.mail_button.click()
    qtbot.waitUntil(lambda: bool(opener.urls), timeout=10_000)  # no app opened the .eml: the mailto: link
    (url,) = opener.urls
    assert url.toString(QUrl.ComponentFormattingOption.FullyEncoded) == (
        "mailto:zoe@example.org?body=Hi%20Zo%C3%AB%2C%0D%0A%0D%0AFish%20%26%20chips%20at%207%3F%0D%0A%0D%0AAlex"
    )
    assert page.status.text() == "Opened in your mail app."
    tasks.writer(page.workspace).wait()
    (kept,) = list_corrections(page.workspace.db)
    assert (kept.how, kept.kind, kept.final_text) == ("opened", "accepted", text)


def test_without_a_mail_app_the_page_says_what_to_do(qtbot, data_home, fake, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("assistant.gui.tasks.show_error", lambda _parent, message, _title="": shown.append(message))
    page = make_page(qtbot, data_home, fake, Opener(works=False))
    page.instruction.setPlainText("anything")
    written(qtbot, page)
    page.mail_button.click()
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert "set a default mail app" in page.status.text() and "use Copy" in shown[0]


def test_copy_puts_the_shown_alternative_on_the_clipboard(qtbot, page, fake):
    fake.enqueue("Hi A,\n\nOne.\n\nAlex", "Hi A,\n\nTwo.\n\nAlex")
    page.instruction.setPlainText("say hello")
    page.alternatives.setValue(2)
    written(qtbot, page)
    page.tabs.setCurrentIndex(1)
    page.output.setPlainText("Hi A,\n\nTwo, and a third thing I forgot to say.\n\nAlex")
    page.copy_button.click()
    assert QApplication.clipboard().text() == "Hi A,\n\nTwo, and a third thing I forgot to say.\n\nAlex"
    tasks.writer(page.workspace).wait()  # what was copied is recorded in the background
    (kept,) = list_corrections(page.workspace.db)
    assert (kept.model_text, kept.how, kept.kind) == ("Hi A,\n\nTwo.\n\nAlex", "copied", "rewrite")
    assert kept.draft_id == page.drafts[1]["id"]


def test_a_saved_reply_reopens_with_its_email_and_its_edits_save_to_it(qtbot, page, fake, mail):
    fake.enqueue("Hi Rosa,\n\nMonday works.\n\nAlex")
    (saved,) = draft(mail, "say Monday works", reply_to="rosa-1@x", to="rosa@home.example", tone="warm",
                     length="short", backend=fake).drafts  # fmt: skip
    (row,) = list_drafts(mail)
    page.open_draft({**row, "length": "short"})
    qtbot.waitUntil(lambda: page.reply is not None, timeout=10_000)
    assert page.reply.source == "rosa-1@x" and page.to.text() == "rosa@home.example"  # its own recipient kept
    assert page.tone.currentText() == "warm" and page.output.toPlainText() == saved.text
    assert page.subject() == "Re: Plumber on Monday"
    qtbot.keyClicks(page.output, "Yes! ")
    page.save_button.click()
    qtbot.waitUntil(lambda: page.status.text() == f"Saved your edits to draft #{saved.id}.", timeout=10_000)
    assert list_drafts(mail)[0]["text"] == "Yes! " + saved.text
    written(qtbot, page, page.regenerate_button.click)
    assert "Subject: Plumber on Monday" in user_prompt(fake) and "Tone: warm" in user_prompt(fake)


@pytest.mark.slow
def test_a_draft_streams_from_the_embedded_model(qtbot, data_home, mail, monkeypatch):
    """The page on llama.cpp and SmolLM2-135M: chunks arrive while it writes, and the draft is saved."""
    page = make_page(qtbot, data_home)
    chunks = record_chunks(monkeypatch)
    page.instruction.setPlainText("ask Kenji for the Q3 budget numbers by Friday")
    page.to.setText("kenji@finance.example.com")
    page.length.setCurrentText("short")
    written(qtbot, page, timeout=120_000)
    (row,) = list_drafts(mail)
    assert len(chunks) >= 5 and row["text"] == page.output.toPlainText() != ""
    assert page.status.text().startswith(f"Saved as draft #{row['id']}.") and row["model"].endswith(".gguf")


# --- words are never lost ---------------------------------------------------------------------------------
class Answers:
    """Answers the Save / Discard / Cancel question with the answers given, in order, and records each question."""

    def __init__(self, *answers: str):
        self.answers = list(answers)
        self.questions: list[str] = []

    def __call__(self, _parent, question: str) -> str:
        self.questions.append(question)
        return self.answers.pop(0)


class GatedSecond(FakeBackend):
    """The first alternative streams whole; the second streams one word, then waits until the page stops it."""

    def stream(self, messages, params, cancel=None):
        words = super().stream(messages, params, cancel)
        yield next(words)  # the fake records the prompt as it starts
        if len(self.prompts) == 1:
            yield from words
            return
        deadline = time.monotonic() + 20
        while cancel is not None and not cancel() and time.monotonic() < deadline:
            time.sleep(0.01)
        yield from words


def edited(qtbot, page: ComposePage, words: str = "PS: see you there. ") -> str:
    """Type ``words`` at the start of the draft shown; return its new text."""
    page.output.moveCursor(page.output.textCursor().MoveOperation.Start)
    qtbot.keyClicks(page.output, words)
    return page.output.toPlainText()


def test_generate_and_regenerate_ask_before_replacing_edited_text(qtbot, data_home, fake, db):
    answers = Answers("cancel", "cancel", "save", "discard")
    page = ComposePage(str(data_home), lambda: fake, ask=answers)
    qtbot.addWidget(page, before_close_func=lambda p: p.shutdown())
    fake.enqueue(ANNA, "Hi Anna,\n\nSecond.\n\nBest,\nAlex", "Hi Anna,\n\nThird.\n\nBest,\nAlex")
    page.instruction.setPlainText("tell Anna I can't make Thursday")
    written(qtbot, page)
    text = edited(qtbot, page)
    page.generate_button.click()  # Cancel: nothing happens
    page.regenerate_button.click()  # Cancel again
    assert len(fake.prompts) == 1 and page.output.toPlainText() == text and not page.writing
    assert answers.questions[0] == "Draft 1 has text you have not saved. Save it before writing new drafts?"
    page.regenerate_button.click()  # Save: the edit is stored (off the GUI thread), then the new draft comes
    qtbot.waitUntil(lambda: len(fake.prompts) == 2 and not page.writing and not page.thread.isRunning(),
                    timeout=30_000)  # fmt: skip
    rows = list_drafts(db)
    assert [r["text"] for r in rows] == ["Hi Anna,\n\nSecond.\n\nBest,\nAlex", text]
    assert page.output.toPlainText() == rows[0]["text"] and not page.has_unsaved_text()
    edited(qtbot, page, "Not kept. ")
    written(qtbot, page)  # Discard: the edit goes, knowingly
    assert page.output.toPlainText() == "Hi Anna,\n\nThird.\n\nBest,\nAlex"
    assert "Not kept" not in " ".join(r["text"] for r in list_drafts(db)) and not answers.answers


def test_nothing_is_asked_when_every_draft_is_saved(qtbot, data_home, fake):
    answers = Answers()  # any question would fail: there are no answers
    page = ComposePage(str(data_home), lambda: fake, ask=answers)
    qtbot.addWidget(page, before_close_func=lambda p: p.shutdown())
    page.instruction.setPlainText("say hello")
    written(qtbot, page)
    written(qtbot, page, page.regenerate_button.click)
    assert answers.questions == [] and page.confirm_leave()


def test_the_question_is_a_message_box_whose_cancel_keeps_the_text(qtbot, page, fake):
    page.instruction.setPlainText("tell Anna I can't make Thursday")
    written(qtbot, page)
    text = edited(qtbot, page)
    seen: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        seen.append(box.text())
        box.button(QMessageBox.StandardButton.Cancel).click()

    QTimer.singleShot(0, answer)  # runs inside the box's own event loop
    page.generate_button.click()
    assert seen and "not saved" in seen[0] and page.output.toPlainText() == text and len(fake.prompts) == 1


def test_a_stopped_draft_is_kept_and_can_be_saved_as_partial(qtbot, data_home, db):
    page = make_page(qtbot, data_home, GatedBackend(replies=[ANNA]))
    page.instruction.setPlainText("tell Anna I can't make Thursday")
    page.generate_button.click()
    qtbot.waitUntil(lambda: page.output.toPlainText() != "", timeout=10_000)
    page.stop_button.click()
    qtbot.waitUntil(lambda: not page.writing and not page.thread.isRunning(), timeout=10_000)
    assert list_drafts(db) == [] and page.has_unsaved_text()
    assert page.flag_bar.isVisible() and "stopped before it was finished" in page.flag_label.text()
    assert page.save_button.isEnabled() and page.save_button.text().startswith("Save &draft")
    page.save_button.click()
    qtbot.waitUntil(lambda: page.status.text().startswith("Saved draft"), timeout=10_000)  # stored, then said
    (row,) = list_drafts(db)
    assert (row["text"], row["flag"], row["instruction"]) == ("Hi", "partial", "tell Anna I can't make Thursday")
    assert page.status.text() == f"Saved draft #{row['id']}, marked as partial." and not page.has_unsaved_text()
    assert page.tabs.tabText(0) == "Draft 1 ⚠" and "stopped before it was finished" in page.flag_label.text()


def test_alternatives_finished_before_a_stop_keep_their_saved_drafts(qtbot, data_home, db):
    backend = GatedSecond(replies=["Hi Bob,\n\nOne.\n\nBest,\nAlex", "Hi Bob,\n\nTwo.\n\nBest,\nAlex"])
    page = make_page(qtbot, data_home, backend)
    page.instruction.setPlainText("thank Bob")
    page.alternatives.setValue(2)
    page.generate_button.click()
    qtbot.waitUntil(lambda: page.tabs.count() == 2 and page.editor(1).toPlainText() != "", timeout=10_000)
    page.stop_button.click()
    qtbot.waitUntil(lambda: not page.writing and not page.thread.isRunning(), timeout=10_000)
    (row,) = list_drafts(db)
    assert page.drafts[0]["id"] == row["id"] and not page.drafts[1].get("id")
    assert page.unsaved_tabs() == [1]  # the finished one is saved; only the stopped one is not
    page.tabs.setCurrentIndex(0)
    edited(qtbot, page, "Edited. ")
    page.save_button.click()
    qtbot.waitUntil(lambda: page.status.text() == f"Saved your edits to draft #{row['id']}.", timeout=10_000)
    assert list_drafts(db)[0]["text"].startswith("Edited. ")


def test_the_window_can_ask_before_it_closes_with_unsaved_text(qtbot, data_home, fake, db):
    answers = Answers("cancel", "discard", "save")
    page = ComposePage(str(data_home), lambda: fake, ask=answers)
    qtbot.addWidget(page, before_close_func=lambda p: p.shutdown())
    assert not page.has_unsaved_text() and page.confirm_leave()  # nothing to lose: nothing asked
    qtbot.keyClicks(page.output, "Dear Rosa, a note I typed myself.")
    assert page.has_unsaved_text()
    assert page.confirm_leave() is False  # Cancel: stay
    assert page.confirm_leave() is True and list_drafts(db) == []  # Discard: go, knowingly
    assert page.confirm_leave() is True  # Save: stored at once, before the window goes
    (row,) = list_drafts(db)
    assert row["text"] == "Dear Rosa, a note I typed myself." and row["flag"] == "" and not page.has_unsaved_text()
    assert answers.questions[0] == "Draft 1 has text you have not saved. Save it before quitting?"


def test_leaving_the_compose_page_keeps_its_text(qtbot, data_home, fake, tmp_path):
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(str(data_home), backend_factory=lambda: fake, settings=settings, wizard_on_first_start=False)
    qtbot.addWidget(window)
    window.nav.setCurrentRow(COMPOSE)
    qtbot.keyClicks(window.compose.output, "Half a thought")
    window.nav.setCurrentRow(DRAFTS)
    window.nav.setCurrentRow(COMPOSE)
    assert window.compose.output.toPlainText() == "Half a thought" and window.compose.has_unsaved_text()


def test_opening_a_saved_draft_asks_before_replacing_unsaved_text(qtbot, data_home, fake, db):
    answers = Answers("cancel", "save")
    page = ComposePage(str(data_home), lambda: fake, ask=answers)
    qtbot.addWidget(page, before_close_func=lambda p: p.shutdown())
    fake.enqueue(ANNA)
    (saved,) = draft(db, "tell Anna I can't make Thursday", backend=fake).drafts
    qtbot.keyClicks(page.output, "My own words")
    (row,) = list_drafts(db)
    page.open_draft(row)
    assert page.output.toPlainText() == "My own words"  # Cancel
    page.open_draft(row)
    qtbot.waitUntil(lambda: page.output.toPlainText() == saved.text, timeout=10_000)  # Save, then open
    assert "My own words" in [r["text"] for r in list_drafts(db)]


def test_tab_reaches_the_draft_editor(qtbot, page):
    page.alternatives.setFocus()
    qtbot.waitUntil(page.alternatives.hasFocus, timeout=5_000)
    for _ in range(3):  # Generate, then the draft (the buttons after Generate are off until there is a draft)
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        if page.output.hasFocus():
            break
    assert page.output.hasFocus()
    qtbot.keyClick(page.output, Qt.Key.Key_Tab)  # and moves on from it: a draft needs no tab characters
    assert not page.output.hasFocus() and "\t" not in page.output.toPlainText()


# --- honest about the model and about unfinished drafts ------------------------------------------------------
def test_a_draft_that_looks_incomplete_says_why_and_offers_regenerate(qtbot, page, fake, db):
    # Written again by itself (RETRIES more tries) before it is shown as incomplete.
    fake.enqueue(*["Thank you, Christian."] * (RETRIES + 1), "Hi Christian,\n\nThe slides are attached.\n\nBest,\nAlex")
    page.instruction.setPlainText("send Christian the slides")
    written(qtbot, page)
    (row,) = list_drafts(db)
    assert row["flag"] == "signoff_only" and page.tabs.tabText(0) == "Draft 1 ⚠"
    assert page.flag_bar.isVisible() and page.flag_label.text() == (
        "⚠ This draft looks incomplete: it is only a greeting or a sign-off, with no message."
    )
    assert f"Saved as draft #{row['id']}. It looks incomplete: see the note above it." in page.status.text()
    written(qtbot, page, page.flag_regenerate.click)
    assert not page.flag_bar.isVisible() and page.tabs.tabText(0) == "Draft 1"
    assert list_drafts(db)[0]["flag"] == ""


def test_the_model_badge_says_the_demo_model_is_rough_and_leads_to_the_models(qtbot, page, db, data_home, tmp_path):
    with qtbot.waitSignal(page.badge.shown, timeout=30_000):
        page.refresh()
    assert page.badge.label.text() == "<b>Built-in demo model — drafts will be rough.</b>"
    assert page.badge.button.text() == "Use a better model…"
    page.badge.button.click()  # nothing listens: the panel opens as a dialog
    dialog = page.findChild(ModelsDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.reject()
    asked: list[bool] = []
    page.models_requested.connect(lambda: asked.append(True))
    page.badge.button.click()
    assert asked == [True]
    choose_model(db, tiny_gguf(tmp_path / "tiny-chat.gguf"))
    register(db, data_home, "my-voice", tiny_gguf(tmp_path / "voice.gguf", "adapter"), BASE, {}, {},
             data_home / "runs" / "v")  # fmt: skip
    use_adapter(db, "my-voice")
    with qtbot.waitSignal(page.badge.shown, timeout=30_000):
        page.refresh()
    assert page.badge.label.text() == "Model: <b>Tiny Chat</b> · voice: my-voice"
    assert page.badge.button.text() == "Models…"


def test_when_one_of_several_drafts_cannot_be_saved_the_others_are_and_nothing_is_replaced(qtbot, data_home, fake,
                                                                                          db, monkeypatch):  # fmt: skip
    shown: list[str] = []
    monkeypatch.setattr("assistant.gui.tasks.show_error", lambda _parent, message, _title="": shown.append(message))
    page = ComposePage(str(data_home), lambda: fake, ask=Answers("save"))
    qtbot.addWidget(page, before_close_func=lambda p: p.shutdown())
    page.instruction.setPlainText("thank Bob")
    page.alternatives.setValue(2)
    written(qtbot, page)
    for i in (0, 1):
        page.tabs.setCurrentIndex(i)
        edited(qtbot, page, f"Edit {i}. ")
    with db.conn:
        db.execute("DELETE FROM drafts WHERE id = ?", [page.drafts[1]["id"]])  # deleted on the Drafts page
    page.generate_button.click()
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert "no longer saved" in shown[0] and len(fake.prompts) == 2  # nothing new was written over them
    assert page.unsaved_tabs() == [1] and list_drafts(db)[0]["text"].startswith("Edit 0. ")


# --- the mail app: a threaded, unsent email ---------------------------------------------------------------------
def test_open_in_mail_app_hands_over_the_reply_as_a_threaded_eml(qtbot, data_home, fake, mail, opener):
    import email
    import email.policy

    files = FileOpener()
    page = make_page(qtbot, data_home, fake, opener, files)
    with mail.conn:
        mail.execute("UPDATE messages SET refs = 'rosa-0@x' WHERE message_id = 'rosa-1@x'")
    pick(qtbot, page, "plumber", ["Plumber on Monday"])
    fake.enqueue("Hi Rosa,\n\nMonday at 9 is perfect.\n\nBest,\nAlex")
    page.instruction.setPlainText("say Monday at 9 works")
    written(qtbot, page)
    page.mail_button.click()
    qtbot.waitUntil(lambda: page.status.text() == "Opened in your mail app.", timeout=10_000)
    (path,) = files.paths
    assert opener.urls == []  # the mailto: link only when no app opens the file
    assert path.is_relative_to(data_home) and path.suffix == ".eml"
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert msg["In-Reply-To"] == "<rosa-1@x>" and msg["References"].split() == ["<rosa-0@x>", "<rosa-1@x>"]
    assert msg["Subject"] == "Re: Plumber on Monday" and msg["X-Unsent"] == "1"
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [("", "rosa@properties.example.net")]
    assert msg.get_content().replace("\r\n", "\n") == "Hi Rosa,\n\nMonday at 9 is perfect.\n\nBest,\nAlex\n"
    tasks.writer(page.workspace).wait()
    (kept,) = list_corrections(page.workspace.db)
    assert (kept.how, kept.kind) == ("opened", "accepted")


def test_a_reply_that_only_the_mailto_link_opened_says_it_left_the_thread(qtbot, page, fake, mail, opener):
    pick(qtbot, page, "plumber", ["Plumber on Monday"])
    page.instruction.setPlainText("say Monday at 9 works")
    written(qtbot, page)
    page.mail_button.click()
    qtbot.waitUntil(lambda: bool(opener.urls), timeout=10_000)
    assert page.status.text().startswith("Opened in your mail app (as a new email")


# --- refining the text of a tab ----------------------------------------------------------------------------------
NOTE = "Hi Anna,\n\nI can't make Thursday at 3. Could we meet on Monday at 10 instead, at Café Nero?\n\nBest,\nAlex"
SHORTER = "Hi Anna,\n\nNot Thursday at 3; Monday at 10 at Café Nero?\n\nBest,\nAlex"


def refined(qtbot, page: ComposePage, how: str) -> None:
    """Click a refine button and wait until the rewrite is in and its thread stopped."""
    page.refine_buttons[how].click()
    qtbot.waitUntil(lambda: not page.writing and not page.thread.isRunning(), timeout=30_000)


def test_refine_rewrites_the_tab_shown_and_undo_brings_it_back(qtbot, page, fake, monkeypatch):
    fake.enqueue("Hi Anna,\n\nOne.\n\nBest,\nAlex", NOTE, SHORTER)
    page.instruction.setPlainText("tell Anna I can't make Thursday")
    page.alternatives.setValue(2)
    written(qtbot, page)
    page.tabs.setCurrentIndex(1)
    assert page.output.toPlainText() == NOTE and all(b.isEnabled() for b in page.refine_buttons.values())
    assert not page.undo_refine_button.isEnabled()
    chunks: list[str] = []
    shown = ComposePage.on_refine_chunk

    def on_refine_chunk(self, chunk):  # a method, so that Qt calls it on the GUI thread (see record_chunks)
        chunks.append(chunk)
        shown(self, chunk)

    monkeypatch.setattr(ComposePage, "on_refine_chunk", on_refine_chunk)
    refined(qtbot, page, "shorter")
    assert "Make it shorter" in user_prompt(fake) and NOTE in user_prompt(fake) and len(chunks) > 5  # streamed
    assert page.output.toPlainText() == SHORTER and page.editor(0).toPlainText() == "Hi Anna,\n\nOne.\n\nBest,\nAlex"
    assert page.status.text().startswith("Rewritten shorter.") and not page.refine_note.isVisible()
    assert page.save_button.isEnabled()  # the rewrite is not saved until the user saves it
    page.output.setFocus()
    qtbot.keyClick(page.output, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert page.output.toPlainText() == NOTE and not page.output.document().isModified()  # as saved
    assert not page.undo_refine_button.isEnabled()
    fake.enqueue(SHORTER)
    refined(qtbot, page, "shorter")
    assert page.undo_refine_button.isEnabled()
    page.undo_refine_button.click()
    assert page.output.toPlainText() == NOTE and page.status.text().startswith("Your text is back")


def test_refine_says_what_the_rewrite_left_out(qtbot, page, fake):
    fake.enqueue(NOTE, "Hi Anna,\n\nNot Thursday. Monday instead?\n\nBest,\nAlex")
    page.instruction.setPlainText("tell Anna I can't make Thursday")
    written(qtbot, page)
    refined(qtbot, page, "friendly")
    assert "Make it friendlier" in user_prompt(fake)
    assert page.refine_note.isVisible() and page.refine_note.text().startswith("⚠ The rewrite left out 3, 10")
    assert "Café" in page.refine_note.text() and "Nero" in page.refine_note.text()
    assert "The rewrite left out" in page.status.text()
    page.undo_refine_button.click()
    assert page.output.toPlainText() == NOTE and not page.refine_note.isVisible()


def test_translate_asks_for_the_language_and_a_cancel_changes_nothing(qtbot, data_home, fake):
    answers = ["", "German"]
    page = ComposePage(str(data_home), lambda: fake, open_file=FileOpener(works=False),
                       ask_language=lambda _parent, _last: answers.pop(0) or None)  # fmt: skip
    qtbot.addWidget(page, before_close_func=lambda p: p.shutdown())
    qtbot.keyClicks(page.output, "Dear Rosa, see you on Monday.")
    page.refine_buttons["translate"].click()  # cancelled
    assert fake.prompts == [] and not page.writing
    fake.enqueue("Liebe Rosa, bis Montag.")
    refined(qtbot, page, "translate")
    assert "Translate it into German." in user_prompt(fake) and page.language == "German"
    assert page.output.toPlainText() == "Liebe Rosa, bis Montag." and page.status.text().startswith(
        "Rewritten in German.")  # fmt: skip


def test_a_stopped_refine_leaves_the_text_as_it_was(qtbot, data_home):
    page = make_page(qtbot, data_home, GatedBackend(replies=["Hi Anna, shorter."]))
    qtbot.keyClicks(page.output, "Hi Anna, I can't make Thursday at 3. Could we meet on Monday at 10 instead?")
    before = page.output.toPlainText()
    page.refine_buttons["shorter"].click()
    qtbot.waitUntil(lambda: page.output.toPlainText() == "Hi", timeout=10_000)  # the first word streamed in
    assert not any(b.isEnabled() for b in page.refine_buttons.values()) and page.output.isReadOnly()
    page.stop_button.click()
    qtbot.waitUntil(lambda: not page.writing and not page.thread.isRunning(), timeout=10_000)
    assert page.output.toPlainText() == before and page.output.document().isModified()  # typed, still unsaved
    assert page.status.text() == "Stopped: your text is as it was." and not page.output.isReadOnly()
