"""Corrections: what the user kept of a draft is recorded, told apart by how much changed, listed, excluded."""

from __future__ import annotations

import json

from click.testing import CliRunner

from assistant.cli import cli
from assistant.drafting.corrections import (
    capture,
    counts,
    edit_distance,
    held_out,
    kind_of,
    list_corrections,
    set_excluded,
)
from assistant.drafting.drafts import save_draft, save_partial, update_draft
from assistant.forget import forget
from assistant.paths import data_dir
from assistant.store import open_store

MODEL_TEXT = (
    "Hi Rosa,\n\nThanks for the budget draft. Could we move Friday's review to Monday at 10? I need the weekend "
    "to go through the numbers properly.\n\nBest,\nAlex"
)


def _draft(db, text: str = MODEL_TEXT, tokens: int = 40) -> int:
    return save_draft(
        db, instruction="ask Rosa to move Friday's review, mention the budget draft", reply=None,
        recipient="rosa@example.org", subject="Friday's review", text=text, model="model.gguf", adapter="style-a",
        params={"seed": 1, "prompts": {"system": "v3"}}, seconds=1.0, tokens=tokens,
    )  # fmt: skip


def test_small_edits_and_rewrites_are_told_apart():
    assert kind_of(MODEL_TEXT, MODEL_TEXT) == ("accepted", 0.0)
    assert kind_of(MODEL_TEXT, MODEL_TEXT.replace("\n\n", "\n\n\n"))[0] == "small"  # spacing only
    assert edit_distance(MODEL_TEXT, MODEL_TEXT.replace("\n\n", "  \n\n")) == 0.0
    assert kind_of(MODEL_TEXT, MODEL_TEXT.replace("Rosa", "Rosie"))[0] == "small"  # a name
    rewritten = "Rosa - can we do Monday 10 instead of Friday? Need the weekend for the budget numbers. A."
    kind, distance = kind_of(MODEL_TEXT, rewritten)
    assert kind == "rewrite" and distance > 0.5


def test_saving_an_edit_records_what_the_model_wrote_and_what_the_user_kept(db):
    draft_id = _draft(db)
    update_draft(db, draft_id, MODEL_TEXT.replace("Rosa", "Rosie"))
    (first,) = list_corrections(db)
    assert (first.draft_id, first.kind, first.how) == (draft_id, "small", "saved")
    assert first.model_text == MODEL_TEXT and "Rosie" in first.final_text
    assert first.instruction.startswith("ask Rosa") and first.adapter == "style-a"
    assert first.prompts == {"system": "v3"} and first.recipient == "rosa@example.org"

    final = "Rosa, Monday 10 instead of Friday? I want the weekend for the budget. Alex"
    update_draft(db, draft_id, final)  # a later save replaces what was kept; the model's text stays
    (again,) = list_corrections(db)
    assert again.id == first.id and again.kind == "rewrite" and again.final_text == final
    assert again.model_text == MODEL_TEXT and again.created_at == first.created_at and again.changed


def test_a_draft_used_as_written_is_accepted_and_makes_no_preference_pair(db):
    draft_id = _draft(db)
    found = capture(db, draft_id, MODEL_TEXT, "copied")
    assert found.kind == "accepted" and not found.changed and found.how == "copied"
    assert counts(db) == {"accepted": 1, "small": 0, "rewrite": 0, "excluded": 0, "preference": 0, "total": 1}


def test_text_the_model_did_not_write_is_not_a_correction(db):
    typed = save_partial(db, "a note", "Text the user typed into an empty page.", flag="")
    assert capture(db, typed, "Text the user typed, then changed.") is None
    assert capture(db, 9999, "no such draft") is None
    assert capture(db, _draft(db), "   ") is None
    assert list_corrections(db) == []


def test_excluded_corrections_are_counted_apart_and_can_come_back(db):
    ids = []
    for n in range(3):
        draft_id = _draft(db)
        ids.append(capture(db, draft_id, f"Rosa, Monday instead? ({n})").id)
    assert set_excluded(db, [ids[0], ids[0]], True) == 1
    c = counts(db)
    assert (c["total"], c["excluded"], c["rewrite"], c["preference"]) == (3, 1, 2, 2)
    assert [k.id for k in list_corrections(db, include_excluded=False)] == ids[1:]
    set_excluded(db, [ids[0]], False)
    assert counts(db)["excluded"] == 0


