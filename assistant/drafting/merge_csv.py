"""Reading a mail merge's CSV of recipients: its header, its rows, and the instruction's {column} placeholders.

A first pass (:func:`scan_recipients`) checks the whole file before anything is drafted: it must be UTF-8 text
(what "CSV UTF-8" in Excel and every other program writes; a file in a legacy code page would put mangled
names into emails), with a header row that names the columns. The rows are then read one at a time
(:func:`iter_rows`): a row that cannot be drafted (empty, a value over :data:`MAX_FIELD_CHARS`, more cells
than the header names, an email column that holds no address, no value for a placeholder) comes back with the
reason, to be skipped and named, and the other rows are drafted.

Column names are matched loosely: case, spaces, underscores and hyphens do not matter, so the instruction's
``{last contact}`` finds the column ``Last_Contact``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import BinaryIO

from assistant.drafting.voice import first_name
from assistant.errors import MailvoiceError
from assistant.userfiles import open_regular

MAX_FIELD_CHARS = 1000  # a value about a person is a few words; more is pasted notes, too much for a prompt
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_HEADER_CHARS = 80  # a column name longer than this is data, not a name
_SNIFF_BYTES = 65536
_CHUNK = 1 << 20
_WHAT = "a CSV file of recipients with a header row (e.g. name,email,company)"
EMAIL_COLUMNS = ("email", "e mail", "email address", "e mail address", "mail", "address", "to", "recipient email")
NAME_COLUMNS = ("name", "full name", "contact", "contact name", "recipient", "recipient name")
FIRST_COLUMNS = ("first name", "firstname", "given name", "forename")
LAST_COLUMNS = ("last name", "lastname", "surname", "family name")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}\n]{1,100})\}")
_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]+")
_NUMBER = re.compile(r"[-+]?[\d.,\s]+")


class RecipientsError(MailvoiceError):
    """The CSV of recipients, or the instruction for it, cannot be used (no header, not UTF-8, ...)."""


def column_key(name: str) -> str:
    """A column name as matched: lower case, with spaces, underscores and hyphens as one space."""
    return " ".join(re.split(r"[\s_\-]+", name.strip().lower())).strip()


@dataclass
class Recipients:
    """What the first pass found: the columns and the roles of some, the file's fingerprint."""

    path: str
    columns: list[str]  # as the header writes them
    digest: str  # SHA-256 of the file's bytes: a changed file is another merge
    delimiter: str = ","
    rows: int = 0  # records after the header, empty ones included
    email: int | None = None  # index of the column holding the address
    name: list[int] = field(default_factory=list)  # the name's columns (full name, or first and last)

    @property
    def keys(self) -> list[str]:
        return [column_key(c) for c in self.columns]


@dataclass
class Row:
    """One record after the header. ``row`` is its number as a spreadsheet shows it (the header is row 1);
    ``line`` the file's line where it starts. ``problem`` says why it cannot be drafted, else ``values``."""

    row: int
    line: int
    values: dict[str, str] = field(default_factory=dict)  # column as written -> value
    problem: str = ""
    to: str = ""  # the address, "" when the row has none
    to_name: str = ""


def placeholders(instruction: str) -> list[str]:
    """The ``{column}`` names the instruction uses, in order, each once (``{{`` and ``}}`` are braces)."""
    found = (m.group(1).strip() for m in _PLACEHOLDER.finditer(instruction) if m.group(1) is not None)
    return list(dict.fromkeys(name for name in found if name))


