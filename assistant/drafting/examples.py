"""Style examples: the user's own past emails most like the one to write, fitted into a token budget.

Ranking is SQLite FTS5's BM25 over the instruction's keywords, restricted to mail the user wrote themselves
(no machine mail, no forwards). With a recipient, mail the user sent to that person comes first (how you
write to your landlord is not how you write to your team), then mail to that person's organisation, then
any mail on the topic; with no keyword match at all, the most recent mail still shows the voice.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlite_utils

from assistant.identities import load_me
from assistant.mail.identity import normalize_address
from assistant.mail.subjects import prompt_subject
from assistant.store.recipients import index_recipients_pending

MIN_CHARS = 40  # "Thanks!" carries no style worth the tokens
MAX_KEYWORDS = 12
MAX_QUERY_WORDS = 6
COMMON_SHARE = 0.2  # a word in more than this share of all mail says nothing about the topic
SEEK_IDS = 4  # up to this many ids, FTS5 looks each one up; past it, one pass over the matches is cheaper
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


def _fold(text: str) -> str:
    """Lower-case without accents, as FTS5's unicode61 tokenizer stores words ("Zoë" → "zoe")."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def keywords(instruction: str) -> list[str]:
    """Content words of the instruction, in order, without stop words or duplicates."""
    seen: dict[str, None] = {}
    for w in re.findall(r"[^\W_]{3,}", _fold(instruction)):
        if w not in STOPWORDS and not w.isdigit():
            seen.setdefault(w)
    return list(seen)[:MAX_KEYWORDS]


def selective(db: sqlite_utils.Database, words: list[str]) -> list[str]:
    """The words that pick out a topic, rarest first: in the index, and not in every fifth email.

    Ranking costs time in proportion to the emails matched, and a word in most of them ("week", the
    company's name) adds nothing to the ranking; dropping such words keeps retrieval fast on 100k emails.
    """
    if not words:
        return []
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.mailvoice_vocab USING fts5vocab(main, 'messages_fts', 'row')")
    total = db.execute("SELECT count(*) FROM messages_fts_docsize").fetchone()[0]
    marks = ",".join("?" * len(words))
    docs = dict(db.execute(f"SELECT term, doc FROM temp.mailvoice_vocab WHERE term IN ({marks})", words).fetchall())
    present = sorted((w for w in words if docs.get(w)), key=docs.__getitem__)
    rare = [w for w in present if docs[w] <= COMMON_SHARE * total]
    return (rare or present[:2])[:MAX_QUERY_WORDS]


def fts_query(words: list[str]) -> str:
    """An FTS5 query matching any of ``words``; each is quoted so no word is read as FTS syntax."""
    return " OR ".join('"' + w.replace('"', "") + '"' for w in words)


# Tokens of an example's request (an instruction, the recipient, the length: prompting's ``example_request``) and
# of the role markers around it and the email; ``build_prompt`` counts the request as written, and drops an
# example that still does not fit.
EXAMPLE_OVERHEAD = 80


def format_example(subject: str, body: str) -> str:
    """What an example costs in the prompt, give or take :data:`EXAMPLE_OVERHEAD` (the subject as shown)."""
    return f"{prompt_subject(subject)}\n{body.strip()}"


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
    words = selective(db, keywords(instruction))
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
    if to and to.strip():
        mail = recipient_mail(db, to)
        if match and mail.person:
            yield "recipient", _search(db, match, mail.person, n)
        if mail.person:
            yield "recipient", _newest(db, mail.person, n)
        if match and mail.domain:
            yield "domain", _search(db, match, mail.domain, n)
    if match:
        yield "topic", _search(db, match, None, n)
    yield "recent", _newest(db, None, n)


def _search(db: sqlite_utils.Database, match: str, ids: list[int] | None, n: int) -> list[tuple]:
    """The ``n`` best BM25 matches among the user's usable sent mail (among ``ids`` when given).

    The best matches are ranked in the index alone, then joined to the messages and filtered: filtering
    every match first would read the body of each (``length(body)``), thousands on a large mailbox. When
    too few of the best survive the filter (mostly received or machine mail), the window widens.
    """
    among = ""
    if ids is not None:
        # FTS5 takes "rowid IN (...)" as one look-up per id, and each re-reads the words' match lists: past a
        # few ids, one pass over the matches with the ids as a filter ("+rowid": not offered to FTS5) is far
        # cheaper (at 100k emails, 200 ids and common words: 0.1 s instead of 5 s).
        among = f"AND {'' if len(ids) <= SEEK_IDS else '+'}rowid IN (SELECT value FROM json_each(?))"
    args = [match, *([json.dumps(ids)] if ids is not None else [])]
    query = (
        f"SELECT {_COLUMNS} FROM (SELECT rowid, bm25(messages_fts, 2.0, 1.0) AS score FROM messages_fts "
        f"WHERE messages_fts MATCH ? {among} ORDER BY score LIMIT ?) f JOIN messages m ON m.id = f.rowid "
        f"WHERE {_SENT} ORDER BY f.score LIMIT ?"
    )
    window, matched = max(n * 16, 200), None
    while True:
        rows = db.execute(query, [*args, window, MIN_CHARS, n]).fetchall()
        if len(rows) >= n:
            return rows
        if matched is None:
            matched = db.execute(f"SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ? {among}", args)
            matched = matched.fetchone()[0]
        if window >= matched:
            return rows
        window *= 8


