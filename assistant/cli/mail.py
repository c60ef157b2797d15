"""Mail commands: import, identities, me, stats."""

from __future__ import annotations

import datetime as dt

import click

from assistant.cli.common import Context, ProgressLine, command_options
from assistant.durations import format_duration
from assistant.identities import load_me, own_addresses, propose, relabel, unmatched
from assistant.identities import stats as store_stats
from assistant.importer import WAITING, ImportProgress, import_paths


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2023-01-31") from None


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--me", "me", multiple=True, metavar="ADDRESS", help="Your own address (repeatable); wins over guesses."
)
@click.option("--since", callback=_date, help="Only mail dated on or after YYYY-MM-DD.")
@click.option("--until", callback=_date, help="Only mail dated on or before YYYY-MM-DD.")
@command_options
def import_(ctx: Context, paths: tuple[str, ...], me: tuple[str, ...], since, until) -> None:
    """Import mail from mbox files, maildirs, .eml files or folders of them.

    Importing the same archive again adds nothing; an interrupted import continues where it stopped.
    """
    if since and until and since > until:
        raise click.UsageError(f"--since {since} is after --until {until}, so no mail would be imported. Swap them.")
    line = ProgressLine("Importing", always=True)

    def show(p: ImportProgress) -> None:
        if p.phase == WAITING:
            click.echo("Another import into this data folder is running; waiting for it to finish...", err=True)
            return
        line.show(p.fraction, f"{p.seen:,} messages, {p.rate:,.0f}/s", p.eta)

    report = import_paths(ctx.db, paths, me=me, since=since, until=until, progress=show)
    line.done()

    def human() -> None:
        r = report
        click.echo(
            f"Read {r.seen:,} messages in {format_duration(r.seconds)}: {r.imported:,} new, "
            f"{r.duplicates:,} already stored, {len(r.skipped):,} skipped."
        )
        if r.outside_dates:
            click.echo(f"{r.outside_dates:,} messages were outside the chosen dates.")
        if r.unchanged_files:
            click.echo(f"{r.unchanged_files:,} files were already imported and have not changed.")
        if r.reread_files:
            click.echo(f"{r.reread_files:,} files imported before with other dates were read again for these dates.")
        for s in r.skipped[:20]:
            click.echo(f"  skipped {s.where}: {s.reason}")
        if len(r.skipped) > 20:
            click.echo(f"  ... and {len(r.skipped) - 20:,} more (mailvoice import --json lists them all)")
        if r.me:
            assumed = (
                " (guessed from your Sent folder; change with: mailvoice me ADDRESS)" if r.assumed_me else ""
            )
            click.echo(f"You are {', '.join(r.me)}{assumed}: {r.sent_by_me:,} messages sent by you.")
        else:
            click.echo("Which addresses are yours? See: mailvoice identities, then: mailvoice me ADDRESS")
        if r.status == "cancelled":
            click.echo("Import stopped; run the same command again to continue.")

    ctx.emit(report.to_json(), human)


@click.command()
@command_options
def identities(ctx: Context) -> None:
    """Addresses that look like yours, with the evidence for each."""
    found = propose(ctx.db)

    def human() -> None:
        if not found:
            click.echo("No senders stored yet. Import your mail first: mailvoice import PATH")
        for c in found:
            mark = "*" if c["chosen"] else " "
            click.echo(f"{mark} {c['address']:<40} {c['name'][:30]:<30} {'; '.join(c['reasons'])}")

    ctx.emit({"identities": found, "me": load_me(ctx.db)}, human)


@click.command()
@click.argument("addresses", nargs=-1, required=True)
@command_options
def me(ctx: Context, addresses: tuple[str, ...]) -> None:
    """Set which addresses are yours ("ann@example.org" or "Ann <ann@example.org>"); stored mail is re-labelled
    as sent or received."""
    sent = relabel(ctx.db, own_addresses(addresses))  # a value that is not an address: exit 1, nothing changed
    chosen = load_me(ctx.db)
    missing = unmatched(ctx.db, chosen)
    for address in missing:  # on stderr with --json too: a typo would otherwise pass unseen
        click.echo(f"Warning: no stored message is from {address}; check its spelling (mailvoice identities "
                   "lists the senders found).", err=True)  # fmt: skip
    ctx.emit(
        {"me": chosen, "sent_by_me": sent, "unmatched": missing},
        f"Your addresses: {', '.join(chosen)}. {sent:,} stored messages are sent by you.",
    )


@click.command()
@command_options
def stats(ctx: Context) -> None:
    """Counts of messages, sent mail, threads, pairs, drafts and adapters."""
    s = store_stats(ctx.db)

    def human() -> None:
        first, last = s["date_range"]
        click.echo(f"Messages   {s['messages']:>8,}   ({(first or '?')[:10]} to {(last or '?')[:10]})")
        for key in ("sent", "received", "automated", "threads", "pairs", "drafts", "adapters", "skipped"):
            click.echo(f"{key.capitalize():<10} {s[key]:>8,}")
        kinds = s["classes"]
        click.echo(f"By kind    {kinds['yours']:,} yours, {kinds['received']:,} received from people, "
                   f"{kinds['list']:,} from discussion lists, {kinds['automated']:,} automated")  # fmt: skip
        click.echo(f"You are    {', '.join(s['me']) or 'not set (mailvoice identities)'}")

    ctx.emit(s, human)


COMMANDS = [import_, identities, me, stats]
