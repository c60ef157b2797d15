"""Decoding format=flowed plain text (RFC 3676): soft line breaks joined back into the lines people typed.

Thunderbird and many other clients send ``format=flowed``: a line that ends in a space was wrapped by the
client and continues on the next line; a line without one ends where the author pressed Enter. Stored
as it arrives, such a text keeps the client's wrapping ("I can't \\nremember which…"), and drafts learn
broken lines.

Written here rather than taken from a package: the standard library's ``email`` package has no decoder,
and the one package on PyPI that has (``formatflowed``, last released 2016, written for Python 2) is
unmaintained; the whole of the decoding rules is the one short loop below.
"""

from __future__ import annotations

import re

__all__ = ["decode_flowed", "flowed_params"]

_SIG_SEPARATOR = "-- "
# Read from the raw header: Message.get_param parses every parameter and costs more than the decoding.
_FORMAT_FLOWED = re.compile(r';\s*format\s*=\s*"?flowed\b', re.I)
_DELSP_YES = re.compile(r';\s*delsp\s*=\s*"?yes\b', re.I)


def flowed_params(content_type: str) -> tuple[bool, bool]:
    """(is format=flowed, DelSp=yes) from a raw Content-Type header value."""
    if "flowed" not in content_type.lower() or _FORMAT_FLOWED.search(content_type) is None:
        return False, False
    return True, _DELSP_YES.search(content_type) is not None


def decode_flowed(text: str, delsp: bool = False) -> str:
    """Join the soft-broken lines of a format=flowed text (lines separated by "\\n").

    Rules (RFC 3676 section 4): a line's quote depth is its count of leading ">"; one space after the
    quote marks (or at the start of an unquoted line) is space-stuffing and is removed; a line ending in
    a space is flowed and joins the next line of the same quote depth, with that space removed first
    when ``delsp`` (DelSp=yes); the signature separator "-- " is never flowed and never joined onto.
    A flowed line followed by a line of another depth ends its paragraph there.

    One departure from the letter of the RFC: a flowed line followed by an empty line ends its paragraph
    and the empty line is kept. Clients that leave a space before the Enter key would otherwise glue two
    paragraphs together.

    Quoted paragraphs come out as ``">" * depth + " " + text``.
    """
    if " \n" not in text and not text.endswith(" "):
        return _unstuff(text)  # no soft line break: only the stuffing to undo
    out: list[str] = []
    pieces: list[str] = []
    depth_open = -1  # quote depth of the paragraph in ``pieces``
    for line in text.split("\n"):
        if not pieces and line[-1:] != " ":  # a hard line with no paragraph open: kept as it is
            out.append(line[1:] if line[:1] == " " else line)
            continue
        content = line.lstrip(">") if line[:1] == ">" else line
        depth = len(line) - len(content)
        if content[:1] == " ":
            content = content[1:]
        is_sig = content == _SIG_SEPARATOR
        if pieces and (depth != depth_open or is_sig or not content):
            out.append(_paragraph(depth_open, pieces))
            pieces = []
        if is_sig or not content.endswith(" "):
            pieces.append(content)
            out.append(_paragraph(depth, pieces))
            pieces = []
            continue
        pieces.append(content[:-1] if delsp else content)
        depth_open = depth
    if pieces:
        out.append(_paragraph(depth_open, pieces))
    return "\n".join(out)


def _paragraph(depth: int, pieces: list[str]) -> str:
    text = "".join(pieces)
    if text != _SIG_SEPARATOR:
        text = text.rstrip(" ")  # a soft break at a paragraph's very end means nothing
    return (">" * depth + " " + text) if depth and text else (">" * depth + text)


def _unstuff(text: str) -> str:
    """Remove the one space a sender put before each line that starts with a space (or "From ", or ">")."""
    text = text.replace("\n ", "\n")
    return text[1:] if text[:1] == " " else text
