"""Inbox triage: learned filing, categories by rules, the stored triage and its commands."""

from __future__ import annotations

import json
import random
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.inbox import filing, triage
from assistant.inbox.categories import CATEGORIES, GRAMMAR, Facts, ask_model, categorize

ME = "alex@example.org"
# Who writes to the user, and where the user files their mail: the sender says where most of it goes.
SENDERS = {
    "Projects": ["dana@builders.example", "omar@builders.example"],
    "Family": ["mum@gmail.com", "sis@yahoo.com"],
    "Receipts": ["orders@shop.example", "billing@power.example"],
    "INBOX": ["sam@partner.example", "lee@partner.example"],
}
SUBJECTS = {
    "Projects": ["Site plan for the east wing", "Concrete delivery schedule", "Crane permit update"],
    "Family": ["Sunday lunch", "Photos from the beach", "Grandma's birthday"],
    "Receipts": ["Your order has shipped", "Your monthly bill", "Payment received"],
    "INBOX": ["Quarterly numbers", "Contract draft", "Workshop agenda"],
}


def _message(i: int, folder: str, rng: random.Random) -> EmailMessage:
    import datetime as dt

    msg = EmailMessage()
    sender = rng.choice(SENDERS[folder])
    msg["From"] = f"{sender.split('@')[0].title()} <{sender}>"
    msg["To"] = f"Alex Morgan <{ME}>"
    msg["Subject"] = rng.choice(SUBJECTS[folder])
    msg["Message-ID"] = f"<m{i}@test.example>"
    when = dt.datetime(2026, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=1))) + dt.timedelta(hours=7 * i)
    msg["Date"] = format_datetime(when)
    body = {
        "Projects": "The {s} is attached. Could you check the numbers before the site meeting?",
        "Family": "Love you all, see you soon. {s}!",
        "Receipts": "Thank you for your payment. {s}. Reference {i}.",
        "INBOX": "Here is the {s}. Let me know what you think.",
    }[folder]
    msg.set_content(body.format(s=msg["Subject"].lower(), i=i) + "\n")
    if folder == "Receipts":
        msg["Precedence"] = "bulk"
        msg["List-Unsubscribe"] = "<mailto:unsubscribe@shop.example>"
    return msg


def _sent(i: int, to: str, subject: str, body: str, reply_to: str | None = None) -> EmailMessage:
    import datetime as dt

    msg = EmailMessage()
    msg["From"] = f"Alex Morgan <{ME}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<s{i}@test.example>"
    if reply_to:
        msg["In-Reply-To"] = f"<{reply_to}>"
        msg["References"] = f"<{reply_to}>"
    msg["Date"] = format_datetime(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC) + dt.timedelta(hours=i))
    msg.set_content(body + "\n\nAlex\n")
    return msg


def write_maildir(root: Path, n: int = 80, seed: int = 1) -> Path:
    """A maildir with the user's folders (sender decides the folder), a Sent folder, and an invitation."""
    rng = random.Random(seed)
    folders = list(SENDERS)
    for i in range(n):
        folder = folders[i % len(folders)]
        _put(root, folder, f"{i}", _message(i, folder, rng))
    _put(root, "Sent", "s1", _sent(1, "Sam <sam@partner.example>", "Re: Quarterly numbers",
                                   "Thanks Sam, could you send the spreadsheet too?"))  # fmt: skip
    invite = _message(10_000, "INBOX", rng)
    invite.replace_header("Subject", "Invitation: design review")
    invite.replace_header("Date", "Fri, 20 Feb 2026 10:00:00 +0100")
    invite.add_attachment(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:r1@test\r\nDTSTART:20260305T140000Z\r\n"
        "DTEND:20260305T150000Z\r\nSUMMARY:Design review\r\nLOCATION:Room 4\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        subtype="calendar", filename="invite.ics",
    )
    _put(root, "INBOX", "invite", invite)
    return root


