"""Drafts that look unfinished: only a greeting or sign-off, cut off at the length limit or mid-sentence, or the
instruction said back instead of an email. And drafts signed with another person's name.

Small models do all of these. Such a draft is still saved (nothing the model wrote is lost) but carries a flag,
so Compose, ``mailvoice draft`` and ``mailvoice batch`` can say why it looks unfinished and offer to write it
again. :func:`check_draft` decides; :data:`REASONS` turns a stored flag back into words.

A small model also signs off as someone else: the person it answers ("Regards,\nDaniel Vetter", the sign-off of
the email it was shown; "Ben" alone under a reply to Ben), the one it writes to ("Thanks,\nAlex"), someone it made
up ("Best regards,\nJohn"), or the user with an address they do not sign with. :func:`sign_as_user` puts the
user's own name there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from assistant.drafting.voice import CLOSING_WORDS, Voice, first_name, looks_like_name

# What a stored flag means, in words that finish "This draft looks incomplete: ...".
REASONS = {
    "empty": "it is empty",
    "signoff_only": "it is only a greeting or a sign-off, with no message",
    "cut_off": "it stopped at the length limit before the email ended",
    "mid_sentence": "it ends in the middle of a sentence",
    "repeats_instruction": "it repeats the instruction instead of writing the email",
    "partial": "it was stopped before it was finished",
}

_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|hiya|greetings|good\s+(?:morning|afternoon|evening)|morning)\b"
    r"(?:[ \t]+[\w.'’-]+){0,4}[ \t]*[,:!.—–-]?$",
    re.IGNORECASE,
)
_NAME_WORDS = r"[A-Z][\w'’-]*\.?(?:[ \t]+[A-Z][\w'’-]*\.?){0,2}"
# "Best,", "Thanks!", "Kind regards", "Thank you, Christian.": a closing, and at most a name after it.
_SIGNOFF = re.compile(
    rf"^(?i:{CLOSING_WORDS.pattern.lstrip('^')})"
    r"(?i:[ \t]+(?:wishes|regards|again|so\s+much|very\s+much|in\s+advance|a\s+lot|for\s+now))?"
    rf"[ \t]*[,.!]*(?:[ \t]*{_NAME_WORDS}[ \t]*[.!]?)?$"
)
# An address after a signed name: "<ck@amd.com>", "ck@amd.com", "@Nurses.com".
_ADDRESS = re.compile(r"[ \t]+(<[^<>]*>|\S*@\S*)$")
_POSTSCRIPT = re.compile(r"^p\.?[ \t]*(?:p\.?[ \t]*)?s\b", re.IGNORECASE)  # "P.S.", "PS", "PPS": not a name
_NAME_LINE = re.compile(rf"^[-–—~]?[ \t]*{_NAME_WORDS}$")
# Words a finished sentence does not end on.
# fmt: off
_DANGLING = frozenset((
    "a", "an", "the", "and", "or", "but", "nor", "so", "to", "of", "for", "with", "from", "by", "at", "in", "on",
    "into", "about", "as", "that", "which", "who", "whose", "than", "if", "because", "while", "my", "your", "our",
    "their", "his", "her", "its", "is", "are", "was", "were", "be", "been", "will", "would", "could", "should",
    "can", "may", "might", "must", "have", "has", "had", "do", "does", "did", "not", "very", "please",
))
# fmt: on
_WORD = re.compile(r"[\w']+")


@dataclass(frozen=True)
class Incomplete:
    """Why a draft looks unfinished: ``code`` is what is stored with it (a key of :data:`REASONS`)."""

    code: str

    @property
    def reason(self) -> str:
        return REASONS[self.code]

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "reason": self.reason}


def describe(code: str | None) -> str:
    """The reason for a stored flag ("" for none; an unknown code is shown as it is)."""
    return REASONS.get(code, code) if code else ""


def check_draft(
    text: str, instruction: str = "", *, hit_limit: bool = False, names: Iterable[str] = ()
) -> Incomplete | None:
    """Whether ``text`` (a cleaned draft) looks unfinished, and why; None when it looks like a whole email.

    Args:
        instruction: what the draft was asked to do (a draft that only says it back is flagged).
        hit_limit: generation stopped because it reached the most tokens allowed.
        names: the user's names: a last line that is one of them alone ("Christian.") is a sign-off too, so a
            draft that is only that has no message (small models write the name and stop now and then).
    """
    lines = [line.strip() for line in text.strip().split("\n") if line.strip()]
    if not lines:
        return Incomplete("empty")
    body, signed = _body(lines, names)
    if not body:
        return Incomplete("signoff_only")
    if _repeats(instruction, body):
        return Incomplete("repeats_instruction")
    if signed:
        return None  # a sign-off ends an email, whatever came before it
    if hit_limit:
        return Incomplete("cut_off")
    return Incomplete("mid_sentence") if _unfinished(body[-1]) else None


def _body(lines: list[str], names: Iterable[str] = ()) -> tuple[list[str], bool]:
    """The lines between the greeting and the sign-off (a closing, and a name after it, or one of the user's
    ``names`` alone), and whether there was a sign-off."""
    if _GREETING.match(lines[0]):
        lines = lines[1:]
    signed = False
    if len(lines) >= 2 and _NAME_LINE.match(lines[-1]) and _SIGNOFF.match(lines[-2]):
        lines, signed = lines[:-2], True
    elif lines and _SIGNOFF.match(lines[-1]):
        lines, signed = lines[:-1], True
    if lines and _is_name(lines[-1], names):
        lines, signed = lines[:-1], True
    return lines, signed


def _is_name(line: str, names: Iterable[str]) -> bool:
    """``line`` is one of ``names`` alone, as a sign-off writes it ("Christian.", "-Alex", "Jeff,")."""
    bare = line.strip(" \t-–—~.,!").casefold()
    return bool(bare) and any(bare == n.strip().casefold() for n in names if n and n.strip())


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def _repeats(instruction: str, body: list[str]) -> bool:
    """The body is the instruction said back (nearly word for word), or holds it whole (six words or more)."""
    wanted, written = _words(instruction), _words(" ".join(body))
    if len(wanted) < 3 or not written:
        return False
    if SequenceMatcher(None, wanted, written, autojunk=False).ratio() >= 0.75:
        return True
    if len(wanted) < 6:
        return False
    n = len(wanted)
    return any(written[i : i + n] == wanted for i in range(len(written) - n + 1))


def _unfinished(line: str) -> bool:
    """A last line that stops mid-sentence: on a comma, a colon, an open bracket or a word like "and".

    A line that merely lacks a full stop is not enough: real emails end on a name, "Best, Jeff" or a link as often
    as on a sentence (on 1,247 emails people wrote, that rule flagged 73%).
    """
    if re.search(r"[.!?…)\]\"'”’»]$|[:;]-?[)D]$", line):
        return False
    if re.search(r"[,;:(\[—–-]$", line):
        return True
    words = _words(line)
    return bool(words) and words[-1] in _DANGLING


def alone_names(mine: Iterable[str], others: Iterable[str]) -> list[str]:
    """The names a draft may consist of with no message (``check_draft``'s ``names``): the user's, and those of
    the people in the thread with their first names (a small model signs as them too: "Hi Ben,\n\nBen")."""
    return [*mine, *(n for other in others for n in (other, first_name(other)))]


def sign_as_user(text: str, others: Iterable[str], voice: Voice) -> tuple[str, str]:
    """``text`` with the name that signs it put right when it is not the user's, and what it was signed with ("" when
    the draft was the user's to sign as it is).

    A draft is sent by the user, so it is signed by them. A small model signs as someone in the thread (the person
    it answers, "Regards,\nDaniel Vetter", the sign-off of the email it was shown; "Ben" alone under a reply to Ben;
    the one it writes to), as someone it made up under a closing ("Best regards,\nJohn"), as the user misspelt
    ("Sincerely,\nDon Quijate"), or with an address ("Christian König <christianko@gmail.com>"). Each is signed
    with the name the user signs with (``Voice.signature``); the line keeps its punctuation.

    Only the last line counts (see :func:`signature_line`): "Thanks, Alex" on one line thanks Alex as often as it
    signs. A name alone after a blank line is changed only when it is someone's in the thread: "…for me.\n\nJordan"
    may be the message's own. The user's names stay, and so does a line the user signs with themselves (their
    nicknames, their address if their sign-off has it; two people may share a first name). Names match without case
    or accents ("Hellstrom" is "Hellström").

    Args:
        others: display names ("Daniel Vetter"); their first names count too ("Daniel").
    """
    found = signature_line(text)
    signature = voice.signature().strip()
    if found is None or not signature:
        return text, ""
    mine = {_folded(n) for n in voice.signed_as() if n.strip()}
    if found.address:
        if _folded(found.signed) in {_folded(line) for line in voice.signed_lines()}:
            return text, ""
    elif _folded(found.name) in mine:
        return text, ""
    theirs = {_folded(n) for other in others for n in (other, first_name(other)) if n and n.strip()}
    if not (found.closed or found.address or _folded(found.name) in theirs):
        return text, ""
    return text[: found.start] + signature + text[found.end :], found.signed


@dataclass(frozen=True)
class SignatureLine:
    """The name that signs a draft (:func:`signature_line`): where it starts and ends in the text, the name, and
    what signs it as written (the name and an address after it, if any)."""

    start: int
    end: int
    name: str
    address: str  # "<ck@amd.com>", "ck@amd.com", or ""
    closed: bool  # under a closing ("Regards,"), not only after a blank line or with an address

    @property
    def signed(self) -> str:
        return f"{self.name} {self.address}" if self.address else self.name


def signed_name(text: str) -> tuple[int, str] | None:
    """Where the name that signs ``text`` starts, and the name; None when ``text`` does not end with one (see
    :func:`signature_line`)."""
    found = signature_line(text)
    return None if found is None else (found.start, found.name)


def signature_line(text: str) -> SignatureLine | None:
    """The name that signs ``text``; None when ``text`` does not end with one.

    A name signs when it is alone on the last line, under a closing ("Regards,\nDaniel Vetter.") or as a block
    of its own after a blank line ("…works for me.\n\nBen", as many sign), or when an address follows it
    ("Daniel Vetter <daniel@ffwll.ch>") under a finished sentence or a line that ends with a comma. A name right
    under a sentence ("Attendees:\nBen"), or after a line that introduces it ("Please ask:\n\nBen"), may be the
    message's own; so may "P.S." """
    lines = text.rstrip().split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if len(filled) < 2:
        return None
    last, above = lines[filled[-1]], lines[filled[-2]].strip()
    core = last.strip(" \t\r-–—~.,!")
    address = _ADDRESS.search(core)
    bare = core[: address.start()].rstrip(" \t,") if address else core
    apart = filled[-2] < filled[-1] - 1 and not above.endswith(":")  # not "Ask these:\n\nBen"
    closed = bool(_SIGNOFF.match(above))
    ended_above = above.endswith((".", "!", "?", ","))  # "Thank you all for looking,\nAna <ana@x>"
    signs = closed or apart or (address is not None and ended_above)
    named = looks_like_name(bare) and _name_letters(bare) and not (CLOSING_WORDS.match(bare) or _POSTSCRIPT.match(bare))
    if not (signs and named):
        return None
    start = sum(len(line) + 1 for line in lines[: filled[-1]]) + last.index(core)  # the name begins ``core``
    return SignatureLine(start, start + len(core), bare, address.group(1) if address else "", closed)


def _name_letters(name: str) -> bool:
    """A name is written in letters, with apostrophes, hyphens and dots ("O'Brien", "J.-P."): not "Colleague_12"."""
    return all(ch.isalpha() or ch in "'’-. \t" for ch in name)


def _folded(name: str) -> str:
    """A name without case or accents, and its words' spacing made one."""
    decomposed = unicodedata.normalize("NFKD", name)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())
