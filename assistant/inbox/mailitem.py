"""One incoming mail as extraction needs it, built from a stored ``messages`` row and its original file.

The store keeps the Date in UTC and never the attachments' content, but "tomorrow at 3pm" means the sender's
tomorrow, and an invitation's .ics part is the best answer there is. So the original message is read again
(``source_file`` at ``source_offset``: an mbox from its separator line, a maildir or .eml file whole), for the
Date header's own offset and every text/calendar part. When the file is gone, moved or changed (its Message-ID
no longer matches), the row alone is used: the date in UTC, no invitation.
"""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.parser
import email.utils
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assistant.mail.charset import decode_header
from assistant.mail.sources import SourceFile, iter_file, iter_mbox, sniff, text_path

log = logging.getLogger("mailvoice.inbox")

SourceReader = Callable[[str, int], "bytes | None"]
_MAY_HOLD_CALENDAR = re.compile(rb"text/calendar|application/ics|\.ics\b|\.vcs\b|name\*|name=\s*\"?=\?", re.I)
_HEADERS = email.parser.BytesHeaderParser()
EARLIEST_YEAR = 1975  # as the importer: before mail headers had dates
MAX_CALENDAR_BYTES = 1024 * 1024  # an invitation is a few KB; a whole exported calendar is cut here


@dataclass(frozen=True, slots=True)
class MailItem:
    """What extraction reads from one mail."""

    subject: str = ""
    body: str = ""
    """The author's words as text (HTML already turned into text, quotes and signature left out)."""
    sent_at: dt.datetime | None = None
    """The Date header, aware, in the sender's own offset; None when the mail has no usable Date."""
    from_name: str = ""
    to_names: tuple[str, ...] = ()
    calendars: tuple[str, ...] = ()
    """The text of each text/calendar (.ics) part."""
    message_id: str | None = None
    notes: tuple[str, ...] = field(default=())
    """How the item was built ("original file gone: date in UTC")."""


def read_original(source_file: str, offset: int) -> bytes | None:
    """The bytes of the message stored at ``source_file`` / ``offset``, or None when it cannot be read."""
    path = text_path(source_file)
    found = sniff(path)
    if isinstance(found, str):
        return None
    kind, start = found
    try:
        if kind == "mbox":
            raw = next(iter_mbox(path, offset), None)
        else:
            stat = path.stat()
            raw = next(iter_file(SourceFile(path, kind, stat.st_size, stat.st_mtime_ns, "", start)), None)
    except OSError:
        return None
    return raw.data if raw is not None else None


def header_date(value: str | None) -> dt.datetime | None:
    """A Date header as an aware datetime in its own offset ("-0000", an unknown zone, reads as UTC)."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(decode_header(value))
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    when = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return when if when.year >= EARLIEST_YEAR else None  # 1 January 1970: a clock or a client that was wrong


def calendar_parts(msg: email.message.Message) -> list[str]:
    """The text of every text/calendar part, and of attachments named *.ics."""
    found = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        try:
            name = (part.get_filename() or "").lower()
        except (ValueError, LookupError, TypeError, AttributeError):
            name = ""
        if ctype not in ("text/calendar", "application/ics") and not name.endswith((".ics", ".vcs")):
            continue
        try:
            data = part.get_payload(decode=True)
        except (ValueError, TypeError, AssertionError):
            data = None
        if isinstance(data, bytes) and data.strip():
            found.append(data[:MAX_CALENDAR_BYTES].decode("utf-8", errors="replace"))
    return found


def _names(value: Any) -> tuple[str, ...]:
    try:
        pairs = json.loads(value or "[]")
    except (TypeError, ValueError):
        return ()
    return tuple((p[0] or p[1]) for p in pairs if isinstance(p, list | tuple) and len(p) == 2 and (p[0] or p[1]))


def _utc(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def mail_item_from_row(row: Mapping[str, Any], source_reader: SourceReader | None = read_original) -> MailItem:
    """A :class:`MailItem` from a stored ``messages`` row, with the Date's own offset and any invitation read
    from the original message (``source_reader=None`` uses the row alone)."""
    row = dict(row)  # a sqlite3.Row as well as a dict
    notes: list[str] = []
    sent_at = _utc(row.get("date"))
    calendars: list[str] = []
    raw = None
    if source_reader is not None and row.get("source_file") and row.get("source_offset") is not None:
        try:
            raw = source_reader(row["source_file"], int(row["source_offset"]))
        except OSError:
            raw = None
    if raw is None:
        notes.append("original message not readable: date in UTC, no invitation")
    else:
        # Most mail has no invitation: its headers are enough (a whole parse of a message with a 2 MB
        # attachment costs milliseconds). A part that may be one, by type or by a file name that may hide
        # ".ics" in an encoding, has the message parsed whole.
        msg = email.message_from_bytes(raw) if _MAY_HOLD_CALENDAR.search(raw) else _HEADERS.parsebytes(raw)
        mid = str(msg.get("Message-ID") or "").strip().strip("<>")  # str(): an 8-bit header comes as a Header
        if row.get("message_id") and mid and mid != row["message_id"]:
            notes.append("original file has changed: date in UTC, no invitation")
        else:
            own = header_date(str(msg.get("Date") or ""))
            if own is not None and (sent_at is None or abs((own - sent_at).total_seconds()) < 60):
                sent_at = own
            calendars = calendar_parts(msg)
    return MailItem(
        subject=row.get("subject") or "",
        body=row.get("body") or "",
        sent_at=sent_at,
        from_name=row.get("from_name") or row.get("from_addr") or "",
        to_names=_names(row.get("to_json")),
        calendars=tuple(calendars),
        message_id=row.get("message_id"),
        notes=tuple(notes),
    )
