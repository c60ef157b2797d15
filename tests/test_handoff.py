"""A draft handed to the mail app as an unsent, threaded email (.eml): its headers and text parsed back with the
standard library, the user's own address as From, the private folder it is written in, the opener (never a
real app here), and the command line's draft --open and export eml."""

from __future__ import annotations

import email
import email.policy
import json
import os
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import FakeBackend

from assistant.cli import cli
from assistant.drafting import drafts as drafts_module
from assistant.drafting import handoff
from assistant.drafting.corrections import list_corrections
from assistant.drafting.drafts import draft, list_drafts
from assistant.drafting.handoff import (
    HandoffError,
    draft_eml,
    handoff_dir,
    handoff_files,
    open_command,
    open_in_mail_app,
    reply_subject,
    save_handoff,
    saved_draft_eml,
)
from assistant.drafting.prompting import ReplyContext, reply_from_file, reply_from_store
from assistant.forget import forget
from assistant.identities import relabel
from assistant.paths import data_dir

TEXT = "Hi Rosa,\n\nMonday at 9 works for me.\n\nBest,\nAlex"


def add_message(db, message_id: str, *, subject: str = "Plumber on Monday", refs: str = "", in_reply_to: str = "",
                from_name: str = "Rosa Álvarez", from_addr: str = "rosa@properties.example.net",
                to: list[list[str]] | None = None, sent: int = 0) -> None:  # fmt: skip
    row = {"message_id": message_id, "date": "2024-03-01T09:00:00+00:00", "from_name": from_name,
           "from_addr": from_addr, "from_key": from_addr.lower(), "subject": subject, "body": "Can he come?",
           "refs": refs, "in_reply_to": in_reply_to, "cc_json": "[]", "sent_by_me": sent, "automated": 0,
           "to_json": json.dumps(to or [["Alex Morgan", "alex@home.example"]])}  # fmt: skip
    db["messages"].insert(row)


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def body(msg: email.message.EmailMessage) -> str:
    """The text as a mail app shows it (the file's lines end CRLF, as RFC 5322 has them)."""
    return msg.get_content().replace("\r\n", "\n")


class Opener:
    """Records the files it is asked to open; launches nothing."""

    def __init__(self, works: bool = True):
        self.paths: list[Path] = []
        self.works = works

    def __call__(self, path: Path) -> bool:
        self.paths.append(path)
        return self.works


# --- the message ---------------------------------------------------------------------------------------------
def test_a_new_email_has_its_recipient_subject_text_and_is_unsent(db):
    msg = parsed(draft_eml(TEXT, to="rosa@properties.example.net", subject="Monday", reply=None, db=db))
    assert msg["To"] == "rosa@properties.example.net" and msg["Subject"] == "Monday"
    assert msg["X-Unsent"] == "1" and msg["In-Reply-To"] is None and msg["References"] is None
    assert msg["From"] is None  # the user's addresses are not known yet: the mail app fills it in
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith("@mailvoice.invalid>")
    assert msg["Date"] and msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert body(msg) == TEXT + "\n"


def test_a_reply_is_threaded_under_the_email_it_answers(db):
    add_message(db, "rosa-2@x", refs="rosa-0@x rosa-1@x", in_reply_to="rosa-1@x")
    reply = reply_from_store(db, "rosa-2@x")
    data = draft_eml(TEXT, to="rosa@properties.example.net", subject="ignored for a reply", reply=reply, db=db)
    msg = parsed(data)
    assert msg["Subject"] == "Re: Plumber on Monday"
    assert msg["In-Reply-To"] == "<rosa-2@x>"
    assert msg["References"].split() == ["<rosa-0@x>", "<rosa-1@x>", "<rosa-2@x>"]  # the whole chain, in order
    assert msg["X-Unsent"] == "1" and body(msg) == TEXT + "\n"


def test_a_reply_to_a_reply_gets_no_stacked_re(db):
    add_message(db, "r-1@x", subject="Re: Plumber on Monday", refs="q-0@x", in_reply_to="q-0@x")
    add_message(db, "r-2@x", subject="AW: Rechnung", in_reply_to="q-9@x")  # its parent had no References
    first = parsed(draft_eml(TEXT, to="", subject="", reply=reply_from_store(db, "r-1@x"), db=db))
    second = parsed(draft_eml(TEXT, to="", subject="", reply=reply_from_store(db, "r-2@x"), db=db))
    assert first["Subject"] == "Re: Plumber on Monday" and second["Subject"] == "AW: Rechnung"
    assert first["References"].split() == ["<q-0@x>", "<r-1@x>"]
    assert second["References"].split() == ["<q-9@x>", "<r-2@x>"]  # the parent's In-Reply-To stands in
    (to,) = first["To"].addresses  # no recipient given: the sender of the email answered
    assert (to.display_name, to.addr_spec) == ("Rosa Álvarez", "rosa@properties.example.net")
    assert [reply_subject(s) for s in ("Lunch", "RE: Lunch", "Re: Re: Lunch", "[List] Re: Lunch", "Fwd: Lunch")] == [
        "Re: Lunch", "RE: Lunch", "Re: Re: Lunch", "[List] Re: Lunch", "Re: Fwd: Lunch"]  # fmt: skip


