"""Turning mail bytes into text whatever the charset label says, and decoding RFC 2047 headers.

Real archives carry unknown labels (``x-unknown``), Microsoft names (``ks_c_5601-1987``), and text
labelled ``us-ascii`` or ``iso-8859-1`` that is really UTF-8. Valid UTF-8 is strong evidence (legacy
single-byte text almost never is), so it wins over a single-byte label; otherwise the label is tried,
then a statistical guess (charset-normalizer), then Windows-1252 with replacement characters.
"""

from __future__ import annotations

import codecs
import email.errors
import email.header
import functools
import re

# Labels seen in real mail that Python does not know, or knows under a narrower codec.
_ALIASES = {
    "x-unknown": "",
    "unknown-8bit": "",
    "unknown": "",
    "x-user-defined": "",
    "default": "",
    "us-ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    "iso-8859-1": "cp1252",  # Windows-1252 is a superset in practice: curly quotes in "latin-1" mail
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "x-sjis": "cp932",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "utf-8": "utf-8",
}
_SINGLE_BYTE = {"ascii", "cp1252", "iso-8859-2", "iso-8859-15", "cp1250", "cp1251", "koi8-r", "mac_roman"}
_SEVEN_BIT = ("iso2022", "utf-7", "utf_7", "hz")
_SURROGATES = re.compile("[\udc80-\udcff]")
_ENCODED_WORD = "=?"


def normalize_charset(label: str | None) -> str:
    """Return a Python codec name for a MIME charset label, or "" when unknown."""
    if not label:
        return ""
    name = label.strip().strip('"').lower()
    if name in _ALIASES:
        return _ALIASES[name]
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):  # unknown, or garbage such as embedded NULs
        return ""


def decode_bytes(data: bytes, label: str | None = None) -> tuple[str, str]:
    """Decode ``data`` labelled ``label``; return (text, note) where note says what was repaired."""
    codec = normalize_charset(label)
    if data.isascii():
        # ISO-2022-JP (still common in Japanese mail), UTF-7 and HZ are 7-bit: escape sequences in ASCII bytes.
        seven_bit = codec if codec.startswith(_SEVEN_BIT) else "iso2022_jp_ext" if b"\x1b$" in data else ""
        if seven_bit:
            try:
                return data.decode(seven_bit), "" if codec else "charset missing: ISO-2022-JP escapes decoded"
            except (UnicodeDecodeError, LookupError, ValueError):
                pass
        return data.decode("ascii"), ""
    if not codec or codec in _SINGLE_BYTE or codec == "utf-8":
        try:
            text = data.decode("utf-8")
            return text, "" if codec in ("utf-8", "") else f"labelled {label} but is UTF-8"
        except UnicodeDecodeError:
            pass
    if codec and codec != "ascii":
        try:
            return data.decode(codec), ""
        except (UnicodeDecodeError, LookupError, ValueError):
            pass
    return _guess(data, label)


_GUESS_CACHED_BYTES = 1024


def _guess(data: bytes, label: str | None) -> tuple[str, str]:
    # A guess takes charset-normalizer a millisecond or more, and the same 8-bit header (a sender's name, a
    # thread's subject) comes back in message after message: short inputs are guessed once.
    if len(data) <= _GUESS_CACHED_BYTES:
        return _guess_short(bytes(data), label)
    return _guess_any(data, label)


@functools.lru_cache(maxsize=4096)
def _guess_short(data: bytes, label: str | None) -> tuple[str, str]:
    return _guess_any(data, label)


def _guess_any(data: bytes, label: str | None) -> tuple[str, str]:
    from charset_normalizer import from_bytes  # imported lazily: only mislabelled mail needs it

    best = from_bytes(data[:65536]).best()
    if best is not None:
        try:
            return data.decode(best.encoding), f"charset {label or 'missing'}: guessed {best.encoding}"
        except (UnicodeDecodeError, LookupError):
            pass
    return data.decode("cp1252", errors="replace"), f"charset {label or 'missing'}: undecodable bytes replaced"


def decode_header(value: str | None) -> str:
    """Decode a raw header value (RFC 2047 words, raw 8-bit bytes as surrogates) into clean text."""
    if not value:
        return ""
    value = value.replace("\r", "").replace("\n ", " ").replace("\n\t", " ").replace("\n", " ")
    if _SURROGATES.search(value):
        value = decode_bytes(value.encode("ascii", "surrogateescape"))[0]
    if _ENCODED_WORD not in value:
        return (decode_bytes(value.encode("ascii"))[0] if "\x1b$" in value and value.isascii() else value).strip()
    try:
        parts = email.header.decode_header(value)
    except (
        ValueError,
        AssertionError,
        LookupError,
        email.errors.HeaderParseError,
    ):  # malformed encoded words: keep them as written
        return value.strip()
    out = []
    for chunk, charset in parts:
        out.append(decode_bytes(chunk, charset)[0] if isinstance(chunk, bytes) else chunk)
    return "".join(out).strip()
