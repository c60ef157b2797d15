"""What each message is (yours, received, list, automated): discussion-list mail is conversation, bulk is not."""

from __future__ import annotations

import itertools
import json
import mailbox
from email.message import EmailMessage

import pytest
import sqlite_utils
from click.testing import CliRunner

from assistant.cli import cli
from assistant.identities import relabel
from assistant.importer import import_paths
from assistant.mail.identity import automated_reason, mail_class
from assistant.store import migrations

LIST = {"list-id": "Dev <dev.lists.example.org>", "list-post": "<mailto:dev@lists.example.org>", "precedence": "list"}


def mail(mid: str, sender: str, body: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, headers.pop("to", "dev@lists.example.org"), f"About {mid}"
    msg["Message-ID"], msg["Date"] = f"<{mid}@example.org>", "Tue, 02 Jan 2024 10:00:00 +0000"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def write(path, messages) -> None:
    box = mailbox.mbox(str(path))
    for m in messages:
        box.add(m)
    box.close()


LIST_HEADERS = {"List_Id": "Dev <dev.lists.example.org>", "List_Post": "<mailto:dev@lists.example.org>"}
NEWSLETTER = {"List_Id": "Deals <deals.shop.example.com>", "List_Unsubscribe": "<https://shop.example.com/u/1>",
              "Precedence": "bulk", "to": "ann@example.org"}  # fmt: skip

Q, A = "<question@example.org>", "<answer@example.org>"
ARCHIVE = {  # Message-ID: (message, class expected without an owner chosen)
    "question": (mail("question", "Bob Ray <bob@example.net>", "How do I rotate the keys?", **LIST_HEADERS), "list"),
    # Precedence: bulk, as some discussion lists set it, on a reply: conversation all the same
    "answer": (mail("answer", "Ann <ann@example.org>", "Run it.", In_Reply_To=Q, Precedence="bulk", **LIST_HEADERS),
               "list"),
    "munged": (mail("munged", "Cy via Dev <dev@lists.example.org>", "Thanks!", Reply_To="cy@example.com",
                    In_Reply_To=A, **LIST_HEADERS), "list"),
    "newsletter": (mail("newsletter", "Deals <deals@shop.example.com>", "50% off.", **NEWSLETTER), "automated"),
    "digest": (mail("digest", "dev-request@lists.example.org", "Topics: keys", **LIST_HEADERS), "automated"),
    "ci": (mail("ci", "CI <notifications@ci.example.org>", "Failed.", In_Reply_To=Q, **LIST_HEADERS), "automated"),
    "direct": (mail("direct", "Bob Ray <bob@example.net>", "Lunch?", to="ann@example.org"), "received"),
    "vacation": (mail("vacation", "Ann <ann@example.org>", "Away.", Auto_Submitted="auto-replied", to="b@x.org"),
                 "automated"),
}  # fmt: skip


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "dev.mbox"
    write(path, [m for m, _ in ARCHIVE.values()])
    return path


def classes(db) -> dict[str, tuple[str, int]]:
    rows = db.execute("SELECT message_id, mail_class, automated FROM messages").fetchall()
    return {mid.split("@")[0]: (kind, automated) for mid, kind, automated in rows}


def test_discussion_list_mail_is_conversation_and_bulk_stays_automated(db, archive):
    import_paths(db, [archive])
    found = classes(db)
    assert {mid: kind for mid, (kind, _) in found.items()} == {mid: want for mid, (_, want) in ARCHIVE.items()}
    assert all(automated == (kind == "automated") for kind, automated in found.values())


def test_the_users_own_list_posts_are_theirs_and_their_auto_replies_stay_automated(db, archive):
    import_paths(db, [archive], me=["ann@example.org"])
    found = classes(db)
    assert found["answer"] == ("yours", 0)  # Precedence: bulk from the list does not hide the user's voice
    assert found["vacation"] == ("automated", 1)
    assert found["question"] == ("list", 0)
    relabel(db, ["bob@example.net"])  # choosing again re-classes stored mail
    found = classes(db)
    assert found["answer"] == ("list", 0) and found["question"] == ("yours", 0) and found["direct"] == ("yours", 0)


def test_reasons_say_why():
    reply = {**LIST, "in-reply-to": "<x@y>"}
    assert automated_reason(reply, "bob@example.net", replying=True) == "mailing list dev.lists.example.org"
    assert automated_reason({**LIST, "precedence": "bulk"}, "bob@example.net") == "mailing list dev.lists.example.org"
    no_post = {"list-id": "<deals.shop.example.com>", "precedence": "bulk"}
    assert automated_reason(no_post, "deals@shop.example.com") == (
        "bulk list mail deals.shop.example.com: no replies and no List-Post, Precedence: bulk"
    )
    assert automated_reason(LIST, "dev-owner@lists.example.org").endswith(": sent by the list software")
    assert automated_reason({"precedence": "bulk"}, "bob@example.net", replying=True) == "Precedence: bulk"
    assert automated_reason({"list-unsubscribe": "<mailto:u@x>"}, "a@b.c") == "bulk mail (List-Unsubscribe)"
    assert automated_reason(reply, "noreply@example.net", replying=True) == "no-reply sender"
    assert automated_reason({}, "bob@example.net") == ""


REASONS = ("", "mailing list dev.x", "bulk list mail dev.x: no replies", "Precedence: bulk", "no-reply sender")


def test_relabelling_classes_stored_mail_as_the_importer_does(db):
    """The SQL of re-labelling and the importer's mail_class agree on every combination of stored columns."""
    combos = list(itertools.product(REASONS, ("", "dev.x"), (0, 1)))
    db["messages"].insert_all(
        {"message_id": f"m{i}", "from_key": "ann@example.org" if mine else "bob@example.net",
         "from_addr": "ann@example.org" if mine else "bob@example.net", "auto_reason": reason, "list_id": lid,
         "sent_by_me": 0, "automated": 0, "mail_class": "", "in_sent": 0}
        for i, (reason, lid, mine) in enumerate(combos)
    )  # fmt: skip
    relabel(db, ["ann@example.org"])
    got = dict(db.execute("SELECT message_id, mail_class || automated FROM messages").fetchall())
    for i, (reason, lid, mine) in enumerate(combos):
        kind = mail_class(reason, lid, bool(mine))
        assert got[f"m{i}"] == kind + str(int(kind == "automated")), (reason, lid, mine)


OLD_ROWS = [  # stored by an importer that flagged every list message as automated
    # message_id, from_addr, auto_reason, list_id, in_reply_to, sent_by_me, automated, expected class
    ("reply", "bob@example.net", "mailing list dev.x", "dev.x", "q", 0, 1, "list"),
    ("bulk-reply", "bob@example.net", "Precedence: bulk", "dev.x", "q", 0, 1, "list"),
    ("starter", "cy@example.com", "mailing list dev.x", "dev.x", "", 0, 1, "list"),  # dev.x has replies
    ("own-post", "ann@example.org", "Precedence: bulk", "dev.x", "q", 1, 1, "yours"),
    ("newsletter", "deals@shop.example.com", "Precedence: bulk", "deals.shop", "", 0, 1, "automated"),
    ("announce", "news-team@shop.example.com", "mailing list deals.shop", "deals.shop", "", 0, 1, "automated"),
    ("digest", "dev-request@lists.example.org", "mailing list dev.x", "dev.x", "", 0, 1, "automated"),
    ("bot", "noreply@ci.example.org", "no-reply sender", "dev.x", "q", 0, 1, "automated"),
    ("direct", "bob@example.net", "", "", "", 0, 0, "received"),
    ("mine", "ann@example.org", "", "", "q", 1, 0, "yours"),
    ("own-vacation", "ann@example.org", "Auto-Submitted: auto-replied", "", "q", 1, 1, "automated"),
]


def test_migration_classes_stored_mail_from_stored_columns():
    db = sqlite_utils.Database(memory=True)
    before = migrations.MIGRATIONS[: [fn.__name__ for fn in migrations.MIGRATIONS].index("m007_mail_class")]
    for fn in before:
        fn(db)
    db["messages"].insert_all(
        {"message_id": mid, "from_addr": sender, "from_key": sender, "auto_reason": reason, "list_id": lid,
         "in_reply_to": parent or None, "refs": "", "sent_by_me": mine, "automated": auto, "in_sent": 0}
        for mid, sender, reason, lid, parent, mine, auto, _ in OLD_ROWS
    )  # fmt: skip
    migrations.m007_mail_class(db)
    got = dict(db.execute("SELECT message_id, mail_class || automated FROM messages").fetchall())
    assert got == {row[0]: row[-1] + str(int(row[-1] == "automated")) for row in OLD_ROWS}
    changed = db.conn.total_changes
    relabel(db, ["ann@example.org"])  # what re-labelling computes agrees with the backfill
    assert dict(db.execute("SELECT message_id, mail_class || automated FROM messages").fetchall()) == got
    assert db.conn.total_changes == changed + 1  # only the stored choice of addresses is written


def test_stats_count_each_class(archive):
    runner = CliRunner()
    assert runner.invoke(cli, ["import", str(archive), "--me", "ann@example.org", "--json"]).exit_code == 0
    stats = json.loads(runner.invoke(cli, ["stats", "--json"]).stdout)
    assert stats["classes"] == {"yours": 1, "received": 1, "list": 2, "automated": 4}
    assert stats["automated"] == 4 and stats["messages"] == len(ARCHIVE)
    human = runner.invoke(cli, ["stats"]).stdout
    assert "By kind    1 yours, 1 received from people, 2 from discussion lists, 4 automated" in human


KERNEL = {"List_Id": "<netdev.vger.kernel.org>", "Precedence": "bulk", "to": "netdev@vger.kernel.org"}  # no List-Post


def test_a_thread_started_on_a_list_where_people_reply_is_discussion(db, tmp_path):
    patch = mail("patch", "Ida Oh <ida@example.net>", "[PATCH] fix the race", **KERNEL)
    write(tmp_path / "first.mbox", [patch, mail("news", "Deals <deals@shop.example.com>", "50% off.", **NEWSLETTER)])
    import_paths(db, [tmp_path / "first.mbox"])
    assert classes(db)["patch"] == ("automated", 1)  # one message alone shows no discussion
    later = mail("review", "Jo Li <jo@example.org>", "Looks good.", In_Reply_To="<patch@example.org>", **KERNEL)
    write(tmp_path / "later.mbox", [later])
    import_paths(db, [tmp_path / "later.mbox"])
    found = classes(db)
    assert found["patch"] == ("list", 0) and found["review"] == ("list", 0)
    assert found["news"] == ("automated", 1)  # nobody replies on a newsletter
