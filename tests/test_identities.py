"""Which addresses are the user's, from an archive without a Sent folder; choosing them with `mailvoice me`."""

from __future__ import annotations

import email.utils
import json
import mailbox
from email.message import EmailMessage

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.identities import adopt_if_obvious, load_me, propose, relabel
from assistant.importer import import_paths
from assistant.mail.identity import normalize_address

WORK, GMAIL = "dana@work.example", "dana.kim@gmail.com"
LIST = {"List-Id": "Dev <dev.lists.example.org>", "List-Post": "<mailto:dev@lists.example.org>"}


def mail(mid: str, sender: str, *, to: str = "dev@lists.example.org", parent: str = "", **headers: str):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, f"Topic {mid}"
    msg["Message-ID"], msg["Date"] = f"<{mid}@example.org>", f"Tue, 02 Jan 2024 10:{len(mid) % 60:02d}:00 +0000"
    if parent:
        msg["In-Reply-To"] = f"<{parent}@example.org>"
    for name, value in {**LIST, **headers}.items():
        msg[name] = value
    msg.set_content(f"Words of {mid}, written by a person.")
    return msg


def list_archive() -> list[EmailMessage]:
    """A list archive as one mbox: Dana writes from work and from Gmail, answering mail addressed to her."""
    msgs = []
    for i in range(7):
        asker = "Eli Fox <eli@fox.example>" if i % 2 else "Fay Ng <fay@ng.example>"
        msgs.append(mail(f"q{i}", asker, to=f"{WORK}, dev@lists.example.org"))
        msgs.append(mail(f"a{i}", f"Dana Kim <{WORK}>", parent=f"q{i}"))
    for i in range(5):
        msgs.append(mail(f"e{i}", "Eli Fox <eli@fox.example>", parent=f"a{i}"))
        msgs.append(mail(f"g{i}", f"Dana Kim <{GMAIL}>", parent=f"e{i}", **{"Reply-To": WORK}))
    for i in range(4):  # a list that rewrites From and gives no Reply-To: its own address, many names
        msgs.append(mail(f"m{i}", f"Guest {i} via Dev <dev@lists.example.org>", parent=f"q{i}"))
        msgs.append(mail(f"b{i}", "CI <builds@ci.example.org>", parent=f"q{i}", **{"Auto-Submitted": "auto-generated"}))
    return msgs


def write(path, messages) -> None:
    box = mailbox.mbox(str(path))
    for m in messages:
        box.add(m)
    box.close()


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "mail.mbox"
    write(path, list_archive())
    return path


def test_an_archive_without_a_sent_folder_proposes_its_writer(db, archive):
    report = import_paths(db, [archive])
    assert report.me == [] and not report.assumed_me  # no Sent folder: nothing is assumed
    found = propose(db)
    assert [c["address"] for c in found[:2]] == [WORK, GMAIL]
    work, gmail = found[0]["reasons"], found[1]["reasons"]
    assert work[0].startswith("sender of 7 messages (") and "answered 7 messages addressed to it" in work
    assert f"Reply-To of 5 messages from {GMAIL}" in work and work[-1] == f"same name as {GMAIL}: probably an alias"
    assert f"asks for replies at {WORK} in 5 messages" in gmail
    assert gmail[-1] == f"same name as {WORK}: probably an alias"
    proposed = {c["address"] for c in found}
    assert "dev@lists.example.org" not in proposed and "builds@ci.example.org" not in proposed
    assert proposed == {WORK, GMAIL, "eli@fox.example", "fay@ng.example"}
    assert relabel(db, [WORK, GMAIL]) == 12


def test_a_list_address_that_owns_the_sent_label_is_never_adopted(db, tmp_path):
    """A Sent label on list copies whose From the list rewrote ("Ann via Dev", no Reply-To) names the list."""
    msgs = list_archive()
    for m in msgs:
        if "via Dev" in m["From"]:
            m["X-Gmail-Labels"] = "Sent,Dev"
    write(tmp_path / "takeout.mbox", msgs)
    import_paths(db, [tmp_path / "takeout.mbox"])
    assert load_me(db) == []
    assert adopt_if_obvious(db) is False and load_me(db) == []


