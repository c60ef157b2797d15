"""Verbatim copy detection: does a text repeat 50+ consecutive characters of any indexed text, and where.

Texts are compared after normalising: every run of whitespace (spaces, tabs, line breaks) counts as one
space, leading and trailing whitespace is ignored, and letters are lower-cased, so re-wrapped lines or a
capital at the start of a sentence do not hide a copy. ``min_chars`` is counted on the normalised text
(a blank shared at the edge of a run does not count).

How it scales to thousands of emails: each indexed text keeps the hashes of its windows of ``w`` characters
that start at every ``s``-th position only, with ``w + s - 1 = min_chars``. Any copied run of ``min_chars``
characters contains one of those windows whole, so scanning the query's windows (every position) against
the index finds every candidate; each candidate is then checked on the texts themselves and grown to the
longest common run, so a hash collision can never report a copy. The index holds about ``len / s`` entries
per text (2 per 50 characters by default).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

DEFAULT_MIN_CHARS = 50


@dataclass(frozen=True)
class Copy:
    """A copied run: ``text[start:end]`` of the text searched repeats part of the indexed text ``key``.

    ``start`` and ``end`` are offsets in the text as given (not normalised); ``copied`` is the normalised
    run, which is at least ``min_chars`` long.
    """

    start: int
    end: int
    key: Hashable
    copied: str


def normalise(text: str) -> tuple[str, list[int]]:
    """``text`` lower-cased with whitespace runs as one space and no leading or trailing whitespace, and the
    offset in ``text`` of each character of the result (for mapping matches back)."""
    out: list[str] = []
    where: list[int] = []
    space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            space = bool(out)  # leading whitespace is dropped
            continue
        if space:
            out.append(" ")
            where.append(i - 1)
            space = False
        for low in ch.lower():  # a few characters lower-case to two ("İ")
            out.append(low)
            where.append(i)
    return "".join(out), where


class CopyIndex:
    """Texts to detect copies of; see the module docstring.

    Example:
        >>> index = CopyIndex(min_chars=50)
        >>> index.add(training_email, key=pair_id)
        >>> index.find(draft)  # [Copy(start, end, key, copied), ...]
    """

    def __init__(self, min_chars: int = DEFAULT_MIN_CHARS):
        if min_chars < 2:
            raise ValueError("min_chars must be at least 2")
        self.min_chars = min_chars
        self.step = max(1, min_chars // 2)
        self.window = min_chars - self.step + 1
        self._texts: list[str] = []
        self._keys: list[Hashable] = []
        self._shingles: dict[int, list[tuple[int, int]]] = {}  # hash of a window -> [(text number, offset)]

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, text: str, key: Hashable | None = None) -> None:
        """Index ``text`` under ``key`` (its position in the index when None)."""
        norm, _ = normalise(text)
        number = len(self._texts)
        self._texts.append(norm)
        self._keys.append(number if key is None else key)
        w = self.window
        for at in range(0, len(norm) - w + 1, self.step):
            self._shingles.setdefault(hash(norm[at : at + w]), []).append((number, at))

    def add_many(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.add(text)

    def find(self, text: str, first_only: bool = False) -> list[Copy]:
        """Every longest run of ``min_chars`` or more characters that ``text`` shares with an indexed text,
        by position in ``text``; with ``first_only``, stop at the first one found."""
        norm, where = normalise(text)
        found: list[Copy] = []
        done: dict[tuple[int, int], int] = {}  # (text number, diagonal) -> end of the run already reported
        w = self.window
        for i in range(len(norm) - w + 1):
            for number, at in self._shingles.get(hash(norm[i : i + w]), ()):
                diagonal = at - i
                if done.get((number, diagonal), -1) > i:
                    continue  # inside a run already found
                start, end = _grow(norm, self._texts[number], i, at, w)
                if end - start < self.min_chars:
                    done[(number, diagonal)] = end
                    continue
                done[(number, diagonal)] = end
                found.append(Copy(where[start], where[end - 1] + 1, self._keys[number], norm[start:end]))
                if first_only:
                    return found
        found.sort(key=lambda c: (c.start, -c.end))
        return found

    def copies(self, text: str) -> bool:
        """True when ``text`` repeats ``min_chars`` or more consecutive characters of an indexed text."""
        return bool(self.find(text, first_only=True))


def _grow(query: str, source: str, i: int, at: int, w: int) -> tuple[int, int]:
    """The longest common run through ``query[i:]`` and ``source[at:]`` (as query offsets, without a blank
    at either edge), or an empty run at ``i`` when the windows only share a hash."""
    if query[i : i + w] != source[at : at + w]:
        return i, i
    start, src = i, at
    while start > 0 and src > 0 and query[start - 1] == source[src - 1]:
        start, src = start - 1, src - 1
    end, src_end = i + w, at + w
    while end < len(query) and src_end < len(source) and query[end] == source[src_end]:
        end, src_end = end + 1, src_end + 1
    # A shared blank at either edge is not copied text.
    start += query[start] == " "
    end -= query[end - 1] == " "
    return start, end
