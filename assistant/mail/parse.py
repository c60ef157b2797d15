"""One raw message (bytes) to a :class:`ParsedMessage`: decoded headers, addresses, date, body text.

Parsing uses the standard library's ``compat32`` parser: it is the fastest one that never raises on
broken input (measured in ``bench/import_bench.py`` against ``policy.default`` and mail-parser), and
everything it leaves raw (RFC 2047 words, 8-bit header bytes, charsets) is decoded here by hand. It runs
from :mod:`assistant.mail.feed`, which spares it a regular expression compiled for every MIME boundary.
"""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.parser
import email.utils
import functools
import re
from dataclasses import dataclass, field

from assistant.mail.charset import decode_bytes, decode_header
from assistant.mail.feed import message_from_bytes
from assistant.mail.flowed import decode_flowed, flowed_params
from assistant.mail.html import html_to_text

MAX_TEXT_CHARS = 1_000_000  # per text part; longer parts are cut (and noted) so one message can't stall import
_MSGID = re.compile(r"<([^<>\s]+)>")
_ENRICHED_TAG = re.compile(r"<[^<>]{1,40}>")
_EARLIEST = dt.datetime(1975, 1, 1, tzinfo=dt.UTC)  # before e-mail headers had dates; epoch-0 bugs


@dataclass(slots=True)
class ParsedMessage:
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    date: str | None  # ISO 8601 UTC
    from_name: str
    from_addr: str
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]]
    reply_to: str
    subject: str
    text: str  # whole decoded body text, format=flowed joined (own words, quotes, signature, list footers)
    has_html: bool
    attachments: list[str]
    headers: dict[str, str]  # first occurrence of each header, lower-cased name, raw value
    forwarded_attachment: bool = False
    notes: list[str] = field(default_factory=list)


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse one message. Never raises on malformed mail: problems are recorded in ``notes``."""
    notes: list[str] = []
    try:
        msg = message_from_bytes(raw)
        body = _Body(notes)
        body.walk(msg, depth=0)
    except RecursionError:  # pathological nesting: keep the headers, say the body was not read
        msg = email.parser.BytesParser().parsebytes(raw, headersonly=True)
        body = _Body(notes)
        notes.append("MIME structure too deep to read; body left out")
    headers: dict[str, str] = {}
    for name, value in msg.raw_items():
        key = name.lower().strip()
        if key in headers:  # the first one counts: later ones are not even decoded
            continue
        value = value if isinstance(value, str) else str(value)
        if not value.isascii():  # raw 8-bit bytes arrive as surrogates: decode them now, once
            value = decode_bytes(value.encode("utf-8", "surrogateescape"))[0]
        headers[key] = value
    from_name, from_addr = _first_address(headers.get("from"))
    return ParsedMessage(
        message_id=_msgid(headers.get("message-id")),
        in_reply_to=_msgid(headers.get("in-reply-to")),
        references=_MSGID.findall(headers.get("references", "")),
        date=_date(headers.get("date"), notes),
        from_name=from_name,
        from_addr=from_addr,
        to=_addresses(headers.get("to")),
        cc=_addresses(headers.get("cc")),
        reply_to=_first_address(headers.get("reply-to"))[1],
        subject=decode_header(headers.get("subject")),
        text=body.text(),
        has_html=body.has_html,
        attachments=body.attachments,
        headers=headers,
        forwarded_attachment=body.forwarded,
        notes=notes,
    )


def _msgid(value: str | None) -> str | None:
    if not value:
        return None
    match = _MSGID.search(value)
    ident = match.group(1) if match else value.strip().split()[0] if value.strip() else ""
    return ident[:500] or None


_SIMPLE_ADDR = re.compile(r'\s*(?:"?([^"<>,;]*?)"?\s*)?<([^<>\s,;"]+@[^<>\s,;"]+)>\s*|\s*([^<>\s,;"]+@[^<>\s,;"]+)\s*')


# One address of a list whose names may be quoted: a comma inside quotes ("Doe, Jo") does not end it.
_LIST_ITEM = re.compile(r'(?:"[^"\\]*"|[^,"])+')
_QUOTED_ADDR = re.compile(r'\s*"([^"\\]*)"\s*<([^<>\s,;"]+@[^<>\s,;"]+)>\s*')


def _addresses(value: str | None) -> list[tuple[str, str]]:
    """Parse an address list; regexes handle the common shapes, the stdlib parser (slow) the rest."""
    if not value:
        return []
    return list(_address_list(value)) if len(value) <= 512 else _parse_addresses(value)


@functools.lru_cache(maxsize=4096)  # at most 512 characters each: a few MB at most
def _address_list(value: str) -> tuple[tuple[str, str], ...]:
    """:func:`_addresses`, remembered: an archive's From and To values come back in message after message."""
    return tuple(_parse_addresses(value))


