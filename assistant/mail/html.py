"""HTML mail to readable plain text: paragraphs, line breaks, lists, link text, quoted blocks.

Written on the standard library's parser rather than a converter package because mail needs two
things they do not give together: ``<blockquote>`` (how HTML clients quote a reply) must become
``> `` lines so the quote stripper sees it, and output must be plain text, not Markdown.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = {
    "p", "div", "section", "article", "header", "footer", "table", "tr", "h1", "h2", "h3", "h4", "h5",
    "h6", "pre", "hr", "center", "form", "ul", "ol", "dl", "dt", "dd", "address",
}  # fmt: skip
_SKIP = {"style", "script", "head", "title", "xml", "template"}
_SPACES = re.compile(r"[ \t\r\f\v\n\u00a0]+")


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip = 0
        self.quote = 0
        self.pre = 0
        self.lists: list[list[int]] = []  # per open list: [is_ordered, counter]
        self.href: list[str | None] = []

    def _flush(self, blank: bool = False) -> None:
        text = "".join(self.current)
        text = text if self.pre else _SPACES.sub(" ", text).strip()
        prefix = "> " * self.quote
        if text:
            self.lines.extend(prefix + line for line in text.split("\n"))
        if blank and self.lines and self.lines[-1].strip("> "):
            self.lines.append(prefix.rstrip())
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag == "br":
            self._flush()
        elif tag == "blockquote":
            self._flush(blank=True)
            self.quote += 1
        elif tag in ("ul", "ol"):
            self._flush()
            self.lists.append([tag == "ol", 0])
        elif tag == "li":
            self._flush()
            if self.lists:
                self.lists[-1][1] += 1
                ordered, n = self.lists[-1]
                self.current.append("  " * (len(self.lists) - 1) + (f"{n}. " if ordered else "- "))
            else:
                self.current.append("- ")
        elif tag == "a":
            self.href.append(dict(attrs).get("href"))
            self._link_start = len("".join(self.current))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.current.append(alt)
        elif tag in _BLOCK:
            self._flush(blank=tag in ("p", "table", "h1", "h2", "h3", "pre", "hr"))
            if tag == "pre":
                self.pre += 1
        elif tag in ("td", "th"):
            self.current.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "blockquote":
            self._flush()
            while self.lines and not self.lines[-1].strip("> "):  # no empty quote lines at its end
                self.lines.pop()
            self.quote = max(0, self.quote - 1)
            self._flush(blank=True)
        elif tag in ("ul", "ol"):
            self._flush()
            if self.lists:
                self.lists.pop()
        elif tag == "a":
            href = self.href.pop() if self.href else None
            text = "".join(self.current)[getattr(self, "_link_start", 0) :].strip()
            if href and href.startswith(("http", "mailto:")) and href.removeprefix("mailto:") not in text:
                self.current.append(f" ({href.removeprefix('mailto:')})" if text else href)
        elif tag in _BLOCK or tag == "li":
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self._flush(blank=tag in ("p", "table", "h1", "h2", "h3", "pre"))

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.current.append(data)


def html_to_text(html: str) -> str:
    """Convert an HTML mail body to plain text (never raises)."""
    conv = _Converter()
    try:
        conv.feed(html)
        conv.close()
    except (AssertionError, ValueError):  # malformed markup: keep what was converted so far
        pass
    conv._flush()
    text = "\n".join(conv.lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
