"""Many drafts at once from a file of instructions, and every saved draft out to CSV.

The instructions file is streamed, a line at a time, and never held whole: a line longer than
:data:`MAX_INSTRUCTION_BYTES` (pasted data, or a file that is not a list of instructions) is skipped and
reported with its line number, as is an instruction the model cannot take (too long for its context window);
the other lines are drafted.

CSV follows RFC 4180 quoting through the csv module, in UTF-8. ``excel=True`` adds what Excel needs to open
it right on every platform: a byte-order mark (else it guesses the ANSI code page and mangles accents) and
CRLF line ends. Without it lines end in LF, what Unix tools, pandas and Python's csv reader expect.
"""

from __future__ import annotations

import codecs
import csv
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import sqlite_utils

from assistant.drafting.backend import Backend, Cancel
from assistant.drafting.drafts import EXPORT_COLUMNS, DraftJob, DraftResult, draft_many, export_rows
from assistant.drafting.prompting import PromptError
from assistant.errors import Cancelled, MailvoiceError
from assistant.userfiles import capped_lines, open_regular

# "incomplete": why a draft looks unfinished (a code of assistant.drafting.incomplete.REASONS), "" for none.
BATCH_COLUMNS = ("instruction", "generated_email", "draft_id", "model", "adapter", "seconds", "incomplete")
# About 8,000 tokens: more than the whole context window drafting uses by default. A longer line is pasted
# data, not an instruction, and is skipped without being read whole.
MAX_INSTRUCTION_BYTES = 32 * 1024
_SNIFF_BYTES = 65536  # a NUL in the first 64 KiB: a binary file
_WHAT = "a text file with one instruction per line"


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
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"line": N, "reason": "..."}, by line
    incomplete: list[int] = field(default_factory=list)  # ids of the drafts that look unfinished
    width: int = 1  # drafts written at once

    def to_json(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "instructions": self.instructions,
            "written": self.written,
            "seconds": round(self.seconds, 3),
            "draft_ids": self.draft_ids,
            "cancelled": self.cancelled,
            "skipped": self.skipped,
            "incomplete": self.incomplete,
            "width": self.width,
        }


@dataclass
class InstructionsScan:
    """What a first pass over an instructions file found (nothing of it is kept but counts and line numbers)."""

    count: int  # instruction lines, the over-long ones included
    encoding: str  # "utf-8-sig", or "cp1252" when the file is not UTF-8 (Windows editors' default)
    too_long: list[int] = field(default_factory=list)  # line numbers of lines over MAX_INSTRUCTION_BYTES


def scan_instructions(path: str | Path) -> InstructionsScan:
    """Check that ``path`` is a text file of instructions and count them; raise :class:`InstructionsError` if not.

    Blank lines and lines starting with # are not instructions.
    """
    try:
        return _scan(path, "utf-8-sig")
    except UnicodeDecodeError:
        return _scan(path, "cp1252")


def iter_instructions(path: str | Path, scan: InstructionsScan) -> Iterator[tuple[int, str | None]]:
    """(line number, instruction) for each instruction line of a scanned file; None for one that is too long."""
    with _open(path) as f:
        for number, text in _numbered_lines(f, scan.encoding):
            if text is None or _instruction(text):
                yield number, text if text is None else text.strip()


def read_instructions(path: str | Path) -> list[str]:
    """Every instruction of ``path`` (see :func:`scan_instructions`), leaving out lines that are too long."""
    scan = scan_instructions(path)
    return [text for _, text in iter_instructions(path, scan) if text is not None]


def _instruction(text: str) -> bool:
    text = text.strip()
    return bool(text) and not text.startswith("#")


def _open(path: str | Path) -> BinaryIO:
    return open_regular(path, InstructionsError, _WHAT)


