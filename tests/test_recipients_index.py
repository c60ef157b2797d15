"""The recipients index: stored mail backfilled, new mail indexed in bulk (a kill caught up), every change to
messages followed, first drafts without a scan."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import mailgen as gen
import pytest
import sqlite_utils

from assistant.drafting import examples
from assistant.drafting.examples import recipient_mail
from assistant.identities import relabel
from assistant.importer import import_paths
from assistant.store import migrations, recipients
from assistant.store.fts import index_pending
from assistant.store.recipients import index_recipients_pending

ME = "alex.morgan@example.org"
ROSA = ["Rosa Alvarez", "rosa@properties.example.net"]


def add(db, *, to=(ROSA,), cc=(), sent=1, automated=0, forward=0, date="2024-01-02T10:00:00+00:00", **raw) -> int:
    row = {
        "date": date,
        "from_addr": ME if sent else "someone@else.test",
        "from_key": ME if sent else "someone@else.test",
        "to_json": json.dumps([list(t) for t in to]),
        "cc_json": json.dumps([list(c) for c in cc]),
        "subject": "Hello",
        "body": "A note long enough to be a style example, about the lease.",
        "is_forward": forward,
        "sent_by_me": sent,
        "automated": automated,
        **raw,
    }
    pk = db["messages"].insert(row).last_pk
    if "messages_fts" in db.table_names():
        index_pending(db)  # as the importer does (a delete of an unindexed row upsets the full-text index)
    if "sent_recipients" in db.table_names():
        index_recipients_pending(db)  # as the importer does after storing mail
    return pk


def indexed(db) -> set[tuple]:
    return set(db.execute("SELECT address, date, message, domain, name FROM sent_recipients").fetchall())


def expected(db, whole: bool = False) -> set[tuple]:
    """The index as it should be, worked out from the messages in Python: (address, date, message), and with
    ``whole`` the domain and name too."""
    out = set()
    rows = db.execute(
        "SELECT id, date, to_json, cc_json FROM messages WHERE sent_by_me = 1 AND automated = 0 AND is_forward = 0"
    )
    for row_id, date, to_json, cc_json in rows:
        for people in (to_json, cc_json):
            for name, addr in json.loads(people or "[]"):
                address = addr.strip(" ").lower()
                if re.fullmatch(r".+@.+", address):
                    row = (address, date or "", row_id)
                    out.add((*row, address.partition("@")[2], name or "") if whole else row)
    return out


def test_mail_stored_before_the_index_existed_is_indexed_when_it_is_added(tmp_path):
    db = sqlite_utils.Database(tmp_path / "older.db")
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for fn in migrations.MIGRATIONS[: [m.__name__ for m in migrations.MIGRATIONS].index("m008_recipients")]:
        fn(db)  # a store made by an earlier version
        db["_migrations"].insert({"name": fn.__name__, "applied_at": ""})
    a = add(db, cc=[["Mike", "Mike@Properties.example.net"]])
    add(db, sent=0)  # received: not the user's voice
    add(db, automated=1)
    add(db, forward=1)
    db.conn.commit()
    assert "m008_recipients" in migrations.apply(db)
    assert indexed(db) == {
        ("rosa@properties.example.net", "2024-01-02T10:00:00+00:00", a, "properties.example.net", "Rosa Alvarez"),
        ("mike@properties.example.net", "2024-01-02T10:00:00+00:00", a, "properties.example.net", "Mike"),
    }


def test_the_index_follows_inserts_updates_and_deletes(db):
    mine = add(db, to=[ROSA, ["", "ROSA@properties.example.net"]], cc=[["Jo", "jo@gmail.com"]])
    add(db, sent=0)
    add(db, automated=1)
    add(db, forward=1)
    add(db, to_json="not json", cc_json='["bare string", [1], [null, "  "], {"a": 1}]')  # never fails an insert
    add(db, to_json=None, cc_json=None, date=None)
    assert {(r[0], r[2]) for r in indexed(db)} == {("rosa@properties.example.net", mine), ("jo@gmail.com", mine)}
    db.execute("UPDATE messages SET to_json = ? WHERE id = ?", [json.dumps([["Sam", "sam@x.test"]]), mine])
    assert {r[0] for r in indexed(db) if r[2] == mine} == {"sam@x.test", "jo@gmail.com"}
    db.execute("UPDATE messages SET automated = 1 WHERE id = ?", [mine])
    assert indexed(db) == set()
    db.execute("UPDATE messages SET automated = 0, date = '2025-05-05' WHERE id = ?", [mine])
    assert {r[1] for r in indexed(db)} == {"2025-05-05"}
    db.execute("DELETE FROM messages WHERE id = ?", [mine])
    assert indexed(db) == set()


def test_the_index_matches_the_mail_through_import_and_changes_of_address(db, tmp_path):
    path = tmp_path / "mail.mbox"
    gen.write_mbox(path, gen.generate_messages(150, seed=11))
    import_paths(db, [path], me=[ME])
    assert len(expected(db)) > 30
    assert indexed(db) == expected(db, whole=True)
    before = expected(db, whole=True)
    relabel(db, [ME, "kenji.watanabe@example.org"])  # `mailvoice me` adding an address re-marks every message
    assert indexed(db) == expected(db, whole=True) != before
    relabel(db, [ME])
    assert indexed(db) == expected(db, whole=True) == before
    db.execute("DELETE FROM messages WHERE id % 3 = 0")
    assert indexed(db) == expected(db, whole=True)


def messages_triggers(db) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'messages'")}


def test_storing_mail_runs_no_trigger_of_the_index_and_changes_to_it_still_do(db):
    assert "sent_recipients_ai" not in messages_triggers(db)
    assert {"sent_recipients_au", "sent_recipients_ad"} <= messages_triggers(db)
    db["messages"].insert({"from_key": ME, "to_json": json.dumps([ROSA]), "sent_by_me": 1, "automated": 0,
                           "is_forward": 0})  # fmt: skip
    assert indexed(db) == set()  # stored, not yet indexed: the next bulk call adds it
    assert index_recipients_pending(db) == 1 and index_recipients_pending(db) == 0
    assert {r[0] for r in indexed(db)} == {ROSA[1]}


def test_a_store_indexed_by_the_insert_trigger_keeps_its_index_and_continues_in_bulk(tmp_path):
    db = sqlite_utils.Database(tmp_path / "older.db")
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for fn in migrations.MIGRATIONS[: [m.__name__ for m in migrations.MIGRATIONS].index("m012_recipients_in_bulk")]:
        fn(db)  # a store made by the version that indexed by trigger
        db["_migrations"].insert({"name": fn.__name__, "applied_at": ""})
    for i in range(5):
        add(db, to=[[f"P{i}", f"p{i}@x{i % 2}.test"]])
    db.conn.commit()
    before = indexed(db)
    assert len(before) == 5 and "sent_recipients_ai" in messages_triggers(db)
    assert migrations.apply(db)[0] == "m012_recipients_in_bulk"  # and the ones after it
    assert recipients.indexed_upto(db) == 5 and index_recipients_pending(db) == 0 and indexed(db) == before
    assert "sent_recipients_ai" not in messages_triggers(db)
    add(db, to=[["Late", "late@x0.test"]])
    assert indexed(db) == expected(db, whole=True)


def test_bulk_indexing_in_small_steps_and_again_gives_the_same_index(db, tmp_path, monkeypatch):
    path = tmp_path / "mail.mbox"
    gen.write_mbox(path, gen.generate_messages(150, seed=12))
    monkeypatch.setattr(recipients, "_STEP", 7)  # many transactions: each boundary must be exact
    import_paths(db, [path], me=[ME])
    assert len(expected(db)) > 30 and indexed(db) == expected(db, whole=True)
    recipients.set_indexed_upto(db, 3)  # a mark set lower by another connection: messages looked at again
    db.conn.commit()
    assert index_recipients_pending(db) == 0 and indexed(db) == expected(db, whole=True)


# `mailvoice` killed (SIGKILL, as from outside: no cleanup) as the first statement filling the recipients
# index starts, i.e. after every batch of mail was stored and before any of it was indexed.
KILLED_BEFORE_INDEXING = """
import os, signal, sqlite3, sys
connect = sqlite3.connect

