"""How fast the Mail page's list and reading pane read a large archive (assistant/mail/browse.py).

Usage: python bench/browse_bench.py [--messages 100000] [--seed-messages 5000] [--rounds 5]

A generated mailbox of ``--seed-messages`` is imported with the real importer, then its rows are copied (each
copy two years older, its text made distinct) until the store holds ``--messages``, and indexed for search.
Prints the median milliseconds of: the first page of each class, a page deep in the list, walking every page,
searches (a common word, a word found nowhere), and one message's detail with its teaching verdict. Then the
same first pages without the indexes of migration m011_browse_order, for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from assistant.importer import import_paths
from assistant.mail.browse import KINDS, cursor_of, list_messages, message_detail
from assistant.store import open_store
from assistant.store.fts import index_pending

sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))  # mailgen: the test suite's mailbox generator


def build(root: Path, messages: int, seed_messages: int):
    import mailgen as gen

    box = root.parent / "seed.mbox"
    gen.write_mbox(box, gen.generate_messages(seed_messages, seed=5))
    db = open_store(root)
    import_paths(db, [box])
    columns = [c for c in db["messages"].columns_dict if c not in ("id", "message_id", "content_hash", "date", "body")]
    names = ", ".join(columns)
    seeded = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    copy = 1
    while db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] < messages:
        with db.conn:
            db.execute(
                f"INSERT INTO messages (message_id, content_hash, date, body, {names}) "
                f"SELECT message_id || '.copy{copy}', content_hash || '.copy{copy}', "
                f"datetime(date, '-{copy * 730} days'), body || ' ({copy})', {names} FROM messages "
                "WHERE id <= ? LIMIT ?",
                [seeded, messages - db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]],
            )
        copy += 1
    index_pending(db)
    return db


def timed(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def walk(db) -> int:
    after, n = None, 0
    while True:
        page = list_messages(db, after=after)
        n += len(page)
        if len(page) < 200:
            return n
        after = cursor_of(page[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--seed-messages", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailvoice-browse-") as tmp:
        db = build(Path(tmp) / "home", args.messages, args.seed_messages)
        total = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        print(f"{total:,} stored messages; median of {args.rounds} runs\n")
        deep = list_messages(db, after=cursor_of(list_messages(db, limit=total - 300)[-1]))
        mine = db.execute(  # half of the user's mail is newer: the duplicate check reads it
            "SELECT id FROM messages WHERE sent_by_me = 1 ORDER BY date DESC LIMIT 1 OFFSET "
            "(SELECT COUNT(*) / 2 FROM messages WHERE sent_by_me = 1)"
        ).fetchone()[0]
        rows = [(f"first page: {kind}", timed(lambda k=kind: list_messages(db, k), args.rounds)) for kind in KINDS]
        rows += [
            ("a page 300 rows from the end", timed(lambda: list_messages(db, after=cursor_of(deep[0])), args.rounds)),
            (f"every page, one after another ({walk(db):,} rows)", timed(lambda: walk(db), 1)),
            ("search: a common word (budget)", timed(lambda: list_messages(db, query="budget"), args.rounds)),
            ("search: a word found nowhere", timed(lambda: list_messages(db, query="zzzqqq"), args.rounds)),
            (
                "your median email, as the pane shows it first",
                timed(lambda: message_detail(db, mine, with_teaching=False), args.rounds),
            ),
            ("your median email, with its verdict", timed(lambda: message_detail(db, mine), args.rounds)),
        ]
        db.execute("DROP INDEX messages_date")
        db.execute("DROP INDEX messages_class_date")
        rows += [(f"without the indexes: first page: {k}", timed(lambda k=k: list_messages(db, k), args.rounds))
                 for k in ("all", "yours")]  # fmt: skip
        print("| Step | ms |\n|---|---:|")
        for name, ms in rows:
            print(f"| {name} | {ms:,.1f} |")


if __name__ == "__main__":
    main()