def test_the_newest_tenth_is_held_out_by_time(db):
    for n in range(25):
        capture(db, _draft(db), f"Rosa, version {n} of the answer, rewritten.")
    db.execute("UPDATE corrections SET updated_at = printf('2026-01-%02d', 26 - id)")  # the first is the newest
    db.conn.commit()
    learn, held = held_out(list_corrections(db))
    assert len(learn) == 23 and len(held) == 2
    assert sorted(k.id for k in held) == [1, 2]
    assert held_out(list_corrections(db)[:9]) == (sorted(list_corrections(db)[:9], key=lambda k: (k.updated_at, k.id)),
                                                  [])  # fmt: skip


def test_forget_deletes_the_corrections(db, data_home):
    capture(db, _draft(db), "Rosa, Monday instead?")
    forget(data_home)
    assert list_corrections(open_store(data_dir())) == []


def run(*args: str) -> tuple[int, dict | str]:
    result = CliRunner().invoke(cli, list(args))
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.exit_code, result.stdout + result.stderr


def test_the_command_line_adds_lists_excludes_and_includes(db, tmp_path):
    draft_id = _draft(db)
    sent = tmp_path / "sent.txt"
    sent.write_text("Rosa, could we do Monday at 10 instead? Alex", encoding="utf-8")
    code, out = run("--json", "corrections", "add", str(draft_id), str(sent))
    assert code == 0 and out["correction"]["kind"] == "rewrite" and out["correction"]["draft_id"] == draft_id
    correction_id = out["correction"]["id"]
    code, out = run("--json", "corrections")
    assert code == 0 and [k["id"] for k in out["corrections"]] == [correction_id] and out["counts"]["preference"] == 1
    assert run("--json", "corrections", "exclude", str(correction_id)) == (0, {"changed": 1, "excluded": True})
    assert run("--json", "corrections", "list")[1]["counts"]["excluded"] == 1
    assert run("--json", "corrections", "include", str(correction_id))[0] == 0
    code, out = run("corrections", "exclude", "77")
    assert code == 1 and "There is no correction 77" in out
    code, out = run("corrections", "add", "77", str(sent))
    assert code == 1 and "no saved draft 77" in out


def test_a_reply_keeps_the_text_of_the_email_it_answered(db, tmp_path):
    from paired import paired_store

    paired_store(db, tmp_path)
    mid, name, subject = db.execute(
        "SELECT message_id, from_name, subject FROM messages WHERE body != '' AND from_name != '' LIMIT 1"
    ).fetchone()
    from assistant.drafting.prompting import reply_from_store

    reply = reply_from_store(db, mid)
    draft_id = save_draft(db, instruction="say yes", reply=reply, recipient="", subject="", text=MODEL_TEXT,
                          model="m.gguf", adapter="", params={}, seconds=1.0, tokens=30)  # fmt: skip
    found = capture(db, draft_id, "Yes, Monday works.")
    assert found.reply_source == mid and found.context_kind == "message"
    assert found.context.startswith("From: ") and reply.body.strip()[:40] in found.context
    assert "\nSubject: " in found.context
    # Read back for training as the draft's prompt read the stored email: the sender's address and the date.
    from trainer.prompts import reply_context

    back = reply_context(found.context)
    assert (back.sender_name, back.sender_addr, back.date) == (reply.sender_name, reply.sender_addr, reply.date)
    assert back.sender_addr and back.date
    db.execute("DELETE FROM messages WHERE message_id = ?", [mid])
    db.conn.commit()
    again = capture(db, draft_id, "Yes, Monday works for me.")  # the email is gone: the correction still counts
    assert again.context == "" and again.reply_source == mid


def test_the_sender_of_the_email_answered_survives_any_name():
    from assistant.drafting.prompting import answered_text
    from trainer.prompts import reply_context

    for name in ("Koenig, Christian", 'Ana "the API" Ruiz', "Jürgen Back\\slash", "", "Two\nLines"):
        text = answered_text(name, "Re: import", "Hello.", addr="ana@example.org", date="2024-05-01T09:30:00+00:00")
        back = reply_context(text)
        assert (back.sender_name, back.sender_addr) == (" ".join(name.split()), "ana@example.org"), text
        assert back.date == "2024-05-01T09:30:00+00:00" and back.body == "Hello."
