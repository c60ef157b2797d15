"""What recording a correction adds to saving an edited draft (BENCHMARKS.md, "Saving an edit").

Saving an edit of a draft (``assistant.drafting.drafts.update_draft``) now also records the correction (the
edit distance of the two texts and one row, ``assistant.drafting.corrections.capture``). Both sides save the
same edits of the same drafts in the same store, one process on one pinned core, alternating rounds: the
baseline is the same save with the recording switched off. Texts are real-sized emails (1–3 KB) with a rewrite.

    python bench/capture_bench.py --rounds 7 --saves 200
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = ["budget", "review", "friday", "monday", "numbers", "draft", "slides", "meeting", "invoice", "team", "plan",
         "quarter", "thanks", "please", "could", "would", "should", "tomorrow", "next", "week", "send", "update"]


def email(rng: random.Random, words: int) -> str:
    paragraphs = []
    while words > 0:
        n = min(words, rng.randint(25, 60))
        paragraphs.append(" ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + ".")
        words -= n
    return "Hi Rosa,\n\n" + "\n\n".join(paragraphs) + "\n\nBest,\nAlex"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--saves", type=int, default=200, help="saves per side per round")
    args = ap.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    os.environ["MAILVOICE_HOME"] = tempfile.mkdtemp()

    from assistant.drafting import drafts
    from assistant.drafting.drafts import save_draft, update_draft
    from assistant.workspace import Workspace

    db = Workspace().db
    rng = random.Random(1)
    texts = [email(rng, rng.randint(180, 450)) for _ in range(args.saves)]
    ids = [save_draft(db, instruction="ask Rosa", reply=None, recipient="rosa@example.org", subject="", text=t,
                      model="m.gguf", adapter="", params={}, seconds=1.0, tokens=300) for t in texts]  # fmt: skip
    edits = [t.replace("Rosa", "Rosie").replace("monday", "tuesday") + "\n\nPS: see you there." for t in texts]
    real_capture = drafts.capture
    timings: dict[str, list[float]] = {"with recording": [], "without": []}
    for r in range(args.rounds):
        for side in (("with recording", "without") if r % 2 == 0 else ("without", "with recording")):
            drafts.capture = real_capture if side == "with recording" else (lambda *a, **k: None)
            t0 = time.perf_counter()
            for draft_id, text in zip(ids, edits, strict=True):
                update_draft(db, draft_id, text + f" {r}")
            timings[side].append((time.perf_counter() - t0) / len(ids) * 1000)
    drafts.capture = real_capture
    print(f"{'':16} {'median ms/save':>15} {'min':>7} {'max':>7}")
    for side, values in timings.items():
        print(f"{side:16} {statistics.median(values):15.3f} {min(values):7.3f} {max(values):7.3f}")
    added = statistics.median(timings["with recording"]) - statistics.median(timings["without"])
    ratio = statistics.median(timings["with recording"]) / statistics.median(timings["without"])
    print(f"recording adds {added:.3f} ms per save ({ratio:.2f}x the save alone); "
          f"{args.rounds} rounds x {args.saves} saves, one pinned core")  # fmt: skip


if __name__ == "__main__":
    main()
