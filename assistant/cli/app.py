"""Starting the desktop app from the command line."""

from __future__ import annotations

import click

from assistant.cli.common import Context, command_options


@click.command()
@command_options
def gui(ctx: Context) -> None:
    """Open the desktop app."""
    from assistant.gui.app import run  # PySide6 is loaded only for the GUI

    raise SystemExit(run(ctx.data_dir_opt))


COMMANDS = [gui]