def _put(root: Path, folder: str, name: str, msg: EmailMessage) -> None:
    base = root if folder == "INBOX" else root / f".{folder}"
    for sub in ("cur", "new", "tmp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "cur" / f"{name}.test:2,S").write_bytes(bytes(msg))


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def store(tmp_path, db):
    code, _out, err = run("import", str(write_maildir(tmp_path / "Inbox")), "--me", ME)  # the root: "Inbox"
    assert code == 0, err
    return db


def _rows(db):
    cols = ", ".join(filing.COLUMNS)
    return [dict(zip(filing.COLUMNS, r, strict=True)) for r in db.execute(f"SELECT {cols} FROM messages")]


# --- filing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "filing_folder"),
    [("Projects", True), ("INBOX", True), ("deleted_items", True), ("Sent", False), ("sent_items", False),
     ("_sent_mail", False), ("all_documents", False), ("[Gmail]/All Mail", False), ("Category Updates", False),
     ("Drafts", False), ("Spam", False), ("", False), ("Work/Sent", False)],
)  # fmt: skip
def test_views_sent_and_system_labels_are_not_filing_folders(name, filing_folder):
    assert filing.is_filing_folder(name) is filing_folder


def test_target_folder_prefers_where_the_user_put_it_over_the_inbox_copy():
    assert filing.target_folder("inbox", '["folder:all_documents", "folder:Projects"]') == "Projects"
    assert filing.target_folder("deleted_items", '["folder:inbox"]') == "inbox"
    assert filing.target_folder("sent", '["folder:all_documents"]') is None


def test_filing_learns_the_users_folders_and_suggests_the_right_one(store, data_home):
    from assistant.paths import data_dir

    model = filing.load_or_train(store, data_dir())
    assert set(model.folders) == {"Projects", "Family", "Receipts", "Inbox"}
    rows = [r for r in _rows(store) if r["from_addr"] == "dana@builders.example"][:3]
    for suggestion in model.suggest(rows):
        assert suggestion.folder == "Projects" and suggestion.sure
        assert len(suggestion.folders) == 3 and abs(sum(p for _f, p in suggestion.folders) - 1) < 0.2


def test_filing_model_is_kept_and_trained_again_when_mail_changes(store, data_home):
    from assistant.paths import data_dir

    first = filing.load_or_train(store, data_dir())
    assert filing.load_or_train(store, data_dir()) .fingerprint == first.fingerprint
    mtime = filing.model_path(data_dir()).stat().st_mtime_ns
    with store.conn:
        store.execute("DELETE FROM messages WHERE id = (SELECT MAX(id) FROM messages)")
    again = filing.load_or_train(store, data_dir())
    assert again.fingerprint != first.fingerprint and again.trained_on == first.trained_on - 1
    assert filing.model_path(data_dir()).stat().st_mtime_ns != mtime


def test_a_damaged_saved_model_is_trained_again(store, data_home):
    from assistant.paths import data_dir

    filing.load_or_train(store, data_dir())
    filing.model_path(data_dir()).write_bytes(b"not a pickle")
    assert filing.load_or_train(store, data_dir()).trained_on > 0


def test_one_folder_is_not_enough_to_learn_filing():
    rows = [{"subject": f"s{i}", "body": "b", "from_addr": "a@b.c", "folder": "INBOX", "labels": "[]"}
            for i in range(10)]  # fmt: skip
    train, folders = filing.labelled(rows)
    with pytest.raises(filing.NotEnoughFiled, match="at least two folders"):
        filing.fit(train, folders)


# --- categories ---------------------------------------------------------------------------------------------


def _row(**kw):
    base = {"subject": "Hello", "body": "Just so you know.", "from_addr": "x@corp.example", "automated": 0,
            "list_id": None, "attachments": "[]", "sent_by_me": 0}  # fmt: skip
    return {**base, **kw}


