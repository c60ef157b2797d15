"""Browsing stored mail without Qt: pages newest first by class and words, and one message whole, with whether it
teaches the user's style by the pair builder's own rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mailgen as gen
import pytest

from assistant.importer import import_paths
from assistant.mail.browse import KINDS, PAGE, cursor_of, list_messages, message_detail
from assistant.mail.identity import CLASSES
from assistant.paths import DB_NAME
from assistant.store import fts, open_store
from assistant.store.fts import _fold, search_messages
from trainer.pairs.candidates import find_candidates


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated mailbox imported once; each test gets its own copy of the database."""
    folder = tmp_path_factory.mktemp("archive")
    gen.write_mbox(folder / "All mail.mbox", gen.generate_messages(400, seed=4))
    db = open_store(folder / "home")
    import_paths(db, [folder / "All mail.mbox"])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return folder / "home" / DB_NAME


@pytest.fixture
def mail(archive: Path, data_home: Path):
    data_home.mkdir(mode=0o700)
    shutil.copy(archive, data_home / DB_NAME)
    return open_store(data_home)


def every_page(db, kind: str = "all", query: str = "", limit: int = 7) -> list[dict]:
    rows, after = [], None
    while True:
        page = list_messages(db, kind, query, after, limit)
        assert len(page) <= limit
        rows += page
        if len(page) < limit:
            return rows
        after = cursor_of(page[-1])


def newest_first(db, where: str = "1", args: tuple = ()) -> list[int]:
    """The order the Mail page promises, worked out in Python: newest first, undated last, ties by newest stored."""
    rows = db.execute(f"SELECT id, date FROM messages WHERE {where}", args).fetchall()
    return [i for i, _d in sorted(rows, key=lambda r: (r[1] is not None, r[1] or "", r[0]), reverse=True)]


def test_pages_walk_every_message_once_newest_first_undated_last(mail):
    # Undated mail and mail sharing one date: the cursor must cross both without losing or repeating a row.
    ids = [i for (i,) in mail.execute("SELECT id FROM messages ORDER BY id LIMIT 12")]
    with mail.conn:
        mail.execute(f"UPDATE messages SET date = NULL WHERE id IN ({','.join(map(str, ids[:5]))})")
        mail.execute(
            f"UPDATE messages SET date = '2022-06-01T12:00:00+00:00' WHERE id IN ({','.join(map(str, ids[5:]))})"
        )
    walked = every_page(mail)
    assert [r["id"] for r in walked] == newest_first(mail)
    assert [r["id"] for r in walked[-5:]] == sorted(ids[:5], reverse=True)
    assert set(walked[0]) == {"id", "date", "from_name", "from_addr", "subject", "mail_class", "sent_by_me"}


def test_each_kind_lists_exactly_its_class(mail):
    assert set(KINDS) == {"all", *CLASSES}
    for kind in CLASSES:
        rows = every_page(mail, kind, limit=50)
        assert rows, kind  # the generated mailbox has mail of every class
        assert {r["mail_class"] for r in rows} == {kind}
        assert [r["id"] for r in rows] == newest_first(mail, "mail_class = ?", (kind,))
    assert len(every_page(mail, limit=PAGE)) == mail.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


def test_words_find_what_compose_search_finds(mail):
    for query in ("budget", "lease renewal", "alvarez", "Rosa", "zzzunheardof"):
        expected = [r["id"] for r in search_messages(mail, query, limit=10_000)]
        assert [r["id"] for r in every_page(mail, query=query, limit=9)] == expected, query
        mine = [r["id"] for r in every_page(mail, "yours", query)]
        assert mine == [i for i in expected if i in set(newest_first(mail, "mail_class = 'yours'"))]
    assert every_page(mail, query="budget"), "a word of the generated mailbox is found"


