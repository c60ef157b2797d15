"""The drafting core on the fake backend: drafts saved, alternatives, adapters, cancel, batch and CSV export."""

from __future__ import annotations

import csv
import io
import json

import pytest
import sqlite_utils
from fakes import FakeBackend
from gguf import GGUFWriter

from assistant.drafting import batch, draft, export_drafts
from assistant.drafting.batch import InstructionsError, read_instructions
from assistant.drafting.drafts import delete_drafts, list_drafts, save_partial
from assistant.drafting.guard import RETRIES
from assistant.drafting.incomplete import REASONS
from assistant.drafting.length import Length
from assistant.drafting.prompting import PromptError
from assistant.drafting.voice import learn_voice
from assistant.errors import Cancelled
from assistant.store import migrations
from assistant.store.adapters import AdapterError
from assistant.store.db import set_setting

ROSA = ["Rosa Alvarez", "rosa@properties.example.net"]


def write_adapter(path):
    """A header-only GGUF marked as a LoRA adapter."""
    w = GGUFWriter(str(path), "llama")
    w.add_type("adapter")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def mail(db):
    """Three emails the user sent, with their usual greeting and sign-off."""
    for i, topic in enumerate(["faucet repair", "rent receipt", "faucet again"]):
        db["messages"].insert(
            {
                "message_id": f"s{i}@test",
                "date": f"2024-02-0{i + 1}T09:00:00+00:00",
                "from_name": "Alex Morgan",
                "from_addr": "alex.morgan@example.org",
                "from_key": "alex.morgan@example.org",
                "to_json": json.dumps([ROSA]),
                "cc_json": "[]",
                "subject": topic.title(),
                "body": f"Hi Rosa,\n\nA note about the {topic}, as promised this week.\n\nBest,\nAlex",
                "is_forward": 0,
                "sent_by_me": 1,
                "automated": 0,
            }
        )
    return db


def test_draft_streams_cleans_and_saves(mail):
    reply = (
        "Sure! Here is your email:\n\nSubject: Faucet\n\nHi Rosa,\n\nCan the plumber come Monday?\n\n"
        "Best,\nAlex\n\nLet me know if you'd like any changes!"
    )
    fake = FakeBackend(replies=[reply])
    chunks: list[tuple[int, str]] = []
    result = draft(
        mail,
        "ask Rosa if the plumber can come Monday",
        to=ROSA[1],
        tone="friendly",
        length="short",
        seed=42,
        backend=fake,
        on_chunk=lambda i, t: chunks.append((i, t)),
    )
    expected = "Hi Rosa,\n\nCan the plumber come Monday?\n\nBest,\nAlex"
    assert [d.text for d in result.drafts] == [expected]
    assert "".join(t for _, t in chunks) == expected and len(chunks) > 3 and {i for i, _ in chunks} == {0}
    assert result.model == "SmolLM2-135M-Instruct.Q4_1.gguf" and result.adapter is None
    # The fake counts words; generation stopped at the sign-off.
    streamed = "Sure! Here is your email: Subject: Faucet Hi Rosa, Can the plumber come Monday? Best, Alex"
    assert result.tokens == len(streamed.split())
    row = list_drafts(mail)[0]
    assert row["id"] == result.drafts[0].id and row["text"] == expected and row["subject"] == "Faucet"
    assert row["instruction"] == "ask Rosa if the plumber can come Monday" and row["recipient"] == ROSA[1]
    params = json.loads(row["params"])
    assert params["seed"] == 42 and params["tone"] == "friendly" and params["length"] == "short"
    assert params["max_tokens"] == Length(50, "chosen").max_tokens(2048)
    # room to close for the user's own sign-off ("Best,\nAlex"), not a longer one
    signoff = learn_voice(mail).usual_signoff()
    length = Length(50, "chosen").closing_with(fake.count_tokens("\n" + signoff))
    assert signoff == "Best,\nAlex" and length.aim_tokens > Length(50, "chosen").aim_tokens
    assert params["aim_tokens"] == fake.params[0].aim_tokens == length.aim_tokens < 50 * 1.4
    assert params["floor_tokens"] == fake.params[0].floor_tokens == length.floor_tokens
    assert fake.params[0].closings == learn_voice(mail).closings() != ()  # the user's own sign-offs
    assert fake.params[0].signed[:2] == ("Alex", "Alex Morgan") and params["signed"] == list(fake.params[0].signed)
    assert params["prompts"]["draft_system"] >= 1 and params["examples"]
    assert set(result.to_json()) >= {"drafts", "model", "adapter", "seconds", "tokens_per_second"}
    assert "ask Rosa if the plumber can come Monday" in fake.prompts[0][-1]["content"]