@pytest.mark.parametrize(
    ("row", "facts", "expected"),
    [
        (_row(automated=1, auto_reason="list-unsubscribe"), Facts(to_me=True), "newsletter"),
        (_row(body="Can you send me the slides?"), Facts(to_me=True, recipients=1), "needs_reply"),
        (_row(body="Can you send me the slides?"), Facts(to_me=True, recipients=1, answered=True), "fyi"),
        (_row(body="Can you send me the slides?", list_id="dev.lists.example"), Facts(to_me=True), "fyi"),
        (_row(body="Could you have a look?", sent_by_me=1), Facts(last_in_thread=True), "waiting"),
        (_row(body="Done, thanks.", sent_by_me=1), Facts(last_in_thread=True), "fyi"),
        (_row(subject="Invitation: design review"), Facts(), "event"),
        (_row(attachments='["invite.ics"]'), Facts(), "event"),
        (_row(), Facts(events=2), "event"),
        (_row(body="The report is due by Friday."), Facts(), "task"),
        (_row(from_addr="mum@gmail.com", body="Happy birthday, love you!"), Facts(to_me=True), "personal"),
        (_row(), Facts(to_me=False, recipients=5), "fyi"),
    ],
)  # fmt: skip
def test_rules_categorize(row, facts, expected):
    found = categorize(row, facts)
    assert found.name == expected and found.name in CATEGORIES and found.reason


def test_unsure_rules_leave_the_choice_to_the_model_whose_answer_the_grammar_bounds():
    found = categorize(_row(), Facts(to_me=True, recipients=1))
    assert not found.sure
    assert GRAMMAR.startswith("root ::= ") and all(f'"{c}"' in GRAMMAR for c in CATEGORIES)
    seen = []

    def generate(messages, grammar):
        seen.append(grammar)
        return iter(["needs", "_reply"])

    assert ask_model(generate, _row()) == "needs_reply" and seen == [GRAMMAR]
    assert ask_model(lambda m, g: iter(["I think it is a task"]), _row()) is None


# --- the stored triage --------------------------------------------------------------------------------------


def test_triage_stores_a_row_per_message_and_then_only_triages_new_mail(store, data_home):
    from assistant.paths import data_dir

    total = store.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    done = []
    summary = triage.run(store, data_dir(), progress=lambda d, n: done.append((d, n)))
    assert summary.triaged == summary.pending == total and done[-1] == (total, total)
    assert summary.filing == "" and sum(summary.categories.values()) == total
    assert triage.run(store, data_dir()).triaged == 0
    listed = triage.newest(store, limit=1000)
    assert len(listed) == total
    by_subject = {t.subject: t for t in listed}
    invite = by_subject["Invitation: design review"]
    assert invite.category == "event"
    assert invite.events[0]["title"] == "Design review" and invite.events[0]["place"] == "Room 4"
    assert by_subject["Your order has shipped"].category == "newsletter"
    sent = [t for t in listed if t.sent_by_me]
    assert [t.category for t in sent] == ["waiting"]
    assert {t.filing["folder"] for t in listed if t.filing and t.filing["sure"]} <= {*SENDERS, "Inbox"}
    assert "Invitation: design review" in {e["message"]["subject"] for e in triage.all_events(store)}


def test_a_stopped_triage_keeps_finished_chunks_and_goes_on(store, data_home, monkeypatch):
    from assistant.paths import data_dir

    monkeypatch.setattr(triage, "CHUNK", 10)
    total = store.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    calls = iter(range(10**6))
    stopped = triage.run(store, data_dir(), cancel=lambda: next(calls) >= 25)
    assert stopped.cancelled and stopped.triaged == 25
    assert store.execute("SELECT COUNT(*) FROM triage").fetchone()[0] == 25
    rest = triage.run(store, data_dir())
    assert rest.triaged == total - 25 and not rest.cancelled
    assert store.execute("SELECT COUNT(DISTINCT message_id) FROM triage").fetchone()[0] == total


def test_again_and_since_choose_what_is_triaged(store, data_home):
    from assistant.paths import data_dir

    triage.run(store, data_dir())
    later = triage.run(store, data_dir(), since="2026-03-01", again=True)
    dated = store.execute("SELECT COUNT(*) FROM messages WHERE date >= '2026-03-01'").fetchone()[0]
    assert 0 < later.triaged == dated


def test_a_message_whose_original_is_gone_is_triaged_from_the_store(store, data_home, tmp_path):
    import shutil

    from assistant.paths import data_dir

    shutil.rmtree(tmp_path / "Inbox")
    summary = triage.run(store, data_dir())
    assert summary.triaged == store.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


