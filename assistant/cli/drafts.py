"""Drafting commands: draft, batch, export drafts, export eml, model."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from assistant.cli.common import Context, ProgressLine, command_options, format_duration, write_whole


def draft_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options draft and batch share (everything that shapes one draft)."""
    options = [
        click.option("--to", "to", metavar="ADDRESS", help="Recipient; your mail to them shapes the draft."),
        click.option("--tone", metavar="T", help='Free text, e.g. "friendly", "formal", "apologetic".'),
        click.option("--length", type=click.Choice(["short", "medium", "long"]),
                     help="How long the email should be (about 50, 120 or 250 words); by default as long as you "
                     "usually write to this person, for a reply or a new email."),
        click.option("--adapter", metavar="NAME|none", help="A trained adapter (default: the one chosen with "
                     "mailvoice use), or none."),
        click.option("--no-examples", "no_examples", is_flag=True, help="Show the model no past emails."),
        click.option("--model", metavar="GGUF", type=click.Path(dir_okay=False),
                     help="Draft with this GGUF instead of the chosen model."),
        click.option("--seed", type=int, help="Seed for a reproducible draft."),
    ]  # fmt: skip
    return functools.reduce(lambda f, option: option(f), reversed(options), fn)


@click.command()
@click.argument("instruction", nargs=-1, required=True)
@click.option("--reply-to", "reply_to", metavar="MESSAGE_ID", help="Answer this stored email (its Message-ID).")
@click.option("--reply-file", "reply_file", metavar="EML", type=click.Path(dir_okay=False),
              help="Answer the email saved in this file.")  # fmt: skip
@draft_options
@click.option("--n", "n", type=click.IntRange(1, 10), default=1, metavar="K", help="Write K alternatives.")
@click.option("--open", "open_app", is_flag=True,
              help="Then open the draft in your mail app as an unsent email, threaded when it is a reply.")  # fmt: skip
@command_options
def draft(ctx: Context, instruction: tuple[str, ...], reply_to, reply_file, to, tone, length, adapter,
          no_examples, model, seed, n, open_app) -> None:  # fmt: skip
    """Write an email in your voice; it streams here and is saved.

    Example: mailvoice draft "ask Rosa if the plumber can come Monday" --to rosa@properties.example.net
    """
    from assistant.drafting import draft as make_draft

    shown: list[int] = []

    def show(i: int, text: str) -> None:
        if not shown or shown[-1] != i:
            if shown:
                click.echo("\n")
            if n > 1:
                click.echo(f"--- Draft {i + 1} of {n} ---")
            shown.append(i)
        click.echo(text, nl=False)

    result = make_draft(
        ctx.db, " ".join(instruction), reply_to=reply_to, reply_file=reply_file, to=to, tone=tone,
        length=length, adapter=adapter, examples=not no_examples, n=n, model=model, seed=seed,
        on_chunk=None if ctx.as_json else show,
    )  # fmt: skip
    if shown:
        click.echo("")
    for notice in result.notices:
        click.echo(f"Note: {notice}", err=True)
    for d in result.drafts:
        if d.incomplete is not None:
            click.echo(f"Note: draft #{d.id} looks incomplete: {d.incomplete.reason}. Run the command again for "
                       "another.", err=True)  # fmt: skip
    ids = ", ".join(f"#{d.id}" for d in result.drafts)

    def human() -> None:
        adapter_text = f" + {result.adapter}" if result.adapter else ""
        click.echo(f"Saved as draft {ids} ({result.model}{adapter_text}, {result.seconds:.1f}s, "
                   f"{result.tokens_per_second:.0f} tokens/s).", err=True)  # fmt: skip

    payload = result.to_json()
    if open_app:
        payload.update(_open_drafts(ctx, result.drafts, payload["drafts"]))
    ctx.emit(payload, human)


