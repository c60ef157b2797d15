"""Reading a dataset CSV row by row in bounded memory, refusing broken quoting with the line where it began.

Python's csv module has two traps for datasets of emails. Its field size limit (131,072 characters) is
shorter than a long email, so :data:`FIELD_LIMIT` raises it to what the importer reads of one message. And
by default a quote that is never closed quietly swallows the lines after it, merging many rows into one
value; parsed ``strict``, the csv module stops where the swallowed text betrays itself (a quote not followed
by a comma or a line end, or the end of the file inside a value), and :func:`quote_start` finds the line
where that value was opened, which is what a person has to fix. A value over several lines that is quoted
properly (as ``pairs export`` writes emails) is read as it always was.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.mail.sources import MAX_MESSAGE_BYTES
from assistant.userfiles import open_regular
from trainer.pairs.errors import DatasetError

FIELD_LIMIT = MAX_MESSAGE_BYTES  # characters in one value: as much as an import reads of one email
LINE_LIMIT = 2 * FIELD_LIMIT  # characters in one line of the file: a row's input and output, each on one line


def csv_rows(path: Path) -> Iterator[tuple[int, dict[str | Any, Any]]]:
    """(spreadsheet row number, row as a dict by header name) for each row of the CSV file at ``path``.

    The header is row 1 and a quoted value over several lines is still one row. Raises
    :class:`DatasetError` naming the line for an unclosed quote, a value over :data:`FIELD_LIMIT`, or a file
    that is not UTF-8.
    """
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)  # process-wide; only ever raised
    with open_regular(path, DatasetError, "a dataset (.csv, .json or .jsonl)") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        lines = _Lines(text, path.name)
        reader = csv.DictReader(lines, strict=True)
        number = 1
        try:
            header = reader.fieldnames
            if not header or "output" not in [(h or "").strip().lower() for h in header]:
                raise DatasetError(
                    f"{path.name} has no 'output' column; the first row must name the columns "
                    "instruction, input, output (and optionally split)."
                )
            lines.row_done()
            for row in reader:
                number += 1
                yield number, row
                lines.row_done()
        except csv.Error as exc:
            raise _broken(path.name, number + 1, lines, exc) from exc
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path.name} is not UTF-8 text; save it as UTF-8 and import it again.") from exc


class _Lines:
    """The file's lines for the csv reader, each at most :data:`LINE_LIMIT` characters; the lines of the row
    being read are kept (they are needed only to say where a broken row began)."""

    def __init__(self, f: io.TextIOWrapper, name: str):
        self._f = f
        self._name = name
        self.row: list[str] = []
        self.first = 1  # line number of the row being read
        self.read = 0  # lines read so far

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._f.readline(LINE_LIMIT + 1)
        if not line:
            raise StopIteration
        self.read += 1
        if len(line) > LINE_LIMIT:
            raise DatasetError(
                f"{self._name}: line {self.read:,} is longer than {LINE_LIMIT:,} characters; "
                "this is not a dataset of emails (or its line ends are broken)."
            )
        self.row.append(line)
        return line

    def row_done(self) -> None:
        self.row.clear()
        self.first = self.read + 1


def _broken(name: str, row: int, lines: _Lines, exc: csv.Error) -> DatasetError:
    opened = quote_start(lines.row, lines.first)
    where = f"row {row:,}, line {opened:,}" if opened is not None else f"row {row:,}, line {lines.first:,}"
    if "field larger than field limit" in str(exc):
        also = f", or a quote opened on line {opened:,} is never closed" if opened is not None else ""
        return DatasetError(
            f"{name} ({where}): a value is longer than {FIELD_LIMIT:,} characters, the most one value may "
            f"hold{also}. Shorten it, or close the quote, and import again."
        )
    if opened is not None:
        return DatasetError(
            f"{name}: the quoted value that starts on line {opened:,} (row {row:,}) is not closed properly: "
            "its closing quote is missing (so it runs on into the lines after it), or a quote inside it is "
            'not written twice (""). Fix it and import again.'
        )
    return DatasetError(f"{name} ({where}) is not valid CSV ({exc}); fix that line and import again.")


def quote_start(lines: list[str], first: int) -> int | None:
    """The number of the line where the quoted value that broke this row was opened, or None if none is open.

    ``lines`` are the row's lines as read so far, the first of them numbered ``first``. The broken value is the
    one still open at the end, or one whose closing quote is followed by something other than a comma or a
    line end (a swallowed row's opening quote, or a quote inside the value that was not doubled).
    """
    in_quotes, opened = False, None
    for number, line in enumerate(lines, start=first):
        i = 0
        while i < len(line):
            if in_quotes:
                j = line.find('"', i)
                if j < 0:
                    break  # the rest of the line is inside the value
                if line.startswith('""', j):
                    i = j + 2
                    continue
                in_quotes = False
                if line[j + 1 : j + 2] not in ("", ",", "\r", "\n"):
                    return opened
                i = j + 1
                continue
            j = line.find('"', i)
            if j < 0:
                break
            if j == 0 or line[j - 1] in ",\r\n":  # a quote that opens a value (elsewhere it is a plain character)
                in_quotes, opened = True, number
            i = j + 1
    return opened if in_quotes else None
