"""Filing accuracy on real folders, and how fast triage goes without the model.

Usage: python bench/triage_bench.py [--shared ../shared] [--triage 10000] [--rounds 3] [--skip-speed]

Filing: each of the two Enron maildirs in ``corpora/kxsystems-mlnotebooks/data/enron/`` (lay-k, skilling-j) is
imported into its own store; received mail filed somewhere (views, Sent and system folders left out, as the
app does) is split per folder, the newest 20% of each folder held out. Three classifiers learn from the rest and
are scored on the holdout, top-1 and top-3: the majority folder, TF-IDF of the words into logistic regression
(scikit-learn defaults), and Mailvoice's filing model (the same words plus sender, recipients and list).

Speed: all of ``corpora/`` (8,622 messages once stored) and, to reach N, a mailbox from the test suite's
generator are imported into one store, and the newest N messages are triaged (rules, filing model trained
first, originals read for dates and invitations; no model), one process on one pinned core (taskset), several
rounds; messages per second, median and spread.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAILVOICE = [str(Path(sys.executable).parent / "mailvoice")]


def import_into(data: Path, source: Path) -> None:
    subprocess.run([*MAILVOICE, "--data-dir", str(data), "import", str(source)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def holdout(rows: list[dict], folders: list[str], share: float = 0.2) -> tuple[list[int], list[int]]:
    """Indices to learn from and to test on: the newest ``share`` of each folder (at least one) held out."""
    by_folder: dict[str, list[int]] = defaultdict(list)
    for i, folder in enumerate(folders):
        by_folder[folder].append(i)
    test: set[int] = set()
    for ids in by_folder.values():
        ids.sort(key=lambda i: (rows[i]["date"] or "", rows[i]["id"]))
        test.update(ids[len(ids) - max(1, round(len(ids) * share)):])
    return [i for i in range(len(rows)) if i not in test], sorted(test)


def scores(pipeline, train_x, train_y, test_x, test_y) -> tuple[float, float]:
    pipeline.fit(train_x, train_y)
    probs = pipeline.predict_proba(test_x)
    classes = list(pipeline.classes_)
    top1 = top3 = 0
    for row, truth in zip(probs, test_y, strict=True):
        best = sorted(range(len(classes)), key=lambda i: -row[i])[:3]
        top1 += classes[best[0]] == truth
        top3 += truth in [classes[i] for i in best]
    return top1 / len(test_y), top3 / len(test_y)


def filing_accuracy(shared: Path, work: Path) -> list[dict]:
    from assistant.inbox import filing
    from assistant.store import open_store

    out = []
    for person in ("lay-k", "skilling-j"):
        data = work / person
        import_into(data, shared / "corpora/kxsystems-mlnotebooks/data/enron" / person)
        db = open_store(data)
        cols = ", ".join(filing.COLUMNS)
        every = [dict(zip(filing.COLUMNS, r, strict=True)) for r in db.execute(f"SELECT {cols} FROM messages")]
        rows, folders = filing.labelled(every)
        train, test = holdout(rows, folders)
        x = filing._frame(rows)
        tx, ty = [x[i] for i in train], [folders[i] for i in train]
        ex, ey = [x[i] for i in test], [folders[i] for i in test]
        majority = Counter(ty).most_common(1)[0][0]
        second = [f for f, _ in Counter(ty).most_common(3)]
        result = {
            "person": person, "folders": len(set(folders)), "train": len(train), "test": len(test),
            "majority": (sum(y == majority for y in ey) / len(ey), sum(y in second for y in ey) / len(ey)),
            "tfidf_lr": scores(filing.baseline_pipeline(), tx, ty, ex, ey),
            "mailvoice": scores(filing.make_pipeline(), tx, ty, ex, ey),
        }  # fmt: skip
        out.append(result)
    return out


def speed(shared: Path, work: Path, n: int, rounds: int) -> dict:
    data = work / "all"
    import_into(data, shared / "corpora")
    from assistant.store import open_store

    have = open_store(data).execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    if have < n:
        sys.path.insert(1, str(REPO / "tests"))  # mailgen: the test suite's mailbox generator
        import mailgen

        mbox = work / "generated.mbox"
        mailgen.write_mbox(mbox, mailgen.iter_messages(int((n - have) * 1.3) + 50, seed=11))
        import_into(data, mbox)
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from assistant.store import open_store\n"
        "from assistant.inbox import filing, triage\n"
        f"root = Path({str(data)!r}); db = open_store(root)\n"
        "filing.load_or_train(db, root)\n"
        f"start = time.perf_counter(); s = triage.run(db, root, limit={n}, again=True)\n"
        "print(s.triaged, time.perf_counter() - start)\n"
    )
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    runs = []
    for _ in range(rounds):
        done = subprocess.run([*pin, sys.executable, "-c", code], check=True, capture_output=True, text=True)
        count, seconds = done.stdout.split()
        runs.append((int(count), float(seconds)))
    rates = [c / s for c, s in runs]
    return {"messages": runs[0][0], "seconds": statistics.median(s for _, s in runs),
            "rate": statistics.median(rates), "spread": (min(rates), max(rates)), "pinned": bool(pin)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--triage", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if not (args.shared / "corpora").is_dir():
        sys.exit(f"{args.shared / 'corpora'} is not there: give --shared.")
    work = Path(tempfile.mkdtemp(prefix="mailvoice-triage-bench-"))
    try:
        print("Filing on the Enron holdout (newest 20% of each folder), top-1 / top-3:")
        print(f"{'person':<11} {'folders':>7} {'train':>6} {'test':>5}  {'majority':>13}  {'TF-IDF + LR':>13}  "
              f"{'Mailvoice':>13}")  # fmt: skip
        for r in filing_accuracy(args.shared, work):
            cells = "  ".join(f"{r[k][0]:6.3f}/{r[k][1]:.3f}" for k in ("majority", "tfidf_lr", "mailvoice"))
            print(f"{r['person']:<11} {r['folders']:>7} {r['train']:>6} {r['test']:>5}  {cells}")
        if not args.skip_speed:
            s = speed(args.shared, work, args.triage, args.rounds)
            print(f"\nTriage without the model: {s['messages']:,} messages in {s['seconds']:.1f} s (median of "
                  f"{args.rounds}), {s['rate']:.0f} messages/s (spread {s['spread'][0]:.0f}-{s['spread'][1]:.0f})"
                  f"{', one pinned core' if s['pinned'] else ''}.")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