def test_alternatives_use_consecutive_seeds(mail):
    fake = FakeBackend(replies=["Hi Rosa,\n\nOne.", "Hi Rosa,\n\nTwo.", "Hi Rosa,\n\nThree."])
    result = draft(mail, "say hello", n=3, seed=10, backend=fake)
    assert [d.text for d in result.drafts] == ["Hi Rosa,\n\nOne.", "Hi Rosa,\n\nTwo.", "Hi Rosa,\n\nThree."]
    assert [p.seed for p in fake.params] == [10, 11, 12]
    assert len({d.id for d in result.drafts}) == 3 and len(list_drafts(mail)) == 3


def test_delete_drafts_deletes_those_asked_and_ignores_gone_ones(mail):
    fake = FakeBackend(replies=[f"Hi Rosa,\n\nDraft {i}." for i in range(4)])
    ids = [d.id for d in draft(mail, "say hello", n=4, seed=1, backend=fake).drafts]
    assert delete_drafts(mail, []) == 0
    assert delete_drafts(mail, [ids[0], ids[2], ids[2], 10_000]) == 2  # a repeat and an unknown id change nothing
    assert [r["id"] for r in list_drafts(mail)] == [ids[3], ids[1]]
    assert delete_drafts(mail, ids) == 2 and list_drafts(mail) == []


def test_the_users_sign_off_ends_the_draft(mail):
    fake = FakeBackend(replies=["Hi Rosa,\n\nDone.\n\nBest,\nAlex\nKenji Watanabe\nSales Lead, ACME\n\nHi again"])
    result = draft(mail, "say it is done", backend=fake)
    assert result.drafts[0].text == "Hi Rosa,\n\nDone.\n\nBest,\nAlex"


def test_a_draft_ends_where_the_model_repeats_the_requests_own_lines(mail):
    # (with no sign-off: the user's sign-off would end it anyway)
    for tail in ("\nLength: about 40 words\nRecipient: Rosa", "\nWrite the email now, as Alex, to Rosa.\n\nHi Rosa,"):
        fake = FakeBackend(replies=["Hi Rosa,\n\nThe plumber comes Monday, so the tap is fixed by noon." + tail])
        result = draft(mail, "tell Rosa the plumber comes Monday", backend=fake)
        assert result.drafts[0].text == "Hi Rosa,\n\nThe plumber comes Monday, so the tap is fixed by noon."


def test_every_line_the_request_begins_with_fixed_words_stops_a_draft():
    import re

    from assistant.drafting.drafts import STOP
    from assistant.drafting.prompting import load_prompt

    starts = []
    for name in ("draft_user", "example_request"):
        for line in load_prompt(name).text.splitlines():
            fixed = re.sub(r"^(?:\{\w+\})+", "", line).split("{", 1)[0]  # placeholders first, then the words
            if len(fixed.strip()) >= 8:
                starts.append("\n" + fixed)
    assert "\nWrite the email now, as " in starts  # the templates are read as drafting writes them
    for start in starts:
        assert any(start.startswith(stop) for stop in STOP), f"no stop for a draft repeating {start!r}"


def test_cancel_stops_and_saves_nothing(mail):
    fake = FakeBackend(replies=["word " * 50])
    count = {"chunks": 0}

    def on_chunk(_i: int, _t: str) -> None:
        count["chunks"] += 1

    with pytest.raises(Cancelled):
        draft(mail, "say hello", backend=fake, on_chunk=on_chunk, cancel=lambda: count["chunks"] >= 3)
    assert count["chunks"] == 3 and list_drafts(mail) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"instruction": "  "}, "The instruction is empty"),
        ({"reply_to": "missing@x"}, "No stored message has the Message-ID"),
        ({"reply_to": "a@b", "reply_file": "x.eml"}, "Answer one email: a stored one or one from a file"),
        ({"length": "epic"}, "Unknown length"),
        ({"adapter": "mine"}, "no adapters are trained yet"),
    ],
)
def test_bad_input_is_one_clear_error(mail, kwargs, message):
    instruction = kwargs.pop("instruction", "say hello")
    with pytest.raises((PromptError, AdapterError), match=message):
        draft(mail, instruction, backend=FakeBackend(), **kwargs)
    assert list_drafts(mail) == []