def kill_before(sql):
    if sql.lstrip().startswith("INSERT OR IGNORE INTO sent_recipients"):
        os.kill(os.getpid(), signal.SIGKILL)

def armed(*args, **kwargs):
    conn = connect(*args, **kwargs)
    conn.set_trace_callback(kill_before)
    return conn

sqlite3.connect = armed
from assistant.cli import main
sys.argv = ["mailvoice", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("then", ["draft", "import"])
def test_mail_of_an_import_killed_before_indexing_it_is_found_by_the_next_draft_or_import(db, data_home, tmp_path,
                                                                                          then):  # fmt: skip
    path = tmp_path / "mail.mbox"
    gen.write_mbox(path, gen.generate_messages(150, seed=11))
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_INDEXING, "--json", "import", str(path), "--me", ME],
        env=dict(os.environ, MAILVOICE_HOME=str(data_home)), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, f"the import was not killed there: {killed.stderr[-1000:]}"
    assert len(expected(db)) > 30 and indexed(db) == set()  # all stored, none indexed
    if then == "draft":
        address = max(expected(db))[0]
        chosen = examples.select_examples(db, "a note about the lease", to=address, k=2, budget=10_000)
        assert chosen and chosen[0].why == "recipient"
    else:
        report = import_paths(db, [path], me=[ME])
        assert report.imported == 0  # nothing new: the index is caught up all the same
    assert indexed(db) == expected(db, whole=True)