def test_the_owner_of_a_sent_folder_is_still_adopted(db, tmp_path):
    msgs = list_archive()
    for m in msgs:
        if WORK in m["From"]:
            m["X-Gmail-Labels"] = "Sent"
    write(tmp_path / "takeout.mbox", msgs)
    report = import_paths(db, [tmp_path / "takeout.mbox"])
    assert report.assumed_me and load_me(db) == [WORK]
    assert [c["address"] for c in propose(db)[:2]] == [WORK, GMAIL]


@pytest.mark.corpora
def test_a_list_archive_shows_both_addresses_of_its_author(db, corpora):
    path = corpora / "linaro-mm-sig" / "koenig-and-parents.mbox"
    import_paths(db, [path])
    found = propose(db)
    mine = ["christian.koenig@amd.com", "ckoenig.leichtzumerken@gmail.com"]
    assert [c["address"] for c in found[:2]] == mine
    assert all(c["name"] == "Christian König" for c in found[:2])
    # Every message he wrote from either address, counted from the mbox itself (one per Message-ID).
    box = mailbox.mbox(str(path), create=False)
    try:
        his = {m["Message-ID"] for m in box if email.utils.parseaddr(m["From"])[1].lower() in mine}
    finally:
        box.close()
    sent = relabel(db, mine)
    assert sent == len(his)
    keys = [normalize_address(a) for a in mine]
    assert db.execute("SELECT COUNT(*) FROM messages WHERE from_key IN (?, ?)", keys).fetchone()[0] == sent
    assert db.execute("SELECT COUNT(*) FROM messages WHERE sent_by_me = 1 AND automated = 1").fetchone()[0] == 0


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_me_takes_the_address_out_of_a_name_and_address(archive):
    run("import", str(archive), "--json")
    code, out, err = run("me", f"Dana Kim <{WORK}>", GMAIL, "--json")
    assert code == 0, err
    out = json.loads(out)
    assert out["me"] == sorted([WORK, GMAIL]) and out["sent_by_me"] == 12 and out["unmatched"] == []


@pytest.mark.parametrize("value", ["@", "not-an-address", "Dana Kim", "dana@", "@work.example", "a@b@c"])
def test_me_refuses_what_is_not_an_address_and_changes_nothing(archive, value):
    run("import", str(archive), "--json")
    run("me", WORK)
    code, _, err = run("me", value)
    assert code == 1
    assert err.startswith("Error: ") and err.count("\n") == 1 and "is not an email address" in err
    assert json.loads(run("stats", "--json")[1])["me"] == [WORK]


def test_me_warns_about_an_address_no_stored_message_is_from(archive):
    run("import", str(archive), "--json")
    code, out, err = run("me", WORK, "dana@wrok.example", "--json")
    assert code == 0
    assert json.loads(out)["unmatched"] == ["dana@wrok.example"]
    assert "Warning: no stored message is from dana@wrok.example" in err and WORK not in err


def test_choosing_addresses_after_an_import_stores_what_importing_with_them_stores(tmp_path, archive):
    """relabel sets the sent flag, the class and the automated flag in one statement: the rows, and the recipients
    index, come out as an import given the same addresses writes them; choosing none leaves no mail the user's."""
    import sqlite3

    import mailgen as gen

    from assistant.store import open_store

    generated = tmp_path / "generated.mbox"
    gen.write_mbox(generated, gen.iter_messages(150, seed=4))
    paths = [archive, generated]

    def rows(db) -> tuple[list, list]:
        conn = db.conn
        assert isinstance(conn, sqlite3.Connection)
        cols = [r[1] for r in conn.execute("PRAGMA table_info(messages)") if r[1] != "import_run"]
        messages = conn.execute(f"SELECT {', '.join(cols)} FROM messages ORDER BY id").fetchall()
        return messages, conn.execute("SELECT * FROM sent_recipients ORDER BY address, date, message").fetchall()

    given = open_store(tmp_path / "given")
    import_paths(given, paths, me=[WORK, GMAIL])
    chosen = open_store(tmp_path / "chosen")
    import_paths(chosen, paths)
    relabel(chosen, [GMAIL, WORK])
    assert rows(chosen) == rows(given) and rows(chosen)[1]
    relabel(chosen, [])
    classes = dict(chosen.execute("SELECT mail_class, count(*) FROM messages GROUP BY mail_class").fetchall())
    assert rows(chosen)[1] == [] and "yours" not in classes and classes["automated"] == chosen.execute(
        "SELECT count(*) FROM messages WHERE automated = 1").fetchone()[0]  # fmt: skip