def _parse_addresses(value: str) -> list[tuple[str, str]]:
    # One space between words: long blank runs would make the regex below backtrack for minutes.
    value = " ".join(decode_header(value).split())
    if "(" not in value:
        quick = _quick_addresses(value)
        if quick is not None:
            return quick
    out = []
    try:
        pairs = email.utils.getaddresses([value])
    except (ValueError, IndexError, TypeError, RecursionError):  # RecursionError: nested comments
        return []
    for name, addr in pairs:
        addr = addr.strip().lower()
        if "@" in addr or name:
            out.append((name.strip(), addr))
    return out


def _quick_addresses(value: str) -> list[tuple[str, str]] | None:
    """Lists of "Name <addr>", "\"Doe, Jo\" <addr>" and bare addresses; None for anything else."""
    if '"' not in value:
        items = value.split(",")
    elif "\\" not in value and value.count('"') % 2 == 0:
        items = _LIST_ITEM.findall(value)
    else:
        return None
    out = []
    for item in items:
        if not item.strip():
            continue
        quoted = _QUOTED_ADDR.fullmatch(item) if '"' in item else None
        if quoted:
            out.append((quoted[1].strip(), quoted[2].lower()))
            continue
        simple = _SIMPLE_ADDR.fullmatch(item)
        if simple is None:
            return None
        out.append(((simple[1] or "").strip(), (simple[2] or simple[3]).lower()))
    return out or None


def _first_address(value: str | None) -> tuple[str, str]:
    found = _addresses(value)
    return found[0] if found else ("", "")


# The shape nearly every Date header has: "Tue, 3 Mar 2020 10:01:00 +0100", maybe a comment after it.
_PLAIN_DATE = re.compile(
    r"\s*(?:[A-Za-z]*,\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d\d):(\d\d)\s+([+-])(\d\d)(\d\d)(?:\s.*)?",
    re.ASCII,
)
_ZONES: dict[int, dt.timezone] = {}  # by offset in seconds: the few an archive's senders use
_MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}


def _plain_date(text: str) -> dt.datetime | None:
    """What email.utils.parsedate_to_datetime makes of a date of that shape, without its general parse; None for
    anything else (it is then read the standard way, and an error noted there)."""
    m = _PLAIN_DATE.fullmatch(text)
    month = _MONTHS.get(m[2].lower()) if m else None
    if m is None or month is None or m[3] < "0100":  # two-digit years: the standard rules apply
        return None
    offset = int(m[8]) * 3600 + int(m[9]) * 60
    try:
        if not offset:  # "+0000", and "-0000" (no zone known): UTC either way here
            return dt.datetime(int(m[3]), month, int(m[1]), int(m[4]), int(m[5]), int(m[6]), tzinfo=dt.UTC)
        offset = -offset if m[7] == "-" else offset
        zone = _ZONES.get(offset) or _ZONES.setdefault(offset, dt.timezone(dt.timedelta(seconds=offset)))
        return dt.datetime(int(m[3]), month, int(m[1]), int(m[4]), int(m[5]), int(m[6]), tzinfo=zone)
    except ValueError:  # a day or an hour out of range: the standard way says so
        return None


