"""Which sent emails become pairs: the filters with their reasons, and --limit's pick of useful emails."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

from trainer.pairs.candidates import find_candidates, own_text, pick_useful

BODY = "Hi {name},\n\nCould we move the {topic} review to {day}? I have a clash with the offsite.\n\nBest,\nAlex"


def add(db, i: int, **over) -> None:
    """One stored message with sensible defaults (sent by the user, hand-written)."""
    name = over.pop("name", "Rosa")
    date = over.pop("date", dt.datetime(2023, 1, 1) + dt.timedelta(days=i))
    row = {
        "id": i, "message_id": f"m{i}@x", "thread_id": over.pop("thread", f"m{i}@x"), "in_reply_to": "",
        "date": date.isoformat(), "from_addr": "alex@example.org", "sent_by_me": 1, "automated": 0, "is_forward": 0,
        "to_json": json.dumps([[name, f"{name.lower()}@example.org"]]), "cc_json": "[]",
        "subject": over.pop("subject", f"Topic {i}"), "content_hash": f"h{i}",
        "body": BODY.format(name=name, topic=over.pop("topic", f"topic {i}"), day=f"day {i}"),
    }  # fmt: skip
    row.update(over)
    db["messages"].insert(row)


def test_filters_report_each_reason(db):
    add(db, 1)
    add(db, 2, automated=1)
    add(db, 3, is_forward=1)
    add(db, 4, body="")
    add(db, 5, body="Ok, thanks!")  # under 20 characters
    add(db, 6, body="Hi Rosa,\n\nSounds good!\n\nBest,\nAlex")  # 20+ characters, 2 own words
    add(db, 7, body="word " * 1000)  # 5,000 characters: a pasted document
    add(db, 0, body=BODY.format(name="Rosa", topic="topic 1", day="day 1"), date=dt.datetime(2020, 1, 1))  # as 1
    add(db, 9, sent_by_me=0)  # received: never a candidate, and not "filtered" either
    found, filtered = find_candidates(db)
    assert [c.id for c in found] == [1]
    assert filtered == {"automated": 1, "forward": 1, "empty": 1, "too_short": 1, "too_few_words": 1,
                        "too_long": 1, "duplicate": 1}  # fmt: skip


def test_own_text_drops_greeting_and_sign_off():
    assert own_text("Hi Rosa,\n\nMonday works.\nSee you then.\n\nBest,\nAlex") == "Monday works.\nSee you then."
    assert own_text("Thanks, I'll chase it.\n\nCheers,\nAlex") == "Thanks, I'll chase it."


def test_limit_picks_varied_recent_emails_not_the_first_ones(db):
    # 60 recent emails to Rosa about one topic, and 20 older ones to 10 other people on 10 topics.
    for i in range(60):
        add(
            db, i + 1, name="Rosa", subject="Lease", topic="lease", date=dt.datetime(2023, 6, 1) + dt.timedelta(hours=i)
        )
    people = ["Kenji", "Priya", "Marcus", "Grace", "Wei", "Sofia", "Daniel", "Leila", "Tomas", "Chloe"]
    for j in range(20):
        add(db, 100 + j, name=people[j % 10], subject=f"Plan {j % 10}", topic=f"plan {j % 10}",
            date=dt.datetime(2022, 1, 1) + dt.timedelta(days=j))  # fmt: skip
    candidates, _ = find_candidates(db)
    picked = pick_useful(candidates, 10)
    recipients = Counter(c.recipient for c in picked)
    assert len(recipients) >= 6  # varied: not ten emails to Rosa
    assert recipients["rosa@example.org"] <= 3
    # Recent wins among equals: the most recent Rosa email is the first pick, and the older people's
    # emails picked are their latest ones.
    assert picked[0].id == 60
    others = [c for c in picked if c.recipient != "rosa@example.org"]
    assert all(c.id >= 110 for c in others)


def test_limit_prefers_substantial_emails_and_is_stable(db):
    for i in range(1, 31):
        body = BODY if i % 2 else "Hi {name},\n\nYes, {topic} on {day} works.\n\nBest,\nAlex"
        add(db, i, name=f"P{i}", body=body.format(name=f"P{i}", topic=f"t{i}", day=f"d{i}"))
    candidates, _ = find_candidates(db)
    picked = pick_useful(candidates, 10)
    assert sum(c.id % 2 for c in picked) >= 7  # the longer emails, although the short ones are as recent
    # The pick for 10 is the start of the pick for 20: raising --limit reuses what was built.
    assert [c.id for c in pick_useful(candidates, 20)][:10] == [c.id for c in picked]
    assert len(pick_useful(candidates, None)) == len(candidates) == 30


def test_pick_scales_to_many_candidates(db):
    import time

    db["messages"].insert_all(
        {"id": i, "message_id": f"m{i}", "thread_id": f"t{i % 900}", "date": f"2023-01-01T00:{i % 60:02d}:00",
         "sent_by_me": 1, "automated": 0, "is_forward": 0, "subject": f"s{i % 300}", "content_hash": str(i),
         "to_json": json.dumps([["P", f"p{i % 200}@x.org"]]), "cc_json": "[]",
         "body": f"Hi P,\n\nThis is email number {i} about subject {i % 300}.\n\nAlex"}
        for i in range(20_000)
    )  # fmt: skip
    candidates, _ = find_candidates(db)
    started = time.perf_counter()
    picked = pick_useful(candidates, 1000)
    assert len(picked) == 1000 and time.perf_counter() - started < 10
    assert len({c.recipient for c in picked}) == 200
