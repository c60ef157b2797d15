"""Where Mailvoice keeps its data: one folder of its own, private to the user.

The folder is ``--data-dir`` when given, else ``$MAILVOICE_HOME`` when set, else the platform's user data
folder (``~/.local/share/mailvoice`` on Linux, ``~/Library/Application Support/mailvoice`` on macOS,
``%LOCALAPPDATA%\\mailvoice`` on Windows). A folder Mailvoice creates is made 0700; a folder that already
exists keeps its mode. A folder that already holds files of someone else's is refused rather than adopted:
``mailvoice forget`` must be able to delete all of Mailvoice's data without touching anything else.
Whatever Mailvoice writes in the folder is 0600 (files) or 0700 (folders): :func:`private_umask` is set for
the whole process as soon as the folder is known, so libraries writing there (the training worker,
PyTorch, PEFT, the GGUF writer) need no care of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from assistant.errors import MailvoiceError

APP_NAME = "mailvoice"
DB_NAME = "mailvoice.db"
DB_FILES = (f"{DB_NAME}-journal", f"{DB_NAME}-wal", f"{DB_NAME}-shm", DB_NAME)  # the database last: forget
# Every name Mailvoice writes at the top of a data folder. ``forget`` deletes these and nothing else, so a
# feature that writes a new top-level file or folder must add its name here.
IMPORT_LOCK = f"{DB_NAME}.import-lock"  # held by a running import (assistant.importer)
OWN_ENTRIES = frozenset({*DB_FILES, IMPORT_LOCK, "runs", "cache", "adapters", "eval", "demo", "inbox"})
PRIVATE_UMASK = 0o077  # group and others get nothing: files 0600, folders 0700

FOLDER_OPTIONS = "Set it with --data-dir or MAILVOICE_HOME."  # how the command line chooses the folder


class DataFolderError(MailvoiceError):
    """The data folder cannot be used: it is a file, cannot be created, or holds files that are not ours."""


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Return the data folder, creating it (mode 0700) if needed, and make what is written from now on private.

    Args:
        override: an explicit folder (``--data-dir``); wins over ``MAILVOICE_HOME``.

    Raises:
        DataFolderError: the path is a file, cannot be created, or is a folder of someone else's files.
    """
    path = chosen_data_dir(override)
    where = "" if override else "MAILVOICE_HOME " if os.environ.get("MAILVOICE_HOME") else "the data folder "
    private_umask()
    if not path.is_dir():
        _create(path, where)
    elif not is_data_folder(path):
        raise DataFolderError(_not_ours(path, where), cli=FOLDER_OPTIONS)
    return path


def chosen_data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data folder's path (``--data-dir`` > ``MAILVOICE_HOME`` > the platform's), neither created nor checked."""
    raw = override or os.environ.get("MAILVOICE_HOME") or platformdirs.user_data_dir(APP_NAME, appauthor=False)
    return Path(raw).expanduser().resolve()


def private_umask() -> None:
    """Make every file and folder this process creates from now on private (0600 / 0700).

    Process-wide on purpose: everything Mailvoice writes (the data folder, exports the user asks for, the
    training worker it starts, which inherits the mask) holds mail or is made from it. Windows keeps the data
    in the user's private profile and has no such mask.
    """
    if os.name != "nt":
        os.umask(PRIVATE_UMASK)


def _create(path: Path, where: str) -> None:
    """Make the data folder ``path`` (resolved: no link); a file in its place is refused."""
    try:
        path.mkdir(parents=True, mode=0o700)
    except FileExistsError:  # a file, or a folder made meanwhile by another thread or process (then fine)
        if not path.is_dir():
            raise DataFolderError(
                f"{where}{path} is a file, not a folder. Give a folder for Mailvoice's data (a new or empty one).",
                cli=FOLDER_OPTIONS,
            ) from None
        return
    except OSError as exc:
        raise DataFolderError(
            f"Cannot create the data folder {path} ({exc.strerror or exc}). Choose a folder you can write to.",
            cli=FOLDER_OPTIONS,
        ) from exc
    if os.name != "nt":
        os.chmod(path, 0o700)  # ours: private whatever the umask was when it was made


def is_data_folder(root: Path) -> bool:
    """True when ``root`` holds a Mailvoice database, or nothing but what Mailvoice writes (or nothing)."""
    if (root / DB_NAME).is_file():
        return True
    try:
        return all(name in OWN_ENTRIES for name in os.listdir(root))
    except OSError:
        return False


def foreign_entries(root: Path) -> list[str]:
    """The names at the top of ``root`` that Mailvoice did not write, sorted."""
    try:
        return sorted(name for name in os.listdir(root) if name not in OWN_ENTRIES)
    except OSError:
        return []


def _not_ours(path: Path, where: str) -> str:
    names = foreign_entries(path)
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3:,} more" if len(names) > 3 else "")
    return (
        f"{where}{path} already holds files that are not Mailvoice's ({shown}). Mailvoice keeps its data in a "
        "folder of its own, so that forgetting everything deletes all of it and nothing of yours: give a new or "
        f"empty folder, e.g. {path / APP_NAME}."
    )


def db_path(root: Path) -> Path:
    return root / DB_NAME
