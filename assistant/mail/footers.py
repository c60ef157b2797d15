"""Finding and removing mailing-list footers: the text a list server appends, which the author never wrote.

Mailman, Google Groups, groups.io, Sympa, LISTSERV, ezmlm, majordomo and Yahoo Groups append instructions
("To unsubscribe send an email to …-leave@…") to every post, as a separate MIME part or at the end of the
body; replies then carry the answered post's footer in their quotes. Left in, footers become "the user's
words" in training emails and clutter reply context.

A footer is found in a block of lines at one quote depth, bounded by blank lines, a change of depth or a
rule line ("_____", "-----", "-=-=-", "-- "): from a line no person writes ("… mailing list -- list@…",
"To unsubscribe … send …", a /listinfo/ link, "…-leave@…") to the block's end, at least two lines, all
of them footer material (list headings, bare links and addresses, stock phrases). After a rule line a
few lines of list blurb may come first ("The official support forum of …"). A list server's template
line word for word ("To unsubscribe, e-mail: dev-unsubscribe@…") is a footer even alone, as rewrapping
quoting clients leave it. A person's sentence that merely mentions unsubscribing stays.

Most messages hold none of the hint words, and then the text is returned after three substring scans.
"""

from __future__ import annotations

import re

__all__ = ["has_footer_hint", "strip_footers"]

# Every footer holds one of these; a text without any is returned after three substring scans.
_HINTS = ("ubscri", "UBSCRI", "listinfo")
# Where a text has one, lines holding these are looked at too (quoting may have split a footer apart).
_MORE_HINTS = (*_HINTS, "mailing list", "additional commands, e-mail")
_QUOTE_PREFIX = re.compile(r"[> \t]*")
_RULE_CHARS = "-_=#*~+—–"
_RULE = re.compile(rf"[{_RULE_CHARS}]+")  # "-- " arrives stripped to "--"; a lone "-" is a rule quoting wrapped
_URL_OR_ADDR = r"(?:<?(?:https?://|mailto:|www\.)\S+>?|<?[\w.+'=-]+@[\w-]+(?:\.[\w-]+)+>?)"

# Lines that only list software writes.
_STRONG = re.compile(
    r"(?:<\*>\s*)?(?:"
    r"(?i:to unsubscribe)\b.*?(?:@|://|:$|\b(?i:send|click|visit|go to|e-?mail)\b)"
    r"|\S.{0,80} mailing list -- \S+@\S+$"
    r"|(?i:unsubscribe):\s*(?:<?https?://|<?mailto:)"
    r"|You received this message because you are subscribed to"
    r"|You received this message as a subscriber on the list"
    r"|To be removed from (?:this|the) list"
    r"|Groups\.io Links:"
    r"|Your use of Yahoo!? Groups is subject to"
    r"|You are receiving this because you (?:were|are|authored|commented|modified|were assigned)"  # GitHub
    r"|<?https?://\S*(?:/|%2F)listinfo\b\S*>?$"  # also behind a link-rewriting proxy
    r"|<?https?://\S+(?:SUBED1=|SIGNOFF)\S*>?$"
    r"|.*?[-+](?i:unsubscribe|leave|signoff-request)@[\w-]+\."
    r")"
)
# Lines that are footer material when a strong line stands beside them, never alone.
_WEAK = re.compile(
    r"(?:<\*>\s*)?(?:"
    rf"{_URL_OR_ADDR}\.?"
    rf"|[\w .!/#()'-]{{1,40}}:\s*{_URL_OR_ADDR}(?:\s*\[[^\]]*\])?"
    r"|\S.{0,60} mailing list"
    r"|(?i:for additional commands|to post to this group|visit this group at|to view this discussion"
    r"|for more options|you receive all messages sent to this group|the body of a message to"
    r"|more majordomo info|please read the faq at|to visit your group on the web|your email settings"
    r"|to change settings|yahoo! groups links|view/reply online|mute this topic|group owner:|\"?\s*from the digest:"
    r"|your subscription|reply to sender|reply to group|list archives?:|manage your subscription"
    r"|yahoo! groups sponsor|advertisement|\[image\]|reply to this email directly|or mute the thread).*"
    r"|\.|\?"  # what is left of a rewrapped link line, or of a dash the charset lost
    r")$"
)
# Lines of list-server templates, word for word: a footer even when quoting left them on a line alone.
_CANONICAL = re.compile(
    r"(?:(?:To unsubscribe|For additional commands), e-mail: \S+@\S+"
    r"|To unsubscribe send an email to \S+-leave@\S+"
    r"|\S.{0,80} mailing list -- \S+@\S+"
    r"|You received this message because you are subscribed to the Google Groups .{1,100} group\."
    r"|To unsubscribe from this group and stop receiving emails from it, send an email to \S+@\S+"
    r"|Groups\.io Links: You receive all messages sent to this group\."
    r")(?:\s*<mailto:\S+>)?"
)
_LINK = re.compile(r"@[\w-]+\.\w|://|www\.")
_HEADING = re.compile(r"\S.{0,60} mailing list")
_ADDRESS = re.compile(r"<?[\w.+'=-]+@[\w-]+(?:\.[\w-]+)+>?")
_MAX_BLURB = 4  # lines of list blurb allowed after a rule line, before the first strong line (2, rewrapped)


