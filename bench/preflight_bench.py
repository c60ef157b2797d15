"""The matrix benchmark behind the training estimate, on a core to itself and on a core shared with a busy program.

Usage (from the repository root, inside .venv), pinned to one core so the busy program shares it:
    OMP_NUM_THREADS=1 taskset -c 0 python bench/preflight_bench.py --rounds 7

Preflight turns a quick matrix-multiply benchmark into the training time it shows before a run
(``trainer.preflight.matmul_flops``). Each round measures, in a rotated order, two versions of that benchmark:
- before: the best of three rounds of four products of 768 x 768 float32 matrices (what preflight did on a CPU,
  and still does on a GPU with larger matrices: ``preflight.best_round``, which this baseline calls too);
- now: ``matmul_flops("cpu")``, the fastest of many products of 512 x 512 matrices for 0.3 s;
each on the core alone and beside a busy program on the same core (a child process spinning at normal priority,
started by this script for the measurement and ended after it). One torch thread, as training on one core.

Reported: median (min-max) GFLOP/s of each version in each condition, and per version the ratio shared / alone
(1.00: a busy neighbour does not change the estimate). With ``--runs WORK ...`` (``bench/quality.py`` work
folders that trained on this machine) also the training rate those runs reached, and the efficiency factor
(``trainer.preflight.EFFICIENCY``) that turns the current benchmark's median alone into it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trainer import preflight  # noqa: E402
from trainer.shapes import SHAPES  # noqa: E402

SPIN = "while True:\n    pass\n"


def before_flops() -> float:
    """The benchmark as it was: the best of three rounds of four 768 x 768 products."""
    import torch

    n = 768
    a = torch.randn(n, n)
    (a @ a).sum().item()
    return preflight.best_round(lambda: a @ a, 2 * n**3, lambda c: c.sum().item())


ARMS = {"before": before_flops, "now": lambda: preflight.matmul_flops("cpu")}


def measure(arm: str, shared: bool) -> float:
    neighbour = subprocess.Popen([sys.executable, "-c", SPIN]) if shared else None
    try:
        if neighbour:
            time.sleep(0.2)  # it is running
        return ARMS[arm]()
    finally:
        if neighbour:
            neighbour.kill()
            neighbour.wait()


def spread(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def trained_rates(works: list[Path]) -> list[float]:
    """tokens/s of each finished training run in the work folders (one per run folder, however many copies)."""
    rates: dict[str, float] = {}
    for work in works:
        for status in sorted((work / "data" / "runs").glob("*/status.json")):
            result = json.loads(status.read_text()).get("result") or {}
            if result.get("status") == "done" and result.get("tokens_per_second"):
                rates[status.parent.name] = float(result["tokens_per_second"])
    return list(rates.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", nargs="*", type=Path, default=[], help="bench/quality.py work folders")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    conditions = [(arm, shared) for arm in ARMS for shared in (False, True)]
    results: dict[tuple[str, bool], list[float]] = {c: [] for c in conditions}
    for r in range(args.rounds):
        for arm, shared in conditions[r % len(conditions) :] + conditions[: r % len(conditions)]:
            results[(arm, shared)].append(measure(arm, shared) / 1e9)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{platform.machine()}, {cores} CPU(s) for this process, torch {torch.__version__}, {args.rounds} rounds\n")
    print("| benchmark | core alone, GFLOP/s | core shared with a busy program | shared / alone |")
    print("|---|---:|---:|---:|")
    for arm in ARMS:
        alone, shared = results[(arm, False)], results[(arm, True)]
        ratios = [s / a for a, s in zip(alone, shared, strict=True)]
        print(f"| {arm} | {spread(alone)} | {spread(shared)} | {spread(ratios, 2)} |")
    rates = trained_rates(args.runs)
    if rates:
        per_token = 6 * SHAPES["smollm2-135m"].parameters  # checkpointing: forward, input gradients, recompute
        alone = statistics.median(results[("now", False)]) * 1e9
        rate = statistics.median(rates)
        print(
            f"\n{len(rates)} training runs of the embedded model: {spread(rates)} tokens/s; "
            f"efficiency against the current benchmark alone: {rate * per_token / alone:.3f} "
            f"(EFFICIENCY['cpu'] is {preflight.EFFICIENCY['cpu']})"
        )


if __name__ == "__main__":
    main()
