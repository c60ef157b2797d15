"""Browsing stored mail (the Mail page): pages of messages newest first, by class and words, and one message whole.

:func:`list_messages` reads one page at a time with keyset paging on ``(date, id)`` (indexes of migration
``m011_browse_order``), so a page costs the same at the end of 100,000 messages as at the start, and nothing
ever loads every row. :func:`message_detail` returns what Mailvoice kept of one message (the author's own
words) apart from what it took out (quoted text, signature), and, for the user's own mail, whether the pair
builder can learn their style from it: the rule is the pair builder's own
(:func:`trainer.pairs.candidates.reject_reason`), called here, never copied.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from assistant.mail.identity import AUTOMATED, LIST, RECEIVED, YOURS
from assistant.store.fts import index_pending, matching

PAGE = 200
# What the Mail page's filter offers: the stored class, or None for every message.
KINDS: dict[str, str | None] = {"all": None, YOURS: YOURS, RECEIVED: RECEIVED, LIST: LIST, AUTOMATED: AUTOMATED}
ROW = ("id", "date", "from_name", "from_addr", "subject", "mail_class", "sent_by_me")
Cursor = tuple[str | None, int]  # the (date, id) of the last row shown: the next page starts after it


def cursor_of(row: dict[str, Any]) -> Cursor:
    """Where the page after ``row`` starts."""
    return row["date"], row["id"]


def list_messages(
    db: sqlite_utils.Database, kind: str = "all", query: str = "", after: Cursor | None = None, limit: int = PAGE
) -> list[dict[str, Any]]:
    """A page of stored messages, newest first (undated ones last), each a dict of :data:`ROW`.

    Args:
        kind: a key of :data:`KINDS` ("all", "yours", "received", "list", "automated").
        query: words every message must hold (as Compose's search: subject, text, sender); "" for all.
        after: the cursor of the last row of the previous page (:func:`cursor_of`); None for the first page.
        limit: rows at most.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind of mail {kind!r}: one of {', '.join(KINDS)}")
    where, args = matching(db, query)
    if query.strip():
        index_pending(db)  # mail stored by an import that stopped before indexing is found too
    if KINDS[kind]:
        where += " AND m.mail_class = ?"
        args.append(KINDS[kind])
    after_date, after_id = after if after is not None else ("", None)
    rows: list[dict[str, Any]] = []
    if after is None or after_date is not None:  # dated mail first: (date, id) below the cursor
        below = "m.date IS NOT NULL" if after is None else "(m.date, m.id) < (?, ?)"
        rows += _page(db, f"{where} AND {below}", [*args, *([] if after is None else [after_date, after_id])], limit)
    if len(rows) < limit:  # then mail without a date, newest stored first
        below = "m.id < ?" if after is not None and after_date is None else "1"
        more = [after_id] if after is not None and after_date is None else []
        rows += _page(db, f"{where} AND m.date IS NULL AND {below}", [*args, *more], limit - len(rows))
    return rows


def _page(db: sqlite_utils.Database, where: str, args: list, limit: int) -> list[dict[str, Any]]:
    sql = f"SELECT {', '.join('m.' + c for c in ROW)} FROM messages m WHERE {where} ORDER BY m.date DESC, m.id DESC"
    found = [dict(zip(ROW, r, strict=True)) for r in db.execute(f"{sql} LIMIT ?", [*args, limit]).fetchall()]
    for r in found:
        r["sent_by_me"] = bool(r["sent_by_me"])
    return found


_DETAIL = (
    "id, message_id, date, from_name, from_addr, to_json, cc_json, reply_to, subject, body, quoted, signature, "
    "is_forward, folder, labels, sent_by_me, automated, auto_reason, mail_class, list_id, attachments, notes, "
    "truncated"
)


def message_detail(db: sqlite_utils.Database, message: int, *, with_teaching: bool = True) -> dict[str, Any] | None:
    """Everything the Mail page's reading pane shows of stored message ``message`` (its ``id``); None if gone.

    Keys: the stored columns of :data:`_DETAIL` (``body`` is the author's own words; ``quoted`` and
    ``signature`` what was taken out of them), with ``to``, ``cc`` as ``[name, address]`` lists and ``labels``,
    ``attachments`` as lists of names; and ``teaches``: None for mail that is not the user's (or without
    ``with_teaching``), else :func:`teaching`'s verdict. The verdict reads the user's newer mail (is this text
    theirs twice?): a third of a second at 100,000 messages, so the reading pane asks for it second.
    """
    cursor = db.execute(f"SELECT {_DETAIL} FROM messages WHERE id = ?", [message])
    found = cursor.fetchone()
    if found is None:
        return None
    row = dict(zip([d[0] for d in cursor.description], found, strict=True))
    row["to"], row["cc"] = people(row.pop("to_json")), people(row.pop("cc_json"))
    row["labels"], row["attachments"] = _names(row["labels"]), _names(row["attachments"])
    for flag in ("is_forward", "sent_by_me", "automated", "truncated"):
        row[flag] = bool(row[flag])
    for text in ("body", "quoted", "signature", "auto_reason", "subject", "folder", "notes", "list_id"):
        row[text] = row[text] or ""
    row["teaches"] = teaching(db, row) if row["sent_by_me"] and with_teaching else None
    return row


def teaching(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    """Whether the pair builder learns the user's style from their message ``row`` (a :func:`message_detail`):
    ``{"used": bool, "reason": str, "why": str}``, with the pair builder's reason ("" when used) and in words."""
    rule = _pair_rule()
    reason = rule.reject_reason(row, set())
    if reason is None and _newer_same_text(db, row):
        reason = "duplicate"
    pair = None
    if db["pairs"].exists():
        pair = db.execute("SELECT status FROM pairs WHERE message_id = ?", [row["message_id"]]).fetchone()
    return {"used": reason is None, "reason": reason or "", "why": _why(reason, row, pair[0] if pair else None)}


def _pair_rule() -> Any:
    """The pair builder's filters (trainer/pairs/candidates.py), imported only when asked: the rest of the mail
    core never needs the trainer's package."""
    from trainer.pairs import candidates

    return candidates


def _newer_same_text(db: sqlite_utils.Database, row: dict[str, Any]) -> bool:
    """A newer email of the user's with the same text that is usable itself: the pair builder reads sent mail
    newest first (undated last, as :func:`list_messages` orders it) and keeps only the first of equal texts."""
    db.conn.create_function("mailvoice_text_key", 1, _text_key, deterministic=True)
    if row["date"] is None:
        newer, args = "(date IS NOT NULL OR id > ?)", [row["id"]]
    else:
        newer, args = "(date > ? OR (date = ? AND id > ?))", [row["date"], row["date"], row["id"]]
    cursor = db.execute(
        f"SELECT body, automated, is_forward FROM messages WHERE sent_by_me = 1 AND {newer} "
        "AND mailvoice_text_key(body) = ?",
        [*args, _text_key(row["body"])],
    )
    rows = [dict(zip(("body", "automated", "is_forward"), r, strict=True)) for r in cursor]
    return any(_pair_rule().reject_reason(r, set()) is None for r in rows)


def _text_key(body: str | None) -> str:
    """The pair builder's test of "the same text": case and spacing aside."""
    return " ".join((body or "").strip().lower().split())


def _why(reason: str | None, row: dict[str, Any], pair_status: str | None) -> str:
    if reason is None:
        if pair_status == "excluded":
            return "Its words pass the pair builder's checks, but you excluded its training pair (Train page)."
        if pair_status:
            return "Teaches your style: a training pair was built from it."
        return "Can teach your style: it passes the pair builder's checks (no training pair built from it yet)."
    rule = _pair_rule()
    return "Not used to learn your style: " + {
        "automated": f"it is automated mail ({row['auto_reason'] or 'machine-sent'}).",
        "forward": "it forwards someone else's email.",
        "empty": "none of its text is yours (only quoted text or a signature).",
        "too_short": f"your words are under {rule.MIN_CHARS} characters.",
        "too_long": f"your words are over {rule.MAX_CHARS:,} characters: more a document than an email.",
        "too_few_words": f"under {rule.MIN_WORDS} words of yours besides the greeting and sign-off.",
        "duplicate": "a newer email of yours has the same text, and that one is used.",
    }.get(reason, f"{reason}.")


def people(raw: str | None) -> list[list[str]]:
    """A stored address list (``to_json``, ``cc_json``) as [name, address] pairs; unreadable: none."""
    try:
        return [[str(name or ""), str(addr or "")] for name, addr in json.loads(raw or "[]")]
    except (ValueError, TypeError):
        return []  # an unreadable list shows no one rather than failing the whole message


def _names(raw: str | None) -> list[str]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return [raw] if raw else []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
