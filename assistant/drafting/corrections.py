"""What the user did with a draft: the best training signal there is.

When the user saves an edit of a draft, copies it or opens it in their mail app, the draft becomes a
*correction*: the instruction they typed, the email answered, what the model wrote and the text the user
kept. One row per draft (a later save replaces the kept text). How far apart the two texts are says what
kind it is:

- ``accepted``: used as the model wrote it, a positive example as it is;
- ``small``: whitespace, a name, a word or two (at most :data:`SMALL` of the characters changed);
- ``rewrite``: the user rewrote it.

Corrections join the training set (``trainer.data``: marked ``from_edit``), and those the user changed become
preference pairs for ``mailvoice train --preference`` (the user's text chosen, the model's rejected; see
``trainer/preference.py``). The newest tenth is held out (:func:`held_out`) to measure what training on the
rest changed. A correction can be left out (``exclude``); ``forget`` deletes them with the store.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from rapidfuzz.distance import Levenshtein

from assistant.drafting.prompting import answered_text, reply_from_file, reply_from_store
from assistant.errors import MailvoiceError

SMALL = 0.10  # share of characters changed up to which an edit is small
HELD_OUT_SHARE = 0.10  # the newest tenth of the corrections measures a refresh, never trains it
HOW = ("saved", "copied", "opened")
KINDS = ("accepted", "small", "rewrite")


@dataclass(frozen=True)
class Correction:
    id: int
    draft_id: int
    instruction: str
    context_kind: str
    context: str  # the text of the email answered, as a training pair's input holds it
    recipient: str
    model_text: str
    final_text: str
    kind: str
    distance: float
    how: str
    model: str
    adapter: str
    prompts: dict[str, Any]
    created_at: str
    updated_at: str
    excluded: bool
    reply_source: str = ""  # the Message-ID (or .eml path) of the email answered

    @property
    def changed(self) -> bool:
        """The user changed the words (not only spacing): a preference pair can be made of it."""
        return _words(self.model_text) != _words(self.final_text)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "changed": self.changed}


def _words(text: str) -> str:
    return " ".join(text.split())


def edit_distance(model_text: str, final_text: str) -> float:
    """Share of characters changed (normalised Levenshtein distance, spacing ignored): 0 the same, 1 all."""
    return Levenshtein.normalized_distance(_words(model_text), _words(final_text))


def kind_of(model_text: str, final_text: str) -> tuple[str, float]:
    if model_text == final_text:
        return "accepted", 0.0
    distance = edit_distance(model_text, final_text)
    return ("small" if distance <= SMALL else "rewrite"), round(distance, 4)


def capture(db: sqlite_utils.Database, draft_id: int, final_text: str, how: str = "saved") -> Correction | None:
    """Record what the user kept of draft ``draft_id`` (``how``: saved, copied or opened); return it, or None
    when there is no such draft or nothing of it to learn from (an empty text, a draft typed by the user).

    The model's text is the one it wrote (``params["generated_text"]`` once the draft was edited). Call it
    inside the caller's transaction or alone: it writes one row.
    """
    if how not in HOW:
        raise ValueError(f"how must be one of {HOW}, not {how!r}")
    row = db.execute(
        "SELECT instruction, context_kind, context, recipient, text, model, adapter, params, tokens "
        "FROM drafts WHERE id = ?",
        [draft_id],
    ).fetchone()
    if row is None or not final_text.strip():
        return None
    instruction, context_kind, source, recipient, text, model, adapter, params_json, tokens = row
    params = _json(params_json)
    model_text = str(params.get("generated_text", text) or "")
    if not model_text.strip() or not tokens:  # typed into an empty page and saved: the model wrote nothing
        return None
    kind, distance = kind_of(model_text, final_text)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    values = {
        "draft_id": draft_id,
        "instruction": instruction or "",
        "context_kind": context_kind or "",
        "context": _answered(db, context_kind, source),
        "reply_source": source or "",
        "recipient": recipient or "",
        "model_text": model_text,
        "final_text": final_text,
        "kind": kind,
        "distance": distance,
        "how": how,
        "model": model or "",
        "adapter": adapter or "",
        "prompts": json.dumps(params.get("prompts") or {}, ensure_ascii=False),
        "updated_at": now,
    }
    with db.conn:
        db.execute(
            f"INSERT INTO corrections ({', '.join(values)}, created_at) VALUES ({', '.join('?' * len(values))}, ?) "
            f"ON CONFLICT(draft_id) DO UPDATE SET {', '.join(f'{k} = excluded.{k}' for k in values)}",
            [*values.values(), now],
        )
    return get_correction(db, draft_id=draft_id)


def _answered(db: sqlite_utils.Database, kind: str, source: str) -> str:
    """The text of the email a draft answered, as a training pair holds it ("" when it answered none, or the
    email is no longer stored or readable)."""
    if not source:
        return ""
    try:
        reply = reply_from_store(db, source) if kind == "message" else reply_from_file(source)
    except MailvoiceError:
        return ""
    return answered_text(reply.sender_name, reply.subject, reply.body.strip(), addr=reply.sender_addr, date=reply.date)


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _from_row(row: dict[str, Any]) -> Correction:
    row = dict(row)
    row["prompts"] = _json(row.get("prompts"))
    row["excluded"] = bool(row.get("excluded"))
    return Correction(**row)


def get_correction(db: sqlite_utils.Database, correction_id: int | None = None, *,
                   draft_id: int | None = None) -> Correction | None:  # fmt: skip
    where, value = ("id", correction_id) if draft_id is None else ("draft_id", draft_id)
    rows = list(db.query(f"SELECT * FROM corrections WHERE {where} = ?", [value]))
    return _from_row(rows[0]) if rows else None


def list_corrections(db: sqlite_utils.Database, *, include_excluded: bool = True) -> list[Correction]:
    """Every correction, oldest first."""
    where = "" if include_excluded else "WHERE excluded = 0 "
    return [_from_row(r) for r in db.query(f"SELECT * FROM corrections {where}ORDER BY updated_at, id")]


def set_excluded(db: sqlite_utils.Database, ids: list[int], excluded: bool) -> int:
    """Leave corrections ``ids`` out of training (or take them back); return how many there were."""
    with db.conn:
        return sum(
            db.execute("UPDATE corrections SET excluded = ? WHERE id = ?", [int(excluded), int(i)]).rowcount
            for i in dict.fromkeys(ids)
        )


def held_out(corrections: list[Correction]) -> tuple[list[Correction], list[Correction]]:
    """(to learn from, to measure with): the newest tenth is held out, by time, once there are ten or more."""
    ordered = sorted(corrections, key=lambda c: (c.updated_at, c.id))
    n = int(len(ordered) * HELD_OUT_SHARE)
    return (ordered[: len(ordered) - n], ordered[len(ordered) - n :]) if n else (ordered, [])


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    """How many corrections of each kind are used (excluded ones apart), and how many make preference pairs."""
    found = {k: 0 for k in KINDS} | {"excluded": 0, "preference": 0, "total": 0}
    for c in list_corrections(db):
        found["total"] += 1
        if c.excluded:
            found["excluded"] += 1
            continue
        found[c.kind] += 1
        found["preference"] += c.changed
    return found