def test_adapter_choice_reaches_the_engine(mail, tmp_path):
    mail["adapters"].insert({"name": "mine", "path": str(write_adapter(tmp_path / "lora.gguf"))})
    mail["adapters"].insert({"name": "gone", "path": str(tmp_path / "deleted.gguf")})
    fake = FakeBackend()
    result = draft(mail, "say hello", adapter="mine", backend=fake)
    assert result.adapter == "mine" and fake.settings.lora_path == str(tmp_path / "lora.gguf")
    assert list_drafts(mail)[0]["adapter"] == "mine"
    assert draft(mail, "say hello", adapter="none", backend=fake).adapter is None
    assert fake.settings.lora_path is None  # switched back without a new backend
    set_setting(mail, "adapter", "mine")  # chosen with `mailvoice use`
    assert draft(mail, "say hello", backend=fake).adapter == "mine" and fake.settings.lora_path
    with pytest.raises(AdapterError, match=r"No adapter named 'other'\. Your adapters: gone, mine"):
        draft(mail, "say hello", adapter="other", backend=fake)
    with pytest.raises(AdapterError, match="which is gone"):
        draft(mail, "say hello", adapter="gone", backend=fake)


# --- batch ------------------------------------------------------------------------------------------------


def test_batch_skips_blank_and_comment_lines_and_saves_each_draft(mail, tmp_path):
    todo = tmp_path / "todo.txt"
    todo.write_text("# my list\nthank Rosa for the receipt\n\n   \nask about the faucet\n  # indented comment\n")
    seen = []
    report = batch(
        mail,
        todo,
        tmp_path / "out.csv",
        backend=FakeBackend(replies=["Hi Rosa,\n\nThanks for the receipt.", "Hi,\n\nOk?"]),
        progress=seen.append,
    )
    assert report.instructions == report.written == 2 and not report.cancelled
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["instruction"] for r in rows] == ["thank Rosa for the receipt", "ask about the faucet"]
    assert [r["generated_email"] for r in rows] == ["Hi Rosa,\n\nThanks for the receipt.", "Hi,\n\nOk?"]
    assert list(rows[0])[:2] == ["instruction", "generated_email"]
    assert [int(r["draft_id"]) for r in rows] == report.draft_ids == [d["id"] for d in reversed(list_drafts(mail))]
    assert [p.done for p in seen] == [0, 1, 2] and seen[1].eta is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "has no instructions"),
        (b"# only a comment\n\n", "has no instructions"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file, not text"),
        (bytes(range(1, 32)) * 10, "is a binary file, not text"),
    ],
)
def test_bad_instructions_files(tmp_path, content, message):
    path = tmp_path / "todo.txt"
    path.write_bytes(content)
    with pytest.raises(InstructionsError, match=message):
        read_instructions(path)


def test_instructions_in_other_encodings(tmp_path):
    path = tmp_path / "todo.txt"
    path.write_bytes("\ufeffcafé with Zoë\r\n".encode())
    assert read_instructions(path) == ["café with Zoë"]
    path.write_bytes("café with Zoë\n".encode("cp1252"))
    assert read_instructions(path) == ["café with Zoë"]


# --- export -----------------------------------------------------------------------------------------------

TRICKY = 'Hi Rosa,\n\nHe said "fine, Monday", then left.\n\nBest,\nAlex'


def test_export_quotes_commas_quotes_and_newlines(mail, tmp_path):
    draft(mail, 'say "fine, Monday"', backend=FakeBackend(replies=[TRICKY]))
    draft(mail, "second", backend=FakeBackend(replies=["Hi,\n\nSecond."]))
    out = tmp_path / "drafts.csv"
    assert export_drafts(mail, out) == 2
    data = out.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r\n" not in data
    assert b'"say ""fine, Monday""","Hi Rosa,\n\nHe said ""fine, Monday"", then left.\n\nBest,\nAlex",' in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0][:6] == ["instruction", "generated_email", "created_at", "model", "adapter", "reply_to"]
    assert rows[0][6:] == ["to", "subject", "incomplete"]  # added after the contract's columns, never before
    assert rows[1][:2] == ['say "fine, Monday"', TRICKY] and rows[2][1] == "Hi,\n\nSecond."
    assert rows[1][3] == "SmolLM2-135M-Instruct.Q4_1.gguf" and rows[1][4] == rows[1][5] == ""


def test_export_for_excel_has_a_bom_and_crlf(mail, tmp_path):
    draft(mail, "say hi", backend=FakeBackend(replies=[TRICKY]))
    out = tmp_path / "drafts.csv"
    export_drafts(mail, out, excel=True)
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfinstruction,generated_email,")
    records = data.split(b"\r\n")
    assert len(records) == 3 and records[-1] == b""  # header, one draft, the final line end
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[1][1] == TRICKY


