"""Corrections commands: what you did with your drafts, which Mailvoice learns from (list, add, exclude)."""

from __future__ import annotations

import click

from assistant.cli.common import Context, command_options
from assistant.drafting.corrections import capture, counts, get_correction, list_corrections, set_excluded
from assistant.errors import MailvoiceError


class CorrectionError(MailvoiceError):
    """A correction that cannot be recorded or found."""


@click.group("corrections", invoke_without_command=True)
@click.pass_context
def corrections(click_ctx: click.Context) -> None:
    """Your edits of drafts: each saved, copied or sent draft, what the model wrote and what you kept."""
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(list_)


@corrections.command("list")
@command_options
def list_(ctx: Context) -> None:
    """Every correction, oldest first, with how much you changed (excluded ones marked)."""
    found = list_corrections(ctx.db)
    c = counts(ctx.db)

    def human() -> None:
        if not found:
            click.echo("No corrections yet: edit a draft and save, copy or send it, or add one with "
                       "mailvoice corrections add DRAFT_ID FILE.")  # fmt: skip
            return
        for k in found:
            mark = " (excluded)" if k.excluded else ""
            click.echo(f"{k.id:>5}  draft {k.draft_id:<5} {k.kind:<8} {k.distance:4.0%} changed  {k.how:<7} "
                       f"{k.instruction[:60]}{mark}")  # fmt: skip
        click.echo(f"{c['total']:,} corrections: {c['rewrite']:,} rewritten, {c['small']:,} small edits, "
                   f"{c['accepted']:,} used as written, {c['excluded']:,} excluded; {c['preference']:,} make "
                   "preference pairs.")  # fmt: skip

    ctx.emit({"corrections": [k.to_json() for k in found], "counts": c}, human)


@corrections.command("add")
@click.argument("draft_id", type=int, metavar="DRAFT_ID")
@click.argument("text_file", type=click.File("r", encoding="utf-8"), metavar="FILE|-")
@command_options
def add(ctx: Context, draft_id: int, text_file) -> None:
    """Record the email you really sent for a saved draft (FILE, or - for standard input)."""
    text = text_file.read(1_000_001)
    if len(text) > 1_000_000:
        raise CorrectionError(f"{text_file.name} is over a million characters: give the email you sent.")
    found = capture(ctx.db, draft_id, text, "saved")
    if found is None:
        why = "it is empty" if not text.strip() else f"there is no saved draft {draft_id} the model wrote"
        raise CorrectionError(f"Nothing was recorded: {why}.", cli="See the drafts with: mailvoice export drafts FILE")
    said = f"Correction {found.id} recorded for draft {draft_id}: {found.kind}, {found.distance:.0%} changed."
    ctx.emit({"correction": found.to_json()}, said)


def _set(ctx: Context, ids: tuple[int, ...], excluded: bool) -> None:
    missing = [i for i in ids if get_correction(ctx.db, i) is None]
    if missing:
        raise CorrectionError(f"There is no correction {missing[0]}.", cli="See them with: mailvoice corrections")
    n = set_excluded(ctx.db, list(ids), excluded)
    where = "left out of" if excluded else "taken back into"
    ctx.emit({"changed": n, "excluded": excluded}, f"{n} correction{'s' if n != 1 else ''} {where} training.")


@corrections.command("exclude")
@click.argument("ids", type=int, nargs=-1, required=True, metavar="ID...")
@command_options
def exclude(ctx: Context, ids: tuple[int, ...]) -> None:
    """Leave corrections out of training (mailvoice corrections include ID takes them back)."""
    _set(ctx, ids, True)


@corrections.command("include")
@click.argument("ids", type=int, nargs=-1, required=True, metavar="ID...")
@command_options
def include(ctx: Context, ids: tuple[int, ...]) -> None:
    """Take excluded corrections back into training."""
    _set(ctx, ids, False)


COMMANDS = [corrections]