def fill(instruction: str, row: Row, recipients: Recipients) -> str:
    """The instruction with each ``{column}`` replaced by the row's value (see :func:`placeholder_value`)."""

    def one(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        return placeholder_value(m.group(1), row, recipients) or m.group(0)

    return _PLACEHOLDER.sub(one, instruction)


def placeholder_value(name: str, row: Row, recipients: Recipients) -> str:
    """The row's value for ``{name}``. When the file has no column of that name, ``{name}`` is the name found
    (a full-name column, or first and last name), ``{first name}`` its first word, ``{email}`` the address."""
    key = column_key(name)
    for column, k in zip(recipients.columns, recipients.keys, strict=True):
        if k == key:
            return " ".join(row.values.get(column, "").split())
    if key == "name":
        return row.to_name
    if key in FIRST_COLUMNS:
        return first_name(row.to_name) if row.to_name else ""
    return row.to if key in EMAIL_COLUMNS else ""


def check_placeholders(instruction: str, recipients: Recipients) -> list[str]:
    """The placeholders of ``instruction``; :class:`RecipientsError` when one names no column of the file."""
    names = placeholders(instruction)
    keys = set(recipients.keys)
    if recipients.name:
        keys.update(("name", *FIRST_COLUMNS))
    if recipients.email is not None:
        keys.update(EMAIL_COLUMNS)
    missing = [n for n in names if column_key(n) not in keys]
    if missing:
        shown = ", ".join(recipients.columns)
        raise RecipientsError(
            f"The instruction uses {{{missing[0]}}}, but {recipients.path} has no column of that name (its columns: "
            f"{shown}). Use one of those, or add the column."
        )
    return names


def scan_recipients(path: str | Path) -> Recipients:
    """Check that ``path`` is a UTF-8 CSV with a header row and count its rows; :class:`RecipientsError` if not."""
    digest, size = hashlib.sha256(), 0
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    line = 1
    with open_regular(path, RecipientsError, _WHAT) as f:
        while chunk := _read(f, path):
            if size < _SNIFF_BYTES and b"\x00" in chunk[: _SNIFF_BYTES - size]:
                raise RecipientsError(f"{path} is a binary file, not text: give {_WHAT}.")
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise RecipientsError(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MB: a mail merge takes a "
                                      "list of recipients; split the file.")  # fmt: skip
            digest.update(chunk)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = line + chunk[: exc.start].count(b"\n")
                raise RecipientsError(f"{path} is not UTF-8 text (line {bad:,}): save it as \"CSV UTF-8\" (in "
                                      "Excel: Save As, CSV UTF-8) and try again.") from exc  # fmt: skip
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise RecipientsError(f"{path} is not UTF-8 text (it ends inside a character): save it as \"CSV "
                                  "UTF-8\" and try again.") from exc  # fmt: skip
    recipients = Recipients(str(path), [], digest.hexdigest())
    for n, (_line, cells, error) in enumerate(_records(path, recipients)):
        if n == 0:
            _header(recipients, cells, error)
        else:
            recipients.rows += 1
    if not recipients.columns:
        raise RecipientsError(f"{path} is empty: give {_WHAT}.")
    if not recipients.rows:
        raise RecipientsError(f"{path} has a header but no recipients: add a row for each person to write to.")
    return recipients


def _read(f: BinaryIO, path: str | Path) -> bytes:
    try:
        return f.read(_CHUNK)
    except OSError as exc:
        raise RecipientsError(f"Cannot read {path} ({exc.strerror}); give the path of {_WHAT}.") from exc


def _header(recipients: Recipients, cells: list[str], error: str) -> None:
    path = recipients.path
    while cells and not cells[-1].strip():  # spreadsheets write empty columns after the last one
        cells = cells[:-1]
    if error:
        raise RecipientsError(f"{path} has no readable header row ({error}): give {_WHAT}.")
    if not cells:
        raise RecipientsError(f"{path} starts with an empty line: its first line should name the columns, e.g. "
                              "name,email,company.")  # fmt: skip
    no_header = f"{path} has no header row: its first line should name the columns, e.g. name,email,company"
    for cell in cells:
        text = cell.strip()
        if not text or "@" in text or _NUMBER.fullmatch(text) or len(text) > MAX_HEADER_CHARS:
            raise RecipientsError(f"{no_header} (it holds {_short(text)!r}).")
    keys = [column_key(c) for c in cells]
    for i, k in enumerate(keys):
        if k in keys[:i]:
            raise RecipientsError(f"{path} names the column {cells[i].strip()!r} twice: rename one of them.")
    recipients.columns = [c.strip() for c in cells]
    recipients.email = next((keys.index(k) for k in EMAIL_COLUMNS if k in keys), None)
    full = next((keys.index(k) for k in NAME_COLUMNS if k in keys), None)
    parts = [next((keys.index(k) for k in names if k in keys), None) for names in (FIRST_COLUMNS, LAST_COLUMNS)]
    recipients.name = [full] if full is not None else [i for i in parts if i is not None]


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:39] + "…"


