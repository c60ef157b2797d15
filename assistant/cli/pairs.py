"""Pairs commands: build the training set from sent mail, review it (list, show, edit, exclude), move it in and out."""

from __future__ import annotations

import click

from assistant.cli.common import Context, ProgressLine, command_options, format_duration
from assistant.drafting.backend import Backend
from trainer.pairs import (
    DEFAULT_LIMIT,
    BuildProgress,
    ScrubSettings,
    build_pairs,
    counts,
    edit_instruction,
    export_pairs,
    get_pair,
    import_pairs,
    list_pairs,
    load_settings,
    save_settings,
    set_status,
)
from trainer.pairs.build import labelling_backend


def _backend(ctx: Context, model: str | None) -> Backend:
    """The engine for a build: one handed in by the caller (tests, the GUI), else llama.cpp on the model."""
    given = (click.get_current_context().find_root().obj or {}).get("backend")
    if given is not None:
        return given
    return labelling_backend(ctx.db, model)


def _reasons(filtered: dict[str, int]) -> str:
    return ", ".join(f"{reason.replace('_', ' ')} {n:,}" for reason, n in sorted(filtered.items(), key=lambda x: -x[1]))


@click.group("pairs")
def pairs() -> None:
    """The training set: instruction -> email pairs made from your sent mail."""


@pairs.command("build")
@click.option("--limit", type=click.IntRange(min=0), default=DEFAULT_LIMIT, show_default=True,
              help="Label the N most useful emails (recent, varied recipients and topics); 0 = all.")  # fmt: skip
@click.option("--model", "model", type=click.Path(dir_okay=False), default=None,
              help="A GGUF to write the instructions with (default: the chosen model, else the embedded one; "
                   "a smaller, faster one is fine).")  # fmt: skip
@click.option("--width", type=click.IntRange(min=1), default=None,
              help="Emails labelled at once on the model (default: the label_width setting, else one at a time "
                   "for a model under 1B parameters on the CPU, 8 for larger ones and 4 from 6B on, fewer when "
                   "memory is short; 1 = one at a time).")  # fmt: skip
@command_options
def build(ctx: Context, limit: int, model: str | None, width: int | None) -> None:
    """Write an instruction for each usable sent email; resumable, and nothing is generated twice."""
    backend = _backend(ctx, model)
    line = ProgressLine("Labelling", always=True)
    estimated: list[tuple[float, int, str]] = []  # the estimate shown: seconds, emails, what it was measured on

    def show(p: BuildProgress) -> None:
        if p.phase == "start":
            click.echo(f"{p.total:,} emails to label ({p.cached:,} already done).", err=True)
        if p.estimate is not None and p.phase in ("start", "estimate") and p.total:
            estimated.append((p.estimate, p.total, p.estimate_from))
            click.echo(
                f"Estimated time on this machine: about {format_duration(p.estimate)} for {p.total:,} emails "
                f"(measured on the {p.estimate_from}).",
                err=True,
            )
        if p.phase == "pair":
            line.show(p.fraction, f"{p.done:,}/{p.total:,} pairs, {p.pairs_per_minute:,.1f}/min", p.eta)

    report = build_pairs(ctx.db, backend, limit=limit or None, progress=show, width=width)
    line.done()

    def human() -> None:
        r = report
        click.echo(f"Built {r.built:,} pairs in {format_duration(r.seconds)}; {r.cached:,} were already built.")
        if estimated:
            seconds, emails, source = estimated[-1]
            click.echo(f"Estimated: about {format_duration(seconds)} for {emails:,} emails (measured on the "
                       f"{source}); took {format_duration(r.seconds)}.")  # fmt: skip
        if r.filtered:
            click.echo(f"Sent emails left out: {_reasons(r.filtered)}.")
        if r.usable > r.selected:
            click.echo(f"{r.usable - r.selected:,} more usable emails were not picked (raise --limit, or 0 for all).")
        if r.built:
            m = r.methods
            click.echo(f"Instructions: {m['model']:,} written by the model at once, {m['retried']:,} on a retry, "
                       f"{m['grammar']:,} with a forced start (flag: grammar), {m['fallback']:,} extracted from the "
                       f"email ({r.fallback_share:.0%}, flag: fallback).")  # fmt: skip
        if r.fallback:
            click.echo(f"{r.fallback:,} instructions were extracted from the email because the model's answers "
                       "failed the checks (flag: fallback); review them with: mailvoice pairs list")  # fmt: skip
        c = counts(ctx.db)
        click.echo(f"Pairs: {c['train']:,} train, {c['validation']:,} validation, {c['excluded']:,} excluded.")
        if r.status == "cancelled":
            click.echo("Stopped; run the same command again to continue.")

    ctx.emit(report.to_json(), human)


