"""Draft length: the user's own, learned per recipient and kind of email, said in the prompt and budgeted."""

from __future__ import annotations

import itertools
import json

from test_drafting_prompting import dated  # a minute apart in the order stored

from assistant.drafting.backend import FLOOR
from assistant.drafting.length import (
    CHOICES,
    CLOSE_TOKENS,
    MIN_AIM_SHARE,
    SENTENCE_END_TOKENS,
    TOKENS_PER_WORD,
    Length,
    of_email,
    rounded,
    to_addresses,
    usual_length,
)
from assistant.drafting.prompting import build_prompt
from assistant.drafting.voice import Voice
from trainer.prompts import request_for

ROSA = ("Rosa Alvarez", "rosa@properties.example.net")
MARCUS = ("Marcus Webb", "marcus@properties.example.net")
_ids = itertools.count(1)


def add(db, words: int, *, to=ROSA, reply=False, sent=1, cc=()) -> int:
    n = next(_ids)
    row = {
        "message_id": f"len{n}@test", "thread_id": f"t{n}", "in_reply_to": f"p{n}@test" if reply else None,
        "date": dated(n), "from_name": "Alex Morgan",
        "from_addr": "alex.morgan@example.org", "from_key": "alex.morgan@example.org",
        "to_json": json.dumps([list(to)]), "cc_json": json.dumps([list(c) for c in cc]),
        "subject": "s", "body": " ".join(["word"] * words),
        "quoted": "", "signature": "", "is_forward": 0, "sent_by_me": sent, "automated": 0, "auto_reason": "",
        "labels": "[]",
    }  # fmt: skip
    return db["messages"].insert(row).last_pk


def test_a_draft_is_brought_to_a_close_before_its_words_run_out_leaving_room_to_sign_off():
    for words in (20, 60, 250):
        aim = Length(words, "chosen").aim_tokens
        assert aim < words * TOKENS_PER_WORD < Length(words, "chosen").max_tokens(4096)
    # the room is what ending a sentence and signing off take, the same for a long draft as for a short one
    assert [words * TOKENS_PER_WORD - Length(words, "chosen").aim_tokens for words in (60, 250)] == [CLOSE_TOKENS] * 2
    assert Length(20, "chosen").aim_tokens == int(20 * TOKENS_PER_WORD * MIN_AIM_SHARE)  # a short one keeps half


def test_the_room_to_close_is_the_end_of_a_sentence_and_the_users_own_sign_off():
    kay, ana = Length(60, "usual").closing_with(2), Length(60, "usual").closing_with(20)
    assert kay.words == ana.words == 60 and kay.basis == "usual"
    assert 60 * TOKENS_PER_WORD - kay.aim_tokens == SENTENCE_END_TOKENS + 2 < CLOSE_TOKENS  # "Kay" ends sooner
    assert 60 * TOKENS_PER_WORD - ana.aim_tokens == SENTENCE_END_TOKENS + 20 > CLOSE_TOKENS
    assert kay.floor_tokens == int(60 * TOKENS_PER_WORD * FLOOR) <= kay.aim_tokens  # the floor keeps to the words
    assert Length(20, "chosen").closing_with(40).aim_tokens == int(20 * TOKENS_PER_WORD * MIN_AIM_SHARE)
    assert Length(60, "usual").closing_with(-5).close == SENTENCE_END_TOKENS


def test_a_sign_off_is_held_back_until_the_same_share_of_the_words_whatever_the_length():
    for words in (20, 50, 120, 400):
        length = Length(words, "chosen")
        assert length.floor_tokens == min(int(words * TOKENS_PER_WORD * FLOOR), length.aim_tokens)
    # of the aim it would be far less for a short draft (its aim leaves the same room to close as a long one's):
    # a short one is held until its aim, a long one until FLOOR of its words
    short, long = Length(50, "chosen"), Length(120, "chosen")
    assert short.floor_tokens == short.aim_tokens < int(50 * TOKENS_PER_WORD * FLOOR)
    assert long.floor_tokens == int(120 * TOKENS_PER_WORD * FLOOR) < long.aim_tokens


def test_lengths_are_rounded_to_what_a_person_would_say():
    assert [rounded(n) for n in (3, 14, 16, 57, 74, 133, 4000)] == [10, 10, 20, 60, 80, 120, 800]
    assert of_email("one two three " * 9).words == 30


def test_the_usual_length_is_per_person_and_kind_then_organisation_then_everyone(db):
    replies = [add(db, w, reply=True) for w in (18, 22, 20)]
    for w in (140, 160, 150):
        add(db, w)
    assert usual_length(db, ROSA[1], reply=True) == Length(20, "to this person")
    assert usual_length(db, ROSA[1], reply=False) == Length(150, "to this person")
    # Nothing sent to Marcus yet: his organisation's mail (Rosa's) speaks for him.
    assert usual_length(db, MARCUS[1], reply=True) == Length(20, "to this organisation")
    # Someone at a public mail domain: no organisation, so everything the user sent of that kind.
    assert usual_length(db, "kim@gmail.com", reply=False) == Length(150, "usual")
    assert usual_length(db, None, reply=True) == Length(20, "usual")
    # Hiding the emails being scored leaves one reply, too few to learn from, here or anywhere: the default.
    assert usual_length(db, ROSA[1], reply=True, exclude=replies[:2]) == Length(120, "default")
    assert usual_length(db, ROSA[1], reply=True, choice="long") == Length(CHOICES["long"], "chosen")


