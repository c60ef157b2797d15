"""Keeping the recipients index (``sent_recipients``: who the user wrote to) up to date, in bulk, after mail is stored.

New messages are indexed by one ``INSERT OR IGNORE … SELECT`` over the messages stored since the last call,
not by a per-row trigger: storing mail with the trigger took 1.9 times the CPU of storing it without the index
(about 40 µs more per message), with the bulk fill at the end of an import 1.05 times, for the same index
(``bench/draft_bench.py --storing``). The highest indexed message id is kept in ``settings`` in the same
transaction, so a run killed between storing mail and indexing it is caught up by the next call (the next
import, or the next draft that reads the index), and indexing twice adds nothing.

Changes to stored mail (``mailvoice me`` re-marking it, deletes) are still followed by the update and delete
triggers of migration ``m008_recipients``: a message's rows are always those of its current state, whichever
of the trigger and the bulk statement wrote them.
"""

from __future__ import annotations

import sqlite_utils

KEY = "recipients_indexed_upto"  # settings: every message up to this id is in the index
_STEP = 20_000  # messages per transaction: a kill loses little, a transaction stays small

# The update trigger of m008_recipients holds the text of these two: a change here needs a new migration that
# re-creates that trigger, or messages re-marked and messages stored would be indexed by different rules.
_USABLE = "{row}.sent_by_me = 1 AND {row}.automated = 0 AND {row}.is_forward = 0"  # drafting's own mail
INSERT = "INSERT OR IGNORE INTO sent_recipients (address, date, message, domain, name)"


def _recipient_rows(row: str, source: str = "", among: str = "") -> str:
    """SELECT of the ``sent_recipients`` rows for the message ``row`` (``new`` in a trigger; an alias of
    ``source``, e.g. ``messages m``, in bulk, of the messages that also meet the condition ``among``): each
    address of To and Cc, with its domain and the name written with it, when the message is the user's own.
    Malformed JSON or entries are skipped, never an error: an error would fail the import."""
    parts = [
        f"SELECT lower(trim(json_extract(j.value, '$[1]'))) AS address, ifnull({row}.date, '') AS date, "
        f"{row}.id AS message, ifnull(json_extract(j.value, '$[0]'), '') AS name "
        f"FROM {source + ', ' if source else ''}json_each(CASE WHEN json_valid({row}.{column}) THEN {row}.{column} "
        f"ELSE '[]' END) j WHERE j.type = 'array' AND {_USABLE.format(row=row)}{among}"
        for column in ("to_json", "cc_json")
    ]
    return (
        "SELECT address, date, message, substr(address, instr(address, '@') + 1), name "
        f"FROM ({' UNION ALL '.join(parts)}) WHERE address LIKE '%_@_%'"
    )


def insert_trigger_sql() -> str:
    """The per-row insert trigger that kept the index from m008_recipients until m012_recipients_in_bulk (the
    benchmarks re-create it to measure what the bulk statement replaced)."""
    return f"""CREATE TRIGGER sent_recipients_ai AFTER INSERT ON messages WHEN {_USABLE.format(row="new")} BEGIN
            {INSERT} {_recipient_rows("new")};
        END"""


_BULK = f"{INSERT} {_recipient_rows('m', 'messages m', ' AND m.id > ? AND m.id <= ?')}"


def indexed_upto(db: sqlite_utils.Database) -> int:
    """The highest message id whose rows are in the index (every message up to it is)."""
    row = db.execute("SELECT value FROM settings WHERE key = ?", [KEY]).fetchone()
    return int(row[0]) if row else 0


def set_indexed_upto(db: sqlite_utils.Database, upto: int) -> None:
    """Record ``upto`` as the high-water mark (inside the caller's transaction)."""
    db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", [KEY, str(upto)])


def index_recipients_pending(db: sqlite_utils.Database) -> int:
    """Add the rows of every message stored since the last call to ``sent_recipients``; return how many rows
    were added. Costs two look-ups, and writes nothing, when no message is waiting."""
    added = 0
    while True:
        upto = indexed_upto(db)
        newest = db.execute("SELECT max(id) FROM messages").fetchone()[0]
        if newest is None or newest <= upto:
            return added
        last = min(newest, upto + _STEP)  # a step of ids holds about as many messages: the importer's are dense
        with db.conn:
            # Another connection indexing the same messages meanwhile adds nothing (OR IGNORE); a mark it set
            # higher and this one lowers only costs a second look at messages already indexed.
            cur = db.execute(_BULK, [upto, last, upto, last])
            set_indexed_upto(db, last)
        added += cur.rowcount
