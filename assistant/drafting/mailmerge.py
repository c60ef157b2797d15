"""Mail merge: a draft in the user's voice for each row of a CSV of recipients, from one instruction; resumable.

Each row's values fill the instruction's ``{column}`` placeholders; the row's other values go into the prompt
as an "About the recipient:" line, and its address makes the style examples recipient-aware (the user's own
mail to that person, then to their organisation, comes first: :mod:`assistant.drafting.examples`).

**Nothing twice, nothing lost.** Every draft is saved with the merge's key (a hash of the file's bytes, the
instruction and the drafting options) and its row number, in the same transaction as the draft itself. A run
stopped in any way (Stop, Ctrl+C, a kill, a power cut) and started again with the same file, instruction and
options drafts only the rows that have no saved draft yet; the CSV is written again from the start, the rows
drafted before taken from the store, every row flushed to disk as it is written. The GUI's preview is the same
call with ``limit=3``: running the whole merge afterwards keeps those three.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.drafting.backend import Backend, Cancel
from assistant.drafting.batch import BATCH_COLUMNS, BatchProgress, BatchReport, InOrder, csv_writer
from assistant.drafting.drafts import DraftJob, DraftResult, draft_many
from assistant.drafting.examples import recipient_mail
from assistant.drafting.merge_csv import (
    Recipients,
    RecipientsError,
    Row,
    about,
    check_placeholders,
    fill,
    iter_rows,
    scan_recipients,
)
from assistant.drafting.prompting import PromptError
from assistant.errors import Cancelled

# The batch's columns first, in their order; then the row (as a spreadsheet numbers it), the recipient's address,
# the draft's subject and whether the user wrote to that address before ("yes"/"no"; "" without an address).
MERGE_COLUMNS = (*BATCH_COLUMNS, "row", "to", "subject", "known_recipient")
KEY_OPTIONS = ("tone", "length", "adapter", "examples", "model", "seed")  # options that change what is drafted
PREVIEW_ROWS = 3


@dataclass
class MergeProgress(BatchProgress):
    """``done`` counts the rows finished (drafted, taken from an earlier run, or skipped) of ``total`` rows.

    ``resumed`` rows came from an earlier run and cost no time: the ETA is the pace of this run's drafts.
    ``earlier`` rows of this merge had a saved draft when the run began. ``result`` is the row just written (its
    number, address, instruction, text...), None otherwise.
    """

    earlier: int = 0
    resumed: int = 0
    drafted: int = 0
    result: dict[str, Any] | None = None

    @property
    def eta(self) -> float | None:
        if not self.drafted:
            return None
        return self.elapsed / self.drafted * max(self.total - self.done, 0)


@dataclass
class MergeReport(BatchReport):
    """A batch's report (``instructions`` is the number of rows), and what a merge adds."""

    instruction: str = ""
    key: str = ""
    columns: list[str] = field(default_factory=list)
    drafted: int = 0  # drafted by this run
    resumed: int = 0  # rows drafted by an earlier run of the same merge, written again from the store
    known_recipients: int = 0  # rows addressed to someone the user wrote to before
    results: list[dict[str, Any]] = field(default_factory=list)  # every row written, in order (not in --json)

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "rows": self.instructions,
            "drafted": self.drafted,
            "resumed": self.resumed,
            "known_recipients": self.known_recipients,
            "columns": self.columns,
            "instruction": self.instruction,
            "merge": self.key,
        }


