"""The refine command: your own text rewritten in your voice (shorter, longer, formal, friendly, fixed, translated)."""

from __future__ import annotations

import sys

import click

from assistant.cli.common import Context, command_options
from assistant.errors import MailvoiceError

MAX_INPUT_BYTES = 256 * 1024  # far more than any email; the model's context window is the real limit
WAYS = ("shorter", "longer", "formal", "friendly", "fix")
ONE_WAY = "Give exactly one of --shorter, --longer, --formal, --friendly, --fix or --translate LANG."


@click.command()
@click.argument("source", metavar="FILE|-")
@click.option("--shorter", is_flag=True, help="Say the same in fewer words.")
@click.option("--longer", is_flag=True, help="Fuller, without adding facts.")
@click.option("--formal", is_flag=True, help="More formal.")
@click.option("--friendly", is_flag=True, help="Friendlier and warmer.")
@click.option("--fix", is_flag=True, help="Fix spelling, grammar and punctuation only.")
@click.option("--translate", "language", metavar="LANG", help="Translate into LANG (e.g. German).")
@click.option("--adapter", metavar="NAME|none", help="A trained adapter (default: the one chosen with mailvoice "
              "use), or none.")  # fmt: skip
@click.option("--model", metavar="GGUF", type=click.Path(dir_okay=False), help="Rewrite with this GGUF.")
@click.option("--seed", type=int, help="Seed for a reproducible rewrite.")
@command_options
def refine(ctx: Context, source: str, shorter: bool, longer: bool, formal: bool, friendly: bool, fix: bool,
           language: str | None, adapter: str | None, model: str | None, seed: int | None) -> None:  # fmt: skip
    """Rewrite your own text in your voice; the rewrite goes to stdout, what it left out to stderr.

    FILE is a text file (- reads stdin). Every number, link, email address and name of your text that the
    rewrite lacks is listed, so you can check it before sending.

    Example: mailvoice refine note.txt --shorter
    """
    from assistant.drafting.refine import refine as rewrite

    flags = dict(zip(WAYS, (shorter, longer, formal, friendly, fix), strict=True))
    chosen = [how for how, on in flags.items() if on] + (["translate"] if language is not None else [])
    if len(chosen) != 1:
        raise click.UsageError(ONE_WAY)
    if language is not None and (not language.strip() or language.startswith("-")):
        raise click.UsageError(f"--translate needs a language, e.g. --translate German. {ONE_WAY}")
    text = _read(source)
    shown: list[bool] = []

    def show(chunk: str) -> None:
        shown.append(True)
        click.echo(chunk, nl=False)

    result = rewrite(ctx.db, text, chosen[0], language=language, adapter=adapter, model=model, seed=seed,
                     on_chunk=None if ctx.as_json else show)  # fmt: skip
    if shown:
        click.echo("")
    if result.dropped:
        click.echo(f"Note: {result.warning()}", err=True)

    def human() -> None:
        adapter_text = f" + {result.adapter}" if result.adapter else ""
        click.echo(f"Rewritten {result.done()} ({result.model}{adapter_text}, {result.seconds:.1f}s).", err=True)

    ctx.emit(result.to_json(), human)


def _read(source: str) -> str:
    """The text of FILE, or of stdin for ``-`` (UTF-8; a BOM is dropped)."""
    from assistant.userfiles import open_regular, read_capped

    if source == "-":
        stdin = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
        raw = stdin.read(MAX_INPUT_BYTES + 1)
        raw = raw.encode("utf-8") if isinstance(raw, str) else raw
        more = len(raw) > MAX_INPUT_BYTES
    else:
        with open_regular(source, MailvoiceError, "a text file") as f:
            try:
                raw, more = read_capped(f, MAX_INPUT_BYTES)
            except OSError as exc:
                raise MailvoiceError(f"Cannot read {source} ({exc.strerror}); give the path of a text file.") from exc
    if more:
        raise MailvoiceError(f"{'The input' if source == '-' else source} is over {MAX_INPUT_BYTES // 1024} KB: "
                             "refine one email at a time.")  # fmt: skip
    return raw.decode("utf-8-sig", errors="replace")


COMMANDS = [refine]
