"""Datasets in and out: pairs exported as JSONL, JSON or CSV, and instruction/input/output sets imported.

Exported rows are ``instruction, input, output, split``, scrubbed, included pairs only. Imports accept the
same shape from elsewhere (a spreadsheet, another tool): an empty or missing ``input`` becomes "", a row
without an ``output`` or ``instruction`` is dropped and reported with its row number and reason, the rest
are stored with ``source = imported`` and ``origin = "FILE row N"``. Importing a file twice adds nothing.
Row numbers are what a person finds in the file: spreadsheet rows for CSV (the header is row 1), item
numbers for JSON (from 1), line numbers for JSONL.

CSV and JSONL files are read as their rows are stored, in one transaction, so memory does not grow with the
file and a file refused as a whole (broken quoting, a value too long: see :mod:`trainer.pairs.csvrows`)
leaves nothing of it stored. A JSONL line over :data:`LINE_LIMIT` bytes is dropped unread, like a broken one.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import sqlite_utils

from assistant.userfiles import capped_lines, open_regular
from trainer.pairs.csvrows import LINE_LIMIT, csv_rows
from trainer.pairs.errors import DatasetError
from trainer.pairs.scrub import load_settings, scrub_fields
from trainer.pairs.split import SPLITS, assign_splits, split_for
from trainer.pairs.store import now, training_rows

FIELDS = ("instruction", "input", "output", "split")
FORMATS = ("jsonl", "json", "csv")


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    dropped: list[dict[str, Any]] = field(default_factory=list)  # {"row": N, "reason": "..."}
    filled_input: int = 0  # rows without input (missing or empty): "" is stored
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "seconds": round(self.seconds, 3)}


def _format(path: Path) -> str:
    kind = path.suffix.lower().lstrip(".")
    if kind not in FORMATS:
        raise DatasetError(f"{path.name}: use a file ending in .jsonl, .json or .csv")
    return kind


def export_pairs(db: sqlite_utils.Database, path: str | Path, split: str | None = None) -> int:
    """Write the included pairs (scrubbed) to ``path``; the format follows the extension. Returns the count."""
    path = Path(path)
    kind = _format(path)
    rows = training_rows(db, split)
    try:
        with path.open("w", encoding="utf-8", newline="") as f:
            if kind == "csv":
                writer = csv.DictWriter(f, fieldnames=FIELDS)
                writer.writeheader()
                writer.writerows(rows)
            elif kind == "json":
                json.dump(rows, f, ensure_ascii=False, indent=1)
                f.write("\n")
            else:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    except OSError as exc:
        raise DatasetError(f"Cannot write {path} ({exc.strerror}); choose a folder you can write to.") from exc
    return len(rows)


def _read(path: Path, kind: str, bad: list[dict[str, Any]]) -> Iterator[tuple[int, Any]]:
    """(row number, raw row) for each row, read as it is needed; rows that cannot even be parsed go to ``bad``."""
    if kind == "csv":
        yield from csv_rows(path)
    elif kind == "json":
        yield from enumerate(_json_list(path), start=1)
    else:
        yield from _jsonl_rows(path, bad)


def _open(path: Path) -> BinaryIO:
    return open_regular(path, DatasetError, "a dataset (.csv, .json or .jsonl)")


def _json_list(path: Path) -> list[Any]:
    with _open(path) as f:
        try:
            text = f.read().decode("utf-8-sig")
        except OSError as exc:
            raise DatasetError(f"Cannot read {path} ({exc.strerror}).") from exc
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path.name} is not UTF-8 text; save it as UTF-8 and import it again.") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from exc
    if isinstance(data, dict):  # {"data": [...]} or {"pairs": [...]}: the one list inside
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else None
    if not isinstance(data, list):
        raise DatasetError(f"{path.name}: expected a JSON list of objects with instruction, input, output.")
    return data


def _jsonl_rows(path: Path, bad: list[dict[str, Any]]) -> Iterator[tuple[int, Any]]:
    """One JSON object per line; a line over :data:`LINE_LIMIT` bytes is dropped unread, like a broken one."""
    with _open(path) as f:
        for i, line in enumerate(capped_lines(f, LINE_LIMIT), start=1):
            if line is None:
                bad.append({"row": i, "reason": f"longer than {LINE_LIMIT:,} bytes"})
                continue
            try:
                text = line.decode("utf-8-sig" if i == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(f"{path.name} is not UTF-8 text; save it as UTF-8 and import it again.") from exc
            if not text.strip():
                continue
            try:
                yield i, json.loads(text)
            except json.JSONDecodeError as exc:
                bad.append({"row": i, "reason": f"not valid JSON ({exc.msg})"})


def _value(row: dict[str, Any], name: str) -> str | None:
    for key, value in row.items():
        if isinstance(key, str) and key.strip().lower() == name:
            if value is None or (isinstance(value, float) and value != value):  # None, or NaN from pandas
                return None
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return None


def _check(row: Any) -> tuple[dict[str, str] | None, str]:
    """The row's fields, or None and why it is dropped."""
    if not isinstance(row, dict):
        return None, f"not an object with instruction, input, output (got {type(row).__name__})"
    if None in row:  # csv.DictReader puts values beyond the header under None
        return None, f"{len(row[None])} more value(s) than the header has columns (an unquoted comma?)"
    fields = {name: _value(row, name) for name in FIELDS}
    if not (fields["output"] or "").strip():
        return None, "no output (the email text is missing or empty)"
    if not (fields["instruction"] or "").strip():
        return None, "no instruction"
    return fields, ""


