"""Estimates against measured times (BENCHMARKS.md, "Estimates against the time taken").

Reads work folders of ``bench/quality.py`` (each ran ``pairs build`` and ``train``, which print their estimate
beside the time taken, and record both in ``WORK/log.json``) and says, per set:

- ``pairs build``: the estimate it showed and the time it took, and the estimate this version would show for
  the same emails: its rule (the first few emails, then once more after a minute of labelling) replayed on the
  time each email took (``seconds`` of the run's pair cache, in the order they were labelled);
- ``train``: the estimate it showed, and the estimate this version makes for the same run: training tokens
  guessed from the pairs (what preflight says before the prompts are written) and counted from the prompts as
  written, at the rate this version assumes on this machine (the matrix benchmark, run here now: pin this
  script as the runs were pinned), beside the time the run took.

    OMP_NUM_THREADS=1 taskset -c 1 python bench/estimate_check.py /tmp/q/don /tmp/q/kay
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer import jobs, preflight  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.data import load_examples  # noqa: E402
from trainer.pairs.build import BuildProgress, BuildReport, _progress  # noqa: E402
from trainer.shapes import shape_of  # noqa: E402


def _ratio(estimate: float | None, took: float) -> str:
    return "–" if not estimate else f"{estimate:,.0f} s ({estimate / took:.2f}×)"


def replay_pairs(work: Path) -> float | None:
    """The last estimate ``pairs build`` makes with this version's rule (its own progress code, fed each email's
    labelling time in the order labelled)."""
    import sqlite3

    db = sqlite3.connect(f"file:{work / 'data' / 'mailvoice.db'}?mode=ro", uri=True)
    times = [row[0] for row in db.execute("SELECT seconds FROM pair_cache ORDER BY rowid")]
    db.close()
    state, report = BuildProgress("start", 0, len(times), 0, 0, 0.0), BuildReport()
    for done in range(1, len(times) + 1):
        _progress(lambda _p: None, state, times[:done], report, time.perf_counter())
    return report.estimate_seconds


def check(work: Path, rate: float) -> str:
    log = json.loads((work / "log.json").read_text())
    pairs, train = log["pairs"], log["train"]
    run = Path(train["run_dir"])
    cfg = TrainConfig.load(run / "config.json")
    examples = load_examples(run / "data.jsonl")
    guessed = jobs.estimate_tokens([dataclasses.replace(e, messages=None) for e in examples], cfg)
    written, n = jobs.written_tokens(run)
    trained = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["data"]["train_tokens"]
    return (
        f"| {work.name} | {_ratio(pairs.get('estimate_seconds'), pairs['seconds'])} "
        f"| {_ratio(replay_pairs(work), pairs['seconds'])} | {pairs['seconds']:,.0f} s "
        f"| {_ratio(train.get('estimated_seconds'), train['seconds'])} "
        f"| {_ratio(preflight.train_seconds(cfg, guessed, rate, n), train['seconds'])} "
        f"| {_ratio(preflight.train_seconds(cfg, written, rate, n), train['seconds'])} | {train['seconds']:,.0f} s "
        f"| {guessed:,} / {written:,} / {trained:,} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, nargs="+", help="bench/quality.py work folders that ran pairs and train")
    args = ap.parse_args()
    first_run = Path(json.loads((args.work[0] / "log.json").read_text())["train"]["run_dir"])
    cfg = TrainConfig.load(first_run / "config.json")
    rate = preflight.tokens_per_second(shape_of(cfg.base), "cpu", cfg.gradient_checkpointing)
    print(f"Assumed training rate on this machine now: {rate:,.1f} tokens/s (no earlier run to go by)\n")
    print("| set | pairs build: estimate shown | this version, replayed | took | train: estimate shown (that version) "
          "| this version, tokens guessed | this version, prompts written | took "
          "| tokens: guessed / written / trained |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for work in args.work:
        print(check(work, rate))


if __name__ == "__main__":
    main()