def _date(value: str | None, notes: list[str]) -> str | None:
    if not value:
        return None
    text = decode_header(value)
    when = _plain_date(text)
    if when is None:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (ValueError, TypeError, IndexError, OverflowError):
            notes.append("unreadable Date header")
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        when = when.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        notes.append("Date out of range")
        return None
    if not _EARLIEST <= when <= dt.datetime.now(dt.UTC) + dt.timedelta(days=366):
        notes.append(f"implausible Date {when.date()} ignored")
        return None
    return when.isoformat()


class _Body:
    """Collects the readable text of a MIME tree: text/plain preferred, HTML converted when alone."""

    def __init__(self, notes: list[str]) -> None:
        self.notes = notes
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[str] = []
        self.has_html = False
        self.forwarded = False

    def walk(self, part: email.message.Message, depth: int) -> None:
        if depth > 20:
            self.notes.append("MIME nested too deep")
            return
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and depth > 0:
            self.forwarded = True  # a forward as attachment: its text is someone else's words
            return
        if part.is_multipart():
            children = part.get_payload()
            if ctype == "multipart/alternative":
                children = self._preferred_alternative(children)
            for child in children if isinstance(children, list) else []:
                self.walk(child, depth + 1)
            return
        raw_disposition = part.get("Content-Disposition")
        raw_ctype = str(part.get("Content-Type", ""))
        # get_filename is slow; a text part with no disposition and no name= is never an attachment
        named = raw_disposition is not None or not ctype.startswith("text/") or "name=" in raw_ctype
        filename = self._filename(part) if named else ""
        disposition = str(raw_disposition or "").split(";")[0].strip().lower()
        if disposition == "attachment" or (filename and not ctype.startswith("text/")):
            self.attachments.append(filename or ctype)
        elif ctype == "text/plain":
            text = self._text(part)
            flowed, delsp = flowed_params(raw_ctype)
            self.plain.append(decode_flowed(text, delsp) if flowed else text)
        elif ctype in ("text/enriched", "text/richtext") or ctype == "text":
            self.plain.append(_ENRICHED_TAG.sub("", self._text(part)))
        elif ctype == "text/html":
            self.has_html = True
            self.html.append(html_to_text(self._text(part)))
        elif filename:
            self.attachments.append(filename)

    def _preferred_alternative(self, children: object) -> list[email.message.Message]:
        if not isinstance(children, list):
            return []
        plain = [c for c in children if c.get_content_type() == "text/plain"]
        if plain:
            self.has_html = self.has_html or any(c.get_content_type() == "text/html" for c in children)
            return plain[:1]
        return children[-1:]  # the richest version the client wrote, by RFC 2046 order

    def _filename(self, part: email.message.Message) -> str:
        try:
            name = part.get_filename()
        except (ValueError, LookupError, TypeError, AttributeError):  # malformed RFC 2231 parameters
            return ""
        if name and not isinstance(name, str):
            name = str(name)
        return decode_header(name) if name else ""

    def _text(self, part: email.message.Message) -> str:
        try:
            data = part.get_payload(decode=True)
        except (ValueError, TypeError, AssertionError):
            data = None
        if not isinstance(data, bytes):
            raw = part.get_payload()
            data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
        text, note = decode_bytes(data, None if data.isascii() else self._charset(part))
        if note:
            self.notes.append(note)
        if len(text) > MAX_TEXT_CHARS:
            self.notes.append(f"text part cut at {MAX_TEXT_CHARS:,} characters")
            text = text[:MAX_TEXT_CHARS]
        return text.replace("\r\n", "\n").replace("\r", "\n")

    @staticmethod
    def _charset(part: email.message.Message) -> str | None:
        """The part's charset label; looked up only for non-ASCII bytes, which are all it can change."""
        try:
            return part.get_content_charset()
        except (ValueError, LookupError, TypeError):
            return None

    def text(self) -> str:
        parts = self.plain or self.html
        return "\n\n".join(p.strip("\n") for p in parts if p.strip())
