"""Events and tasks from mail: schema validity and per-field precision/recall on generated mail with planted
answers, and the hand-labelled real messages as they are.

    nice .venv/bin/python bench/extract_bench.py --n 1000                  # rules and invitations only
    nice .venv/bin/python bench/extract_bench.py --n 200 --model embedded  # with the embedded model

An event counts as found for ``date`` when one extracted event starts on its date; ``time`` is scored over events
planted with a time (the extracted start's HH:MM), ``place`` over events planted with a place (the same text,
ignoring case and a leading article). Precision divides by what was extracted, recall by what was planted.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from mailgen.events import planted_mail  # noqa: E402

from assistant.inbox.extract import MailItem, extract  # noqa: E402
from assistant.inbox.schema import problems  # noqa: E402


def norm_place(text: str | None) -> str:
    text = " ".join((text or "").casefold().split())
    return re.sub(r"^(?:the|el|la|le|der|die|das)\s+", "", text)


def score(planted: list, results: list) -> dict:
    """Per-field true positives, extracted and planted counts."""
    counts = {f: {"tp": 0, "extracted": 0, "planted": 0} for f in ("date", "time", "place", "task_due")}
    for mail, got in zip(planted, results, strict=True):
        events = got.events
        counts["date"]["extracted"] += len(events)
        counts["date"]["planted"] += len(mail.events)
        counts["time"]["extracted"] += sum(not e["all_day"] for e in events)
        counts["time"]["planted"] += sum(p["time"] is not None for p in mail.events)
        counts["place"]["extracted"] += sum(e["place"] is not None for e in events)
        counts["place"]["planted"] += sum(p["place"] is not None for p in mail.events)
        for want in mail.events:
            same_day = [e for e in events if e["start"][:10] == want["date"]]
            counts["date"]["tp"] += bool(same_day)
            if want["time"] is not None:
                counts["time"]["tp"] += any(e["start"][11:16] == want["time"] for e in same_day)
            if want["place"] is not None:
                counts["place"]["tp"] += any(norm_place(e["place"]) == norm_place(want["place"]) for e in same_day)
        dues = [t["due"][:10] for t in got.tasks if t["due"]]
        counts["task_due"]["extracted"] += len(dues)
        counts["task_due"]["planted"] += len(mail.tasks)
        counts["task_due"]["tp"] += sum(t["due"] in dues for t in mail.tasks)
    return counts


def table(counts: dict) -> list[str]:
    lines = ["| field | precision | recall | extracted | planted |", "|---|---|---|---|---|"]
    for field, c in counts.items():
        p = c["tp"] / c["extracted"] if c["extracted"] else 1.0
        r = c["tp"] / c["planted"] if c["planted"] else 1.0
        lines.append(f"| {field} | {p:.3f} | {r:.3f} | {c['extracted']} | {c['planted']} |")
    return lines


def load_backend(which: str | None):
    if not which:
        return None
    from assistant.drafting.backend import EngineSettings, LlamaBackend
    from assistant.drafting.models import embedded_model_path

    path = embedded_model_path() if which == "embedded" else Path(which)
    return LlamaBackend(EngineSettings(model_path=str(path), n_ctx=2048))


def run(n: int, model: str | None, seed: int) -> dict:
    planted = planted_mail(seed=seed, n=n)
    backend = load_backend(model)
    started = time.perf_counter()
    results, invalid_items, calls, invalid_replies = [], 0, 0, 0
    for mail in planted:
        item = MailItem(subject=mail.subject, body=mail.body, sent_at=mail.sent_at, from_name=mail.from_name,
                        calendars=mail.calendars)  # fmt: skip
        got = extract(item, backend)
        invalid_items += bool(problems(got.items(), "items"))
        json.dumps(got.to_json())  # serialisable, or this raises
        calls += got.model_calls
        invalid_replies += got.model_invalid
        results.append(got)
    seconds = time.perf_counter() - started
    return {"n": n, "model": model or "none", "seconds": round(seconds, 1), "valid": 1 - invalid_items / n,
            "model_calls": calls, "model_invalid": invalid_replies, "counts": score(planted, results)}  # fmt: skip


def real(model: str | None) -> list[str]:
    """The hand-labelled corpus messages (tests/inbox_corpus_labels.json), when ../shared is here."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_inbox_extract import corpus_results  # the same reading and scoring as the corpora test

    found = corpus_results(load_backend(model))
    if found is None:
        return ["(../shared/corpora is not here)"]
    return table(found["counts"]) + [f"valid: {found['valid']:.3f} of {found['n']} messages"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--model", default=None, help="'embedded' or a GGUF path; none = rules and invitations only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", action="store_true", help="also score the hand-labelled real messages")
    args = parser.parse_args()
    result = run(args.n, args.model, args.seed)
    print(f"{result['n']} generated mails, model {result['model']}: {result['seconds']} s, "
          f"valid against the schema {result['valid']:.1%}, model calls {result['model_calls']} "
          f"({result['model_invalid']} invalid replies dropped)")  # fmt: skip
    print("\n".join(table(result["counts"])))
    if args.real:
        print("\nReal messages (hand-labelled):")
        print("\n".join(real(args.model)))


if __name__ == "__main__":
    main()
