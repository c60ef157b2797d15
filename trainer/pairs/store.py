"""The pairs table: writing built and imported pairs, the instruction cache, review edits, scrubbed reads.

Every read meant for a person or for training (:func:`list_pairs`, :func:`training_rows`) goes through the
privacy scrub with the current settings; the stored texts stay as written so the settings can change later.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from trainer.pairs.errors import PairsError
from trainer.pairs.scrub import ScrubSettings, load_settings, scrub_fields
from trainer.pairs.split import SPLITS, split_for

STATUSES = ("ok", "excluded")
_COLUMNS = (
    "id, message_id, thread_id, instruction, input, output, split, status, source, origin, flags, "
    "generated_instruction, tries, prompt_version, model, created_at, updated_at"
)


LIST_PAIRS = "(mailvoice pairs list shows the ids)"


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class Pair:
    """One pair as the review shows it (texts scrubbed)."""

    id: int
    instruction: str
    input: str
    output: str
    split: str
    status: str
    source: str
    flags: list[str]
    scrubbed: dict[str, int]
    message_id: str | None = None
    thread_id: str = ""
    origin: str = ""
    generated_instruction: str = ""
    model: str = ""
    method: str = ""
    """How a built pair's instruction was made (see :func:`method_of`); "" for imported and edited pairs."""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def method_of(flags: list[str]) -> str:
    """Which path made a built instruction, from its flags: fallback, grammar, retried, else model (first try)."""
    return next((m for m in ("fallback", "grammar", "retried") if m in flags), "model")


def _pair(row: dict[str, Any], settings: ScrubSettings) -> Pair:
    texts, found = scrub_fields(
        {"instruction": row["instruction"], "input": row["input"], "output": row["output"]}, settings
    )
    flags = json.loads(row["flags"] or "[]")
    return Pair(
        id=row["id"],
        instruction=texts["instruction"],
        input=texts["input"],
        output=texts["output"],
        split=row["split"],
        status=row["status"],
        source=row["source"],
        flags=flags,
        scrubbed=found,
        message_id=row["message_id"],
        thread_id=row["thread_id"] or "",
        origin=row["origin"] or "",
        generated_instruction=row["generated_instruction"] or "",
        model=row["model"] or "",
        method=method_of(flags) if row["source"] == "built" else "",
    )


def _rows(db: sqlite_utils.Database, where: str, params: list) -> list[dict[str, Any]]:
    cursor = db.execute(f"SELECT {_COLUMNS} FROM pairs {where}", params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor]


def list_pairs(
    db: sqlite_utils.Database,
    split: str | None = None,
    status: str | None = None,
    settings: ScrubSettings | None = None,
) -> list[Pair]:
    """Pairs for review, scrubbed, oldest first; optionally one split and/or one status."""
    if split is not None and split not in SPLITS:
        raise PairsError(f"There is no split {split!r}; use one of: {', '.join(SPLITS)}")
    clauses, params = [], []
    if split:
        clauses.append("split = ?")
        params.append(split)
    if status:
        clauses.append("status = ?")
        params.append(status)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    settings = settings or load_settings(db)
    return [_pair(r, settings) for r in _rows(db, where + " ORDER BY id", params)]


def training_rows(db: sqlite_utils.Database, split: str | None = None) -> list[dict[str, str]]:
    """What training and export read: included pairs, scrubbed, as ``instruction, input, output, split``."""
    return [
        {"instruction": p.instruction, "input": p.input, "output": p.output, "split": p.split}
        for p in list_pairs(db, split=split, status="ok")
    ]


def get_pair(db: sqlite_utils.Database, pair_id: int) -> Pair:
    rows = _rows(db, "WHERE id = ?", [pair_id])
    if not rows:
        raise PairsError(f"There is no pair {pair_id}.", cli=LIST_PAIRS)
    return _pair(rows[0], load_settings(db))


