"""Storing messages with a per-row full-text trigger against bulk indexing after the insert.

Usage: python bench/fts_bench.py [--messages 10000]
Builds real rows with the importer's own record builder from generated mail, then inserts them in
500-row transactions into fresh stores: once with an FTS5 insert trigger, once indexing in bulk afterwards
(what the importer does, ``assistant.store.fts.index_pending``). Prints µs per message for each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from assistant import importer
from assistant.store import open_store
from assistant.store.fts import index_pending

sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))  # mailgen: the test suite's mailbox generator

_TRIGGER = """CREATE TRIGGER bench_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body); END"""


def rows(n: int) -> list[tuple]:
    import mailgen as gen

    out, seen = [], set()
    for i, m in enumerate(gen.iter_messages(n * 2, seed=3)):
        r = importer.build_record(m.raw, False, m.folder)
        if isinstance(r, str) or r["message_id"] in seen:
            continue
        seen.add(r["message_id"])
        r.update(sent_by_me=0, automated=0, mail_class="received", size=len(m.raw), source_file="bench",
                 source_offset=i, import_run=1)
        out.append(importer._ROW(r))
        if len(out) >= n:
            break
    return out


def store(rows_: list[tuple], trigger: bool) -> float:
    db = open_store(Path(tempfile.mkdtemp(prefix="mailvoice-fts-")))
    if trigger:
        db.execute(_TRIGGER)
    start = time.perf_counter()
    for i in range(0, len(rows_), 500):
        with db.conn:
            db.conn.executemany(importer._INSERT, rows_[i : i + 500])
    if not trigger:
        index_pending(db)
    return (time.perf_counter() - start) / len(rows_) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10_000)
    data = rows(ap.parse_args().messages)
    print(f"{len(data):,} messages")
    print(f"per-row FTS trigger      {store(data, True):6.0f} µs/message (insert + index)")
    print(f"bulk index after insert  {store(data, False):6.0f} µs/message (insert + index)")


if __name__ == "__main__":
    main()