def _open_drafts(ctx: Context, drafts: list[Any], shown: list[dict[str, Any]]) -> dict[str, Any]:
    """Hand each draft to the mail app as an .eml; say on stderr what opened. Returns the ``--json`` keys."""
    from assistant.drafting.corrections import capture
    from assistant.drafting.handoff import open_in_mail_app, save_handoff, saved_draft_eml

    paths, opened = [], []
    for d, entry in zip(drafts, shown, strict=True):
        path = save_handoff(ctx.root, saved_draft_eml(ctx.db, d.id), d.id)
        entry["eml"] = str(path)
        paths.append(str(path))
        opened.append(open_in_mail_app(path))
        if opened[-1]:
            capture(ctx.db, d.id, d.text, "opened")  # taken out to send, as written: what the user kept
            click.echo(f"Opened draft #{d.id} in your mail app ({path}).", err=True)
        else:
            click.echo(f"No app opened draft #{d.id}: it is saved as {path}. Open that file from your mail app "
                       "(Outlook opens it as a draft), or set a default app for .eml files.", err=True)  # fmt: skip
    return {"eml": paths[0] if paths else None, "opened": all(opened) and bool(opened)}


@click.command()
@click.argument("instructions", type=click.Path(dir_okay=False), metavar="INSTRUCTIONS.txt|RECIPIENTS.csv")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False), metavar="OUT.csv",
              help="Where to write the CSV (instruction, generated_email, ...).")  # fmt: skip
@click.option("--excel", is_flag=True, help="Write for Excel: UTF-8 with BOM, CRLF line ends.")
@click.option("--instruction", "merge_instruction", metavar="TEXT",
              help="Mail merge: what each email of a CSV of recipients should do; {column} takes the row's "
              "value, e.g. \"invite {name} to the launch\".")  # fmt: skip
@click.option("--width", type=click.IntRange(min=1), default=None,
              help="Drafts written at once on the model (default: the draft_width setting, else one at a time for "
                   "a model under 1B parameters on the CPU, 8 for larger ones and 4 from 6B on, fewer when memory "
                   "is short).")  # fmt: skip
@draft_options
@command_options
def batch(ctx: Context, instructions, out, excel, merge_instruction, width, to, tone, length, adapter, no_examples,
          model, seed) -> None:  # fmt: skip
    """Draft an email for each line of a file, or each row of a CSV of recipients (mail merge), into a CSV.

    INSTRUCTIONS is a text file with one instruction per line; blank lines and lines starting with # are
    skipped. Every draft is also saved (mailvoice export drafts). A line that cannot be drafted (longer than
    32 KB, or too long for the model) is skipped and named; the others are drafted.

    A mail merge: a .csv file (or any file with --instruction) is a list of recipients with a header row
    (name, email, company, ...); --instruction says what to write, and each row gives one draft: {column}
    placeholders are filled from the row, its other values are shown to the model, and the style examples are
    your own mail to that address first. Run the same command again after a stop: only the rows not yet drafted
    are drafted.
    """
    from assistant.drafting import BatchProgress
    from assistant.drafting import batch as run_batch

    if merge_instruction is not None or instructions.lower().endswith(".csv"):
        if merge_instruction is None:
            raise click.UsageError(f"{instructions} is a CSV of recipients: give --instruction \"...\" (what each "
                                   "email should do; {name} and other columns are filled from each row). For one "
                                   "instruction per line, give a text file.")  # fmt: skip
        if to:
            raise click.UsageError("A mail merge writes to each row's address: leave out --to.")
        _merge(ctx, instructions, merge_instruction, out, excel, width=width, tone=tone, length=length,
               adapter=adapter, examples=not no_examples, model=model, seed=seed)  # fmt: skip
        return

    line = ProgressLine("Drafting", always=True)

    def show(p: BatchProgress) -> None:
        line.show(p.fraction, f"{p.done:,} of {p.total:,} drafts", p.eta)

    report = run_batch(
        ctx.db, instructions, out, excel=excel, progress=show, width=width, to=to, tone=tone, length=length,
        adapter=adapter, examples=not no_examples, model=model, seed=seed,
    )  # fmt: skip
    line.done()

    def human() -> None:
        click.echo(f"Wrote {report.written:,} drafts to {out} in {format_duration(report.seconds)}.")
        for skip in report.skipped[:50]:
            click.echo(f"Skipped line {skip['line']:,} of {instructions}: {skip['reason']}", err=True)
        if len(report.skipped) > 50:
            click.echo(f"... and {len(report.skipped) - 50:,} more lines skipped (--json lists them all)", err=True)

    ctx.emit(report.to_json(), human)