_FLAGS = (("F", "fallback"), ("G", "grammar"), ("R", "retried"), ("T", "context_trimmed"))


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@pairs.command("list")
@click.option("--split", type=click.Choice(["train", "validation"]), default=None, help="Only one side.")
@click.option("--status", type=click.Choice(["ok", "excluded"]), default=None, help="Only included or excluded.")
@command_options
def list_(ctx: Context, split: str | None, status: str | None) -> None:
    """The pairs, scrubbed as training will see them."""
    found = list_pairs(ctx.db, split=split, status=status)

    def human() -> None:
        if not found:
            click.echo("No pairs yet. Make them from your sent mail: mailvoice pairs build")
            return
        click.echo(f"{'ID':>5}  {'SPLIT':<10} {'STATUS':<8} {'SOURCE':<8} {'FLAGS':<5} INSTRUCTION  |  EMAIL")
        for p in found:
            flags = "".join(code for code, name in _FLAGS if name in p.flags) + ("S" if p.scrubbed else "")
            click.echo(f"{p.id:>5}  {p.split:<10} {p.status:<8} {p.source:<8} {flags:<5} "
                       f"{_one_line(p.instruction, 60)}  |  {_one_line(p.output, 40)}")  # fmt: skip
        click.echo("Flags: F extracted from the email (the model's answers failed the checks), G written from a "
                   "forced start (Ask/Tell/Thank NAME), R retried, T reply context trimmed, S secrets replaced. "
                   "Full text: mailvoice pairs show ID")  # fmt: skip

    ctx.emit({"pairs": [p.to_json() for p in found], "counts": counts(ctx.db)}, human)


@pairs.command("show")
@click.argument("pair_id", type=int, metavar="ID")
@command_options
def show(ctx: Context, pair_id: int) -> None:
    """One pair in full (scrubbed)."""
    p = get_pair(ctx.db, pair_id)

    def human() -> None:
        click.echo(f"Pair {p.id} ({p.split}, {p.status}, {p.source}{', ' + ', '.join(p.flags) if p.flags else ''})")
        click.echo(f"Instruction: {p.instruction}")
        if p.input:
            click.echo(f"Input:\n{p.input}\n")
        click.echo(f"Output:\n{p.output}")

    ctx.emit({"pair": p.to_json()}, human)


@pairs.command("edit")
@click.argument("pair_id", type=int, metavar="ID")
@click.option("--instruction", required=True, help="The new instruction.")
@command_options
def edit(ctx: Context, pair_id: int, instruction: str) -> None:
    """Replace a pair's instruction (the model's is kept)."""
    p = edit_instruction(ctx.db, pair_id, instruction)
    ctx.emit({"pair": p.to_json()}, f"Pair {p.id}: {p.instruction}")


@pairs.command("exclude")
@click.argument("pair_id", type=int, metavar="ID")
@command_options
def exclude(ctx: Context, pair_id: int) -> None:
    """Leave a pair out of training and export (mailvoice pairs include ID takes it back)."""
    p = set_status(ctx.db, pair_id, "excluded")
    ctx.emit({"pair": p.to_json()}, f"Pair {p.id} is excluded.")


@pairs.command("include")
@click.argument("pair_id", type=int, metavar="ID")
@command_options
def include(ctx: Context, pair_id: int) -> None:
    """Take an excluded pair back into training."""
    p = set_status(ctx.db, pair_id, "ok")
    ctx.emit({"pair": p.to_json()}, f"Pair {p.id} is included again.")


@pairs.command("export")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--split", type=click.Choice(["train", "validation"]), default=None, help="Only one side.")
@command_options
def export(ctx: Context, out: str, split: str | None) -> None:
    """Write the included pairs to OUT.jsonl, OUT.json or OUT.csv (instruction, input, output, split)."""
    n = export_pairs(ctx.db, out, split=split)
    ctx.emit({"exported": n, "path": out}, f"Wrote {n:,} pairs to {out}.")


@pairs.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@command_options
def import_(ctx: Context, file: str) -> None:
    """Add an instruction/input/output dataset made elsewhere (FILE.csv, .json or .jsonl)."""
    report = import_pairs(ctx.db, file)

    def human() -> None:
        r = report
        click.echo(f"Imported {r.imported:,} pairs; {r.duplicates:,} were already there; {len(r.dropped):,} dropped.")
        for d in r.dropped[:50]:
            click.echo(f"  row {d['row']}: {d['reason']}")
        if len(r.dropped) > 50:
            click.echo(f"  ... and {len(r.dropped) - 50:,} more (--json lists them all)")

    ctx.emit(report.to_json(), human)


@pairs.command("scrub")
@click.option("--phones/--no-phones", default=None, help="Also replace phone numbers with [PHONE].")
@click.option("--addresses/--no-addresses", default=None, help="Also replace street addresses with [ADDRESS].")
@command_options
def scrub(ctx: Context, phones: bool | None, addresses: bool | None) -> None:
    """Show or change what the privacy scrub replaces (codes, passwords, cards and IBANs always are)."""
    current = load_settings(ctx.db)
    if phones is not None or addresses is not None:
        current = ScrubSettings(
            phones=current.phones if phones is None else phones,
            addresses=current.addresses if addresses is None else addresses,
        )
        save_settings(ctx.db, current)
    on = [name for name, value in (("phones", current.phones), ("addresses", current.addresses)) if value]
    ctx.emit(
        {"always": ["codes", "passwords", "cards", "ibans", "accounts"], **current.__dict__},
        f"Always scrubbed: one-time codes, passwords, card numbers, IBANs, account numbers. "
        f"Also: {', '.join(on) or 'nothing else (--phones, --addresses)'}.",
    )


COMMANDS = [pairs]
