"""Cleaning generated text into just the email: no "Sure! Here is your email:", no closing chatter.

Chat models wrap drafts in assistant talk: an acknowledgement, a "Subject:" line, a code fence before the
email; "Let me know if you'd like any changes!" after it. :func:`clean_draft` removes those from a whole
reply; :class:`StreamCleaner` does the same while the reply streams, holding back only text that might
still turn out to be such wrapping, so what the user watches appear is exactly what gets saved.
"""

from __future__ import annotations

import functools
import re

from assistant.drafting.voice import CLOSING_WORDS

# Lines that may open a reply before the email proper. A line is held while it could still become one.
# fmt: off
_HEAD_OPENERS = (
    "sure", "certainly", "of course", "absolutely", "okay", "ok", "great", "no problem", "got it",
    "alright", "here", "below", "i've", "i have", "i'd be happy", "i would be happy", "happy to",
    "subject", "email", "draft", "body", "reply", "response", "```", "<", "---", "***", "to:", "from:",
    "cc:", "date:",
)
# fmt: on
_HEAD_LINE = re.compile(
    r"""^(?:
        (?:sure|certainly|of\ course|absolutely|okay|ok|great|no\ problem|got\ it|alright)[\s,.!]*
            (?:[^\n]*:|(?=[^\n]*\b(?:here|below)\b)(?=[^\n]*\b(?:email|draft|message|reply|version)\b)[^\n]*)?
      | (?:here(?:'s|\ is|\ are)|below\ is
         |i(?:'ve|\ have)\ (?:drafted|written|put\ together|prepared))\b[^\n]*:
      | (?:i'd|i\ would)\ be\ happy\ to\ help[^\n]*
      | happy\ to\ help[^\n]*
      | (?:subject|to|from|cc|date)\s*:[^\n]*
      | (?:email|draft|body|reply|response)(?:\ body)?\s*:
      | ```\w*
      | </?(?:email|example|draft|reply|response)>
      | -{3,}|\*{3,}
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_SUBJECT = re.compile(r"^\s*\**subject\**\s*:\s*\**(.*?)\**\s*$", re.IGNORECASE)

# Trailing paragraphs that talk about the draft instead of being part of it.
# fmt: off
_CHATTER_OPENERS = (
    "note:", "note that", "(note", "[note", "i hope this", "i hope that", "hope this helps",
    "let me know if", "please let me know if", "feel free to", "you can adjust", "you can modify",
    "you can customize", "you can customise", "you can change", "you can edit", "you may want to",
    "this email", "this draft", "this version", "is there anything", "would you like me", "i've kept",
    "i've written", "i've used", "i have kept", "i have written", "remember to", "please replace",
    "replace the placeholder", "make sure to replace", "don't forget to replace",
    "if you need any changes", "if you'd like",
)
# fmt: on
_ABOUT_THE_DRAFT = re.compile(
    r"\b(draft|email|template|tone|changes|adjust\w*|modif\w*|tweak\w*|customi[sz]\w*|personali[sz]\w*|"
    r"revis\w*|placeholders?|anything else i can)\b",
    re.IGNORECASE,
)
_TAIL_LINE = re.compile(r"^(?:```|</?(?:email|example|draft|reply|response)>|-{3,}|\*{3,})$", re.IGNORECASE)
# A blank line, or a closing fence/tag line (models put their chatter right after those).
_PARAGRAPH_BREAK = re.compile(
    r"\n[ \t]*\n\s*|\n[ \t]*(?:```|</(?:email|example|draft|reply|response)>)[ \t]*\n\s*", re.IGNORECASE
)
_PLACEHOLDERS = {
    "me": re.compile(r"\[(?:your|my|sender'?s?)[ _](?:full[ _])?name\]", re.IGNORECASE),
    "recipient": re.compile(r"\[(?:recipient'?s?|their|name)(?:[ _](?:first[ _])?name)?\]", re.IGNORECASE),
}


def _lines_head(text: str, final: bool) -> tuple[str, bool]:
    """Drop wrapping lines at the start. Returns (rest, decided); undecided means "wait for more text"."""
    while True:
        text = text.lstrip()
        line, newline, _rest = text.partition("\n")
        line = line.strip()
        if not newline and not final:  # the first line is still arriving
            low = line.lower().lstrip("*# ")
            if not low or any(o.startswith(low) or low.startswith(o) for o in _HEAD_OPENERS):
                return "", False
            return text, True
        if line and _HEAD_LINE.match(line.strip("*# ")):
            text = text.partition("\n")[2]
            continue
        return text, True


# "I hope this email finds you well" opens a body; it is not talk about the draft.
_WELL_WISH = re.compile(r"i hope (?:this|that)(?: (?:e-?mail|message|note|letter))? finds you\b")


def _is_chatter(paragraph: str) -> bool:
    low = paragraph.strip().lower()
    if _WELL_WISH.match(low):
        return False
    return any(low.startswith(o) for o in _CHATTER_OPENERS) and bool(_ABOUT_THE_DRAFT.search(low))


def _maybe_chatter(paragraph: str) -> bool:
    """Could this (possibly unfinished) paragraph still turn out to be chatter?"""
    low = paragraph.strip().lower()
    if _WELL_WISH.match(low):
        return False  # decided: a body, shown as it streams
    return any(o.startswith(low) or low.startswith(o) for o in _CHATTER_OPENERS)


def _strip_tail(text: str) -> str:
    """Remove trailing chatter paragraphs and closing fences/tags, repeatedly."""
    while True:
        text = text.rstrip()
        lines = text.split("\n")
        if lines and _TAIL_LINE.match(lines[-1].strip()):
            text = "\n".join(lines[:-1])
            continue
        starts = [m.end() for m in _PARAGRAPH_BREAK.finditer(text)]
        last = starts[-1] if starts else 0
        if text and _is_chatter(text[last:]) and last > 0:
            text = text[:last]
            continue
        return text


def _fill(text: str, me: str, recipient: str) -> str:
    if me:
        text = _PLACEHOLDERS["me"].sub(me, text)
    if recipient:
        text = _PLACEHOLDERS["recipient"].sub(recipient, text)
    return text


def clean_draft(raw: str, me: str = "", recipient: str = "") -> str:
    """The email in a model's reply.

    Args:
        raw: the model's whole reply.
        me: the user's first name, put where the model wrote "[Your Name]".
        recipient: the recipient's first name, for "[Recipient's Name]".
    """
    text, _ = _lines_head(raw.replace("\r\n", "\n"), final=True)
    return _fill(_strip_tail(text), me, recipient).strip()


def extract_subject(raw: str) -> str:
    """The subject when the reply opens with a "Subject:" line, else ""."""
    for line in raw.replace("\r\n", "\n").split("\n")[:6]:
        m = _SUBJECT.match(line)
        if m:
            return m.group(1).strip()
        if line.strip() and not _HEAD_LINE.match(line.strip().strip("*# ")):
            break
    return ""


def _safe_prefix(raw: str, me: str, recipient: str) -> str:
    """The part of ``clean_draft(raw + anything)`` already certain."""
    text, decided = _lines_head(raw.replace("\r\n", "\n"), final=False)
    if not decided:
        return ""
    bracket = text.rfind("[")
    if bracket > text.rfind("]"):  # maybe a [placeholder] still arriving
        text = text[:bracket]
    # Hold what _strip_tail might still remove, from the end: closing fences/tags (or their beginnings),
    # and trailing paragraphs that are chatter (the last one: that may still become chatter).
    last_is_open = True
    while True:
        text = text.rstrip()
        line_start = text.rfind("\n") + 1
        line = text[line_start:].strip()
        if line and (_TAIL_LINE.match(line) or "```".startswith(line) or re.fullmatch(r"</?\w*>?|-+|\*+", line)):
            text = text[:line_start]
            continue
        starts = [m.end() for m in _PARAGRAPH_BREAK.finditer(text)]
        last = starts[-1] if starts else 0
        paragraph = text[last:]
        if last > 0 and (_maybe_chatter(paragraph) if last_is_open else _is_chatter(paragraph)):
            text = text[:last]
            last_is_open = False
            continue
        return _fill(text, me, recipient)


def signoff_end(text: str, names: list[str]) -> int | None:
    """Where the email ends when it closes with a sign-off and one of ``names`` on its own line, or with both run on
    after its last sentence ("…the meeting.Best,Jeff").

    Small models keep going after "Best,\\nAlex" (a second email, a signature block, the recipient's
    name); the user's own sign-off is the clearest end there is. Returns the index just after the name
    line (the line must be complete), or None.
    """
    names = [n for n in names if n]
    if not names:
        return None
    pattern = _signoff_re(tuple(sorted(set(names), key=len, reverse=True)))
    m = pattern.search(text)
    return m.end() if m else None


@functools.lru_cache(maxsize=16)
def _signoff_re(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in names)
    closing = CLOSING_WORDS.pattern.lstrip("^")
    return re.compile(
        rf"^[ \t]*(?:{closing})[^\n]{{0,40}}\n(?:[ \t]*\n)?[ \t]*[-–—~]?\s?(?:{alternatives})[ \t.]*(?=\n)"
        # run on after the last sentence, as some write every email: "…the meeting.Best,Jeff". The name as it is
        # written ("Thanks for being frank." is a sentence), after a closing and the words a sign-off adds to it.
        rf"|(?<=[.!?…])[ \t]*(?:{closing})(?:[ \t]+(?:again|so[ \t]+much))?[ \t]*[,.!:;]*[ \t]*[-–—~]?"
        rf"(?-i:{alternatives})[ \t.!]*(?=\n)",
        re.IGNORECASE | re.MULTILINE,
    )


class StreamCleaner:
    """Feed raw chunks, get printable chunks; ``finish()`` flushes the rest.

    The printed chunks join to exactly :func:`clean_draft` of the whole reply, except in the rare case where
    a line already printed is removed after all (then the saved text is the cleaned one).
    """

    def __init__(self, me: str = "", recipient: str = ""):
        self.me, self.recipient = me, recipient
        self.raw = ""
        self.shown = ""

    def feed(self, chunk: str) -> str:
        self.raw += chunk
        safe = _safe_prefix(self.raw, self.me, self.recipient)
        if len(safe) <= len(self.shown) or not safe.startswith(self.shown):
            return ""
        new, self.shown = safe[len(self.shown) :], safe
        return new

    def finish(self) -> str:
        final = clean_draft(self.raw, self.me, self.recipient)
        if not final.startswith(self.shown):
            return ""
        new, self.shown = final[len(self.shown) :], final
        return new

    @property
    def text(self) -> str:
        """The cleaned draft (call after :meth:`finish`)."""
        return clean_draft(self.raw, self.me, self.recipient)


def cut_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` without the character ranges ``spans`` (the copy guard's last resort), tidied: a range that
    starts or ends inside a word keeps that word, no doubled blanks, no empty paragraph where one was cut."""
    for start, end in sorted(spans, reverse=True):
        if 0 < start < end and text[start - 1].isalnum() and text[start].isalnum():
            while start < end and text[start].isalnum():
                start += 1
        if start < end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
            while end > start and text[end - 1].isalnum():
                end -= 1
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        head, tail = text[:start].rstrip(" \t"), text[end:].lstrip(" \t")
        joint = " " if head and tail and not head.endswith("\n") and not tail.startswith("\n") else ""
        text = head + joint + tail
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
