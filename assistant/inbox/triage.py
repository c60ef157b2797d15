"""Triage: every message's category, suggested folder, events and tasks, stored and refreshed only for new mail.

One call goes through the messages that have no triage row yet (or one made by older rules), in chunks: the
facts the rules need are read for a whole chunk in a few queries, the filing model classifies the chunk at
once, events and tasks come from :mod:`assistant.inbox.extract`, and the chunk's rows are written in one
transaction. A cancel or a crash keeps every finished chunk; the next run goes on from there.

The model is optional: without it triage is rules, the filing classifier and calendar invitations, ten
thousand messages in well under a minute (BENCHMARKS.md, "Triage"). With it, the model settles categories
the rules are unsure of and fills in events (slow: seconds per message with the embedded model).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.inbox import filing
from assistant.inbox.categories import CATEGORIES, Category, Facts, ask_model, categorize
from assistant.inbox.extract import Extraction, extract, mail_item_from_row, read_original
from assistant.mail.browse import people

log = logging.getLogger(__name__)

VERSION = 3
"""Rules version: rows made by an older version are made again."""

CHUNK = 500

Progress = Callable[[int, int], None]  # (done, total)
Cancel = Callable[[], bool]

_COLUMNS = (
    "id", "message_id", "thread_id", "date", "from_name", "from_addr", "to_json", "cc_json", "subject", "body",
    "folder", "labels", "sent_by_me", "automated", "auto_reason", "list_id", "attachments", "is_forward",
    "source_file", "source_offset",
)  # fmt: skip


@dataclass
class Summary:
    """What one triage run did."""

    triaged: int = 0
    pending: int = 0  # how many needed triage when it started
    categories: dict[str, int] = field(default_factory=dict)
    events: int = 0
    tasks: int = 0
    filing: str = ""  # "" when the model was used; otherwise why there are no filing suggestions
    model_calls: int = 0
    model_invalid: int = 0
    seconds: float = 0.0
    cancelled: bool = False

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "seconds": round(self.seconds, 2)}


def _my_keys(db: Any) -> set[str]:
    rows = db.execute("SELECT DISTINCT from_key FROM messages WHERE sent_by_me = 1 AND from_key != ''")
    return {r[0] for r in rows}


def pending_ids(db: Any, since: str | None = None) -> list[int]:
    """Messages to triage, newest first: no row yet, or one made by older rules."""
    sql = ("SELECT m.id FROM messages m LEFT JOIN triage t ON t.message_id = m.id "
           "WHERE (t.message_id IS NULL OR t.version < ?)")  # fmt: skip
    args: list[Any] = [VERSION]
    if since:
        sql += " AND m.date >= ?"
        args.append(since)
    sql += " ORDER BY m.date DESC, m.id DESC"
    return [r[0] for r in db.execute(sql, args)]


def _facts(db: Any, rows: list[dict[str, Any]], mine: set[str]) -> dict[int, dict[str, Any]]:
    """Per message: addressed to the user, recipients, answered by the user later, last in its thread."""
    from assistant.mail.identity import normalize_address

    threads = sorted({r["thread_id"] for r in rows if r["thread_id"]})
    by_thread: dict[str, list[tuple[str, int]]] = {}
    for start in range(0, len(threads), 900):
        part = threads[start : start + 900]
        marks = ",".join("?" * len(part))
        for thread, date, me in db.execute(
            f"SELECT thread_id, ifnull(date, ''), sent_by_me FROM messages WHERE thread_id IN ({marks})", part
        ):
            by_thread.setdefault(thread, []).append((date, me))
    out = {}
    for r in rows:
        to = people(r["to_json"])
        cc = people(r["cc_json"])
        later = [me for date, me in by_thread.get(r["thread_id"], []) if date > (r["date"] or "")]
        out[r["id"]] = {
            "to_me": any(normalize_address(a) in mine for _n, a in to if a),
            "recipients": len(to) + len(cc),
            "answered": any(later),
            "last_in_thread": not later,
        }
    return out


def _generate(backend: Any) -> Callable[[list[dict[str, str]], str], Iterator[str]]:
    from assistant.drafting.backend import GenerationParams

    def generate(messages: list[dict[str, str]], grammar: str) -> Iterator[str]:
        return backend.stream(messages, GenerationParams(max_tokens=8, temperature=0.0, grammar=grammar, seed=0))

    return generate


def run(
    db: Any,
    root: Path,
    *,
    since: str | None = None,
    limit: int | None = None,
    backend: Any = None,
    read_originals: bool = True,
    again: bool = False,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> Summary:
    """Triage the messages that need it (newest first; at most ``limit``), storing a row for each.

    Args:
        db: the store (sqlite-utils Database) of data folder ``root``.
        since: only mail dated on or after this ISO date.
        backend: a drafting backend to settle unsure categories and fill in events; None for rules only.
        read_originals: read each message's original file for its Date header's own offset and calendar
            parts (the store keeps dates in UTC and attachment names only); False uses the stored row.
        again: triage the messages in range again, also those already triaged.
    """
    started = time.perf_counter()
    if again:
        with db.conn:
            db.execute("UPDATE triage SET version = 0 WHERE message_id IN (SELECT id FROM messages WHERE "
                       "date >= ? OR ? IS NULL)", [since, since])  # fmt: skip
    ids = pending_ids(db, since)
    if limit is not None:
        ids = ids[:limit]
    summary = Summary(pending=len(ids))
    try:
        model: filing.FilingModel | None = filing.load_or_train(db, root) if ids else None
    except filing.NotEnoughFiled as exc:
        model, summary.filing = None, str(exc)
    mine = _my_keys(db)
    generate = _generate(backend) if backend is not None else None
    reader = read_original if read_originals else None
    cols = ", ".join(_COLUMNS)
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        marks = ",".join("?" * len(part))
        rows = [dict(zip(_COLUMNS, r, strict=True))
                for r in db.execute(f"SELECT {cols} FROM messages WHERE id IN ({marks})", part)]  # fmt: skip
        order = {mid: i for i, mid in enumerate(part)}
        rows.sort(key=lambda r: order[r["id"]])
        facts = _facts(db, rows, mine)
        suggestions = model.suggest(rows) if model is not None else [None] * len(rows)
        out = []
        for row, suggestion in zip(rows, suggestions, strict=True):
            if cancel is not None and cancel():
                summary.cancelled = True
                break
            found = _extract(row, backend, reader, cancel)
            summary.model_calls += found.model_calls
            summary.model_invalid += found.model_invalid
            due = sum(1 for t in found.tasks if t.get("due"))  # a "please ..." with no date is not a deadline
            category = categorize(row, Facts(**facts[row["id"]], events=len(found.events), tasks=due))
            if generate is not None and not category.sure and not row["automated"]:
                summary.model_calls += 1
                name = ask_model(generate, row)
                if name is None:
                    summary.model_invalid += 1
                elif name != category.name:
                    category = Category(name, 0.6, "the model's choice (the rules were unsure)", "model")
            out.append(_row(row["id"], category, suggestion, found))
            summary.categories[category.name] = summary.categories.get(category.name, 0) + 1
            summary.events += len(found.events)
            summary.tasks += len(found.tasks)
            if progress is not None and len(out) % 25 == 0:
                progress(summary.triaged + len(out), summary.pending)
        with db.conn:
            db["triage"].upsert_all(out, pk="message_id")
        summary.triaged += len(out)
        if progress is not None:
            progress(summary.triaged, summary.pending)
        if summary.cancelled:
            break
    db.execute("DELETE FROM triage WHERE message_id NOT IN (SELECT id FROM messages)")
    db.conn.commit()
    summary.seconds = time.perf_counter() - started
    return summary


def _extract(row: dict[str, Any], backend: Any, reader: Any, cancel: Cancel | None) -> Extraction:
    try:
        item = mail_item_from_row(row, source_reader=reader)
    except Exception as exc:  # a broken original must not stop the triage: the stored row is enough
        log.info("message %s: original not readable (%s); using the stored text", row["id"], type(exc).__name__)
        item = mail_item_from_row(row, source_reader=None)
    return extract(item, backend, cancel=cancel)


def _row(message_id: int, category: Category, suggestion: filing.Suggestion | None, found: Extraction) -> dict:
    meta = found.to_json()
    for key in ("events", "tasks"):
        meta.pop(key)
    return {
        "message_id": message_id,
        "category": category.name,
        "confidence": category.confidence,
        "reason": category.reason,
        "category_source": category.source,
        "filing": json.dumps(suggestion.to_json()) if suggestion is not None else None,
        "events": json.dumps(found.events, ensure_ascii=False),
        "tasks": json.dumps(found.tasks, ensure_ascii=False),
        "extraction": json.dumps(meta, ensure_ascii=False),
        "version": VERSION,
        "triaged_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class Triaged:
    """One triaged message as the inbox shows it."""

    id: int
    message_id: str
    date: str | None
    from_name: str
    from_addr: str
    subject: str
    category: str
    confidence: float
    reason: str
    category_source: str
    filing: dict[str, Any] | None
    events: list[dict]
    tasks: list[dict]
    sent_by_me: bool
    reply_draft: int | None = None  # the reply proposed in the user's voice (a saved draft's id)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def newest(db: Any, *, limit: int = 200, since: str | None = None, category: str | None = None) -> list[Triaged]:
    """Triaged messages, newest first."""
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")
    sql = ("SELECT m.id, m.message_id, m.date, ifnull(m.from_name, ''), ifnull(m.from_addr, ''), "
           "ifnull(m.subject, ''), t.category, t.confidence, t.reason, t.category_source, t.filing, t.events, "
           "t.tasks, m.sent_by_me, t.reply_draft FROM triage t JOIN messages m ON m.id = t.message_id "
           "WHERE 1")  # fmt: skip
    args: list[Any] = []
    if since:
        sql += " AND m.date >= ?"
        args.append(since)
    if category:
        sql += " AND t.category = ?"
        args.append(category)
    sql += " ORDER BY m.date IS NULL, m.date DESC, m.id DESC LIMIT ?"
    args.append(limit)
    out = []
    for r in db.execute(sql, args):
        out.append(Triaged(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                           json.loads(r[10]) if r[10] else None, json.loads(r[11] or "[]"),
                           json.loads(r[12] or "[]"), bool(r[13]), r[14]))  # fmt: skip
    return out


def all_events(db: Any, since: str | None = None) -> list[dict[str, Any]]:
    """Every stored event, each with the message it came from (``message``: id, Message-ID, subject)."""
    return _items(db, "events", since)


def all_tasks(db: Any, since: str | None = None) -> list[dict[str, Any]]:
    """Every stored task, each with the message it came from."""
    return _items(db, "tasks", since)


def _items(db: Any, column: str, since: str | None) -> list[dict[str, Any]]:
    assert column in ("events", "tasks")
    sql = (f"SELECT m.id, m.message_id, ifnull(m.subject, ''), t.{column} FROM triage t JOIN messages m "
           f"ON m.id = t.message_id WHERE t.{column} != '[]'")  # fmt: skip
    args: list[Any] = []
    if since:
        sql += " AND m.date >= ?"
        args.append(since)
    out = []
    for mid, message_id, subject, items in db.execute(sql + " ORDER BY m.date, m.id", args):
        for item in json.loads(items):
            out.append({**item, "message": {"id": mid, "message_id": message_id, "subject": subject}})
    return out