def test_the_length_to_a_person_is_learned_from_mail_addressed_to_them_not_mail_they_were_copied_on(db):
    # Short replies to Rosa; long ones to a list that copy her, as in a long thread with many people.
    for w in (18, 22, 20):
        add(db, w, reply=True)
    lst = ("Dev list", "dev@lists.example.com")
    for w in (300, 280, 320, 310, 290):
        add(db, w, reply=True, to=lst, cc=[ROSA, MARCUS])
    assert usual_length(db, ROSA[1], reply=True) == Length(20, "to this person")
    # Copied on the long ones only, Marcus gets no length of his own: his organisation's mail addressed to it
    # (Rosa's) speaks for him.
    assert usual_length(db, MARCUS[1], reply=True) == Length(20, "to this organisation")
    # The rule before, for the benchmark that compares them: copies count, and the long thread wins.
    assert usual_length(db, ROSA[1], reply=True, copied=True) == Length(300, "to this person")
    assert usual_length(db, MARCUS[1], reply=True, copied=True) == Length(300, "to this person")


def test_mail_to_a_colleague_that_copies_someone_speaks_for_their_organisation(db):
    # Rosa was only copied on these: they are not hers, but they are her organisation's.
    for w in (18, 22, 20):
        add(db, w, reply=True, to=MARCUS, cc=[ROSA])
    assert usual_length(db, ROSA[1], reply=True) == Length(20, "to this organisation")
    assert usual_length(db, " Marcus@Properties.Example.NET ", reply=True) == Length(20, "to this person")
    # Mail addressed to a longer domain ending in the same name is another organisation's, even where it copies
    # someone at this one (so the organisation's index lists it).
    for _ in range(4):
        add(db, 400, reply=True, to=("Eve", "eve@otherproperties.example.net"), cc=[MARCUS])
    assert usual_length(db, ROSA[1], reply=True) == Length(20, "to this organisation")


def test_a_person_copied_on_much_recent_mail_keeps_the_length_of_the_mail_addressed_to_them(db):
    for w in (18, 22, 20):
        add(db, w, reply=True)  # older, to Rosa
    lst = ("Dev list", "dev@lists.example.com")
    for _ in range(220):
        add(db, 300, reply=True, to=lst, cc=[ROSA])  # newer, copying her
    assert usual_length(db, ROSA[1], reply=True) == Length(20, "to this person")


def test_a_to_header_the_store_could_not_read_is_addressed_to_no_one():
    assert to_addresses('[["Ann", " Ann@Example.org "], ["", "b@example.org"]]') == ["ann@example.org", "b@example.org"]
    assert to_addresses("not json") == to_addresses('{"a": 1}') == to_addresses('[["only a name"]]') == []
    assert to_addresses(None) == []


def test_evaluation_asks_a_reply_for_a_replys_length_when_the_email_answered_is_not_stored(db):
    for w in (18, 22, 20):
        add(db, w, reply=True)
    for w in (140, 160, 150):  # new emails to Rosa: far longer
        add(db, w)
    held = add(db, 25, reply=True)  # answers an email the archive does not hold: no reply block to show
    request = request_for(db, db["messages"].get(held)["message_id"], "")
    assert request.reply is None and request.to == ROSA[1] and request.answers
    assert request.length(db, (held,)) == Length(20, "to this person")
    new = add(db, 150)
    request = request_for(db, db["messages"].get(new)["message_id"], "")
    assert request.length(db, (new,)) == Length(150, "to this person")


def test_with_no_mail_of_the_users_the_default_is_used(db):
    add(db, 30, sent=0)
    assert usual_length(db, ROSA[1], reply=False) == Length(120, "default")


def test_a_draft_aims_at_the_users_own_length_unless_one_is_chosen(db):
    for w in (38, 42, 40):
        add(db, w)
    voice = Voice(name="Alex Morgan", first_name="Alex")

    def prompt(**kw):
        return build_prompt(db, "ask Rosa about Monday", voice, n_ctx=4096, count_tokens=len, to=ROSA[1], **kw)

    usual = prompt()
    assert "Length: about 40 words" in usual.messages[-1]["content"] and usual.length == Length(40, "to this person")
    assert usual.max_tokens == Length(40, "").max_tokens(4096) < Length(120, "").max_tokens(4096)
    chosen = prompt(length="long")
    assert "Length: about 250 words" in chosen.messages[-1]["content"]
    trained = prompt(length=of_email("word " * 75), answer_tokens=90)
    assert "Length: about 80 words" in trained.messages[-1]["content"] and trained.max_tokens == 90
