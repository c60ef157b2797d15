"""Many drafts at once from a file of instructions, and every saved draft out to CSV.

CSV follows RFC 4180 quoting through the csv module, in UTF-8. ``excel=True`` adds what Excel needs to open
it right on every platform: a byte-order mark (else it guesses the ANSI code page and mangles accents) and
CRLF line ends. Without it lines end in LF, what Unix tools, pandas and Python's csv reader expect.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import sqlite_utils

from assistant.drafting.backend import Backend, Cancel
from assistant.drafting.drafts import EXPORT_COLUMNS, draft, export_rows
from assistant.errors import Cancelled, MailvoiceError

# "incomplete": why a draft looks unfinished (a code of assistant.drafting.incomplete.REASONS), "" for none.
BATCH_COLUMNS = ("instruction", "generated_email", "draft_id", "model", "adapter", "seconds", "incomplete")


class InstructionsError(MailvoiceError):
    """The instructions file is missing, empty or not text."""


@dataclass
class BatchProgress:
    done: int
    total: int
    elapsed: float

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the pace so far (None before the first draft is done)."""
        return self.elapsed / self.done * (self.total - self.done) if self.done else None


@dataclass
class BatchReport:
    out: str
    instructions: int
    written: int
    seconds: float
    draft_ids: list[int] = field(default_factory=list)
    cancelled: bool = False
    incomplete: list[int] = field(default_factory=list)  # ids of the drafts that look unfinished

    def to_json(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "instructions": self.instructions,
            "written": self.written,
            "seconds": round(self.seconds, 3),
            "draft_ids": self.draft_ids,
            "cancelled": self.cancelled,
            "incomplete": self.incomplete,
        }


def read_instructions(path: str | Path) -> list[str]:
    """One instruction per line; blank lines and lines starting with # are skipped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InstructionsError(f"Cannot read {path} ({exc.strerror}).") from exc
    if b"\x00" in data[:65536]:
        raise InstructionsError(f"{path} is a binary file, not text: give a text file with one instruction per line.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # Windows editors' default when not UTF-8
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f")
    if controls > max(2, len(text) // 100):
        raise InstructionsError(f"{path} is a binary file, not text: give a text file with one instruction per line.")
    lines = [line.strip() for line in text.splitlines()]
    found = [line for line in lines if line and not line.startswith("#")]
    if not found:
        raise InstructionsError(f"{path} has no instructions: write one per line (lines starting with # are comments).")
    return found


@contextmanager
def csv_writer(path: str | Path, excel: bool = False) -> Iterator[tuple[Any, TextIO]]:
    """A csv writer on ``path`` (see the module docstring for ``excel``)."""
    try:
        f = open(path, "w", encoding="utf-8-sig" if excel else "utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise MailvoiceError(f"Cannot write {path} ({exc.strerror}); choose another file.") from exc
    with f:
        yield csv.writer(f, lineterminator="\r\n" if excel else "\n"), f


def batch(
    db: sqlite_utils.Database,
    instructions: str | Path,
    out: str | Path,
    *,
    excel: bool = False,
    backend: Backend | None = None,
    progress: Callable[[BatchProgress], None] = lambda p: None,
    cancel: Cancel | None = None,
    **options: Any,
) -> BatchReport:
    """Draft every instruction in the file ``instructions`` and write ``out`` as CSV, a row per draft.

    Each row is written (and flushed) as soon as it is drafted, so stopping keeps what was done. The model
    stays loaded between drafts (llama.cpp backends share one loaded model).

    Args:
        options: passed to :func:`draft` (to, tone, length, adapter, examples, model, seed).
    """
    todo = read_instructions(instructions)
    started = time.perf_counter()
    report = BatchReport(str(out), len(todo), 0, 0.0)
    with csv_writer(out, excel) as (writer, f):
        writer.writerow(BATCH_COLUMNS)
        for i, instruction in enumerate(todo):
            progress(BatchProgress(i, len(todo), time.perf_counter() - started))
            try:
                result = draft(db, instruction, backend=backend, cancel=cancel, **options)
            except Cancelled:
                report.cancelled = True
                break
            d = result.drafts[0]
            flag = d.incomplete.code if d.incomplete else ""
            writer.writerow([instruction, d.text, d.id, result.model, result.adapter or "", round(result.seconds, 2),
                             flag])  # fmt: skip
            f.flush()
            report.written += 1
            report.draft_ids.append(d.id)
            if flag:
                report.incomplete.append(d.id)
    report.seconds = time.perf_counter() - started
    progress(BatchProgress(report.written, len(todo), report.seconds))
    return report


def export_drafts(db: sqlite_utils.Database, out: str | Path, *, excel: bool = False) -> int:
    """Write every saved draft to ``out`` (columns :data:`EXPORT_COLUMNS`), oldest first; return the count."""
    count = 0
    with csv_writer(out, excel) as (writer, _f):
        writer.writerow(EXPORT_COLUMNS)
        for row in export_rows(db):
            writer.writerow(row)
            count += 1
    return count
