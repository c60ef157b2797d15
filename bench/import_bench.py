"""Import throughput and memory against bare ``mailbox.mbox`` iteration, measured in the same run.

Usage (from the repository root, inside .venv):
    nice taskset -c 0,1 python bench/import_bench.py --messages 20000 --rounds 5   # the comparison, pinned
    python bench/import_bench.py                    # 50,000 generated messages, on every CPU it may use
    python bench/import_bench.py --big-gb 2         # also: peak memory importing a 2 GB mbox
    python bench/import_bench.py --recipients-by trigger   # the recipients index kept by an insert trigger
    taskset -c 0 python bench/import_bench.py --messages 20000 --compare-recipients 7   # the three, alternating
    taskset -c 0 python bench/import_bench.py --messages 10000 --profile   # CPU per message of each stage

Rates are messages per second; the import is the real ``mailvoice import`` command in a fresh data
folder (parse, clean, de-duplicate, store, index), with the whole process tree's memory sampled. Every variant
reads and parses every message of the same mbox, each round in a rotated order: the bare compat32 loop (the
baseline), the same loop with ``policy.default`` and with mail-parser, all on the first CPU this process may
use, and the import on that CPU alone and on all of them (see :func:`compare_import`).

The recipients index (``sent_recipients``) can be kept three ways, to measure what it costs an import:
``bulk`` (today: filled after the mail is stored, assistant/store/recipients.py), ``trigger`` (the code before:
a trigger on each insert, re-created here, and no bulk fill) and ``none`` (no index at all: its triggers
dropped, no bulk fill). ``--compare-recipients N`` imports the same mbox N rounds, each variant once per round in
a rotated order, and prints the median and spread of each; pin it (``taskset -c 0``) so that every variant gets
the same CPU.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import mailbox
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))  # mailgen: the test suite's mailbox generator


def bare_compat32(path: Path) -> tuple[int, float, float]:
    """Messages, wall seconds and CPU seconds of plain ``mailbox.mbox`` iteration (compat32 parser)."""
    start, cpu = time.perf_counter(), time.process_time()
    box = mailbox.mbox(path)
    n = sum(1 for _ in box)
    box.close()
    return n, time.perf_counter() - start, time.process_time() - cpu


def bare_policy_default(path: Path) -> tuple[int, float, float]:
    """The same iteration of every message with the ``policy.default`` parser."""
    start, cpu = time.perf_counter(), time.process_time()
    box = mailbox.mbox(path, factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default))
    n = sum(1 for _ in box)
    box.close()
    return n, time.perf_counter() - start, time.process_time() - cpu


def mail_parser_rate(path: Path) -> tuple[int, float, float]:
    """The same iteration of every message, each parsed by mail-parser (its own parse, from the bytes)."""
    import mailparser

    start, cpu = time.perf_counter(), time.process_time()
    box = mailbox.mbox(path, factory=None)
    n = 0
    for key in box.iterkeys():
        mailparser.parse_from_bytes(box.get_bytes(key))
        n += 1
    box.close()
    return n, time.perf_counter() - start, time.process_time() - cpu


RECIPIENTS_BY = {
    "bulk": "filled in bulk after the mail is stored (today)",
    "trigger": "kept by a trigger on each insert (before)",
    "none": "no recipients index",
}

# Runs the ``mailvoice`` command line: on the CPUs given (before the importer is imported: it starts one parser
# process per CPU it may use), without the importer's bulk fill of the recipients index when asked (every
# variant starts the same way, so only the indexing differs), serially when asked, and writes the process's own
# CPU seconds when it ends (exact, where sampling misses the last tenth of a second: the end of the import).
_LAUNCH = """
import os, resource, sys
bulk, mode, usage, cpus = sys.argv[1:5]
if cpus:
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
from assistant import importer
if bulk == "no-bulk":
    importer.index_recipients_pending = lambda db: 0
if mode == "serial":
    importer.PARALLEL_MIN_BYTES = float("inf")
from assistant.cli import main
sys.argv = ["mailvoice", *sys.argv[5:]]
try:
    main()
finally:
    own = resource.getrusage(resource.RUSAGE_SELF)
    open(usage, "w").write(str(own.ru_utime + own.ru_stime))