def test_export_with_no_drafts_writes_the_header(db, tmp_path):
    out = tmp_path / "none.csv"
    assert export_drafts(db, out) == 0
    assert out.read_text(encoding="utf-8") == (
        "instruction,generated_email,created_at,model,adapter,reply_to,to,subject,incomplete\n"
    )


def test_mail_stored_but_not_yet_indexed_is_searchable_when_drafting(mail):
    # The fixture inserts rows directly, as an import stopped before indexing leaves them.
    rent = mail.execute("SELECT id FROM messages WHERE subject = 'Rent Receipt'").fetchone()[0]
    result = draft(mail, "send the rent receipt", backend=FakeBackend())
    assert result.examples[0] == rent  # ranked by topic, not merely the most recent


def test_adapter_paths_relative_to_the_data_folder(mail, data_home):
    (data_home / "adapters").mkdir()
    write_adapter(data_home / "adapters" / "v1.gguf")
    mail["adapters"].insert({"name": "v1", "path": "adapters/v1.gguf"})
    fake = FakeBackend()
    assert draft(mail, "say hello", adapter="v1", backend=fake).adapter == "v1"
    assert fake.settings.lora_path == str(data_home.resolve() / "adapters" / "v1.gguf")


# --- drafts that look unfinished, and stopped ones -----------------------------------------------------------
def test_a_draft_that_is_only_a_sign_off_is_written_again_then_saved_with_its_flag(mail):
    fake = FakeBackend(replies=["Thank you, Christian."] * (RETRIES + 1))
    result = draft(mail, "send Christian the slides", backend=fake, seed=3)
    (saved,) = result.drafts
    assert [p.seed for p in fake.params] == [3, 3 + 7919, 3 + 2 * 7919]  # other samples of the same prompt
    assert saved.incomplete is not None and saved.incomplete.code == "signoff_only"
    assert saved.to_json()["incomplete"] == {"code": "signoff_only", "reason": REASONS["signoff_only"]}
    assert list_drafts(mail)[0]["flag"] == "signoff_only"
    assert result.notices == ["Draft 1 came out as only a greeting or a sign-off; it was written again."]


def test_a_draft_signed_with_the_recipients_name_is_signed_with_the_users(mail):
    fake = FakeBackend(replies=["Hi Rosa,\n\nThe receipt is attached.\n\nBest,\nRosa"])
    result = draft(mail, "send Rosa the receipt", to=ROSA[1], backend=fake)
    assert learn_voice(mail).signature() == "Alex"
    assert result.drafts[0].text == "Hi Rosa,\n\nThe receipt is attached.\n\nBest,\nAlex"
    assert list_drafts(mail)[0]["text"].endswith("Best,\nAlex")
    assert result.notices == ["Draft 1 was signed Rosa; it is signed with your name instead."]


def test_a_reply_signed_with_the_name_of_the_email_it_answers_is_signed_with_the_users(mail):
    from assistant.drafting.prompting import ReplyContext

    daniel = ReplyContext("d@x", "message", "Daniel Vetter", "daniel@ffwll.example", "", "Fences", "Is this fine?")
    fake = FakeBackend(replies=["Yes, it is.\n\nRegards,\nDaniel Vetter."])
    result = draft(mail, "say yes", reply_context=daniel, backend=fake)
    assert result.drafts[0].text == "Yes, it is.\n\nRegards,\nAlex."
    # A pasted email has no header: the name it signed with counts.
    pasted = ReplyContext("pasted", "file", "", "", "", "", "Is this fine?\n\nRegards,\nDaniel")
    fake = FakeBackend(replies=["Yes, it is.\n\nRegards,\nDaniel"])
    assert draft(mail, "say yes", reply_context=pasted, backend=fake).drafts[0].text.endswith("Regards,\nAlex")
    # The name alone after a blank line, as many sign (and as Ben does).
    ben = ReplyContext("b@x", "message", "Ben Carter", "ben@x.example", "", "Atlas", "Tuesday?\n\nBen")
    result = draft(mail, "say Tuesday works", reply_context=ben, backend=FakeBackend(replies=["Tuesday works.\n\nBen"]))
    assert result.drafts[0].text == "Tuesday works.\n\nAlex"
    assert any("signed Ben; it is signed with your name" in n for n in result.notices)
    # Signed as Ben with nothing else: no message, so it is written again.
    fake = FakeBackend(replies=["Hi Ben,\n\nBen", "Hi Ben,\n\nTuesday works.\n\nBen"])
    result = draft(mail, "say Tuesday works", reply_context=ben, backend=fake)
    assert len(fake.params) == 2 and result.drafts[0].text == "Hi Ben,\n\nTuesday works.\n\nAlex"