def _newest(db: sqlite_utils.Database, ids: list[int] | None, n: int) -> list[tuple]:
    among = "AND m.id IN (SELECT value FROM json_each(?))" if ids is not None else ""
    return db.execute(
        f"SELECT {_COLUMNS} FROM messages m WHERE {_SENT} {among} ORDER BY m.date DESC LIMIT ?",
        [MIN_CHARS, *([json.dumps(ids[: n * 10])] if ids is not None else []), n],
    ).fetchall()


@dataclass
class RecipientMail:
    name: str  # the display name last used for the address, or ""
    person: list[int] = field(default_factory=list)  # the user's mail to the address, newest first
    organisation: Callable[[], list[int]] = list  # reads the user's mail to others at the same organisation

    @functools.cached_property
    def domain(self) -> list[int]:
        """The user's mail to others at the same organisation, newest first (read when first asked for: most
        drafts to someone the user writes to find their examples in the mail to that person alone)."""
        return self.organisation()


_recipients_cache: dict[tuple, RecipientMail] = {}


def recipient_mail(db: sqlite_utils.Database, address: str) -> RecipientMail:
    """What the user sent to ``address`` and to its organisation (cached until mail or identities change).

    Read from the recipients index (``sent_recipients``, see :mod:`assistant.store.recipients`): a look-up by
    address, and one by domain when asked for, however much mail is stored.
    """
    address = address.strip().lower()
    domain = address.rpartition("@")[2]
    key = (db.conn, db.execute("SELECT MAX(id) FROM messages").fetchone()[0], tuple(load_me(db)), address)
    if key in _recipients_cache:
        return _recipients_cache[key]
    index_recipients_pending(db)  # mail stored but not yet indexed (an import stopped before indexing) joins now
    rows = db.execute(
        "SELECT message, name FROM sent_recipients WHERE address = ? ORDER BY date DESC, message DESC", [address]
    ).fetchall()
    mail = RecipientMail(name=next((str(name) for _id, name in rows if name), ""), person=[r[0] for r in rows])
    if domain and domain not in PUBLIC_DOMAINS:
        mail.organisation = functools.partial(_organisation_mail, db, domain, frozenset(mail.person))
    sender = db.execute(
        "SELECT from_name FROM messages WHERE from_key = ? AND from_name != '' ORDER BY date DESC LIMIT 1",
        [normalize_address(address)],
    ).fetchone()
    mail.name = sender[0] if sender else mail.name  # how they sign their own mail wins
    if len(_recipients_cache) > 64:
        _recipients_cache.clear()
    _recipients_cache[key] = mail
    return mail


def organisation_mail(db: sqlite_utils.Database, address: str) -> list[int]:
    """The user's mail to anyone at ``address``'s organisation, the address itself among them, newest first; none
    at a public mail domain (see :func:`recipient_mail`, whose ``organisation`` leaves out the mail to the address)."""
    domain = address.strip().lower().rpartition("@")[2]
    if not domain or domain in PUBLIC_DOMAINS:
        return []
    index_recipients_pending(db)
    return _organisation_mail(db, domain, frozenset())


def _organisation_mail(db: sqlite_utils.Database, domain: str, person: frozenset[int]) -> list[int]:
    """The user's mail to ``domain`` not already in ``person``, newest first, each message once (a message to
    several people there is listed once per address)."""
    seen = set(person)
    out = []
    for (row_id,) in db.execute(
        "SELECT message FROM sent_recipients WHERE domain = ? ORDER BY date DESC, message DESC", [domain]
    ):
        if row_id not in seen:
            seen.add(row_id)
            out.append(row_id)
    return out


def recipient_name(db: sqlite_utils.Database, address: str) -> str:
    """The display name last used for ``address`` (as a sender, or in mail the user sent), or ""."""
    return recipient_mail(db, address).name
