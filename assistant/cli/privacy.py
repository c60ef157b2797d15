"""Privacy commands: forget (delete everything this data folder holds)."""

from __future__ import annotations

import click

from assistant.cli.common import Context, command_options, fail
from assistant.forget import forget as forget_data
from assistant.paths import chosen_data_dir


@click.command()
@click.option("--yes", is_flag=True, default=False, help="Really delete: without it nothing is deleted.")
@command_options
def forget(ctx: Context, yes: bool) -> None:
    """Delete every stored message, pair, draft, adapter, checkpoint and cache of this data folder.

    The folder itself stays, empty. Secrets kept in the system keyring are not touched.
    """
    root = chosen_data_dir(ctx.data_dir_opt)  # not ctx.root: a folder that is not ours is refused, not adopted
    if not yes:
        fail(f"This deletes everything Mailvoice stored in {root}. To go ahead, run: mailvoice forget --yes")
    report = forget_data(root)
    done = f"Deleted {report.removed_files:,} files ({_size(report.removed_bytes)}) from {root}."
    if report.kept:
        done += f" Left alone, as Mailvoice did not write them: {', '.join(report.kept)}."
    else:
        done += " It is empty now."
    ctx.emit(report.to_json(), done)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n:,} bytes"
    value, units = n / 1024, ["KB", "MB", "GB"]
    while value >= 1024 and len(units) > 1:
        value, units = value / 1024, units[1:]
    return f"{value:,.1f} {units[0]}"


COMMANDS = [forget]
