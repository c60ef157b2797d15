"""The ``mailvoice`` command line: a thin layer over the headless core (see ``../shared/CONTRACT.md``)."""

from __future__ import annotations

import logging

import click

from assistant import netguard
from assistant.cli import app, corrections, demo, drafts, evaluate, inbox, mail, merge, privacy, train
from assistant.cli import pairs as pairs_commands
from assistant.cli import refine as refine_commands
from assistant.cli import serve as serve_commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Data folder for every command.")
@click.option("--json", "as_json", is_flag=True, help="JSON output for every command.")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (never mail text) to stderr.")
@click.version_option(package_name="mailvoice")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, as_json: bool, verbose: bool) -> None:
    """Mailvoice: drafts emails in your own voice, learned from your own mail, on your own machine."""
    ctx.obj = {"data_dir": data_dir, "json": as_json}
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(name)s: %(message)s")


for module in (mail, pairs_commands, train, drafts, refine_commands, corrections, evaluate, privacy, app, demo, merge,
               serve_commands, inbox):
    for command in module.COMMANDS:
        cli.add_command(command)


def main() -> None:
    netguard.install()  # before anything can open a connection: Mailvoice works offline
    cli(prog_name="mailvoice")
