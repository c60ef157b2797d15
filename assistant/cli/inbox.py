"""Inbox commands: triage incoming mail (category, suggested folder, events, tasks) and export the events."""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from pathlib import Path

import click

from assistant.cli.common import Context, ProgressLine, command_options
from assistant.errors import MailvoiceError
from assistant.inbox.categories import CATEGORIES, LABELS


class InboxError(MailvoiceError):
    """A triage or export that cannot be done as asked."""


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date: give YYYY-MM-DD.", param_hint="--since") from None


@click.command("triage")
@click.option("--since", metavar="YYYY-MM-DD", help="Only mail dated on or after this day.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Triage at most the newest N waiting messages.")
@click.option("--with-model", is_flag=True,
              help="Let the base model settle categories the rules are unsure of and fill in events (slow: "
              "seconds per message).")  # fmt: skip
@click.option("--show", type=click.IntRange(min=0), default=20, show_default=True, metavar="N",
              help="How many of the newest triaged messages to list (and to put in --json).")
@click.option("--category", type=click.Choice(CATEGORIES), help="List only this category.")
@click.option("--draft-replies", "draft_replies", type=click.IntRange(min=0), default=0, metavar="N",
              help="Then draft a reply in your voice to the newest N messages that need one (each once; saved "
              "as drafts, never sent).")
@click.option("--again", is_flag=True, help="Triage the mail in range again, also what was triaged before.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), metavar="OUT.csv",
              help="Also write every triaged message (category, folder, events, tasks) to a CSV file.")
@command_options
def triage(ctx: Context, since: str | None, limit: int | None, with_model: bool, show: int, category: str | None,
           draft_replies: int, again: bool, csv_out: str | None) -> None:  # fmt: skip
    """Sort new mail: what needs a reply, what waits on others, events, tasks, FYI, newsletters, personal.

    Each message also gets a suggested folder, learned from how you filed your own mail, and the events and
    tasks in it (valid JSON, see resources/schemas/inbox-items.schema.json). Only mail not yet triaged is
    read; a stopped run goes on where it stopped.
    """
    from assistant.inbox import triage as core

    since = _since(since)
    backend = None
    if with_model:
        from assistant.drafting.backend import LlamaBackend
        from assistant.drafting.models import engine_settings

        settings, _adapter = engine_settings(ctx.db, adapter="none")
        backend = LlamaBackend(settings)
    line = ProgressLine("Triage")
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        eta = elapsed / done * (total - done) if done else None
        line.show(done / total if total else 1.0, f"{done:,}/{total:,} messages", eta)

    try:
        summary = core.run(ctx.db, ctx.root, since=since, limit=limit, backend=backend, again=again,
                           progress=progress)
    except KeyboardInterrupt:
        line.done()
        click.echo("Stopped: what was triaged is kept; run it again to go on.", err=True)
        raise SystemExit(130) from None
    line.done()
    proposed = _propose(ctx, draft_replies) if draft_replies else []
    listed = core.newest(ctx.db, limit=show, since=since, category=category) if show else []
    if csv_out:
        _write_csv(Path(csv_out), core.newest(ctx.db, limit=10**9, since=since, category=category))

    def human() -> None:
        if summary.pending:
            parts = ", ".join(f"{n:,} {LABELS[c].lower()}" for c, n in sorted(summary.categories.items(),
                                                                              key=lambda kv: -kv[1]))  # fmt: skip
            click.echo(f"Triaged {summary.triaged:,} new messages in {summary.seconds:.1f}s: {parts}; "
                       f"{summary.events:,} events, {summary.tasks:,} tasks.")  # fmt: skip
        else:
            click.echo("No new mail to triage.")
        if summary.filing:
            click.echo(f"No folder suggestions: {summary.filing}", err=True)
        for t in listed:
            folder = (t.filing or {}).get("folder") or "not sure"
            when = (t.date or "")[:10]
            extra = "".join(
                f"  [{n} {kind}]" for n, kind in ((len(t.events), "events"), (len(t.tasks), "tasks")) if n
            )
            who = "you" if t.sent_by_me else (t.from_name or t.from_addr)
            click.echo(f"{when:<10}  {LABELS[t.category]:<26} {folder[:18]:<18} {who[:22]:<22} {t.subject[:50]}{extra}")
        for p in proposed:
            click.echo(f"Reply to {p.subject[:60]!r} drafted: draft #{p.draft}.")
        if csv_out:
            click.echo(f"Wrote {csv_out}.")

    replies = [{"message": p.message, "draft": p.draft} for p in proposed]
    ctx.emit({**summary.to_json(), "messages": [t.to_json() for t in listed], "csv": csv_out, "replies": replies},
             human)  # fmt: skip


