"""Keeping a data folder private: folders 0700, files 0600 (links left alone, never followed).

Apart from :mod:`assistant.forget` (which deletes) so that opening the store, which tightens a folder written
by an older version once, needs nothing of the store's own package.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from assistant.paths import OWN_ENTRIES


@dataclass
class PermissionReport:
    """What :func:`check_permissions` tightened, and what it could not."""

    tightened: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_permissions(root: Path) -> PermissionReport:
    """Make the data folder private: folders 0700, files 0600 (links are left alone, never followed).

    Returns what was tightened and what could not be (a file owned by someone else). On Windows the
    folder already sits in the user's private profile and POSIX modes mean nothing, so it does nothing.
    """
    report = PermissionReport()
    if os.name == "nt":
        return report
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        _tighten(here, True, report)
        for name in filenames:
            _tighten(here / name, False, report)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
    return report


def tighten_data_folder(root: Path) -> PermissionReport:
    """:func:`check_permissions` for what Mailvoice wrote in ``root`` (never the folder itself, nor the user's files).

    For data folders written by versions that left training runs and caches readable by others."""
    report = PermissionReport()
    for name in sorted(OWN_ENTRIES):
        path = Path(root) / name
        if path.is_dir() and not path.is_symlink():
            found = check_permissions(path)
            report.tightened += found.tightened
            report.problems += found.problems
        elif path.is_file() and os.name != "nt":
            _tighten(path, False, report)
    return report


def _tighten(path: Path, is_dir: bool, report: PermissionReport) -> None:
    try:
        info = path.lstat()
    except OSError:
        return
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode) or (mode & 0o077 == 0 and (not is_dir or mode & 0o700 == 0o700)):
        return  # a link (its target decides), or already private
    try:  # group and others lose everything; the owner keeps what it had, plus read and write (and enter)
        os.chmod(path, 0o700 if is_dir else (mode & 0o700) | 0o600)
    except OSError as exc:
        report.problems.append(f"{path}: {exc.strerror or exc}")
        return
    report.tightened.append(str(path))