def merge_key(recipients: Recipients, instruction: str, options: dict[str, Any]) -> str:
    """What identifies a merge: the file's bytes, the instruction, and the options that shape each draft."""
    shaping = {k: options.get(k) for k in KEY_OPTIONS}
    text = json.dumps([recipients.digest, " ".join(instruction.split()), shaping], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def drafted_rows(db: sqlite_utils.Database, key: str) -> dict[int, dict[str, Any]]:
    """The saved drafts of merge ``key`` by row (the first one of a row, were there ever two)."""
    if not db["drafts"].exists():
        return {}
    rows = db.execute(
        "SELECT json_extract(params, '$.origin.row'), id, instruction, text, model, adapter, seconds, flag, subject, "
        "recipient FROM drafts WHERE json_valid(params) AND json_extract(params, '$.origin.merge') = ? ORDER BY id",
        [key],
    ).fetchall()
    names = ("draft_id", "instruction", "text", "model", "adapter", "seconds", "incomplete", "subject", "to")
    done: dict[int, dict[str, Any]] = {}
    for number, *values in rows:
        if isinstance(number, int) and number not in done:
            done[number] = {k: "" if v is None else v for k, v in zip(names, values, strict=True)}
    return done


def mail_merge(
    db: sqlite_utils.Database,
    recipients_csv: str | Path,
    instruction: str,
    out: str | Path | None,
    *,
    excel: bool = False,
    limit: int | None = None,
    backend: Backend | None = None,
    progress: Callable[[MergeProgress], None] = lambda p: None,
    cancel: Cancel | None = None,
    width: int | None = None,
    **options: Any,
) -> MergeReport:
    """Draft an email for each row of ``recipients_csv`` from ``instruction``; write ``out`` as CSV (or nothing
    when None), a row per draft (columns :data:`MERGE_COLUMNS`), resuming an earlier run (see the module docstring).

    Raises :class:`RecipientsError` before anything is drafted when the file or the instruction cannot be used.

    Args:
        limit: stop after this many rows are written (the preview); the next call goes on from there.
        width: drafts written at once (:func:`draft_many`); None: the ``draft_width`` setting, else the model's.
        options: passed to :func:`draft` (tone, length, adapter, examples, model, seed).
    """
    if not instruction or not instruction.strip():
        raise RecipientsError('The instruction is empty: say what each email should do, e.g. "invite {name} to '
                              'the launch on May 3".')  # fmt: skip
    recipients = scan_recipients(recipients_csv)
    if out is not None and _same_file(out, recipients_csv):
        raise RecipientsError(f"{out} is the list of recipients itself: write the drafts to another file.")
    used = check_placeholders(instruction, recipients)
    key = merge_key(recipients, instruction, options)
    done = drafted_rows(db, key)
    started = time.perf_counter()
    report = MergeReport(str(out or ""), recipients.rows, 0, 0.0, instruction=instruction.strip(), key=key,
                         columns=recipients.columns)  # fmt: skip
    state = MergeProgress(0, recipients.rows, 0.0, earlier=len(done))

    def tell(result: dict[str, Any] | None = None) -> None:
        state.elapsed, state.resumed, state.drafted, state.result = (
            time.perf_counter() - started, report.resumed, report.drafted, result)  # fmt: skip
        progress(state)

    limit_left = [limit]  # rows still to hand out before the preview's limit
    writing = csv_writer(out, excel) if out is not None else nullcontext((None, None))
    with writing as (writer, f):
        if writer is not None:
            writer.writerow(MERGE_COLUMNS)
        tell()

        def write(entry: tuple[Row, dict[str, Any] | None]) -> None:
            row, result = entry
            state.done += 1
            if result is None:  # skipped
                tell()
                return
            result = _finish(db, result, row)
            _write(writer, f, result)
            report.written += 1
            report.draft_ids.append(result["draft_id"])
            report.results.append(result)
            report.known_recipients += result["known_recipient"] == "yes"
            if result["incomplete"]:
                report.incomplete.append(result["draft_id"])
            tell(result)

        rows = InOrder(write)  # rows in the file's order, however the drafts finish

        def jobs() -> Iterator[DraftJob]:
            """Every row to draft, in order; skipped rows and rows an earlier run drafted are written at once."""
            for k, row in enumerate(iter_rows(recipients, used)):
                if row.problem:
                    report.skipped.append({"line": row.line, "row": row.row, "reason": row.problem})
                    rows.put(k, (row, None))
                    continue
                if limit_left[0] is not None:
                    if limit_left[0] <= 0:
                        return
                    limit_left[0] -= 1
                earlier = done.get(row.row)
                if earlier is not None:
                    report.resumed += 1
                    rows.put(k, (row, earlier))
                    continue
                text = " ".join(fill(instruction, row, recipients).split())
                yield DraftJob(text, {"to": row.to or None, "to_name": row.to_name or None,
                                      "about": about(row, recipients, used),
                                      "origin": {"merge": key, "row": row.row}}, (k, row))  # fmt: skip

        def drafted(job: DraftJob, result: DraftResult | PromptError) -> None:
            k, row = job.tag
            if isinstance(result, PromptError):  # this row only (too long for the context window, ...)
                report.skipped.append({"line": row.line, "row": row.row, "reason": str(result)})
                rows.put(k, (row, None))
                if limit_left[0] is not None:
                    limit_left[0] += 1  # the preview's rows are rows written: the next one takes its place
                return
            d = result.drafts[0]
            report.drafted += 1
            rows.put(k, (row, {"draft_id": d.id, "instruction": job.instruction, "text": d.text,
                               "model": result.model, "adapter": result.adapter or "",
                               "seconds": round(result.seconds, 2), "incomplete": d.incomplete.code if d.incomplete
                               else "", "subject": d.subject, "to": row.to}))  # fmt: skip

        try:
            report.width = draft_many(db, jobs(), drafted, backend=backend, width=width, cancel=cancel, **options)
        except Cancelled:  # the rows drafted but not yet written are in the store: the next run writes them
            report.cancelled = True
        report.skipped.sort(key=lambda s: s["line"])
    report.seconds = time.perf_counter() - started
    return report


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # the output does not exist yet
        return False


def _finish(db: sqlite_utils.Database, result: dict[str, Any], row: Row) -> dict[str, Any]:
    """The row's result with its number, name and whether the user wrote to its address before."""
    to = result["to"]
    known = "" if not to else "yes" if recipient_mail(db, to).person else "no"
    return {**result, "row": row.row, "name": row.to_name, "known_recipient": known}


def _write(writer: Any, f: Any, r: dict[str, Any]) -> None:
    """One row of the output, on disk before the next row is drafted (a kill loses nothing written)."""
    if writer is None:
        return
    writer.writerow([r["instruction"], r["text"], r["draft_id"], r["model"], r["adapter"], r["seconds"],
                     r["incomplete"], r["row"], r["to"], r["subject"], r["known_recipient"]])  # fmt: skip
    f.flush()
    os.fsync(f.fileno())
