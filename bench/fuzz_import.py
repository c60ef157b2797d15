"""Fuzzing the importer at scale: the mutations of tests/test_fuzz_import.py, by the ten thousand.

Usage (from the repository root, inside .venv):
    python bench/fuzz_import.py                      # 10,000 cases, seeds 0..9999, all CPUs
    python bench/fuzz_import.py --cases 500 --jobs 1
    python bench/fuzz_import.py --start 4242 --cases 1 --keep /tmp/case   # replay one case, keep its files

Case ``i`` is built from ``random.Random(i)``, so every line of the output can be reproduced. Prints the
counts (cases, messages seen, imported, skipped by reason) and every exception that escaped
``import_paths``, accounting mismatch or hang (a case over ``--limit`` seconds), with the seed that replays
it. Exit status 1 when there is any.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the mutations live with their test

import test_fuzz_import as fuzz  # noqa: E402


def reason_kind(reason: str) -> str:
    """Group skip reasons: the text before any detail, with the exception type for unreadable messages."""
    m = re.match(r"unreadable message \((\w+)", reason)
    if m:
        return f"unreadable message ({m.group(1)})"
    return re.split(r" \(|: /|: \[", reason, maxsplit=1)[0]


def run_one(seed: int, keep: str | None = None, limit: float = 10.0) -> dict:
    """Build and import case ``seed``; return its counts, or what went wrong."""
    case = fuzz.random_case(random.Random(seed))
    out: dict = {"seed": seed, "messages_written": len(case.messages)}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mailvoice-fuzz-") as tmp:
        work = Path(keep or tmp)
        try:
            report, db = fuzz.run_case(case, work, limit=limit)
        except fuzz.CaseTimeout as exc:  # a hang: where it was stuck is the useful part
            out["hang"] = f"{exc} ({_where(exc)})"
            out["traceback"] = traceback.format_exc()
            return out
        except Exception as exc:  # noqa: BLE001 - the finding this bench exists for
            out["exception"] = f"{type(exc).__name__}: {exc}"
            out["traceback"] = traceback.format_exc()
            return out
        out["seconds"] = time.perf_counter() - started
        accounted = report.imported + report.duplicates + report.outside_dates + len(report.skipped)
        stored = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        if accounted != report.seen or stored != report.imported or report.status != "done":
            out["mismatch"] = (
                f"seen {report.seen}, accounted {accounted}, stored {stored}, imported {report.imported}, "
                f"status {report.status}"
            )
        out.update(
            seen=report.seen,
            imported=report.imported,
            duplicates=report.duplicates,
            outside_dates=report.outside_dates,
            skipped=Counter(reason_kind(s.reason) for s in report.skipped),
        )
        db.conn.close()
    return out


def _where(exc: BaseException) -> str:
    """The innermost frame inside Mailvoice's own code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/assistant/" in f.filename]
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name}" if frames else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", help="with --cases 1: write the case's files and store here")
    parser.add_argument("--limit", type=float, default=10.0, help="seconds a case may take before it counts as a hang")
    args = parser.parse_args()
    seeds = range(args.start, args.start + args.cases)
    bases = fuzz.base_messages()
    source = "../shared/corpora" if fuzz.CORPORA.is_dir() else "generated mail (no ../shared/corpora)"
    print(f"fuzz_import: {args.cases:,} cases (seeds {seeds.start}..{seeds.stop - 1}), "
          f"{len(bases)} base messages from {source}, {len(fuzz.MUTATIONS)} mutations")  # fmt: skip
    started = time.perf_counter()
    if args.keep:
        results = [run_one(seed, args.keep, args.limit) for seed in seeds]
    else:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.starmap(run_one, [(seed, None, args.limit) for seed in seeds], chunksize=20)
    seconds = time.perf_counter() - started
    totals: Counter = Counter()
    reasons: Counter = Counter()
    failures = [r for r in results if "exception" in r or "mismatch" in r or "hang" in r]
    for r in results:
        totals.update({k: r.get(k, 0) for k in ("messages_written", "seen", "imported", "duplicates", "outside_dates")})
        reasons.update(r.get("skipped", {}))
    print(f"messages written: {totals['messages_written']:,} (each as an mbox entry and as a single file)")
    print(f"messages seen: {totals['seen']:,}  imported: {totals['imported']:,}  "
          f"duplicates: {totals['duplicates']:,}  outside dates: {totals['outside_dates']:,}  "
          f"skipped: {sum(reasons.values()):,}")  # fmt: skip
    for reason, n in reasons.most_common():
        print(f"  skipped {n:>7,}  {reason}")
    print(f"exceptions escaping import_paths: {sum('exception' in r for r in failures)}")
    print(f"accounting mismatches: {sum('mismatch' in r for r in failures)}")
    hangs = [r for r in failures if "hang" in r]
    print(
        f"hangs (a case over {args.limit:g} s): {len(hangs)}"
        + (f", seeds {[r['seed'] for r in hangs]}" if hangs else "")
    )
    for where, n in Counter(r["hang"] for r in hangs).most_common():
        print(f"  {n:>5}  {where}")
    done = [r for r in results if "seconds" in r]
    slowest = max(done, key=lambda r: r["seconds"], default=None)
    if slowest:
        print(f"slowest case that finished: {slowest['seconds']:.1f} s (seed {slowest['seed']})")
    print(f"time: {seconds:,.0f} s ({args.cases / seconds:,.1f} cases/s on {args.jobs} processes)")
    for r in failures[:10]:
        print(f"\n--- seed {r['seed']}: {r.get('exception') or r.get('mismatch') or r.get('hang')}")
        print(r.get("traceback", "").rstrip())
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
