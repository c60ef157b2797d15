"""The standard library's compat32 mail parser, made faster for messages that are read whole.

``email.feedparser`` is written for mail that arrives in pieces: every line goes through a generator and an
iterator, and it compiles one pattern per multipart part it meets (the boundary is in it; every boundary is
new, so Python's pattern cache never helps). An import has each message whole, so :class:`_WholeParser` runs
the same steps over the message's list of lines, in the same order, and makes the same messages (about half
the time of the copy below on generated mail). The few shapes it leaves out, and nesting deeper than
``_MAX_DEPTH``, go to a private copy of ``email.feedparser`` whose ``re.compile`` hands the boundary pattern to
:class:`_Boundary`, which matches the same lines with a prefix test and one pattern compiled once. Messages
remember their content type (:class:`_Message`). ``tests/test_mail_parse.py`` compares the trees with
``email.message_from_bytes`` on real, generated and hand-made hard mail.
"""

from __future__ import annotations

import email.errors
import email.message
import email.utils
import importlib.util
import io
import re
import types
from email._policybase import compat32
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
    _names: tuple | None = None  # (the header list, its length, {lower-cased name: index of its first header})

    def _first(self, name: str) -> int:
        """Index of the first header called ``name`` (lower case), -1 when none: what Message.get and ``in``
        search the headers for, from an index built once per header list. Message's own methods change the
        list's length (adding), replace it (deleting) or keep each entry's name (replace_header)."""
        headers, names = self._headers, self._names
        if names is None or names[0] is not headers or names[1] != len(headers):
            first: dict[str, int] = {}
            for i, (key, _value) in enumerate(headers):
                first.setdefault(key.lower(), i)
            self._names = names = (headers, len(headers), first)
        return names[2].get(name, -1)

    def get(self, name: str, failobj: Any = None) -> Any:
        at = self._first(name.lower())
        if at < 0:
            return failobj
        return self.policy.header_fetch_parse(*self._headers[at])

    def __contains__(self, name: str) -> bool:  # type: ignore[override]
        return self._first(name.lower()) >= 0

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

    def get_boundary(self, failobj: Any = None) -> Any:
        """The standard get_boundary, without its RFC 2231 decoding where the value cannot need it (ASCII, no
        "*", no backslash): the parameters split as ``email.message`` splits them, each value unquoted as it
        is unquoted there (twice: once read, once collapsed)."""
        self.get_content_type()  # brings the remembered Content-Type entry up to date
        assert self._content_type is not None
        at = self._content_type[3]
        if at < 0:
            return failobj
        value = self._headers[at][1]
        if not isinstance(value, str) or not value.isascii() or "*" in value or "\\" in value:
            return super().get_boundary(failobj)
        for i, param in enumerate(email.message._parseparam(value)):  # type: ignore[attr-defined]
            name, _eq, found = param.partition("=")
            if name.strip().lower() == "boundary":
                if i == 0:  # read raw, not unquoted: left to the standard code
                    return super().get_boundary(failobj)
                return email.utils.unquote(email.utils.unquote(found.strip())).rstrip()
        return failobj

    def _learn_type(self, at: int) -> None:
        """Remember the type of a message just parsed whose first Content-Type header is entry ``at`` (-1: none),
        worked out as get_content_type does, without searching the headers again."""
        headers = self._headers
        if at < 0:
            value = self._default_type
        else:
            raw = headers[at][1]
            if not raw.isascii():  # 8-bit bytes: the standard code wraps the value in a Header first
                return
            value = raw.partition(";")[0].strip().lower()
            if value.count("/") != 1:  # RFC 2045: an invalid type is text/plain
                value = "text/plain"
        self._content_type = (headers, len(headers), self._default_type, at, headers[at] if at >= 0 else None, value)


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


_feedparser = _private_feedparser()
_FeedParser = _feedparser.FeedParser
_HEADER_LINE, _NL, _NL_START, _NL_END = (
    _feedparser.headerRE, _feedparser.NLCRE, _feedparser.NLCRE_bol, _feedparser.NLCRE_eol
)  # fmt: skip
_MAX_DEPTH = 60  # deeper nesting goes to the standard parser, which decides where recursion fails


class _Fallback(Exception):
    """A message :class:`_WholeParser` leaves to the standard parser (rare shapes, deep nesting)."""


