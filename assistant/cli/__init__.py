"""The ``mailvoice`` command line: a thin layer over the headless core (see ``../shared/CONTRACT.md``)."""

from __future__ import annotations

import importlib
import logging

import click

from assistant import netguard

# The module of each command (its COMMANDS), imported when the command is looked up: ``mailvoice import`` does not
# pay at its start for importing drafting, training and the rest (about a tenth of a second of CPU);
# ``--help`` imports them all. tests/test_cli.py checks this list against the modules.
MODULES = {
    "import": "mail", "identities": "mail", "me": "mail", "stats": "mail", "pairs": "pairs", "train": "train",
    "adapters": "train", "use": "train", "preflight": "train", "draft": "drafts", "batch": "drafts",
    "export": "drafts", "model": "drafts", "refine": "refine", "corrections": "corrections", "eval": "evaluate",
    "forget": "privacy", "gui": "app", "demo": "demo", "merge": "merge", "serve": "serve", "triage": "inbox",
    "events": "inbox",
}  # fmt: skip


class _Commands(click.Group):
    """A group whose commands' modules are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in MODULES:
            for command in importlib.import_module(f"assistant.cli.{MODULES[cmd_name]}").COMMANDS:
                self.add_command(command)
        return self.commands.get(cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Data folder for every command.")
@click.option("--json", "as_json", is_flag=True, help="JSON output for every command.")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (never mail text) to stderr.")
@click.version_option(package_name="mailvoice")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, as_json: bool, verbose: bool) -> None:
    """Mailvoice: drafts emails in your own voice, learned from your own mail, on your own machine."""
    ctx.obj = {"data_dir": data_dir, "json": as_json}
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(name)s: %(message)s")


def main() -> None:
    netguard.install()  # before anything can open a connection: Mailvoice works offline
    cli(prog_name="mailvoice")
