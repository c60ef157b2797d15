"""``mailvoice demo``: the whole pipeline, headless, on a sample mailbox and the embedded model.

Each step runs the same ``mailvoice`` command a user would type, in its own data folder (never the user's), so the
demo proves that the public commands fit together: import → pairs → train (a few steps) → draft → eval → export.
It ends by printing where each artefact is.

The mailbox ships in ``resources/demo/alex-morgan.mbox.gz``: 1,000 messages of the fictional Alex Morgan (an mboxrd
file, gzipped), of which the demo imports the first ``--messages``. The file is made by the test suite's mailbox
generator and is regenerated with ``python tests/mailgen --demo resources/demo/alex-morgan.mbox.gz``;
tests/test_demo.py checks that it is still what the generator makes.
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from assistant.cli.common import Context, command_options
from assistant.durations import format_duration
from assistant.errors import MailvoiceError

MARKER = ".mailvoice-demo"  # a folder holding this file is the demo's own and may be replaced
OWNER = ("alex.morgan@example.org", "alex@morgan.example")  # who sends the sample mailbox's sent mail
MAILBOX = "alex-morgan.mbox.gz"  # in resources/demo/
MAILBOX_MESSAGES = 1000
INSTRUCTION = "Ask Maya whether we can move Friday's review to Monday morning, and mention the budget draft."
# A training recipe small enough for a laptop CPU in about a minute: it shows the mechanics, not a voice.
DEMO_TRAINING = {
    "batch_size": 2,
    "grad_accum": 1,
    "max_seq_len": 384,
    "eval_every": 2,
    "eval_max_examples": 4,
    "checkpoint_every": 2,
    "parity_examples": 2,
}


class DemoFailed(MailvoiceError):
    pass


def sample_mailbox(messages: int = MAILBOX_MESSAGES) -> bytes:
    """The first ``messages`` messages of the shipped sample mailbox, as mbox bytes.

    The file is mboxrd: every body line starting with ``From `` is escaped, so each line that starts with ``From ``
    begins a message."""
    data = gzip.decompress((importlib.resources.files("resources") / "demo" / MAILBOX).read_bytes())
    starts = [m.start() for m in re.finditer(rb"^From ", data, re.M)]
    return data if messages >= len(starts) else data[: starts[messages]]


def prepare_folder(out: Path) -> None:
    """Create ``out`` for a new demo; replace an earlier demo's folder, refuse to touch anything else."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise DemoFailed(f"{out} is not empty and was not made by mailvoice demo: choose another folder with --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("Made by mailvoice demo; the next demo run replaces this folder.\n")


def _mailvoice() -> list[str]:
    """How to run the ``mailvoice`` command of this very installation."""
    script = Path(sys.executable).with_name("mailvoice")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from assistant.cli import main; main()"]


class Runner:
    """Runs ``mailvoice --data-dir DATA --json ...`` steps, passing their progress through to stderr."""

    def __init__(self, data: Path, total: int):
        self.data = data
        self.total = total
        self.done = 0
        self.steps: list[dict[str, Any]] = []

    def __call__(self, title: str, *args: str) -> dict[str, Any]:
        self.done += 1
        click.echo(f"[{self.done}/{self.total}] {title}: mailvoice {' '.join(args)}", err=True)
        started = time.monotonic()
        result = subprocess.run(
            [*_mailvoice(), "--data-dir", str(self.data), "--json", *args],
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - started
        if result.returncode != 0:
            raise DemoFailed(f"the step '{title}' failed (mailvoice {' '.join(args)}); its message is above")
        payload = json.loads(result.stdout) if result.stdout.strip() else {}
        self.steps.append({"step": title, "command": ["mailvoice", *args], "seconds": round(seconds, 1)})
        click.echo(f"      done in {format_duration(seconds)}", err=True)
        return payload


def _set_training_recipe(data: Path, steps: int) -> None:
    from assistant.store import open_store
    from assistant.store.db import set_setting

    set_setting(open_store(data), "train", dict(DEMO_TRAINING, max_steps=steps))  # what `train` reads first


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the demo's own data and artefacts (default: demo/ in the data folder; replaced each run).",
)
@click.option("--messages", type=click.IntRange(50, MAILBOX_MESSAGES), default=400, show_default=True,
              help="How many messages of the sample mailbox to import (its first ones).")
