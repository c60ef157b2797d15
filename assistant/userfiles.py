"""Opening the files a person names (an email to answer, a list of instructions, a dataset): regular files only.

A device (``/dev/zero``), a named pipe or a folder given by mistake would otherwise be read without end or
wait forever for a writer, so they are refused with a message before anything is read. Callers then read
what they opened in bounded pieces (see :func:`read_capped` and :func:`capped_lines`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from assistant.errors import MailvoiceError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a disk device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)
# Non-blocking, so that opening a named pipe returns at once (to be refused) instead of waiting for a writer.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_SKIP_CHUNK = 1024 * 1024


def open_regular(path: str | Path, error: type[MailvoiceError], what: str) -> BinaryIO:
    """``path`` opened for binary reading, or ``error`` saying why it cannot be (missing, unreadable, not a file).

    Args:
        error: the caller's error type, raised with a message that ends "give the path of ``what``".
        what: what the caller expects, e.g. "a saved email (.eml)".
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise error(f"Cannot read {path} ({exc.strerror}); give the path of {what}.") from exc
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise error(f"Cannot read {path} ({exc.strerror}); give the path of {what}.") from exc
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise error(f"{path} is {kind}, not a file: give the path of {what}.")
    return os.fdopen(fd, "rb")


def read_capped(f: BinaryIO, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes from ``f``, and whether there was more."""
    data = f.read(limit + 1)
    return data[:limit], len(data) > limit


def capped_lines(f: BinaryIO, limit: int) -> Iterator[bytes | None]:
    """Each line of ``f`` (its line end included), or None for a line longer than ``limit`` bytes in all.

    An over-long line is read past in pieces and never held whole, so memory stays within ``limit``.
    """
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit:
            yield line
            continue
        while not line.endswith(b"\n"):  # the rest of the over-long line
            line = f.readline(_SKIP_CHUNK)
            if not line:
                break
        yield None