def has_footer_hint(text: str) -> bool:
    """Cheap test: could the text hold a list footer at all?"""
    return any(h in text for h in _HINTS)


def strip_footers(text: str) -> str:
    """The text with every list-footer block removed, at any quote depth (lines separated by "\\n")."""
    if not has_footer_hint(text):
        return text
    lines = text.split("\n")
    doc = _Lines(lines)
    drop: set[int] = set()
    for i in _hint_lines(text):
        if i not in drop and doc.is_weak(i):  # the hint may sit in a link beside the strong line
            drop.update(doc.footer_around(i))
    if not drop:
        return text
    kept, start = [], 0
    for i in sorted(drop):
        kept.extend(lines[start:i])
        start = i + 1
    kept.extend(lines[start:])
    return "\n".join(kept)


def _hint_lines(text: str) -> list[int]:
    """Indexes of the lines that hold a hint word, in order, each once."""
    # str.find per hint: a regex alternation would test every position of the text in Python's engine.
    positions = []
    for hint in _MORE_HINTS:
        at = text.find(hint)
        while at >= 0:
            positions.append(at)
            at = text.find(hint, at + len(hint))
    found: list[int] = []
    line, last = 0, 0
    for at in sorted(positions):
        line += text.count("\n", last, at)
        last = at
        if not found or found[-1] != line:
            found.append(line)
    return found


def _line_info(line: str) -> tuple[int, str, bool]:
    """(quote depth, content without quote marks and outer blanks, is a rule line) of one line."""
    if line[:1] in "> \t":
        prefix = _QUOTE_PREFIX.match(line).end()  # type: ignore[union-attr]  # always matches
        depth, content = line.count(">", 0, prefix), line[prefix:].rstrip()
    else:
        depth, content = 0, line.rstrip()
    if "  " in content or "\t" in content:
        content = " ".join(content.split())  # HTML-to-text leaves runs of blanks
    if len(content) > 2 and content[0] == content[-1] == "*" and content.strip("*"):
        content = content[1:-1]  # bold, as HTML-to-text writes it
    rule = content[:1] in _RULE_CHARS and content != "" and _RULE.fullmatch(content) is not None
    return depth, content, rule