def edit_instruction(db: sqlite_utils.Database, pair_id: int, instruction: str) -> Pair:
    """Replace a pair's instruction (the model's one is kept in ``generated_instruction``)."""
    text = " ".join(instruction.split())
    if not text:
        raise PairsError('The instruction is empty; give the text, e.g. "Ask Rosa about Monday".')
    before = _rows(db, "WHERE id = ?", [pair_id])
    if not before:
        raise PairsError(f"There is no pair {pair_id}.", cli=LIST_PAIRS)
    row = before[0]
    _texts, found = scrub_fields({"instruction": text, "input": row["input"], "output": row["output"]},
                                 load_settings(db))  # fmt: skip
    with db.conn:
        db.execute(
            "UPDATE pairs SET generated_instruction = CASE WHEN source = 'built' THEN instruction "
            "ELSE generated_instruction END, instruction = ?, source = CASE WHEN source = 'imported' "
            "THEN 'imported' ELSE 'edited' END, scrubbed = ?, updated_at = ? WHERE id = ?",
            [text, json.dumps(found), now(), pair_id],
        )
    return get_pair(db, pair_id)


def set_status(db: sqlite_utils.Database, pair_id: int, status: str) -> Pair:
    """Exclude a pair from training (``excluded``) or include it again (``ok``)."""
    if status not in STATUSES:
        raise PairsError(f"Unknown status {status!r}; use one of: {', '.join(STATUSES)}")
    get_pair(db, pair_id)
    with db.conn:
        db.execute("UPDATE pairs SET status = ?, updated_at = ? WHERE id = ?", [status, now(), pair_id])
    return get_pair(db, pair_id)


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    """How many pairs are in each split and state (for summaries)."""
    out = {"total": 0, "train": 0, "validation": 0, "excluded": 0}
    for split, status, n in db.execute("SELECT split, status, COUNT(*) FROM pairs GROUP BY split, status"):
        out["total"] += n
        if status == "excluded":
            out["excluded"] += n
        else:
            out[split] = out.get(split, 0) + n
    return out


# --- writing -----------------------------------------------------------------------------------------------


def existing_built(db: sqlite_utils.Database) -> dict[str, tuple[str, str, str]]:
    """message_id -> (cache_key, source, status) of every pair made from a stored email."""
    rows = db.execute("SELECT message_id, cache_key, source, status FROM pairs WHERE message_id IS NOT NULL")
    return {m: (k or "", s, st) for m, k, s, st in rows}


def cached_instructions(db: sqlite_utils.Database, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The cache rows for ``keys`` (looked up in batches: SQLite limits the parameters of one query)."""
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT cache_key, instruction, flags, tries FROM pair_cache WHERE cache_key IN ({marks})"
        cursor = db.execute(sql, chunk)
        for key, instruction, flags, tries in cursor:
            found[key] = {"instruction": instruction, "flags": json.loads(flags or "[]"), "tries": tries}
    return found


def save_built(db: sqlite_utils.Database, pair: dict[str, Any], cache: dict[str, Any] | None = None) -> None:
    """Write (or refresh) the pair of one sent email, and its cache row, in one transaction."""
    pair = {**pair, "split": split_for(pair["thread_id"]), "updated_at": now()}
    # One transaction, committed at once: a killed build keeps every pair finished before the kill, and never
    # a cache row without its pair. (``with db.conn`` would not do: sqlite-utils commits its insert by itself
    # when no transaction is open yet.)
    with db.atomic():
        if cache is not None:
            db["pair_cache"].insert(cache, replace=True)
        db.execute(
            "INSERT INTO pairs (message_id, thread_id, instruction, input, output, split, split_fixed, status, "
            "source, origin, flags, scrubbed, generated_instruction, tries, prompt_version, model, cache_key, "
            "created_at, updated_at) VALUES (:message_id, :thread_id, :instruction, :input, :output, :split, 0, "
            "'ok', 'built', '', :flags, :scrubbed, :instruction, :tries, :prompt_version, :model, :cache_key, "
            ":updated_at, :updated_at) "
            "ON CONFLICT (message_id) WHERE message_id IS NOT NULL DO UPDATE SET thread_id = excluded.thread_id, "
            "instruction = excluded.instruction, input = excluded.input, output = excluded.output, "
            "flags = excluded.flags, scrubbed = excluded.scrubbed, generated_instruction = excluded.instruction, "
            "tries = excluded.tries, prompt_version = excluded.prompt_version, model = excluded.model, "
            "cache_key = excluded.cache_key, updated_at = excluded.updated_at",
            pair,
        )