def test_a_draft_that_is_only_the_users_name_is_written_again(mail):
    name = learn_voice(mail).first_name
    fake = FakeBackend(replies=[f"{name}.", "Hi Christian,\n\nThe slides are attached.\n\nBest,\nAlex"])
    result = draft(mail, "send Christian the slides", backend=fake)
    assert len(fake.params) == 2 and result.drafts[0].text.startswith("Hi Christian,")


def test_a_draft_with_no_message_is_replaced_by_the_next_try_that_has_one(mail):
    fake = FakeBackend(replies=["Best regards,Jeff", "", "Hi Christian,\n\nThe slides are attached.\n\nBest,\nAlex"])
    result = draft(mail, "send Christian the slides", backend=fake)
    (saved,) = result.drafts
    assert saved.text == "Hi Christian,\n\nThe slides are attached.\n\nBest,\nAlex" and saved.incomplete is None
    assert len(fake.params) == 3 and list_drafts(mail)[0]["text"] == saved.text
    whole = FakeBackend(replies=["Hi Rosa,\n\nDone.\n\nBest,\nAlex"])
    assert draft(mail, "say it is done", backend=whole).notices == [] and len(whole.params) == 1


def test_a_draft_cut_at_the_length_limit_is_flagged_and_a_whole_one_is_not(mail):
    long = "Hi Rosa,\n\n" + "The plumber can come on Monday and " * 200
    result = draft(mail, "ask Rosa about the plumber", length="short", backend=FakeBackend(replies=[long]))
    assert result.drafts[0].incomplete.code == "cut_off"
    whole = draft(mail, "say it is done", backend=FakeBackend(replies=["Hi Rosa,\n\nDone.\n\nBest,\nAlex"]))
    assert whole.drafts[0].incomplete is None and "incomplete" not in whole.drafts[0].to_json()
    assert [r["flag"] for r in list_drafts(mail)] == ["", "cut_off"]


def test_batch_marks_drafts_that_look_incomplete(mail, tmp_path):
    todo = tmp_path / "todo.txt"
    todo.write_text("send Christian the slides\nsay it is done\n", encoding="utf-8")
    fake = FakeBackend(replies=["Thank you, Christian."] * (RETRIES + 1) + ["Hi Rosa,\n\nDone.\n\nBest,\nAlex"])
    report = batch(mail, todo, tmp_path / "out.csv", backend=fake)
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["incomplete"] for r in rows] == ["signoff_only", ""]
    assert report.to_json()["incomplete"] == [int(rows[0]["draft_id"])]


def test_a_stopped_draft_is_saved_as_partial_with_its_request(mail):
    draft_id = save_partial(mail, "ask Rosa about the plumber", "Hi Rosa,\n\nCould the plum", reply_to="s1@test",
                            to="rosa@properties.example.net", tone="warm", length="short")  # fmt: skip
    (row,) = list_drafts(mail)
    assert row["id"] == draft_id and (row["flag"], row["text"]) == ("partial", "Hi Rosa,\n\nCould the plum")
    assert (row["context_kind"], row["context"]) == ("message", "s1@test")
    assert row["recipient"] == "rosa@properties.example.net"
    assert row["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert json.loads(row["params"]) == {"tone": "warm", "length": "short", "to": "rosa@properties.example.net",
                                         "stopped": True}  # fmt: skip
    with pytest.raises(PromptError, match="nothing to save"):
        save_partial(mail, "x", "  \n")


def test_drafts_stored_before_the_flag_existed_read_as_whole(tmp_path):
    db = sqlite_utils.Database(tmp_path / "old.db")
    mine = migrations.MIGRATIONS.index(migrations.m010_draft_flags)
    for fn in migrations.MIGRATIONS[:mine]:  # a database as it was before the flag
        fn(db)
    db["drafts"].insert({"instruction": "old", "text": "Hi,\n\nOld.", "model": "m.gguf"})
    migrations.m010_draft_flags(db)
    assert [r["flag"] for r in db.query("SELECT flag FROM drafts")] == [""]


def test_each_alternative_is_reported_as_it_is_saved(mail):
    seen: list[tuple[int, int]] = []
    result = draft(mail, "say hi", n=2, backend=FakeBackend(), on_saved=lambda i, d: seen.append((i, d.id)))
    assert seen == [(0, result.drafts[0].id), (1, result.drafts[1].id)]