def _propose(ctx: Context, n: int) -> list:
    from assistant.errors import Cancelled
    from assistant.inbox.replies import propose

    line = ProgressLine("Replies")
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        line.show(done / total, f"{done}/{total} replies", elapsed / done * (total - done))

    try:
        return propose(ctx.db, n, progress=progress)
    except (KeyboardInterrupt, Cancelled):
        line.done()
        click.echo("Stopped: the replies drafted so far are kept.", err=True)
        raise SystemExit(130) from None
    finally:
        line.done()


def _write_csv(path: Path, rows: list) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["id", "message_id", "date", "from", "subject", "category", "confidence", "reason",
                          "folder", "folder_confidence", "events", "tasks"])  # fmt: skip
            for t in rows:
                top = (t.filing or {}).get("top") or [{}]
                out.writerow([t.id, t.message_id, t.date or "", t.from_addr, t.subject, t.category,
                              f"{t.confidence:.2f}", t.reason, (t.filing or {}).get("folder") or "",
                              top[0].get("p", ""), json.dumps(t.events, ensure_ascii=False),
                              json.dumps(t.tasks, ensure_ascii=False)])  # fmt: skip
    except OSError as exc:
        raise InboxError(f"Cannot write {path}: {exc.strerror or exc}. Choose another file.") from exc


@click.command("events")
@click.option("--ics", "ics_out", type=click.Path(dir_okay=False), metavar="OUT.ics",
              help="Write the events as a calendar file any calendar app imports.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), metavar="OUT.csv",
              help="Write the events and tasks as CSV (one row each, kind in the first column).")
@click.option("--since", metavar="YYYY-MM-DD", help="Only from mail dated on or after this day.")
@command_options
def events(ctx: Context, ics_out: str | None, csv_out: str | None, since: str | None) -> None:
    """The events and tasks found in triaged mail (run mailvoice triage first); export them as .ics or CSV."""
    from assistant.inbox import triage as core
    from assistant.inbox.ics import to_ics

    since = _since(since)
    found = core.all_events(ctx.db, since)
    tasks = core.all_tasks(ctx.db, since)
    triaged = ctx.db.execute("SELECT COUNT(*) FROM triage").fetchone()[0]
    try:
        if ics_out:
            Path(ics_out).write_text(to_ics([{k: v for k, v in e.items() if k != "message"} for e in found]),
                                     encoding="utf-8", newline="")  # fmt: skip
        if csv_out:
            with open(csv_out, "w", newline="", encoding="utf-8") as f:
                out = csv.writer(f)
                out.writerow(["kind", "title_or_what", "start_or_due", "end", "all_day", "timezone", "place",
                              "people_or_who", "message_id", "subject"])  # fmt: skip
                for e in found:
                    out.writerow(["event", e["title"], e["start"], e.get("end") or "", e.get("all_day"),
                                  e.get("timezone") or "", e.get("place") or "", "; ".join(e.get("people") or []),
                                  e["message"]["message_id"], e["message"]["subject"]])  # fmt: skip
                for t in tasks:
                    out.writerow(["task", t["what"], t.get("due") or "", "", "", "", "", t.get("who") or "",
                                  t["message"]["message_id"], t["message"]["subject"]])  # fmt: skip
    except OSError as exc:
        raise InboxError(f"Cannot write {exc.filename}: {exc.strerror or exc}. Choose another file.") from exc

    def human() -> None:
        if not triaged:
            click.echo("Nothing is triaged yet: run mailvoice triage first.")
            return
        click.echo(f"{len(found):,} events and {len(tasks):,} tasks in {triaged:,} triaged messages.")
        for e in found[-20:]:
            click.echo(f"{e['start'][:16]:<16}  {e['title'][:50]:<50} {e.get('place') or ''}")
        for path in (ics_out, csv_out):
            if path:
                click.echo(f"Wrote {path}.")

    ctx.emit({"events": found, "tasks": tasks, "triaged": triaged, "ics": ics_out, "csv": csv_out}, human)


COMMANDS = [triage, events]