def vm_steps(db, fn) -> int:
    """SQLite virtual-machine instructions (in hundreds) that ``fn`` makes the database run."""
    examples._recipients_cache.clear()  # the first draft to them
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    db.conn.set_progress_handler(count, 100)
    try:
        fn()
    finally:
        db.conn.set_progress_handler(None, 100)
    return steps[0]


def test_the_first_draft_to_someone_does_not_read_every_message(db):
    for i in range(3):
        add(db, date=f"2024-01-0{i + 1}T10:00:00+00:00")
    add(db, to=[["Mike", "mike@properties.example.net"]])
    small = vm_steps(db, lambda: recipient_mail(db, ROSA[1]))
    others = [["Someone", f"p{i}@org{i % 7}.example"] for i in range(3000)]
    with db.conn:  # mail to other people and organisations, sent and received
        db.conn.executemany(
            "INSERT INTO messages (from_key, to_json, cc_json, date, body, sent_by_me, automated, is_forward) "
            "VALUES (?, ?, '[]', '2023-05-01', 'x', ?, 0, 0)",
            [(ME, json.dumps([p]), i % 2) for i, p in enumerate(others)],
        )
    mail = recipient_mail(db, ROSA[1])  # new mail: not from the cache
    assert len(mail.person) == 3 and len(mail.domain) == 1
    large = vm_steps(db, lambda: recipient_mail(db, "ROSA@properties.example.net "))
    assert large <= small + 5, f"{small} -> {large} (hundreds of VM steps): the lookup grew with unrelated mail"


@pytest.mark.parametrize("address", ["jo@gmail.com", "nobody@nowhere.test", "no-at-sign"])
def test_webmail_and_unknown_addresses_have_no_organisation(db, address):
    add(db, to=[["Jo", "jo@gmail.com"]])
    add(db, to=[["Kim", "kim@gmail.com"]])
    mail = recipient_mail(db, address)
    assert mail.domain == [] and len(mail.person) == (1 if address == "jo@gmail.com" else 0)


def test_a_persons_mail_is_ranked_in_one_pass_not_one_full_text_lookup_per_email(db):
    for i in range(30):
        add(db, body=f"Week {i}: the faucet repair is booked, the plumber comes next week on Monday.")
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        chosen = examples.select_examples(db, "faucet repair next week", to=ROSA[1], k=3, budget=10_000)
    finally:
        db.conn.set_trace_callback(None)
    assert [e.why for e in chosen] == ["recipient"] * 3
    ranked = [s for s in statements if "messages_fts MATCH" in s and "json_each" in s]
    assert ranked
    for statement in ranked:  # FTS5 re-reads every word's matches for each look-up by rowid ("=" in its plan)
        plan = " ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + statement))
        assert "VIRTUAL TABLE INDEX 0:M" in plan and "INDEX 0:=" not in plan, plan