class _WholeParser:
    """``email.feedparser.FeedParser`` for a message that is all there, read as a list of lines.

    The standard parser is written for mail arriving in pieces: every line goes through a generator, an
    iterator and a look at each enclosing part's boundary, and the lines of a body are gathered one by one.
    Here the same steps run on the list of lines that parser would have read (``StringIO.readlines``: lines
    end at CR, LF or CRLF), in the same order, making the same messages, defects, preambles and epilogues;
    a body with no boundary to look for is one slice. Shapes it leaves out (``message/delivery-status``, a
    ``From `` line last among the headers, what the standard parser would fail an assertion on) raise
    :class:`_Fallback` before anything is returned."""

    __slots__ = ("lines", "n", "i", "seps", "empty", "stack", "cur", "last")

    def __init__(self, text: str):
        self.lines = io.StringIO(text, newline="").readlines()
        self.n = len(self.lines)
        self.i = 0  # the next line to read
        self.seps: list[str] = []  # the boundary lines of the enclosing parts: each is a false end of input
        self.empty = False  # an empty line pushed back (the standard parser does, after an end of input)
        self.stack: list[_Message] = []
        self.cur: _Message | None = None
        self.last: _Message | None = None

    def parse(self) -> _Message:
        self._part(0)
        root = self._pop()
        if root.get_content_maintype() == "multipart" and not root.is_multipart():
            compat32.handle_defect(root, email.errors.MultipartInvariantViolationDefect())
        return root

    # -- the input: the standard parser's BufferedSubFile ----------------------------------------
    def _at_boundary(self, line: str) -> bool:
        return any(line.startswith(sep) and _AFTER.match(line, len(sep)) for sep in self.seps)

    def _readline(self) -> str:
        if self.empty:
            self.empty = False
            return ""
        i = self.i
        if i >= self.n:
            return ""
        line = self.lines[i]
        if self.seps and line[:2] == "--" and self._at_boundary(line):  # every boundary line starts so
            return ""
        self.i = i + 1
        return line

    def _unreadline(self, line: str) -> None:
        if self.empty:
            raise _Fallback
        if not line:
            self.empty = True
        elif self.i and self.lines[self.i - 1] is line:
            self.i -= 1
        else:
            raise _Fallback

    def _rest(self) -> list[str]:
        """The lines up to the end of input or the next boundary line of an enclosing part."""
        if self.empty:
            self.empty = False
            return []
        i, lines = self.i, self.lines
        end = self.n
        if self.seps:
            at_boundary = self._at_boundary
            for j in range(i, end):
                if lines[j][:2] == "--" and at_boundary(lines[j]):
                    end = j
                    break
        self.i = end
        return lines[i:end]

    # -- messages ----------------------------------------------------------------------------------
    def _pop(self) -> _Message:
        msg = self.stack.pop()
        self.cur = self.stack[-1] if self.stack else None
        return msg

    def _part(self, depth: int) -> None:
        """FeedParser._parsegen: one message and everything inside it, left on the stack."""
        if depth > _MAX_DEPTH:
            raise _Fallback
        msg = _Message(policy=compat32)
        if self.cur is not None and self.cur.get_content_type() == "multipart/digest":
            msg.set_default_type("message/rfc822")
        if self.stack:
            self.stack[-1].attach(msg)
        self.stack.append(msg)
        self.cur = self.last = msg
        self._headers(msg, self._header_lines())
        ctype = msg.get_content_type()
        if ctype == "message/delivery-status":
            raise _Fallback
        main = ctype.split("/")[0]
        if main == "message":
            self._part(depth + 1)
            self._pop()
        elif main == "multipart":
            self._multipart(msg, depth)
        else:
            msg.set_payload("".join(self._rest()))

    def _header_lines(self) -> range:
        """Read the header lines (as indexes into ``lines``) and the blank line after them, if there is one."""
        if self.empty:
            self.empty = False
            return range(0)
        lines, seps, start = self.lines, self.seps, self.i
        i = start
        while i < self.n:
            line = lines[i]
            if seps and line[:2] == "--" and self._at_boundary(line):
                break
            if not _HEADER_LINE.match(line):
                if _NL.match(line):
                    self.i = i + 1  # the blank line: read and dropped
                    return range(start, i)
                # The body starts without the blank line; that line stays to be read.
                compat32.handle_defect(self.cur, email.errors.MissingHeaderBodySeparatorDefect())
                break
            i += 1
        self.i = i
        return range(start, i)

    def _headers(self, msg: _Message, rows: range) -> None:
        """FeedParser._parse_headers with compat32's header_source_parse; the type is remembered on the way."""
        lines, headers = self.lines, msg._headers
        first, more = "", []  # the current header's first line and its continuation lines
        names: dict[str, int] = {}  # lower-cased name: index of its first header
        for i in rows:
            line = lines[i]
            if line[0] in " \t":
                if not first:
                    compat32.handle_defect(msg, email.errors.FirstHeaderLineIsContinuationDefect(line))
                else:
                    more.append(line)
                continue
            if first:
                headers.append(_header(first, more))
                first, more = "", []
            if line.startswith("From "):
                if i == rows.start:
                    end = _NL_END.search(line)
                    msg.set_unixfrom(line[: -len(end.group(0))] if end else line)
                elif i == rows.stop - 1:  # the standard parser pushes it back into the body
                    raise _Fallback
                else:
                    msg.defects.append(email.errors.MisplacedEnvelopeHeaderDefect(line))
                continue
            colon = line.find(":")
            if colon == 0:
                msg.defects.append(email.errors.InvalidHeaderDefect("Missing header name."))
                continue
            if colon < 0:
                raise _Fallback
            first = line
            names.setdefault(line[:colon].lower(), len(headers))
        if first:
            headers.append(_header(first, more))
        msg._names = (headers, len(headers), names)
        msg._learn_type(names.get("content-type", -1))

    def _multipart(self, msg: _Message, depth: int) -> None:
        """The multipart branch of FeedParser._parsegen."""
        boundary = msg.get_boundary()
        if boundary is None:
            compat32.handle_defect(msg, email.errors.NoBoundaryInMultipartDefect())
            msg.set_payload("".join(self._rest()))
            return
        if str(msg.get("content-transfer-encoding", "8bit")).lower() not in ("7bit", "8bit", "binary"):
            compat32.handle_defect(msg, email.errors.InvalidMultipartContentTransferEncodingDefect())
        sep = "--" + boundary
        capturing_preamble, preamble = True, []
        linesep, close_boundary_seen = None, False
        while line := self._readline():
            mo = _AFTER.match(line, len(sep)) if line.startswith(sep) else None
            if mo is None:
                if not capturing_preamble:
                    raise _Fallback  # the standard parser fails an assertion here
                preamble.append(line)
                continue
            if mo.group("end"):
                close_boundary_seen, linesep = True, mo.group("linesep")
                break
            if capturing_preamble:
                if preamble:
                    end = _NL_END.search(preamble[-1])  # the last line end belongs to the boundary
                    if end:
                        preamble[-1] = preamble[-1][: -len(end.group(0))]
                    msg.preamble = "".join(preamble)
                capturing_preamble = False
                self._unreadline(line)
                continue
            while True:  # boundary lines one after another open one part
                line = self._readline()
                if not (line.startswith(sep) and _AFTER.match(line, len(sep))):
                    self._unreadline(line)
                    break
            self.seps.append(sep)
            self._part(depth + 1)
            self._trim(self.last)
            self.seps.pop()
            self._pop()
            self.last = self.cur
        if capturing_preamble:
            compat32.handle_defect(msg, email.errors.StartBoundaryNotFoundDefect())
            msg.set_payload("".join(preamble))
            self._rest()  # read and dropped
            msg.epilogue = ""
            return
        if not close_boundary_seen:
            compat32.handle_defect(msg, email.errors.CloseBoundaryNotFoundDefect())
            return
        epilogue = self._rest()
        if epilogue and not linesep:  # a line end right after the close boundary is not epilogue
            start = _NL_START.match(epilogue[0])
            if start:
                epilogue[0] = epilogue[0][len(start.group(0)) :]
        msg.epilogue = "".join(epilogue)

    @staticmethod
    def _trim(last: _Message) -> None:
        """The line end before a boundary belongs to the boundary, not to the part (or its epilogue)."""
        if last.get_content_maintype() == "multipart":
            epilogue = last.epilogue
            if epilogue == "":
                last.epilogue = None
            elif epilogue is not None:
                end = _NL_END.search(epilogue)
                if end:
                    last.epilogue = epilogue[: -len(end.group(0))]
        elif isinstance(last._payload, str):
            end = _NL_END.search(last._payload)
            if end:
                last._payload = last._payload[: -len(end.group(0))]


def _header(first: str, more: list[str]) -> tuple[str, str]:
    """compat32's header_source_parse of a header's lines."""
    name, value = first.split(":", 1)
    value = value.lstrip(" \t")
    return name, (value + "".join(more) if more else value).rstrip("\r\n")


def message_from_bytes(raw: bytes) -> email.message.Message:
    """``email.message_from_bytes(raw)``: the compat32 policy and the same message, parsed faster."""
    text = raw.decode("ascii", "surrogateescape")
    try:
        return _WholeParser(text).parse()
    except _Fallback:
        pass
    parser = _FeedParser(_Message)
    parser.feed(text)
    return parser.close()
