"""Learning from edits, measured (QUALITY.md, "Learning from edits"): simulated corrections, a preference
refresh, and what it changed.

Starts from a work folder of ``bench/quality.py`` (its data folder holds the set's pairs and a trained adapter):

1. **simulate**: for ``--n`` training pairs (drawn with ``--seed``), the adapter drafts the pair's instruction
   (with the email it answers) as a user would ask for it, and the user "keeps" the real email they sent: a
   correction (``assistant.drafting.corrections.capture``), the model's draft rejected, the real email chosen.
   They are made a minute apart, so the newest tenth (held out by time) is the last drawn.
2. **refresh**: ``mailvoice train --preference`` on them (DPO on top of the adapter).
3. **measure**: on the held-out corrections, the share where each adapter gives the user's text a higher
   log-likelihood than the old draft (as the refresh reports it), and the BLEU of new drafts against the kept
   texts, before and after; and ``mailvoice eval`` of the old and the new adapter on the set's validation split
   (the same command, split and seed), with 95% intervals.

Every stage is resumable; results land in ``WORK/edits.json``.

    python bench/edits_quality.py --work /tmp/q/jeff --n 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _env(work: Path) -> dict[str, str]:
    return dict(os.environ, MAILVOICE_HOME=str(work / "data"), OMP_WAIT_POLICY="PASSIVE")


def _mailvoice(work: Path, *args: str) -> dict:
    exe = str(Path(sys.executable).with_name("mailvoice"))
    done = subprocess.run([exe, "--json", *args], capture_output=True, text=True, env=_env(work), check=False)
    if done.returncode != 0:
        raise SystemExit(f"mailvoice {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def simulate(work: Path, n: int, seed: int, state: dict, out: Path) -> None:
    os.environ["MAILVOICE_HOME"] = str(work / "data")
    from assistant.drafting import draft
    from assistant.drafting.corrections import capture
    from assistant.store.adapters import default_adapter
    from assistant.workspace import Workspace
    from trainer.pairs import list_pairs
    from trainer.prompts import held_out_ids, request_for

    db = Workspace(work / "data").db
    adapter = state.setdefault("adapter", default_adapter(db))
    pairs = [p for p in list_pairs(db, status="ok") if p.split == "train"]
    random.Random(seed).shuffle(pairs)
    chosen = pairs[:n]
    done = state.setdefault("simulated", {})
    held = held_out_ids(db)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    t0 = time.perf_counter()
    for i, pair in enumerate(chosen):
        if str(pair.id) in done:
            continue
        request = request_for(db, pair.message_id, pair.input, f"pair {pair.id}")
        result = draft(db, pair.instruction, reply_context=request.reply, to=request.to, adapter=adapter,
                       exclude_examples=(*held, *request.own), seed=seed + i)  # fmt: skip
        draft_id = result.drafts[0].id
        found = capture(db, draft_id, pair.output, "saved")
        when = (start + dt.timedelta(minutes=i)).isoformat(timespec="seconds")
        with db.conn:
            db.execute("UPDATE corrections SET created_at = ?, updated_at = ? WHERE id = ?", [when, when, found.id])
        done[str(pair.id)] = {"draft": draft_id, "correction": found.id, "kind": found.kind}
        _save(out, state)
        rate = (time.perf_counter() - t0) / max(1, len(done))
        print(f"simulated {len(done)}/{len(chosen)} ({rate:.1f} s each)", file=sys.stderr, flush=True)
    # The email each draft answered is the pair's own input (a dataset's emails are not stored as mail).
    by_id = {str(p.id): p for p in pairs}
    with db.conn:
        for pair_id, made in done.items():
            db.execute("UPDATE corrections SET context = ? WHERE id = ?", [by_id[pair_id].input, made["correction"]])


def refresh(work: Path, state: dict, out: Path, extra: list[str]) -> None:
    if "refresh" in state:
        return
    state["refresh"] = _mailvoice(work, "train", "--preference", "--adapter", state["adapter"], *extra)
    _save(out, state)


def measure(work: Path, state: dict, out: Path, seed: int) -> None:
    os.environ["MAILVOICE_HOME"] = str(work / "data")
    from assistant.drafting import draft
    from assistant.drafting.prompting import ReplyContext
    from assistant.workspace import Workspace
    from trainer.edits import split
    from trainer.evaluation.metrics import bleu

    db = Workspace(work / "data").db
    _learn, held = split(db)
    new = state["refresh"].get("adapter")
    measured = state.setdefault("held_out", {})
    for name in (state["adapter"], new):
        if name in measured:
            continue
        drafts = []
        for i, c in enumerate(held):
            reply = ReplyContext(None, "message", c.context, "", "", "", "") if c.context else None
            result = draft(db, c.instruction, reply_context=reply, to=c.recipient or None, adapter=name,
                           seed=seed + i, save=False)  # fmt: skip
            drafts.append(result.drafts[0].text)
        measured[name] = {"bleu": bleu(drafts, [c.final_text for c in held])["bleu"], "n": len(held)}
        _save(out, state)
    # Both adapters through the same command, on the same validation split and seed.
    if "eval_before" not in state:
        state["eval_before"] = _mailvoice(work, "eval", "--adapter", state["adapter"])
        _save(out, state)
    if "eval" not in state:
        state["eval"] = _mailvoice(work, "eval", "--adapter", new)
        _save(out, state)


def _scores(result: dict) -> str:
    keys = ("n", "bleu", "mauve", "length_ratio", "verbatim_overlap")
    intervals = {k: v for k, v in (result.get("intervals") or {}).items() if k in keys}
    return json.dumps({k: result.get(k) for k in keys} | {"intervals": intervals})


def report(work: Path, state: dict) -> str:
    old, new = state["adapter"], state["refresh"].get("adapter")
    r = state["refresh"]
    lines = [
        f"Corrections simulated: {len(state['simulated'])}; refreshed {old} -> {new}",
        f"held-out preference accuracy: {json.dumps({k: v for k, v in r.items() if 'accuracy' in k})}",
        f"held-out BLEU vs kept text: before {state['held_out'][old]['bleu']:.3f}, "
        f"after {state['held_out'][new]['bleu']:.3f} (n={state['held_out'][old]['n']})",
        f"eval before: {_scores(state['eval_before'])}",
        f"eval after:  {_scores(state['eval'])}",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="a bench/quality.py work folder with a trained adapter")
    ap.add_argument("--n", type=int, default=200, help="corrections to simulate")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stage", choices=("simulate", "refresh", "measure", "all"), default="all")
    ap.add_argument("--train-arg", action="append", default=[], help="passed on to mailvoice train --preference")
    args = ap.parse_args()
    out = args.work / "edits.json"
    state = _load(out)
    if args.stage in ("simulate", "all"):
        simulate(args.work, args.n, args.seed, state, out)
    if args.stage in ("refresh", "all"):
        refresh(args.work, state, out, args.train_arg)
    if args.stage in ("measure", "all"):
        measure(args.work, state, out, args.seed)
        print(report(args.work, state))


if __name__ == "__main__":
    main()
