"""Import throughput and memory against bare ``mailbox.mbox`` iteration, measured in the same run.

Usage (from the repository root, inside .venv):
    python bench/import_bench.py                    # 50,000 generated messages
    python bench/import_bench.py --messages 20000
    python bench/import_bench.py --big-gb 2         # also: peak memory importing a 2 GB mbox
    python bench/import_bench.py --without-recipient-triggers  # the store without the recipients index's triggers

Rates are messages per second; the import is the real ``mailvoice import`` command in a fresh data
folder (parse, clean, de-duplicate, store, index), with the whole process tree's memory sampled.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import mailbox
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from assistant.mail import generate as gen


def bare_compat32(path: Path) -> tuple[int, float, float]:
    """Messages, wall seconds and CPU seconds of plain ``mailbox.mbox`` iteration."""
    start, cpu = time.perf_counter(), time.process_time()
    box = mailbox.mbox(path)
    n = sum(1 for _ in box)
    box.close()
    return n, time.perf_counter() - start, time.process_time() - cpu


def bare_policy_default(path: Path, limit: int) -> tuple[int, float]:
    box = mailbox.mbox(path, factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default))
    start = time.perf_counter()
    n = 0
    for _ in box:
        n += 1
        if n >= limit:
            break
    box.close()
    return n, time.perf_counter() - start


def mail_parser_rate(path: Path, limit: int) -> tuple[int, float]:
    import mailparser

    raws = []
    box = mailbox.mbox(path, factory=None)
    for key in box.iterkeys():
        raws.append(box.get_bytes(key))
        if len(raws) >= limit:
            break
    box.close()
    start = time.perf_counter()
    for raw in raws:
        mailparser.parse_from_bytes(raw)
    return len(raws), time.perf_counter() - start


def drop_recipient_triggers(home: Path) -> None:
    """Create the store in ``home`` without the triggers that keep the recipients index (their cost, measured)."""
    from assistant.store import open_store

    db = open_store(home)
    for name in ("sent_recipients_ai", "sent_recipients_au", "sent_recipients_ad"):
        db.execute(f"DROP TRIGGER {name}")
    db.conn.close()


def run_import(path: Path, home: Path) -> tuple[dict, float, float, float]:
    """Run ``mailvoice import --json``; return (report, seconds, peak MB, CPU seconds of the process tree)."""
    exe = Path(sys.executable).with_name("mailvoice")
    env = dict(os.environ, MAILVOICE_HOME=str(home))
    start = time.perf_counter()
    proc = subprocess.Popen([str(exe), "import", str(path), "--json"], stdout=subprocess.PIPE, env=env)
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
    return json.loads(out), seconds, peak / 2**20, sum(cpu.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--big-gb", type=float, default=0.0)
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temp folder)")
    ap.add_argument("--without-recipient-triggers", action="store_true", help="import into a store without them")
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
    n, s, bare_cpu = bare_compat32(box)
    bare = n / s
    print(f"bare mailbox.mbox + compat32   {bare:8,.0f} msg/s   (1.00x)  {bare_cpu / n * 1e6:,.0f} µs CPU/msg")
    n2, s2 = bare_policy_default(box, 5000)
    print(f"mailbox.mbox + policy.default  {n2 / s2:8,.0f} msg/s   ({n2 / s2 / bare:.2f}x, first 5,000)")
    n3, s3 = mail_parser_rate(box, 5000)
    print(f"mail-parser (parse only)       {n3 / s3:8,.0f} msg/s   ({n3 / s3 / bare:.2f}x, first 5,000)")
    shutil.rmtree(work / "home", ignore_errors=True)
    if args.without_recipient_triggers:
        drop_recipient_triggers(work / "home")
    report, seconds, peak, cpu = run_import(box, work / "home")
    rate = report["seen"] / seconds
    cpu_per_msg = cpu / report["seen"]
    print(
        f"mailvoice import (end to end)  {rate:8,.0f} msg/s   ({rate / bare:.2f}x)  "
        f"{cpu_per_msg * 1e6:,.0f} µs CPU/msg ({bare_cpu / n / cpu_per_msg:.2f}x)  peak {peak:.0f} MB (PSS), "
        f"{report['imported']:,} imported, {report['duplicates']:,} duplicates, {len(report['skipped'])} skipped"
    )
    print(f"load average after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
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
