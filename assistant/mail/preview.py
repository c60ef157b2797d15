"""What mail the user is about to import, before importing: where mail programs keep it, how many messages the
chosen files hold (estimated from samples for big mbox files), their date range and size. Headless, for the
import wizard (and anything else that asks)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.mail.parse import _date as parse_date  # the importer's own Date reading (plausibility included)
from assistant.mail.sources import Skip, discover, iter_file, iter_mbox

EXACT_BYTES = 64 * 1024 * 1024  # up to this much mail is counted message by message (well under a second)
SAMPLE_WINDOWS = 16  # bigger mbox files: this many evenly spaced windows...
WINDOW_BYTES = 1024 * 1024  # ...of this many bytes each are read, and the count is extrapolated
SAMPLE_FILES = 400  # of a big folder of single-message files, the dates of this many are read
_DATE_LINE = re.compile(rb"^Date:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)

# Where mail programs keep their mail, under the home folder: (label, glob pattern) of folders.
KNOWN_LOCATIONS = (
    ("Gmail Takeout", "Downloads/Takeout*/Mail"),  # "Takeout", and "Takeout 2" when unpacked twice
    ("Gmail Takeout", "Downloads/takeout-*/Takeout/Mail"),
    ("Gmail Takeout", "Takeout/Mail"),
    ("Thunderbird local folders", ".thunderbird/*/Mail"),
    ("Thunderbird IMAP accounts", ".thunderbird/*/ImapMail"),
    ("Thunderbird local folders", "snap/thunderbird/common/.thunderbird/*/Mail"),
    ("Thunderbird IMAP accounts", "snap/thunderbird/common/.thunderbird/*/ImapMail"),
    ("Thunderbird local folders", ".var/app/org.mozilla.Thunderbird/.thunderbird/*/Mail"),
    ("Thunderbird local folders", "Library/Thunderbird/Profiles/*/Mail"),
    ("Thunderbird IMAP accounts", "Library/Thunderbird/Profiles/*/ImapMail"),
    ("Thunderbird local folders", "AppData/Roaming/Thunderbird/Profiles/*/Mail"),
    ("Apple Mail", "Library/Mail/V*"),
)
# Mail exported or downloaded by hand: .mbox files (and Apple Mail's exported .mbox folders) straight in Downloads.
# A Takeout .zip is not offered: the importer reads unpacked mail only.
DOWNLOADS = "Downloads"
MBOX_SUFFIX = ".mbox"


def known_locations(home: Path | None = None) -> list[tuple[str, Path]]:
    """Mail folders of Gmail Takeout, Thunderbird and Apple Mail, and mbox files in Downloads, under ``home``."""
    home = Path(home or Path.home())
    found = []
    for label, pattern in KNOWN_LOCATIONS:
        for path in sorted(home.glob(pattern)):
            if path.is_dir() and path not in (p for _label, p in found):
                found.append((label, path))
    return found + _downloaded_mbox(home / DOWNLOADS)


def _downloaded_mbox(folder: Path) -> list[tuple[str, Path]]:
    """``*.mbox`` files and folders in ``folder`` (any case: "Inbox.MBOX" too); unreadable folders give none."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    found = []
    for path in entries:
        if path.suffix.lower() != MBOX_SUFFIX:
            continue
        if path.is_file():
            found.append(("mbox file in Downloads", path))
        elif path.is_dir():
            found.append(("Mail export in Downloads", path))
    return found


@dataclass
class Preview:
    """What the chosen paths hold, before importing."""

    files: int = 0
    bytes: int = 0
    messages: int = 0
    estimated: bool = False  # the count was extrapolated from samples
    first: str | None = None  # ISO dates of the oldest and newest message seen
    last: str | None = None
    not_mail: list[Skip] = field(default_factory=list)

    def add_date(self, head: bytes) -> None:
        m = _DATE_LINE.search(head.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0])
        when = parse_date(m.group(1).decode("latin-1"), []) if m else None
        if when:
            self.first = min(self.first or when, when)
            self.last = max(self.last or when, when)


def preview(paths: Iterable[str | Path], *, exact_bytes: int = EXACT_BYTES, cancel=None) -> Preview:
    """Count the messages in ``paths`` (estimated above ``exact_bytes``), their date range and size."""
    cancel = cancel or (lambda: False)
    files, skips = discover([Path(p) for p in paths])
    pv = Preview(files=len(files), bytes=sum(f.size for f in files), not_mail=skips)
    exact = pv.bytes <= exact_bytes
    singles = [f for f in files if f.kind != "mbox"]
    pv.messages += len(singles)
    step = 1 if exact else max(1, len(singles) // SAMPLE_FILES)
    for src in singles[::step]:
        for raw in iter_file(src):
            pv.add_date(raw.data[:16384])
        if cancel():
            return pv
    for src in (f for f in files if f.kind == "mbox"):
        if exact or src.size <= SAMPLE_WINDOWS * WINDOW_BYTES * 2:
            for i, raw in enumerate(iter_file(src)):
                pv.messages += 1
                pv.add_date(raw.data[:16384])
                if i % 1000 == 0 and cancel():
                    return pv
        else:
            pv.messages += _estimate_mbox(src.path, src.start, src.size, pv)
            pv.estimated = True
        if cancel():
            return pv
    return pv


def _estimate_mbox(path: Path, start: int, size: int, pv: Preview) -> int:
    """Messages in a big mbox, from the messages that start in evenly spaced windows (dates noted too).

    Counting starts per byte of window (not per byte of the messages seen) keeps the estimate unbiased
    when a few huge messages (attachments) hold most of the bytes: a window inside one counts zero.
    """
    starts = 0
    with open(path, "rb") as f:
        for k in range(SAMPLE_WINDOWS):
            at = start + (size - start - WINDOW_BYTES) * k // (SAMPLE_WINDOWS - 1)
            first = at
            if k:
                f.seek(at - 1)
                hit = f.read(WINDOW_BYTES + 1).find(b"\nFrom ")
                if hit < 0:
                    continue  # inside one big message: no message starts here
                first = at - 1 + hit + 1
            for raw in iter_mbox(path, first):
                if raw.offset >= at + WINDOW_BYTES:
                    break
                starts += 1
                pv.add_date(raw.data[:16384])
    return round(starts * (size - start) / (SAMPLE_WINDOWS * WINDOW_BYTES))


def human_size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""