def test_sender_words_match_regardless_of_case_and_accents(mail):
    """The sender's name or address holds the word, folded as the full-text index folds words."""
    for query in ("ines", "INÊS duarte", "chloe", "ольга", "Example.ORG budget", "morgan", "kenji"):
        words = query.split()
        fts = [{i for (i,) in mail.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?", [f'"{w}"*'])}
               for w in words]  # fmt: skip
        expected = [
            i for i in newest_first(mail)
            if all(i in fts[n] or _fold(w) in _fold(_sender(mail, i)) for n, w in enumerate(words))
        ]  # fmt: skip
        assert [r["id"] for r in every_page(mail, query=query, limit=50)] == expected, query
        assert expected, f"the generated mailbox has mail from {query!r}"


def test_only_senders_beyond_ascii_are_folded_in_python(mail, monkeypatch):
    """A call into Python per message made a search of 100,000 messages for a word found nowhere take seconds."""
    calls = []
    monkeypatch.setattr(fts, "_fold", lambda text: calls.append(text) or _fold(text))
    assert every_page(mail, query="zzzqqq", limit=50) == []
    beyond = [v for (n, a) in mail.execute("SELECT from_name, from_addr FROM messages") for v in (n, a)
              if v and not v.isascii()]  # fmt: skip
    total = mail.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert beyond and len(calls) <= len(beyond) + 2 < total


def test_a_page_is_read_from_an_index_not_by_sorting_every_message(mail):
    """At 100,000 messages a sort of them all takes a quarter of a second a page; the index reads only the page."""
    for kind, after in (("all", None), ("yours", None), ("automated", ("2023-01-01T00:00:00+00:00", 10**9))):
        sql = []
        mail.conn.set_trace_callback(sql.append)
        list_messages(mail, kind, after=after)
        mail.conn.set_trace_callback(None)
        for statement in (s for s in sql if s.startswith("SELECT")):
            plan = " ".join(row[-1] for row in mail.execute(f"EXPLAIN QUERY PLAN {statement}"))
            assert "TEMP B-TREE" not in plan and "USING INDEX" in plan, (kind, plan)


def test_an_unknown_kind_is_refused(mail):
    with pytest.raises(ValueError, match="unknown kind"):
        list_messages(mail, "spam")


def test_detail_keeps_the_authors_words_apart_from_what_was_taken_out(mail):
    got = message_detail(mail, _first(mail, "sent_by_me = 1 AND quoted != '' AND signature != ''"))
    stored = mail.execute("SELECT body, quoted, signature, to_json, labels, attachments FROM messages WHERE id = ?",
                          [got["id"]]).fetchone()  # fmt: skip
    assert (got["body"], got["quoted"], got["signature"]) == stored[:3]
    assert got["quoted"] not in got["body"] and got["signature"] not in got["body"]
    assert got["to"] == json.loads(stored[3]) and got["labels"] == json.loads(stored[4])
    assert got["attachments"] == json.loads(stored[5])
    with_files = message_detail(mail, _first(mail, "attachments != '[]'"))
    assert with_files["attachments"] and all(isinstance(name, str) for name in with_files["attachments"])


def test_detail_says_why_mail_is_automated_and_received_mail_teaches_nothing(mail):
    auto = message_detail(mail, _first(mail, "mail_class = 'automated' AND sent_by_me = 0"))
    assert auto["auto_reason"] and auto["mail_class"] == "automated" and auto["teaches"] is None
    assert message_detail(mail, _first(mail, "mail_class = 'received'"))["teaches"] is None


def test_own_mail_teaches_exactly_when_the_pair_builder_would_use_it(mail):
    # A copy, older, of a usable email: the pair builder keeps the newer one only.
    used, _ = find_candidates(mail)
    original = mail.execute("SELECT * FROM messages WHERE id = ?", [used[0].id]).fetchone()
    columns = [d[1] for d in mail.execute("PRAGMA table_info(messages)")]
    copy = dict(zip(columns, original, strict=True)) | {"message_id": "copy@test", "content_hash": "copy",
                                                          "date": "2001-01-01T00:00:00+00:00"}  # fmt: skip
    copy.pop("id")
    copy["body"] = "  " + copy["body"].upper() + "\n"  # case and spacing aside, the same text
    mail["messages"].insert(copy)
    with mail.conn:  # and an auto-reply of the user's
        mail.execute("UPDATE messages SET automated = 1, mail_class = 'automated', auto_reason = "
                     "'Auto-Submitted: auto-replied' WHERE id = ?", [used[-1].id])  # fmt: skip
    usable = {c.id for c in find_candidates(mail)[0]}
    verdicts = {}
    for (message,) in mail.execute("SELECT id FROM messages WHERE sent_by_me = 1").fetchall():
        teaches = message_detail(mail, message)["teaches"]
        assert teaches["used"] == (message in usable), (message, teaches)
        verdicts[teaches["reason"]] = teaches["why"]
    assert {"", "duplicate", "automated"} <= set(verdicts), verdicts  # the mailbox has each case
    assert verdicts["duplicate"].startswith("Not used to learn your style: a newer email of yours has the same")
    assert verdicts["automated"] == "Not used to learn your style: it is automated mail (Auto-Submitted: auto-replied)."


def test_a_built_pair_and_an_excluded_one_are_named(mail):
    used, _ = find_candidates(mail)
    assert "no training pair built" in message_detail(mail, used[0].id)["teaches"]["why"]
    mail["pairs"].insert_all([{"message_id": used[0].message_id, "status": "ok"},
                              {"message_id": used[1].message_id, "status": "excluded"}])  # fmt: skip
    assert message_detail(mail, used[0].id)["teaches"]["why"].startswith("Teaches your style: a training pair")
    assert "you excluded its training pair" in message_detail(mail, used[1].id)["teaches"]["why"]


def test_a_gone_message_and_unreadable_lists_are_not_errors(mail):
    assert message_detail(mail, 10**9) is None
    message = _first(mail, "1")
    with mail.conn:
        mail.execute("UPDATE messages SET labels = 'not json', to_json = '{', attachments = NULL WHERE id = ?",
                     [message])  # fmt: skip
    got = message_detail(mail, message)
    assert (got["labels"], got["to"], got["attachments"]) == (["not json"], [], [])


def _first(db, where: str) -> int:
    found = db.execute(f"SELECT id FROM messages WHERE {where} ORDER BY id LIMIT 1").fetchone()
    assert found, f"the generated mailbox has a message where {where}"
    return found[0]


def _sender(db, message: int) -> str:
    return " ".join(
        v or "" for v in db.execute("SELECT from_name, from_addr FROM messages WHERE id = ?", [message]).fetchone()
    )