def test_non_ascii_names_and_subjects_travel_as_encoded_words(db):
    add_message(db, "cafe@x", subject="Café ☕ et croissants à 10 h", from_name="Zoë Ünal", from_addr="zoe@example.fr")
    data = draft_eml("Bonjour Zoë,\n\nÀ demain — Alex", to="Zoë Ünal <zoe@example.fr>, Bob <bob@example.com>",
                     subject="", reply=reply_from_store(db, "cafe@x"), db=db)  # fmt: skip
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head  # RFC 2047: no raw 8-bit header reaches the mail app
    msg = parsed(data)
    assert msg["Subject"] == "Re: Café ☕ et croissants à 10 h"
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [
        ("Zoë Ünal", "zoe@example.fr"), ("Bob", "bob@example.com")]  # fmt: skip
    assert body(msg) == "Bonjour Zoë,\n\nÀ demain — Alex\n"


def test_from_is_the_users_address_the_email_was_sent_to(db):
    add_message(db, "mine-1@x", from_name="Alex Morgan", from_addr="alex@work.example", sent=1, subject="Hi")
    add_message(db, "mine-2@x", from_name="Alex Morgan", from_addr="alex@work.example", sent=1, subject="Hi again")
    add_message(db, "mine-3@x", from_name="Alex M.", from_addr="alex@home.example", sent=1, subject="Home")
    add_message(db, "to-home@x", to=[["Alex", "Alex@Home.example"]])
    relabel(db, ["alex@work.example", "alex@home.example"])
    new = parsed(draft_eml(TEXT, to="rosa@properties.example.net", subject="x", reply=None, db=db))
    assert new["From"].addresses[0].addr_spec == "alex@work.example"  # the address used most
    assert new["From"].addresses[0].display_name == "Alex Morgan"
    assert new["Message-ID"].endswith("@work.example>")
    answered = parsed(draft_eml(TEXT, to="", subject="", reply=reply_from_store(db, "to-home@x"), db=db))
    assert answered["From"].addresses[0].addr_spec == "alex@home.example"  # the one it was sent to


def test_a_reply_to_a_saved_eml_file_is_threaded_from_its_headers(tmp_path):
    path = tmp_path / "question.eml"
    path.write_bytes(b"From: Kenji Sato <kenji@finance.example.com>\r\nTo: alex@home.example\r\n"
                     b"Subject: Budget numbers\r\nDate: Mon, 4 Mar 2024 09:00:00 +0000\r\n"
                     b"Message-ID: <k-2@finance>\r\nReferences: <k-0@finance>\r\n <k-1@finance>\r\n\r\n"
                     b"Are the Q2 numbers final?\r\n")  # fmt: skip
    msg = parsed(draft_eml("Yes.", to="kenji@finance.example.com", subject="", reply=reply_from_file(path)))
    assert msg["In-Reply-To"] == "<k-2@finance>" and msg["Subject"] == "Re: Budget numbers"
    assert msg["References"].split() == ["<k-0@finance>", "<k-1@finance>", "<k-2@finance>"]


def test_a_made_up_message_id_threads_nothing(db):
    add_message(db, "mailvoice-0123abcd@local", subject="No id")
    msg = parsed(draft_eml(TEXT, to="", subject="", reply=reply_from_store(db, "mailvoice-0123abcd@local"), db=db))
    assert msg["In-Reply-To"] is None and msg["References"] is None and msg["Subject"] == "Re: No id"


def test_a_very_long_chain_keeps_its_first_and_newest_ids(db):
    refs = " ".join(f"m{i}@x" for i in range(40))
    add_message(db, "last@x", refs=refs)
    msg = parsed(draft_eml(TEXT, to="", subject="", reply=reply_from_store(db, "last@x"), db=db))
    chain = msg["References"].split()
    assert len(chain) == handoff.MAX_REFERENCES and chain[0] == "<m0@x>" and chain[-2:] == ["<m39@x>", "<last@x>"]


def test_an_unstored_reply_is_threaded_on_its_id_alone():
    reply = ReplyContext("gone@x", "message", "Rosa", "rosa@x.example", "", "Tap", "hi")
    msg = parsed(draft_eml(TEXT, to="rosa@x.example", subject="", reply=reply))
    assert (msg["In-Reply-To"], msg["References"], msg["Subject"]) == ("<gone@x>", "<gone@x>", "Re: Tap")