def _records(path: str | Path, recipients: Recipients) -> Iterator[tuple[int, list[str], str]]:
    """(line where it starts, cells, error) for each record of the file; an error leaves the cells empty."""
    with open_regular(path, RecipientsError, _WHAT) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        first = text.readline()
        recipients.delimiter = max(",;\t", key=first.count) if any(d in first for d in ",;\t") else ","
        text.seek(0)
        reader = csv.reader(text, delimiter=recipients.delimiter)
        line = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, [], _csv_problem(exc)
            else:
                yield line, cells, ""
            line = reader.line_num + 1


def _csv_problem(exc: csv.Error) -> str:
    if "field limit" in str(exc):
        return f"a value is longer than {csv.field_size_limit():,} characters: shorten it"
    return f"not readable as CSV ({exc})"


def iter_rows(recipients: Recipients, needed: Sequence[str] = ()) -> Iterator[Row]:
    """Every row after the header, in order, each with its values or the reason it cannot be drafted.

    Args:
        needed: the instruction's placeholders: a row without a value for one cannot be drafted.
    """
    width = len(recipients.columns)
    for n, (line, cells, error) in enumerate(_records(recipients.path, recipients)):
        if n == 0:
            continue
        row = Row(row=n + 1, line=line, problem=error)
        if not error:
            row.problem = _fill_row(row, cells, width, recipients, needed)
        yield row


def _fill_row(row: Row, cells: list[str], width: int, recipients: Recipients, needed: Sequence[str]) -> str:
    """Put the cells into ``row``; return why the row cannot be drafted, or ""."""
    if not any(c.strip() for c in cells):
        return "an empty row"
    extra = [c for c in cells[width:] if c.strip()]
    if extra:
        return (f"{len(cells)} cells, but the header names {width} columns: a value holding the separator "
                f"({recipients.delimiter!r}) must be in double quotes")  # fmt: skip
    row.values = {col: (cells[i].strip() if i < len(cells) else "") for i, col in enumerate(recipients.columns)}
    for col, value in row.values.items():
        if len(value) > MAX_FIELD_CHARS:
            return (f"its {col} is {len(value):,} characters long (at most {MAX_FIELD_CHARS:,}): shorten it, or "
                    "leave that column out")  # fmt: skip
    if recipients.email is not None:
        written = row.values[recipients.columns[recipients.email]]
        name, address = parseaddr(written)
        if written and not _ADDRESS.fullmatch(address or ""):
            return f"{_short(written)!r} in the column {recipients.columns[recipients.email]} is not an email address"
        row.to, row.to_name = address.lower(), " ".join(name.split())
    if recipients.name:
        given = " ".join(row.values[recipients.columns[i]] for i in recipients.name)
        row.to_name = " ".join(given.split()) or row.to_name
    for name in needed:
        if not placeholder_value(name, row, recipients):
            return f"no value for {{{name}}}, which the instruction uses"
    return ""


def about(row: Row, recipients: Recipients, used: list[str]) -> list[tuple[str, str]]:
    """The row's other values, for the prompt's "About the recipient:" line: every column but the address, the
    name and those the instruction already holds."""
    skip = {column_key(n) for n in used}
    roles = {recipients.email, *recipients.name} - {None}
    return [
        (col, value)
        for i, (col, key) in enumerate(zip(recipients.columns, recipients.keys, strict=True))
        if i not in roles and key not in skip and (value := row.values.get(col, ""))
    ]
