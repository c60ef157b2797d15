"""The merge command: fold a trained adapter into a copy of its base model, to draft at the base's speed.

llama.cpp applies an unmerged adapter at every token (slower generation); a merged model costs one more
model file on disk per adapter, and changing adapters means loading another file (see BENCHMARKS.md).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from assistant.cli.common import Context, ProgressLine, command_options, format_duration

TYPES = ("f16", "q8_0", "same")  # trainer.merge.TYPES, repeated so that --help does not import numpy and gguf
DEFAULT_TYPE = "q8_0"


@click.command("merge")
@click.argument("adapter")
@click.option("-o", "--out", type=click.Path(dir_okay=False), metavar="OUT.gguf",
              help="Where to write the merged model (default: beside the adapter, merged-TYPE.gguf).")
@click.option("--type", "out_type", type=click.Choice(TYPES), default=DEFAULT_TYPE, show_default=True,
              help="How changed weights are stored: f16 (exact, largest), q8_0 (near-exact, half of f16), "
              "same (the base's own type: smallest, but 4-bit rounding erases much of an adapter).")
@click.option("--base", type=click.Path(dir_okay=False), metavar="GGUF",
              help="The base model (default: the one the adapter was trained on).")
@click.option("--force", is_flag=True, help="Replace OUT when it exists (the base model is never replaced).")
@click.option("--use/--no-use", "use", default=None,
              help="Draft with the merged model from now on (asked when not given and a terminal is there).")
@command_options
def merge(ctx: Context, adapter: str, out: str | None, out_type: str, base: str | None, force: bool,
          use: bool | None) -> None:  # fmt: skip
    """Merge ADAPTER (a trained adapter's name, or an adapter GGUF) into its base model.

    Drafting with the merged model runs at about the base model's speed; an adapter applied at draft time
    is slower (BENCHMARKS.md). The merged model is a full model file of its own.
    """
    from trainer.merge import merge_into_base, use_merged

    line = ProgressLine("Merging")
    started = time.monotonic()

    def progress(event: dict[str, Any]) -> None:
        if event.get("message"):
            click.echo(f"{event['message']} ({out_type})", err=True)
        fraction = event.get("fraction") or 0.0
        elapsed = time.monotonic() - started
        line.show(fraction, "", elapsed * (1 - fraction) / fraction if fraction > 0.05 else None)

    info = merge_into_base(ctx.db, adapter, out=out, out_type=out_type, base=base, force=force, progress=progress)
    line.done()
    if use is None:
        use = not ctx.as_json and sys.stdin.isatty() and click.confirm(
            "Draft with the merged model from now on?", default=True, err=True
        )
    if use:
        use_merged(ctx.db, info)
    lossy = sorted(t for t in info.written_types if t.startswith(("Q4", "Q5")))
    payload = {**info.to_json(), "adapter": info.adapter_name, "adapter_path": info.adapter, "in_use": bool(use)}

    def human() -> None:
        kinds = ", ".join(f"{n} as {t}" for t, n in sorted(info.written_types.items()))
        click.echo(
            f"Wrote {info.path} ({info.size_bytes / 1e6:,.0f} MB) in {format_duration(info.seconds)}: "
            f"{info.merged} tensors merged ({kinds}), {info.copied} copied unchanged."
        )
        if lossy:
            click.echo(
                f"Note: {'/'.join(lossy)} rounding keeps little of a small adapter's change; "
                "--type q8_0 keeps nearly all of it.",
                err=True,
            )
        if use:
            click.echo("Drafts now use the merged model, without the adapter (it is inside the model).")
        else:
            click.echo(f"Draft with it: mailvoice model {info.path} && mailvoice use none")

    ctx.emit(payload, human)


COMMANDS = [merge]
