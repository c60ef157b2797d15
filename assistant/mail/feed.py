"""The standard library's compat32 mail parser, without compiling a regular expression for every MIME boundary.

``email.feedparser`` compiles one pattern per multipart part it meets (the boundary is in it), and every
boundary is new, so Python's pattern cache never helps: about 150 µs a multipart message, a third of parsing
it. Here the same parser runs from a private copy of that module whose ``re.compile`` hands the boundary
pattern to :class:`_Boundary`, which matches the same lines with a prefix test and one pattern compiled once.
Its messages also remember their content type (:class:`_Message`). Every other pattern, and everything else
the parser does, is the standard library's own: the messages are the ones ``email.message_from_bytes`` makes
(``tests/test_mail_parse.py`` compares them on real and generated mail).
"""

from __future__ import annotations

import email.message
import importlib.util
import re
import types
from typing import Any

# The pattern email.feedparser compiles for a boundary, around re.escape("--" + boundary).
_HEAD = "(?P<sep>"
_TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_AFTER = re.compile(_TAIL[1:])  # what follows the separator, matched from where it ends
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)  # re.escape puts a backslash before a character, nothing else


class _Boundary:
    """Matches what ``(?P<sep>SEPARATOR)(?P<end>--)?(?P<ws>[ \\t]*)(?P<linesep>\\r\\n|\\r|\\n)?$`` matches, with the
    same ``end``, ``ws`` and ``linesep`` groups (the parser reads no other)."""

    __slots__ = ("separator",)

    def __init__(self, separator: str):
        self.separator = separator

    def match(self, line: str) -> re.Match | None:
        if not line.startswith(self.separator):
            return None
        return _AFTER.match(line, len(self.separator))


class _Message(email.message.Message):
    """``email.message.Message`` that remembers its content type: the parser and the body walk ask for it about
    a dozen times a message, and each time the standard one searches the headers again. The answer is kept with
    what it was read from (the header list, its length, the default type and the Content-Type entry itself), so
    any change to the headers is seen and the type read afresh."""

    _content_type: tuple | None = None

    def get_content_type(self) -> str:
        headers, known = self._headers, self._content_type
        if (
            known is not None
            and known[0] is headers
            and known[1] == len(headers)
            and known[2] == self._default_type
            and (known[3] < 0 or headers[known[3]] is known[4])
        ):
            return known[5]
        at = next((i for i, (name, _value) in enumerate(headers) if name.lower() == "content-type"), -1)
        value = super().get_content_type()
        self._content_type = (headers, len(headers), self._default_type, at, headers[at] if at >= 0 else None, value)
        return value


def _compile(pattern: Any, flags: int = 0) -> Any:
    if isinstance(pattern, str) and not flags and pattern.startswith(_HEAD) and pattern.endswith(_TAIL):
        return _Boundary(_UNESCAPE.sub(r"\1", pattern[len(_HEAD) : -len(_TAIL)]))
    return re.compile(pattern, flags)


def _private_feedparser() -> types.ModuleType:
    """A copy of ``email.feedparser`` of its own (the module everyone else uses is left as it is)."""
    spec = importlib.util.find_spec("email.feedparser")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # its module-level patterns are compiled here, by the real re
    module.re = types.SimpleNamespace(compile=_compile, escape=re.escape)
    return module


_FeedParser = _private_feedparser().FeedParser


def message_from_bytes(raw: bytes) -> email.message.Message:
    """``email.message_from_bytes(raw)``: the compat32 policy and the same message, parsed faster."""
    parser = _FeedParser(_Message)
    parser.feed(raw.decode("ascii", "surrogateescape"))
    return parser.close()