# --- the file and the opener ------------------------------------------------------------------------------------
def test_files_are_private_in_the_data_folder_and_forget_removes_them(db, data_home):
    root = data_dir()
    path = save_handoff(root, b"x", 7)
    assert path.parent == handoff_dir(root) and path.is_relative_to(root) and path.name.startswith("draft-7-")
    if os.name != "nt":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert handoff_files(root) == [path] and path.read_bytes() == b"x"
    report = forget(root)
    assert not path.exists() and not handoff_dir(root).exists() and report.kept == []


def test_files_older_than_a_week_go_when_another_is_written(db):
    root = data_dir()
    old = save_handoff(root, b"old")
    week_ago = time.time() - handoff.KEEP_SECONDS - 60
    os.utime(old, (week_ago, week_ago))
    new = save_handoff(root, b"new")
    assert handoff_files(root) == [new]


def test_the_opener_is_injected_and_its_failure_is_an_answer(monkeypatch, tmp_path):
    opener = Opener()
    assert open_in_mail_app(tmp_path / "a.eml", runner=opener) and opener.paths == [tmp_path / "a.eml"]
    assert not open_in_mail_app(tmp_path / "a.eml", runner=Opener(works=False))

    def broken(_path):
        raise OSError("no such program")

    assert not open_in_mail_app(tmp_path / "a.eml", runner=broken)
    hooked = Opener()
    monkeypatch.setattr(handoff, "OPENER", hooked)
    assert open_in_mail_app(str(tmp_path / "b.eml")) and hooked.paths == [tmp_path / "b.eml"]


def test_each_platform_has_its_opener():
    path = Path("/data/handoff/draft.eml")
    assert open_command(path, "linux") == ["xdg-open", str(path)]
    assert open_command(path, "darwin") == ["open", str(path)]
    assert open_command(path, "win32") is None  # os.startfile


# --- the command line ---------------------------------------------------------------------------------------------
@pytest.fixture
def fake(monkeypatch):
    backend = FakeBackend()

    def make(settings):
        backend.configure(settings)
        return backend

    monkeypatch.setattr(drafts_module, "LlamaBackend", make)
    return backend


@pytest.fixture
def opener(monkeypatch) -> Opener:
    found = Opener()
    monkeypatch.setattr(handoff, "OPENER", found)
    return found


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_draft_open_writes_the_threaded_eml_and_opens_it(fake, opener, db):
    add_message(db, "rosa-1@x", refs="rosa-0@x")
    fake.enqueue(TEXT)
    code, out, err = run("draft", "say Monday at 9 works", "--reply-to", "rosa-1@x", "--open", "--json")
    assert code == 0
    payload = json.loads(out)
    path = Path(payload["eml"])
    assert opener.paths == [path] and payload["opened"] is True and payload["drafts"][0]["eml"] == str(path)
    msg = parsed(path.read_bytes())
    assert msg["In-Reply-To"] == "<rosa-1@x>" and msg["References"].split() == ["<rosa-0@x>", "<rosa-1@x>"]
    assert msg["To"].addresses[0].addr_spec == "rosa@properties.example.net"
    assert body(msg) == TEXT + "\n" and "Opened draft #1 in your mail app" in err
    (kept,) = list_corrections(db)
    assert (kept.how, kept.kind) == ("opened", "accepted")


def test_draft_open_says_what_to_do_when_nothing_opens_it(fake, monkeypatch):
    monkeypatch.setattr(handoff, "OPENER", Opener(works=False))
    code, out, err = run("draft", "say hi", "--to", "bob@example.com", "--open")
    assert code == 0 and out.startswith("Reply")
    assert "No app opened draft #1" in err and "Open that file from your mail app" in err


def test_export_eml_writes_a_saved_draft(fake, db, tmp_path):
    add_message(db, "rosa-1@x")
    fake.enqueue(TEXT)
    draft(db, "say Monday works", reply_to="rosa-1@x", backend=fake)
    (row,) = list_drafts(db)
    out = tmp_path / "draft.eml"
    code, stdout, _ = run("export", "eml", str(row["id"]), str(out), "--json")
    assert code == 0 and json.loads(stdout)["threaded"] is True and json.loads(stdout)["out"] == str(out)
    msg = parsed(out.read_bytes())
    assert msg["In-Reply-To"] == "<rosa-1@x>" and msg["Subject"] == "Re: Plumber on Monday"
    assert body(msg) == TEXT + "\n" and msg["X-Unsent"] == "1"
    code, stdout, err = run("export", "eml", "99", str(tmp_path / "none.eml"))
    assert code == 1 and "There is no saved draft #99" in err and not (tmp_path / "none.eml").exists()
    with pytest.raises(HandoffError):
        saved_draft_eml(db, 99)