@click.option("--pairs", "pairs", type=click.IntRange(4, 1000), default=24, show_default=True,
              help="How many sent emails get an instruction.")
@click.option("--steps", type=click.IntRange(1, 1000), default=4, show_default=True, help="Training steps.")
@click.option("--eval-limit", type=click.IntRange(1, 1000), default=4, show_default=True,
              help="Validation pairs to evaluate.")
@command_options
def demo(ctx: Context, out: str | None, messages: int, pairs: int, steps: int, eval_limit: int) -> None:
    """Run the whole pipeline on a sample mailbox and the embedded model, and show where everything is."""
    from assistant.store import open_store
    from assistant.store.adapters import list_adapters

    started = time.monotonic()
    folder = Path(out).expanduser().resolve() if out else ctx.root / "demo"
    prepare_folder(folder)
    data = folder / "data"
    run = Runner(data, total=8)

    mbox = folder / "alex-morgan.mbox"
    click.echo(f"Writing {messages:,} messages of the sample mailbox to {mbox}", err=True)
    mbox.write_bytes(sample_mailbox(messages))
    me = [arg for address in OWNER for arg in ("--me", address)]
    imported = run("Import the mailbox", "import", str(mbox), *me)
    built = run("Write an instruction for each sent email", "pairs", "build", "--limit", str(pairs))
    pairs_file = folder / "pairs.jsonl"
    run("Export the training pairs", "pairs", "export", str(pairs_file))
    _set_training_recipe(data, steps)
    trained = run("Train an adapter for a few steps", "train", "--name", "demo", "--max-steps", str(steps))
    drafted = run("Draft an email with the adapter", "draft", INSTRUCTION, "--adapter", "demo")
    evaluated = run("Evaluate on held-out emails", "eval", "--adapter", "demo", "--limit", str(eval_limit))
    drafts_csv = folder / "drafts.csv"
    run("Export the drafts", "export", "drafts", str(drafts_csv))
    run("Show what is stored", "stats")

    adapters = [a for a in list_adapters(open_store(data)) if a["name"] == trained.get("adapter")]
    artefacts = {
        "mailbox": str(mbox),
        "data_folder": str(data),
        "database": str(data / "mailvoice.db"),
        "pairs": str(pairs_file),
        "adapter": str(data / adapters[0]["path"]) if adapters else None,
        "drafts_csv": str(drafts_csv),
        "eval_report": evaluated.get("report_html") or evaluated.get("html_path"),
        "eval_json": evaluated.get("report_json") or evaluated.get("json_path"),
    }
    text = drafted.get("drafts", [{}])[0].get("text", "")
    payload = {
        "folder": str(folder),
        "imported": imported.get("imported"),
        "pairs_built": built.get("built"),
        "adapter": trained.get("adapter"),
        "train_loss": trained.get("train_loss"),
        "eval_loss": trained.get("eval_loss"),
        "draft": text,
        "eval": {k: evaluated.get(k) for k in ("bleu", "chrf", "rouge_l", "mauve", "length_ratio", "verbatim_overlap")},
        "artefacts": artefacts,
        "steps": run.steps,
        "seconds": round(time.monotonic() - started, 1),
    }

    def human() -> None:
        click.echo(f"\nDemo finished in {format_duration(payload['seconds'])}. The draft:\n")
        click.echo(text.strip() or "(empty)")
        click.echo("\nWhere everything is:")
        for name, path in artefacts.items():
            click.echo(f"  {name.replace('_', ' '):<12} {path}")
        click.echo(f"\nTry it yourself: mailvoice --data-dir {data} draft \"…\"")

    ctx.emit(payload, human)


COMMANDS = [demo]
