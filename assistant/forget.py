"""Data at rest: ``forget`` deletes everything Mailvoice stored in a data folder; permissions stay private.

A data folder holds the database (``mailvoice.db`` with its ``-wal``/``-shm`` files) and the folders other
features write beside it (``runs/``, ``cache/``, ``adapters/``...: :data:`assistant.paths.OWN_ENTRIES`).
:func:`forget` deletes those and nothing else: a file the user keeps in the same folder (a data folder made by
an older version could be a folder of theirs) is left where it is and named in the report. Because a mistaken
``--data-dir ~`` must never empty a home folder, it refuses any folder that does not look like a Mailvoice
data folder, and home and system folders even when they hold a database. The database is deleted last, so a
forget that is interrupted can simply be run again. The folder itself stays, with the mode it had.

Deleting unlinks the files; it does not scrub the disk blocks (on SSDs and copy-on-write file systems
overwriting in place is not possible anyway) and cannot reach copies in backups.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import MailvoiceError
from assistant.paths import DB_FILES, DB_NAME, IMPORT_LOCK, OWN_ENTRIES, foreign_entries, is_data_folder
from assistant.store.lockfile import FileLock


class NotADataFolder(MailvoiceError):
    """The folder given does not look like a Mailvoice data folder, so nothing was deleted."""


@dataclass
class ForgetReport:
    """What :func:`forget` removed."""

    data_dir: Path
    removed_files: int = 0  # files and links, not counting folders
    removed_folders: int = 0
    removed_bytes: int = 0
    kept: list[str] = field(default_factory=list)  # names in the folder that Mailvoice did not write, untouched

    def to_json(self) -> dict[str, object]:
        return {
            "removed_files": self.removed_files,
            "removed_bytes": self.removed_bytes,
            "removed_folders": self.removed_folders,
            "data_dir": str(self.data_dir),
            "kept": self.kept,
        }


def looks_like_data_folder(root: Path) -> bool:
    """True when ``root`` holds a Mailvoice database, or nothing but what Mailvoice writes."""
    return is_data_folder(root)


def forget(root: Path) -> ForgetReport:
    """Delete everything Mailvoice wrote in the data folder ``root``; leave the folder and anything else in it.

    Raises:
        NotADataFolder: ``root`` is not a Mailvoice data folder (or is a home or system folder).
        MailvoiceError: a file could not be deleted (what was deleted before it stays deleted).
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        return ForgetReport(root)
    _refuse_unless_data_folder(root)
    lock = FileLock(root / IMPORT_LOCK)
    if (root / IMPORT_LOCK).exists() and not lock.try_acquire():
        raise MailvoiceError(
            f"An import into {root} is running, so nothing was deleted: it would go on storing mail. Stop it (or "
            "wait for it to finish), then forget everything again.",
            cli="Then run mailvoice forget --yes again.",
        )
    report = ForgetReport(root, kept=foreign_entries(root))
    try:  # holding the lock: an import started now waits, then finds the store gone and starts a new one
        for name in sorted(OWN_ENTRIES - {*DB_FILES, IMPORT_LOCK}):
            _remove(root / name, report)
        for name in DB_FILES:
            _remove(root / name, report)
    finally:
        lock.release()
    _remove(root / IMPORT_LOCK, report)  # released first: Windows deletes no file that is open
    return report


def _refuse_unless_data_folder(root: Path) -> None:
    home = Path.home().resolve()
    if root == Path(root.anchor) or root == home or root in home.parents:
        raise NotADataFolder(
            f"{root} is a home or system folder, not a Mailvoice data folder, so nothing was deleted. "
            "Give the folder Mailvoice uses.",
            cli="(--data-dir or MAILVOICE_HOME)",
        )
    if not looks_like_data_folder(root):
        raise NotADataFolder(
            f"{root} does not look like a Mailvoice data folder (it has no {DB_NAME}, and holds files Mailvoice "
            f"did not write: {', '.join(foreign_entries(root)[:3])}), so nothing was deleted. Check which folder "
            "Mailvoice uses.",
            cli="Check --data-dir or MAILVOICE_HOME.",
        )


def _remove(path: Path, report: ForgetReport) -> None:
    """Delete a file, link or folder tree without following links (a link's target is not ours)."""
    try:
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode):
            _chmod(path, 0o700)  # a read-only folder (a copied checkpoint) must still be emptied
            for child in sorted(path.iterdir()):
                _remove(child, report)
            path.rmdir()
            report.removed_folders += 1
            return
        path.unlink()
    except FileNotFoundError:  # gone already (a -shm file SQLite removed itself): nothing to do
        return
    except OSError as exc:
        raise MailvoiceError(
            f"Could not delete {path} ({exc.strerror or exc}). {report.removed_files:,} files were deleted "
            "so far; close Mailvoice everywhere, then forget everything again.",
            cli="Then run mailvoice forget --yes again.",
        ) from exc
    report.removed_files += 1
    if stat.S_ISREG(info.st_mode):
        report.removed_bytes += info.st_size


def _chmod(path: Path, mode: int) -> None:
    with contextlib.suppress(OSError):  # not ours to change (a shared mount): deleting says so if it matters
        os.chmod(path, mode)