class _Lines:
    """The lines of one text, each read (quote depth, content, rule) on first use: footers are short,
    so only the lines around a hint word are ever read."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._info: list[tuple[int, str, bool] | None] = [None] * len(lines)

    def info(self, i: int) -> tuple[int, str, bool]:
        got = self._info[i]
        if got is None:
            got = self._info[i] = _line_info(self.lines[i])
        return got

    def is_rule(self, i: int) -> bool:
        return self.info(i)[2]

    def is_strong(self, i: int) -> bool:
        """A line only list software writes; Mailman 2's heading counts between its rule and its address
        (the link below may be missing or mangled in quotes)."""
        depth, content, _ = self.info(i)
        if _STRONG.match(content) or _CANONICAL.fullmatch(content):
            return True
        if not (0 < i < len(self.lines) - 1 and _HEADING.fullmatch(content)):
            return False
        above, below = self.info(i - 1), self.info(i + 1)
        return above[0] == depth == below[0] and above[2] and _ADDRESS.fullmatch(below[1]) is not None

    def is_weak(self, i: int) -> bool:
        _, content, rule = self.info(i)
        return bool(rule or _STRONG.match(content) or _WEAK.match(content))

    def is_linkish(self, i: int) -> bool:
        """Weak, or a short line with an address or a link: a footer line as a quoting client rewrapped it."""
        content = self.info(i)[1]
        return self.is_weak(i) or (len(content) <= 200 and _LINK.search(content) is not None)

    def block(self, i: int) -> tuple[int, int]:
        """First and last line of the block holding line i: same depth, no blank line, split at rule lines
        (a rule line opens the block below it)."""
        info, depth, n = self.info, self.info(i)[0], len(self.lines)
        start = i
        while start > 0 and not info(start)[2]:
            d, content, _ = info(start - 1)
            if d != depth or not content:
                break
            start -= 1
        end = i
        while end + 1 < n:
            d, content, rule = info(end + 1)
            if d != depth or not content or rule:
                break
            end += 1
        return start, end

    def footer_around(self, i: int) -> list[int]:
        """The lines of the footer that line i belongs to, with rule lines and trailing footer blocks
        around it; empty when its block is not a footer."""
        start, end = self.block(i)
        footer_start = self._footer_start(start, end)
        if footer_start is None:
            return []
        start, depth = footer_start, self.info(i)[0]
        out = list(range(start, end + 1))
        above = self._skip_blank(start - 1, -1, depth)
        if not self.is_rule(start) and above is not None and self.is_rule(above) and self.block(above)[1] == above:
            out.extend(range(above, start))  # a rule line standing alone above, as LISTSERV writes it
        nxt = self._skip_blank(end + 1, 1, depth)
        while nxt is not None:  # more footer after it: a closing rule, a links paragraph
            s, e = self.block(nxt)
            if not all(self.is_weak(j) for j in range(s, e + 1)):
                break
            out.extend(range(end + 1, e + 1))
            end = e
            nxt = self._skip_blank(end + 1, 1, depth)
        if depth:
            out.extend(self._quoted_blanks_around(min(out), end, depth))
        return out

    def _quoted_blanks_around(self, start: int, end: int, depth: int) -> list[int]:
        """Quoted blank lines (">") that would dangle once lines start..end go: those below, and those
        above too where nothing of the quote follows."""
        blanks = []
        j = end + 1
        while j < len(self.lines) and self.info(j)[:2] == (depth, ""):
            blanks.append(j)
            j += 1
        if j < len(self.lines) and self.info(j)[0] == depth:
            return blanks  # the quote goes on: the blank line above still parts two paragraphs
        j = start - 1
        while j >= 0 and self.info(j)[:2] == (depth, ""):
            blanks.append(j)
            j -= 1
        return blanks

    def _footer_start(self, start: int, end: int) -> int | None:
        """Where the footer in block start..end begins, or None when the block holds no footer."""
        first = next((j for j in range(start, end + 1) if self.is_strong(j)), None)
        if first is None:
            return None
        # After a rule line (which quoting may have shifted one level, just above), a few lines of list
        # blurb may precede the instructions, and what follows may be rewrapped.
        opens = self.is_rule(start)
        ruled = opens or (start > 0 and self.info(start - 1)[1] != "" and self.is_rule(start - 1))
        if ruled and first - start - opens <= _MAX_BLURB and all(self.is_linkish(j) for j in range(first, end + 1)):
            return start
        if not all(self.is_weak(j) for j in range(first, end + 1)):
            return None
        while first > start and self.is_weak(first - 1):
            first -= 1
        # Two footer lines together, or one that is a list server's template word for word.
        if end > first or _CANONICAL.fullmatch(self.info(first)[1]):
            return first
        return None

    def _skip_blank(self, j: int, step: int, depth: int) -> int | None:
        """The first non-blank line from j in direction step, if it has the given depth."""
        while 0 <= j < len(self.lines):
            d, content, _ = self.info(j)
            if content:
                return j if d == depth else None
            j += step
        return None
