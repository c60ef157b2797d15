"""What every command shares: --data-dir and --json, output, progress on stderr, and error translation."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from assistant.durations import format_duration
from assistant.errors import MailvoiceError
from assistant.paths import db_path
from assistant.store.db import OTHER_FOLDER, read_only_message
from assistant.workspace import Workspace

T = TypeVar("T")


class Context:
    """Per-invocation state: the workspace (made on first use, so a bad data folder is an error of the command
    that needs it), whether to print JSON."""

    def __init__(self, data_dir_opt: str | None, as_json: bool):
        self.data_dir_opt = data_dir_opt
        self.as_json = as_json
        self._workspace: Workspace | None = None

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = Workspace(self.data_dir_opt, check=True)
        return self._workspace

    @property
    def root(self) -> Path:
        return self.workspace.root

    @property
    def db(self):
        return self.workspace.db

    def emit(self, payload: dict[str, Any], human: str | Callable[[], None]) -> None:
        """Print ``payload`` as one JSON object (``--json``) or the human text."""
        if self.as_json:
            click.echo(json.dumps(payload, ensure_ascii=False, default=str))
        elif callable(human):
            human()
        else:
            click.echo(human)


def command_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add --data-dir and --json to a command, build its Context, and turn MailvoiceError into exit 1."""

    @click.option(
        "--data-dir",
        "data_dir_opt",
        type=click.Path(file_okay=False),
        default=None,
        help="Data folder (default: $MAILVOICE_HOME or the platform's user data folder).",
    )
    @click.option(
        "--json",
        "as_json",
        is_flag=True,
        default=False,
        help="Print one JSON object on stdout; human text and progress go to stderr.",
    )
    @click.pass_context
    @functools.wraps(fn)
    def wrapper(click_ctx: click.Context, data_dir_opt: str | None, as_json: bool, **kwargs: Any) -> Any:
        parent = click_ctx.find_root().obj or {}
        ctx = Context(data_dir_opt or parent.get("data_dir"), as_json or parent.get("json", False))
        try:
            return fn(ctx, **kwargs)
        except MailvoiceError as exc:
            fail(exc.for_command_line())
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc).lower():
                raise  # a bug: the traceback is what helps
            fail(f"{read_only_message(db_path(ctx.root))} {OTHER_FOLDER}")
        except KeyboardInterrupt:
            click.echo("Stopped.", err=True)
            sys.exit(130)

    return wrapper


def write_whole(out: str, write: Callable[[str], T]) -> T:
    """Write the file ``out`` a person asked for with ``write(path)``, whole or not at all.

    ``write`` fills a temporary file beside ``out`` that is renamed over it once complete, so a full disk or a
    crash never leaves a half-written ``out`` that looks complete, nor spoils an earlier export of the same
    name. A destination that is not a regular file (``/dev/stdout``, a pipe) is written directly.
    """
    target = Path(os.path.realpath(out))  # a link: its target is what gets replaced, the link stays
    if target.exists() and not target.is_file():
        return _translate_write_error(out, lambda: write(out))
    fd, tmp = _translate_write_error(out, lambda: tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent))
    os.close(fd)
    try:
        result = _translate_write_error(out, lambda: write(tmp))
        _translate_write_error(out, lambda: os.replace(tmp, target))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # gone already once renamed
    return result


def _translate_write_error(out: str, step: Callable[[], T]) -> T:
    try:
        return step()
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise MailvoiceError(
                f"The disk is full, so {out} was not written (nothing half-written was left). Free some space, "
                "or choose a file on another disk, and export again."
            ) from exc
        raise MailvoiceError(f"Cannot write {out} ({exc.strerror or exc}); choose another file.") from exc


def fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


class ProgressLine:
    """A one-line progress display on stderr: percent, rate, ETA. Silent when stderr is not a terminal
    unless ``always`` (then it prints a line every few seconds, for logs)."""

    def __init__(self, label: str, always: bool = False):
        self.label = label
        self.tty = sys.stderr.isatty()
        self.always = always
        self.last = time.monotonic()  # the first line after 5 s: quick commands stay quiet

    def show(self, fraction: float, detail: str, eta: float | None) -> None:
        now = time.monotonic()
        if not self.tty and not (self.always and now - self.last > 5):
            return
        self.last = now
        eta_text = f", {format_duration(eta)} left" if eta is not None else ""
        line = f"{self.label} {fraction:6.1%}  {detail}{eta_text}"
        click.echo(("\r" + line.ljust(100)) if self.tty else line, err=True, nl=not self.tty)

    def done(self) -> None:
        if self.tty:
            click.echo("", err=True)
