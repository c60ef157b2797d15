"""The core behind Compose: finding the email to answer in stored mail, and keeping the user's edit of a draft."""

from __future__ import annotations

import json

import pytest
from fakes import FakeBackend

from assistant.drafting import draft
from assistant.drafting.drafts import DraftGone, list_drafts, update_draft
from assistant.store.fts import index_pending, search_messages

MAIL = [
    # (message_id, date, from_name, from_addr, subject, body)
    ("p1@x", "2024-03-01T09:00:00+00:00", "Rosa Álvarez", "rosa@properties.example.net", "Plumber on Monday",
     "Hi Alex, the plumber can come on Monday morning. Does 9 work?"),
    ("p2@x", "2024-03-05T09:00:00+00:00", "Kenji Sato", "kenji@finance.example.com", "Budget numbers",
     "Attached are the Q2 budget numbers; the plumbing line went up."),
    ("p3@x", "2024-02-01T09:00:00+00:00", "Rosa Álvarez", "rosa@properties.example.net", "Rent receipt",
     "Here is the receipt for February's rent."),
    ("p4@x", None, "No Date", "nodate@example.org", "Undated plumber note", "Plumber again."),
]  # fmt: skip


@pytest.fixture
def mail(db):
    for message_id, date, name, addr, subject, body in MAIL:
        db["messages"].insert({"message_id": message_id, "date": date, "from_name": name, "from_addr": addr,
                               "subject": subject, "body": body, "sent_by_me": 0})  # fmt: skip
    index_pending(db)
    return db


def ids(rows):
    return [r["message_id"] for r in rows]


def test_search_matches_word_starts_in_subject_and_text_newest_first(mail):
    assert ids(search_messages(mail, "plumb")) == ["p2@x", "p1@x", "p4@x"]  # undated last
    assert ids(search_messages(mail, "receipt")) == ["p3@x"]
    assert ids(search_messages(mail, "lumber")) == []  # words are matched from their start


def test_search_matches_the_sender_and_needs_every_word(mail):
    assert ids(search_messages(mail, "rosa")) == ["p1@x", "p3@x"]
    assert ids(search_messages(mail, "properties.example")) == ["p1@x", "p3@x"]
    assert ids(search_messages(mail, "alvarez monday")) == ["p1@x"]  # sender without accent + subject
    assert ids(search_messages(mail, "ÁLVAREZ rent")) == ["p3@x"]
    assert ids(search_messages(mail, "kenji monday")) == []


def test_search_rows_carry_what_a_picker_shows(mail):
    (row,) = search_messages(mail, "receipt")
    assert row["subject"] == "Rent receipt" and row["from_name"] == "Rosa Álvarez"
    assert row["date"].startswith("2024-02-01") and row["snippet"] == "Here is the receipt for February's rent."
    assert row["sent_by_me"] is False and isinstance(row["id"], int)


@pytest.mark.parametrize("query", ['"', "AND", "NEAR(", "plumb*", "-", "(x OR", "100%", "_", "a'b"])
def test_search_reads_any_typed_text_as_words_never_as_syntax(mail, query):
    expected = {
        '"': ["p2@x", "p1@x", "p3@x", "p4@x"],  # nothing left to search for: the newest messages
        "plumb*": ["p2@x", "p1@x", "p4@x"],
    }
    assert ids(search_messages(mail, query)) == expected.get(query, [])


def test_empty_search_lists_the_newest_up_to_the_limit(mail):
    assert ids(search_messages(mail, "  ", limit=2)) == ["p2@x", "p1@x"]


def test_update_draft_keeps_what_the_model_wrote(db):
    fake = FakeBackend()
    fake.enqueue("Hi Rosa,\n\nCan the plumber come Monday?\n\nBest,\nAlex")
    (saved,) = draft(db, "ask Rosa about the plumber", backend=fake).drafts
    update_draft(db, saved.id, "Hi Rosa,\n\nCould the plumber come on Monday at 9?\n\nBest,\nAlex")
    update_draft(db, saved.id, "Hi Rosa,\n\nCould the plumber come on Monday at 10?\n\nBest,\nAlex")
    (row,) = list_drafts(db)
    params = json.loads(row["params"])
    assert row["text"].endswith("Monday at 10?\n\nBest,\nAlex")
    assert params["generated_text"] == saved.text and params["edited_at"]
    assert params["seed"] is not None  # what made the draft is still there


def test_updating_a_deleted_draft_says_what_to_do(db):
    with pytest.raises(DraftGone, match="no longer saved.*copy the text"):
        update_draft(db, 42, "text")