"""


def prepare_store(home: Path, recipients_by: str) -> None:
    """Create the store in ``home`` with the recipients index kept as ``recipients_by`` says."""
    from assistant.store import open_store
    from assistant.store.recipients import insert_trigger_sql

    db = open_store(home)
    if recipients_by == "trigger":
        db.execute(insert_trigger_sql())
    elif recipients_by == "none":
        for name in ("sent_recipients_au", "sent_recipients_ad"):
            db.execute(f"DROP TRIGGER {name}")
    db.conn.close()


def run_import(
    path: Path,
    home: Path,
    recipients_by: str = "bulk",
    serial: bool = False,
    cpus: set[int] | None = None,
    code: Path | None = None,
) -> tuple[dict, float, float, float]:
    """Run ``mailvoice import --json``; return (report, seconds, peak MB, CPU seconds of the process tree).

    ``serial``: parse in the import process itself, never in workers (so the CPU time is all exact).
    ``cpus``: the CPUs the import may use (default: this process's); it starts a parser process for each.
    ``code``: a checkout of Mailvoice whose importer to run (default: this one)."""
    env = dict(os.environ, MAILVOICE_HOME=str(home))
    usage = home.with_name(home.name + ".cpu")
    bulk = "bulk" if recipients_by == "bulk" else "no-bulk"
    where = ",".join(str(c) for c in sorted(cpus)) if cpus else ""
    args = [bulk, "serial" if serial else "parallel", str(usage), where, "import", str(path), "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCH, *args], stdout=subprocess.PIPE, env=env, cwd=code)
    peak = 0
    cpu: dict[int, float] = {}  # latest CPU seconds seen per process of the tree (workers included)
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            procs = [parent, *parent.children(recursive=True)]
            # PSS: each process's private memory plus its share of pages shared with the others
            # (libpython, numpy...), so the sum is what the import really costs the machine.
            peak = max(peak, sum(p.memory_full_info().pss for p in procs if p.is_running()))
            for p in procs:
                times = p.cpu_times()
                cpu[p.pid] = times.user + times.system
        except psutil.Error:
            pass
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else b""
    cpu[proc.pid] = float(usage.read_text())
    usage.unlink()
    return json.loads(out), seconds, peak / 2**20, sum(cpu.values())


def _spread(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return f"{statistics.median(xs):,.1f} (IQR {q[0]:,.1f}–{q[2]:,.1f}, {min(xs):,.1f}–{max(xs):,.1f})"


def _indexed(home: Path) -> int:
    conn = sqlite3.connect(home / "mailvoice.db")
    try:
        return conn.execute("SELECT count(*) FROM sent_recipients").fetchone()[0]
    finally:
        conn.close()


def compare_recipients(box: Path, work: Path, rounds: int) -> None:
    """Import ``box`` ``rounds`` times with each way of keeping the recipients index, in a rotated order.

    Serially (pinned to one CPU, workers would only take turns with the import process), so that the CPU time
    of each import is read exactly."""
    names = list(RECIPIENTS_BY)
    got: dict[str, list[tuple[float, float]]] = {v: [] for v in names}  # (µs CPU per message, msg/s)
    indexed: dict[str, int] = {}  # the bulk fill and the trigger must give the same index
    for r in range(-1, rounds):  # round -1 warms the page cache and the interpreter's files up, and is not kept
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            home = work / f"home-{name}"
            shutil.rmtree(home, ignore_errors=True)
            prepare_store(home, name)
            report, seconds, _peak, cpu = run_import(box, home, name, serial=True)
            rows = _indexed(home)
            assert rows == (0 if name == "none" else indexed.setdefault("rows", rows)), f"{name}: {rows} rows"
            if r >= 0:
                got[name].append((cpu / report["seen"] * 1e6, report["seen"] / seconds))
        if r >= 0:
            print(f"  round {r + 1} ({', '.join(order)}): "
                  + ", ".join(f"{v} {got[v][-1][0]:,.0f}" for v in names) + " µs CPU/msg", flush=True)  # fmt: skip
    base = got["none"]
    print(f"\n{rounds} rounds, median (IQR, min–max); ratios per round against no index, then their median:")
    print("| recipients index | CPU per message (µs) | vs none | import rate (msg/s) | vs none |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        cpu = [x[0] for x in got[name]]
        rate = [x[1] for x in got[name]]
        cpu_ratio = statistics.median(x[0] / b[0] for x, b in zip(got[name], base, strict=True))
        rate_ratio = statistics.median(x[1] / b[1] for x, b in zip(got[name], base, strict=True))
        print(f"| {name}: {RECIPIENTS_BY[name]} | {_spread(cpu)} | {cpu_ratio:.3f}× | {_spread(rate)} "
              f"| {rate_ratio:.3f}× |")  # fmt: skip


PARSERS = {
    "bare": "bare `mailbox.mbox` + compat32",
    "policy.default": "`mailbox.mbox` + `policy.default`",
    "mail-parser": "`mailbox.mbox` bytes + mail-parser",
}


def compare_import(
    box: Path, work: Path, rounds: int, parsers: bool = True, recipients_by: str = "bulk", before: Path | None = None
) -> None:
    """Every variant reads and parses every message of ``box``, each round in a rotated order, on pinned CPUs.

    The bare loops run in this process on the first CPU it may use; ``mailvoice import`` runs as a child process
    on that CPU alone (one process: it parses in-process), and on all of this process's CPUs (a parser process
    per CPU, the import process storing). Ratios are per round against the bare loop of that round. ``before``:
    a checkout of earlier code, whose import also runs on that one CPU (in-process, as this one's does there)."""
    cpus = sorted(os.sched_getaffinity(0))
    one = {cpus[0]}
    loops = {"bare": bare_compat32}
    if parsers:
        loops |= {"policy.default": bare_policy_default, "mail-parser": mail_parser_rate}
    imports = {f"import, 1 CPU (CPU {cpus[0]})": one}
    if before:
        imports[f"import before ({before.name}), 1 CPU (CPU {cpus[0]})"] = one
    if len(cpus) > 1:
        imports[f"import, {len(cpus)} CPUs ({', '.join(map(str, cpus))})"] = set(cpus)
    names = [*loops, *imports]
    got: dict[str, list[tuple[float, float]]] = {v: [] for v in names}  # (msg/s, µs CPU per message)
    peaks: dict[str, list[float]] = {v: [] for v in imports}
    counts: dict[str, int] = {}
    for r in range(-1, rounds):  # round -1 warms the page cache and the interpreter's files up, and is not kept
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if name in loops:
                os.sched_setaffinity(0, one)
                try:
                    n, seconds, cpu = loops[name](box)
                finally:
                    os.sched_setaffinity(0, cpus)
            else:
                home = work / "home"
                shutil.rmtree(home, ignore_errors=True)
                prepare_store(home, recipients_by)
                old = before if name.startswith("import before") else None
                others = set(cpus) - imports[name]
                if others:  # this process samples the import's memory: not on the CPU the import was given
                    os.sched_setaffinity(0, others)
                try:
                    report, seconds, peak, cpu = run_import(
                        box, home, recipients_by, serial=imports[name] == one, cpus=imports[name], code=old
                    )
                finally:
                    os.sched_setaffinity(0, cpus)
                n = report["seen"]
                if r >= 0:
                    peaks[name].append(peak)
            assert counts.setdefault(name, n) == n
            if r >= 0:
                got[name].append((n / seconds, cpu / n * 1e6))
        if r >= 0:
            print(f"  round {r + 1}: " + ", ".join(f"{v} {got[v][-1][0]:,.0f} msg/s" for v in names), flush=True)
    bare = got["bare"]
    print(f"\n{rounds} rounds, median (min–max); ratios per round against the bare loop, then their median (min–max):")
    print("| | messages | msg/s | vs bare | CPU µs/msg | bare's CPU per message ÷ this one's |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        rate = [x[0] for x in got[name]]
        cpu = [x[1] for x in got[name]]
        ratio = [x[0] / b[0] for x, b in zip(got[name], bare, strict=True)]
        cpu_ratio = [b[1] / x[1] for x, b in zip(got[name], bare, strict=True)]
        what = name.removeprefix("import").lstrip(",")
        label = PARSERS.get(
            name, f"**`mailvoice import`,{what}**" if name.startswith("import,") else f"`mailvoice import`{what}"
        )
        print(f"| {label} | {counts[name]:,} | {_mid(rate, ',.0f')} | {_mid(ratio, '.2f')}× | {_mid(cpu, ',.0f')} "
              f"| {_mid(cpu_ratio, '.2f')}× |")  # fmt: skip
    for name, mb in peaks.items():
        print(f"peak memory, {name}: {max(mb):.0f} MB (PSS, all processes)")
    print("messages/s per round: " + "; ".join(f"{v} " + ", ".join(f"{x[0]:,.0f}" for x in got[v]) for v in names))


def profile_import(box: Path, work: Path) -> None:
    """CPU time per message of each stage of one import, in this process and serially (one CPU's work).

    ``PYTHONPATH=CHECKOUT`` profiles another checkout's importer the same way."""
    from assistant import importer
    from assistant.mail import parse
    from assistant.store import open_store

    spent: dict[str, float] = {}

    def timed(owner: Any, name: str, key: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[key] = spent.get(key, 0.0) + time.process_time() - start

        setattr(owner, name, wrapper)

    def timed_iter(owner: Any, name: str, key: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            items = inner(*args, **kwargs)
            while True:
                start = time.process_time()
                try:
                    item = next(items)
                except StopIteration:
                    return
                finally:
                    spent[key] = spent.get(key, 0.0) + time.process_time() - start
                yield item

        setattr(owner, name, wrapper)

    importer.PARALLEL_MIN_BYTES = float("inf")
    timed_iter(importer, "iter_file", "read")
    timed(importer, "build_record", "row")
    timed(importer, "parse_message", "decode")
    timed(parse if hasattr(parse, "message_from_bytes") else email, "message_from_bytes", "parse")  # (older code)
    timed(importer, "clean_body", "clean")
    timed(importer._Run, "flush", "store")
    timed(importer, "index_pending", "fts")
    timed(importer, "index_recipients_pending", "recipients")
    timed(importer, "assign_threads", "threads")
    timed(importer, "class_list_threads", "threads")
    timed(importer, "adopt_if_obvious", "me")
    home = work / "home-profile"
    shutil.rmtree(home, ignore_errors=True)
    db = open_store(home)
    start = time.process_time()
    report = importer.import_paths(db, [box])
    total = time.process_time() - start
    n = report.seen
    stages = [
        ("splitting the mbox and reading each message", spent["read"]),
        ("compat32 parsing (`email` feed parser)", spent["parse"]),
        ("headers, addresses, date, charsets, body parts, HTML to text", spent["decode"] - spent["parse"]),
        ("own words apart from quotes, signature, footers", spent["clean"]),
        ("the rest of the row (content hash, sender, automated mail, JSON)",
         spent["row"] - spent["decode"] - spent["clean"]),
        ("de-duplicating and storing (500-row transactions)", spent["store"]),
        ("full-text indexing (in bulk at the end)", spent["fts"]),
        ("recipients index (in bulk at the end)", spent["recipients"]),
        ("threads", spent["threads"]),
        ("finding who you are (no `--me` given)", spent["me"]),
    ]  # fmt: skip
    stages.append(("everything else (per-message bookkeeping, progress, the run's records)",
                   total - sum(s for _, s in stages)))  # fmt: skip
    print(f"\nOne import of {n:,} messages ({importer.__file__}), serially: CPU µs per message by stage")
    print("| stage | CPU µs/msg | share |")
    print("|---|---:|---:|")
    for label, seconds in stages:
        print(f"| {label} | {seconds / n * 1e6:,.1f} | {seconds / total:.0%} |")
    print(f"| **all** | **{total / n * 1e6:,.1f}** | |")
    db.conn.close()


def _mid(xs: list[float], fmt: str) -> str:
    return f"{statistics.median(xs):{fmt}} ({min(xs):{fmt}}–{max(xs):{fmt}})"


def main() -> None:
    import mailgen as gen

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5, help="rounds of every variant, in a rotated order")
    ap.add_argument("--compat32-only", action="store_true", help="leave out the policy.default and mail-parser loops")
    ap.add_argument("--before", type=Path, help="a checkout of earlier code: its import runs too, on one CPU")
    ap.add_argument("--profile", action="store_true", help="only: CPU per message of each stage of one import")
    ap.add_argument("--big-gb", type=float, default=0.0)
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temp folder)")
    ap.add_argument(
        "--recipients-by",
        choices=list(RECIPIENTS_BY),
        default="bulk",
        help="how the recipients index is kept: " + "; ".join(f"{k}: {v}" for k, v in RECIPIENTS_BY.items()),
    )
    ap.add_argument(
        "--without-recipient-triggers",
        action="store_const",
        const="none",
        dest="recipients_by",
        help="the same as --recipients-by none",
    )
    ap.add_argument(
        "--compare-recipients",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="import ROUNDS times with each --recipients-by in a rotated order; print median and spread",
    )
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="mailvoice-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    box = work / "bench.mbox"
    t = time.perf_counter()
    if not box.exists():  # a kept work folder reuses its mbox
        gen.write_mbox(box, gen.iter_messages(args.messages, seed=1))
    print(
        f"generated {args.messages:,} messages, {box.stat().st_size / 2**20:.0f} MB in {time.perf_counter() - t:.1f}s"
    )
    print(f"CPUs this process may use: {sorted(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.1f}")
    if args.profile:
        profile_import(box, work)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
        return
    if args.compare_recipients:
        compare_recipients(box, work, args.compare_recipients)
        print(f"load average after the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
        return
    compare_import(box, work, args.rounds, not args.compat32_only, args.recipients_by, args.before)
    if args.big_gb:
        big = work / "big.mbox"
        if not big.exists():
            gen.write_mbox_bytes_target(big, int(args.big_gb * 2**30), seed=2)
        shutil.rmtree(work / "home-big", ignore_errors=True)
        report, seconds, peak, cpu = run_import(big, work / "home-big")
        print(
            f"{big.stat().st_size / 2**30:.2f} GB mbox: {report['seen']:,} messages in {seconds:.0f}s "
            f"({report['seen'] / seconds:,.0f} msg/s), peak memory {peak:.0f} MB (all processes)"
        )
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