def _merge(ctx: Context, recipients: str, instruction: str, out: str, excel: bool, **options: Any) -> None:
    """The mail merge of ``batch``: progress on stderr, the rows skipped named, the report."""
    from assistant.drafting.mailmerge import MergeProgress, mail_merge

    line = ProgressLine("Drafting", always=True)
    told: list[bool] = []

    def show(p: MergeProgress) -> None:
        if p.earlier and not told:
            told.append(True)
            click.echo(f"Resuming: {p.earlier:,} rows of this merge were drafted before; drafting the rest.",
                       err=True)  # fmt: skip
        line.show(p.fraction, f"{p.done:,} of {p.total:,} rows", p.eta)

    report = mail_merge(ctx.db, recipients, instruction, out, excel=excel, progress=show, **options)
    line.done()

    def human() -> None:
        earlier = f" ({report.resumed:,} drafted by an earlier run)" if report.resumed else ""
        click.echo(f"Wrote {report.written:,} drafts to {out}{earlier} in {format_duration(report.seconds)}.")
        for skip in report.skipped[:50]:
            click.echo(f"Skipped row {skip['row']:,} of {recipients}: {skip['reason']}", err=True)
        if len(report.skipped) > 50:
            click.echo(f"... and {len(report.skipped) - 50:,} more rows skipped (--json lists them all)", err=True)

    ctx.emit(report.to_json(), human)


@click.group("export")
def export() -> None:
    """Export saved data as files."""


@export.command("drafts")
@click.argument("out", type=click.Path(dir_okay=False), metavar="OUT.csv")
@click.option("--excel", is_flag=True, help="Write for Excel: UTF-8 with BOM, CRLF line ends.")
@command_options
def export_drafts(ctx: Context, out: str, excel: bool) -> None:
    """Every saved draft as CSV: instruction, generated_email, created_at, model, adapter, reply_to."""
    from assistant.drafting import export_drafts as write

    count = write_whole(out, lambda path: write(ctx.db, path, excel=excel))
    ctx.emit({"out": out, "drafts": count}, f"Wrote {count:,} drafts to {out}.")


@export.command("eml")
@click.argument("draft_id", type=int, metavar="DRAFT_ID")
@click.argument("out", type=click.Path(dir_okay=False), metavar="OUT.eml")
@command_options
def export_eml(ctx: Context, draft_id: int, out: str) -> None:
    """A saved draft as an unsent email (.eml) for your mail app: threaded when it answers an email.

    Outlook opens the file as a draft to send; Thunderbird and Apple Mail show it as a message (Edit as New
    Message makes it one).
    """
    from email.parser import BytesHeaderParser

    from assistant.drafting.handoff import saved_draft_eml

    data = saved_draft_eml(ctx.db, draft_id)
    write_whole(out, lambda path: Path(path).write_bytes(data))
    headers = BytesHeaderParser().parsebytes(data)
    threaded = bool(headers["In-Reply-To"])
    payload = {"out": out, "draft": draft_id, "threaded": threaded, "bytes": len(data)}
    thread_text = " It answers its email in the same thread." if threaded else ""
    ctx.emit(payload, f"Wrote draft #{draft_id} to {out}: open it in your mail app.{thread_text}")


@click.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--default", "use_default", is_flag=True, help="Go back to the embedded default model.")
@command_options
def model(ctx: Context, path: str | None, use_default: bool) -> None:
    """Show or choose the model that drafts.

    With PATH, check that GGUF (a chat model) and draft with it from now on.
    """
    from assistant.drafting.models import choose_model, current_model, model_info

    if path and use_default:
        raise click.UsageError("Give a PATH or --default, not both.")
    if path or use_default:
        info = choose_model(ctx.db, path)
    else:
        found, _ = current_model(ctx.db)
        info = model_info(found)
    info["source"] = current_model(ctx.db)[1]

    def human() -> None:
        template = "yes" if info["chat_template"] else "NO (cannot draft)"
        context = f"{info['context_length']:,} tokens" if info["context_length"] else "unknown"
        click.echo(f"Model         {info['name']} ({info['source']})")
        click.echo(f"File          {info['path']} ({info['size_bytes'] / 1e6:,.0f} MB)")
        click.echo(f"Parameters    {info['parameters']}")
        click.echo(f"Quantisation  {info['quantisation']}")
        click.echo(f"Architecture  {info['architecture']}")
        click.echo(f"Context       {context}")
        click.echo(f"Chat template {template}")

    ctx.emit(info, human)


COMMANDS = [draft, batch, export, model]
