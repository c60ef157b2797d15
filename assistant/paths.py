"""Where Mailvoice keeps its data: one folder, private to the user.

The folder is ``$MAILVOICE_HOME`` when set, else the platform's user data folder
(``~/.local/share/mailvoice`` on Linux, ``~/Library/Application Support/mailvoice`` on macOS,
``%LOCALAPPDATA%\\mailvoice`` on Windows). It is created with mode 0700.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import platformdirs

APP_NAME = "mailvoice"
DB_NAME = "mailvoice.db"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Return the data folder, creating it (mode 0700) if needed.

    Args:
        override: an explicit folder (``--data-dir``); wins over ``MAILVOICE_HOME``.
    """
    raw = (
        override or os.environ.get("MAILVOICE_HOME") or platformdirs.user_data_dir(APP_NAME, appauthor=False)
    )
    path = Path(raw).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):  # a folder the user does not own (shared mount): their choice
        path.chmod(0o700)
    return path


def db_path(root: Path) -> Path:
    return root / DB_NAME