def import_pairs(db: sqlite_utils.Database, path: str | Path) -> ImportReport:
    """Store the pairs of a CSV, JSON or JSONL dataset; per-row problems are reported, not raised.

    The file is read as it is stored, in one transaction: a problem with the file as a whole (raised as
    :class:`DatasetError`) leaves nothing of it stored.
    """
    started = time.perf_counter()
    path = Path(path)
    kind = _format(path)
    report = ImportReport()
    with db.atomic():
        db["pairs"].insert_all(_records(db, path, kind, report))
    if report.imported:
        assign_splits(db)
    report.seconds = time.perf_counter() - started
    return report


def _records(db: sqlite_utils.Database, path: Path, kind: str, report: ImportReport) -> Iterator[dict[str, Any]]:
    """The rows to store, one at a time; ``report`` counts the others."""
    settings = load_settings(db)
    known = {k for (k,) in db.execute("SELECT cache_key FROM pairs WHERE source = 'imported'")}
    for number, raw in _read(path, kind, report.dropped):
        fields, why = _check(raw)
        if fields is None:
            report.dropped.append({"row": number, "reason": why})
            continue
        if fields["input"] is None or not fields["input"].strip():
            report.filled_input += 1
            fields["input"] = ""
        texts = {k: fields[k].strip() for k in ("instruction", "input", "output")}
        key = "import:" + hashlib.sha256(json.dumps(list(texts.values())).encode("utf-8")).hexdigest()
        if key in known:
            report.duplicates += 1
            continue
        known.add(key)
        split = (fields["split"] or "").strip().lower()
        _scrubbed, found = scrub_fields(texts, settings)
        stamp = now()
        report.imported += 1
        yield {
            "message_id": None,
            "thread_id": key,  # each imported row is its own conversation
            **texts,
            "split": split if split in SPLITS else split_for(key),
            "split_fixed": int(split in SPLITS),
            "status": "ok",
            "source": "imported",
            "origin": f"{path.name} row {number}",
            "flags": "[]",
            "scrubbed": json.dumps(found),
            "generated_instruction": "",
            "tries": 0,
            "prompt_version": 0,
            "model": "",
            "cache_key": key,
            "created_at": stamp,
            "updated_at": stamp,
        }
