"""The eval command: draft the validation split, score it against the real emails, write the report."""

from __future__ import annotations

from typing import Any

import click

from assistant.cli.common import Context, ProgressLine, command_options, format_duration

SHOWN = ("bleu", "sacrebleu", "chrf", "rouge_l", "mauve", "length_ratio", "verbatim_overlap")


def _injected(name: str) -> Any:
    """A backend or embedder handed in by the caller (tests); None in normal use."""
    return (click.get_current_context().find_root().obj or {}).get(name)


def _progress_line() -> Any:
    line = ProgressLine("Evaluating", always=True)

    def show(p: Any) -> None:
        if p.phase == "draft":
            line.show(p.fraction, f"{p.done:,}/{p.total:,} drafts ({p.label})", p.eta)
        elif p.phase == "mauve":
            line.show(p.fraction, f"MAUVE for {p.label}, {p.done}/{p.total} clusterings", None)
        elif p.phase == "mauve interval":
            line.show(p.fraction, f"MAUVE interval for {p.label}, {p.done}/{p.total} resamples", None)
        else:
            line.show(p.fraction, f"{p.phase} {p.label}".strip(), None)

    return line, show


@click.command("eval")
@click.option("--adapter", metavar="NAME|none",
              help="The adapter to evaluate (default: the one chosen with mailvoice use); none: the base model.")
@click.option("--examples/--no-examples", default=True, show_default=True,
              help="Show the model your similar past emails, as drafting does (never validation emails).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Evaluate only the first N validation pairs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling and bootstrap seed.")
@click.option("--ablations", is_flag=True,
              help="Compare base, base + examples, adapter and adapter + examples on the same pairs.")
@click.option("--width", type=click.IntRange(min=1), default=None,
              help="Drafts written at once on the model (default: the draft_width setting, else one at a time for "
                   "a model under 1B parameters on the CPU, 8 for larger ones and 4 from 6B on, fewer when memory "
                   "is short).")  # fmt: skip
@command_options
def evaluate(ctx: Context, adapter: str | None, examples: bool, limit: int | None, seed: int, ablations: bool,
             width: int | None) -> None:  # fmt: skip
    """Draft each validation email from its instruction and score the drafts against the real ones.

    Scores (0-1): bleu (mean of BLEU-1..4 on words), sacrebleu, chrf, rouge_l, mauve; length_ratio (draft
    words / real words) and verbatim_overlap (share of drafts repeating 50+ characters of a training email).
    Drafts are kept as they are made: run the same command again to continue a stopped evaluation.
    With --json, --ablations prints each configuration under "rows" and the last one's scores at the top.
    """
    from assistant.store.adapters import ADAPTER_KEY
    from assistant.store.db import get_setting
    from trainer.evaluation import evaluate as run_eval
    from trainer.evaluation import run_ablations

    db, root = ctx.db, ctx.root
    line, show = _progress_line()
    common = {"limit": limit, "seed": seed, "backend": _injected("backend"), "embed": _injected("embed"),
              "progress": show, "width": width}  # fmt: skip
    if ablations:
        result = run_ablations(db, root, adapter=adapter, **common)
    else:
        chosen = adapter if adapter is not None else get_setting(db, ADAPTER_KEY)
        result = run_eval(db, root, adapter=chosen, examples=examples, **common)
    line.done()
    rows = [{"label": r.label, **r.config.to_json(), **r.metrics, "generated": r.generated, "cached": r.cached}
            for r in result.rows]  # fmt: skip
    payload = {**rows[-1], "json_path": str(result.json_path), "html_path": str(result.html_path),
               "id": result.eval_id, "seconds": round(result.seconds, 3), "notices": result.notices}  # fmt: skip
    if ablations:
        payload["rows"] = rows
    for notice in result.notices:
        click.echo(f"Note: {notice}", err=True)

    def human() -> None:
        width = max(len(r["label"]) for r in rows)
        click.echo(f"{'':{width}}" + "".join(f"{m.replace('_', ' '):>19}" for m in SHOWN))
        for r in rows:
            cells = []
            for m in SHOWN:
                value, ci = r.get(m), (r.get("intervals") or {}).get(m)
                text = "–" if value is None else f"{value:.3f}"
                cells.append(f"{text + (f' ({ci[0]:.2f}-{ci[1]:.2f})' if ci else ''):>19}")
            click.echo(f"{r['label']:{width}}" + "".join(cells))
        n = rows[-1].get("n")
        click.echo(f"{n} validation pairs in {format_duration(result.seconds)}; brackets: 95% intervals.")
        click.echo(f"Report: {result.html_path}")

    ctx.emit(payload, human)


COMMANDS = [evaluate]
