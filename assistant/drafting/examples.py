"""Style examples: the user's own past emails most like the one to write, fitted into a token budget.

Ranking is SQLite FTS5's BM25 over the instruction's keywords, restricted to mail the user wrote themselves
(no machine mail, no forwards). With a recipient, mail the user sent to that person comes first (how you
write to your landlord is not how you write to your team), then mail to that person's organisation, then
any mail on the topic; with no keyword match at all, the most recent mail still shows the voice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from assistant.mail.identity import normalize_address

MIN_CHARS = 40  # "Thanks!" carries no style worth the tokens
MAX_KEYWORDS = 12
_SENT = "m.sent_by_me = 1 AND m.automated = 0 AND m.is_forward = 0 AND length(m.body) >= ?"
_COLUMNS = "m.id, m.subject, m.body, m.to_json, m.date"
# Same domain means "same organisation" only for organisations' domains, not for webmail.
PUBLIC_DOMAINS = frozenset(
    """gmail.com googlemail.com outlook.com hotmail.com live.com msn.com yahoo.com ymail.com icloud.com
    me.com mac.com aol.com proton.me protonmail.com gmx.de gmx.net web.de fastmail.com mail.com zoho.com
    """.split()  # noqa: SIM905 - a word list reads better as words
)
STOPWORDS = frozenset(
    """a about above after again all also am an and any are as ask asking at be been before being below but by
    can could did do does doing down draft during each email few for from further get had has have having he
    her here hers him his how i if in into is it its just let like me mail message more most my no nor not now
    of off on once only or other our ours out over own please reply respond same say saying she should so some
    such tell than that the their them then there these they this those through to too under until up very
    want was we were what when where which while who whom why will with would write writing you your yours
    """.split()  # noqa: SIM905
)


@dataclass
class Example:
    id: int
    subject: str
    body: str
    to: str
    date: str
    why: str  # "recipient", "domain", "topic" or "recent": which rule picked it
    text: str = ""  # subject and body, what is counted against the budget
    tokens: int = 0


def keywords(instruction: str) -> list[str]:
    """Content words of the instruction, in order, without stop words or duplicates."""
    words = re.findall(r"[^\W_]{3,}", instruction.lower())
    seen: dict[str, None] = {}
    for w in words:
        if w not in STOPWORDS and not w.isdigit():
            seen.setdefault(w)
    return list(seen)[:MAX_KEYWORDS]


def fts_query(words: list[str]) -> str:
    """An FTS5 query matching any of ``words``; each is quoted so no word is read as FTS syntax."""
    return " OR ".join('"' + w.replace('"', "") + '"' for w in words)


EXAMPLE_OVERHEAD = 32  # tokens of the request sentence and role markers around each example (see prompting)


def format_example(subject: str, body: str) -> str:
    """What an example costs in the prompt, give or take :data:`EXAMPLE_OVERHEAD`."""
    return f"{subject.strip()}\n{body.strip()}"


def select_examples(
    db: sqlite_utils.Database,
    instruction: str,
    *,
    to: str | None = None,
    k: int = 3,
    budget: int = 1200,
    count_tokens: Callable[[str], int] = lambda text: (len(text) + 3) // 4,
    exclude: tuple[int, ...] = (),
) -> list[Example]:
    """Up to ``k`` past sent emails for ``instruction`` whose prompt text fits in ``budget`` tokens.

    Only mail in the full-text index is ranked by topic (see :func:`assistant.store.fts.index_pending`).

    Args:
        to: the recipient's address; their mail, then their domain's, is preferred.
        count_tokens: the model's tokenizer when loaded (an estimate otherwise).
        exclude: message ids never to use (the email being answered).
    """
    if k <= 0 or budget <= 0:
        return []
    words = keywords(instruction)
    match = fts_query(words) if words else None
    wanted = k * 4  # spare candidates, for those that do not fit the budget
    chosen: list[Example] = []
    seen = set(exclude)
    used = 0
    for why, rows in _tiers(db, match, to, wanted):
        for row in rows:
            if len(chosen) >= k:
                return chosen
            if row[0] in seen:
                continue
            seen.add(row[0])
            ex = Example(id=row[0], subject=row[1] or "", body=row[2], to=row[3] or "", date=row[4] or "", why=why)
            ex.text = format_example(ex.subject, ex.body)
            ex.tokens = count_tokens(ex.text) + EXAMPLE_OVERHEAD
            if used + ex.tokens > budget:
                continue  # a shorter one further down may still fit
            used += ex.tokens
            chosen.append(ex)
    return chosen


def _tiers(db: sqlite_utils.Database, match: str | None, to: str | None, n: int):
    """(why, rows) in order of preference; each query runs only if the ones before left room."""
    address = (to or "").strip().lower()
    domain = address.rpartition("@")[2] if "@" in address else ""
    if address:
        person = "(lower(m.to_json) LIKE ? OR lower(m.cc_json) LIKE ?)"
        like = f'%"{address}"%'
        if match:
            yield "recipient", _search(db, match, person, [like, like], n)
        yield "recipient", _recent(db, person, [like, like], n)
        if domain and domain not in PUBLIC_DOMAINS:
            dlike = f'%@{domain}"%'
            if match:
                yield "domain", _search(db, match, person, [dlike, dlike], n)
    if match:
        yield "topic", _search(db, match, "1", [], n)
    yield "recent", _recent(db, "1", [], n)


def _search(db: sqlite_utils.Database, match: str, where: str, args: list, n: int) -> list[tuple]:
    return db.execute(
        f"SELECT {_COLUMNS} FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
        f"WHERE messages_fts MATCH ? AND {_SENT} AND {where} "
        "ORDER BY bm25(messages_fts, 2.0, 1.0) LIMIT ?",
        [match, MIN_CHARS, *args, n],
    ).fetchall()


def _recent(db: sqlite_utils.Database, where: str, args: list, n: int) -> list[tuple]:
    return db.execute(
        f"SELECT {_COLUMNS} FROM messages m WHERE {_SENT} AND {where} ORDER BY m.date DESC LIMIT ?",
        [MIN_CHARS, *args, n],
    ).fetchall()


def recipient_name(db: sqlite_utils.Database, address: str) -> str:
    """The display name last used for ``address`` (as a sender, or in mail the user sent), or ""."""
    address = address.strip().lower()
    row = db.execute(
        "SELECT from_name FROM messages WHERE from_key = ? AND from_name != '' ORDER BY date DESC LIMIT 1",
        [normalize_address(address)],
    ).fetchone()
    if row:
        return row[0]
    row = db.execute(
        "SELECT json_extract(j.value, '$[0]') FROM messages m, json_each(m.to_json) j "
        "WHERE m.sent_by_me = 1 AND lower(m.to_json) LIKE ? AND lower(json_extract(j.value, '$[1]')) = ? "
        "AND json_extract(j.value, '$[0]') != '' ORDER BY m.date DESC LIMIT 1",
        [f'%"{address}"%', address],
    ).fetchone()
    return row[0] if row else ""