def test_no_filing_without_filed_mail_is_said_not_raised(db, data_home, tmp_path):
    from assistant.paths import data_dir

    root = tmp_path / "flat"
    rng = random.Random(3)
    for i in range(6):
        _put(root, "INBOX", str(i), _message(i, "INBOX", rng))
    assert run("import", str(root), "--me", ME)[0] == 0
    summary = triage.run(db, data_dir())
    assert summary.triaged == 6 and "at least two folders" in summary.filing
    assert all(t.filing is None for t in triage.newest(db))


# --- commands -----------------------------------------------------------------------------------------------


def test_triage_command_json_and_csv(store, tmp_path):
    out_csv = tmp_path / "triage.csv"
    code, out, _err = run("triage", "--json", "--show", "5", "--csv", str(out_csv))
    assert code == 0
    payload = json.loads(out)
    assert {"triaged", "pending", "categories", "events", "tasks", "filing", "model_calls", "model_invalid",
            "seconds", "cancelled", "messages", "csv"} <= set(payload)  # fmt: skip
    assert len(payload["messages"]) == 5 and payload["messages"][0]["category"] in CATEGORIES
    lines = out_csv.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("id,message_id,date,from,subject,category") and len(lines) == payload["triaged"] + 1
    code, out, _err = run("triage")
    assert code == 0 and out.startswith("No new mail to triage.")
    code, out, _err = run("triage", "--category", "newsletter", "--show", "100")
    assert code == 0 and "Newsletter or notification" in out and "Needs a reply" not in out


def test_events_command_writes_a_calendar(store, tmp_path):
    code, out, _ = run("events")
    assert code == 0 and "run mailvoice triage first" in out
    assert run("triage")[0] == 0
    ics = tmp_path / "events.ics"
    code, out, _ = run("events", "--ics", str(ics), "--json")
    payload = json.loads(out)
    assert code == 0 and payload["triaged"] > 0 and payload["events"]
    text = ics.read_bytes().decode()
    assert text.startswith("BEGIN:VCALENDAR\r\n") and "SUMMARY:Design review\r\n" in text
    assert text.count("BEGIN:VEVENT") == len(payload["events"])


def test_bad_dates_and_unwritable_files_are_clear_errors(store, tmp_path):
    code, _out, err = run("triage", "--since", "last week")
    assert code == 2 and "YYYY-MM-DD" in err
    code, _out, err = run("events", "--ics", str(tmp_path / "missing" / "x.ics"))
    assert code == 1 and err.startswith("Error: Cannot write") and "Traceback" not in err


# --- replies in the user's voice ----------------------------------------------------------------------------


@pytest.fixture
def fake(monkeypatch):
    from fakes import FakeBackend

    from assistant.drafting import drafts as drafts_module

    backend = FakeBackend()

    def make(settings):
        backend.configure(settings)
        return backend

    monkeypatch.setattr(drafts_module, "LlamaBackend", make)
    return backend


def test_replies_are_drafted_once_for_the_newest_mail_that_needs_one(store, fake):
    from assistant.inbox.replies import propose, waiting_for_reply

    assert run("triage")[0] == 0
    needs = store.execute("SELECT COUNT(*) FROM triage WHERE category = 'needs_reply'").fetchone()[0]
    assert needs >= 3
    fake.enqueue(*[f"Hi,\n\nYes, that works ({i}).\n\nAlex" for i in range(needs)])
    code, out, err = run("triage", "--draft-replies", "2", "--json")
    assert code == 0, err
    replies = json.loads(out)["replies"]
    assert len(replies) == 2 and len({r["draft"] for r in replies}) == 2
    stored = dict(store.execute("SELECT message_id, reply_draft FROM triage WHERE reply_draft IS NOT NULL"))
    assert stored == {r["message"]: r["draft"] for r in replies}
    assert len(waiting_for_reply(store, 100)) == needs - 2
    again = propose(store, 100)
    assert len(again) == needs - 2 and not {p.message for p in again} & set(stored)
    assert propose(store, 100) == []
    listed = {t.id: t.reply_draft for t in triage.newest(store, limit=1000)}
    assert all(listed[m] == d for m, d in stored.items())