def _scan(path: str | Path, encoding: str) -> InstructionsScan:
    scan = InstructionsScan(0, encoding)
    controls = chars = 0
    with _open(path) as f:
        if b"\x00" in f.read(_SNIFF_BYTES):
            raise InstructionsError(f"{path} is a binary file, not text: give {_WHAT}.")
        f.seek(0)
        for number, text in _numbered_lines(f, encoding):
            if text is None:
                scan.count += 1
                scan.too_long.append(number)
                continue
            controls += sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f")
            chars += len(text)
            scan.count += _instruction(text)
    if controls > max(2, chars // 100):
        raise InstructionsError(f"{path} is a binary file, not text: give {_WHAT}.")
    if not scan.count:
        raise InstructionsError(f"{path} has no instructions: write one per line (lines starting with # are comments).")
    return scan


def _numbered_lines(f: BinaryIO, encoding: str) -> Iterator[tuple[int, str | None]]:
    """The file's lines, numbered as an editor numbers them, decoded; None for one over the cap.

    Raises UnicodeDecodeError for bytes that are not ``encoding`` (cp1252 replaces instead).
    """
    decoder = codecs.getincrementaldecoder(encoding)("strict" if encoding.startswith("utf-8") else "replace")
    number = 0
    for raw in capped_lines(f, MAX_INSTRUCTION_BYTES):
        if raw is None:
            number += 1
            yield number, None
            continue
        # A line may hold old Mac line ends (CR alone): an editor shows those as separate lines.
        for text in decoder.decode(raw).splitlines() or [""]:
            number += 1
            yield number, text
    decoder.decode(b"", final=True)  # a cut character at the very end is not UTF-8 either


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
    width: int | None = None,
    **options: Any,
) -> BatchReport:
    """Draft every instruction in the file ``instructions`` and write ``out`` as CSV, a row per draft.

    Rows come in the file's order, each written (and flushed) as soon as it and the rows before it are drafted,
    so stopping keeps what was done (drafts finished ahead of an earlier one are written at the stop). The
    model stays loaded between drafts (llama.cpp backends share one loaded model).

    Args:
        width: drafts written at once (:func:`draft_many`); None: the ``draft_width`` setting, else the model's.
        options: passed to :func:`draft` (to, tone, length, adapter, examples, model, seed).
    """
    scan = scan_instructions(instructions)
    total = scan.count
    started = time.perf_counter()
    report = BatchReport(str(out), total, 0, 0.0)

    def tell() -> None:
        progress(BatchProgress(report.written + len(report.skipped), total, time.perf_counter() - started))

    with csv_writer(out, excel) as (writer, f):
        writer.writerow(BATCH_COLUMNS)

        def write(row: list[Any] | None) -> None:  # None: a line skipped
            if row is not None:
                writer.writerow(row)
                report.draft_ids.append(row[2])
                if row[-1]:
                    report.incomplete.append(row[2])
            f.flush()

        rows = InOrder(write)  # rows in the file's order, however the drafts finish

        def jobs() -> Iterator[DraftJob]:
            for k, (line, instruction) in enumerate(iter_instructions(instructions, scan)):
                if instruction is None:
                    report.skipped.append({"line": line, "reason": _too_long()})
                    rows.put(k, None)
                    tell()
                    continue
                yield DraftJob(instruction, tag=(k, line))

        def done(job: DraftJob, result: DraftResult | PromptError) -> None:
            k, line = job.tag
            if isinstance(result, PromptError):  # this instruction only (too long for the context window, ...)
                report.skipped.append({"line": line, "reason": str(result)})
                rows.put(k, None)
            else:
                d = result.drafts[0]
                report.written += 1
                rows.put(k, [job.instruction, d.text, d.id, result.model, result.adapter or "",
                             round(result.seconds, 2), d.incomplete.code if d.incomplete else ""])  # fmt: skip
            tell()

        progress(BatchProgress(0, total, 0.0))
        try:
            report.width = draft_many(db, jobs(), done, backend=backend, width=width, cancel=cancel, **options)
        except Cancelled:
            report.cancelled = True
            rows.rest()  # drafts finished ahead of one that never will be
    report.skipped.sort(key=lambda s: s["line"])
    report.seconds = time.perf_counter() - started
    return report


class InOrder:
    """Results numbered 0, 1, 2... in the order of their input, handed to ``write`` in that order however they
    finish (several drafts at once end out of order): each as soon as every one before it is in."""

    def __init__(self, write: Callable[[Any], None]):
        self.write = write
        self.waiting: dict[int, Any] = {}
        self.next = 0

    def put(self, k: int, item: Any) -> None:
        self.waiting[k] = item
        while self.next in self.waiting:
            self.write(self.waiting.pop(self.next))
            self.next += 1

    def rest(self) -> None:
        """Hand over, in order, what is still waiting for an earlier result that will not come (a stop)."""
        for k in sorted(self.waiting):
            self.write(self.waiting.pop(k))


def _too_long() -> str:
    return (
        f"longer than {MAX_INSTRUCTION_BYTES // 1024:,} KB: an instruction is a sentence or a paragraph; "
        "split it, or shorten it"
    )


def export_drafts(db: sqlite_utils.Database, out: str | Path, *, excel: bool = False) -> int:
    """Write every saved draft to ``out`` (columns :data:`EXPORT_COLUMNS`), oldest first; return the count."""
    count = 0
    with csv_writer(out, excel) as (writer, _f):
        writer.writerow(EXPORT_COLUMNS)
        for row in export_rows(db):
            writer.writerow(row)
            count += 1
    return count
