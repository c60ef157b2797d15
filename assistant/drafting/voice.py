"""The user's identity as their sent mail shows it: name, usual greeting and usual sign-off.

A model imitates "Hi Rosa, ... Best,\\nAlex" far more reliably when told the pattern outright than when left
to infer it from examples, so the patterns are counted over the user's own sent mail (not machine mail,
not forwards) and stated in the system prompt.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

import sqlite_utils

from assistant.identities import load_me

SAMPLE = 2000  # most recent sent emails looked at: habits drift, and this keeps the scan to a few ms
NAME = "{name}"
_GREETING_WORDS = re.compile(
    r"^(hi|hello|hey|dear|hiya|howdy|greetings|good (morning|afternoon|evening)|morning|yo|hallo|bonjour"
    r"|hola)\b",
    re.IGNORECASE,
)
CLOSING_WORDS = re.compile(
    r"^(best|thanks|thank you|cheers|regards|kind regards|best regards|warm regards|warmly|sincerely|"
    r"yours|all the best|many thanks|talk soon|take care|love|ta|thx|br|rgds|speak soon|later)\b",
    re.IGNORECASE,
)
_GROUP_WORDS = frozenset({"all", "everyone", "team", "there", "folks", "guys", "both", "you"})
_cache: dict[tuple, Voice] = {}


@dataclass
class Voice:
    """How the user writes: ``greeting`` uses ``{name}`` for the recipient's first name."""

    name: str = ""
    first_name: str = ""
    greeting: str | None = None
    signoff: str | None = None
    greetings: list[tuple[str, float]] = field(default_factory=list)  # (pattern, share of emails)
    signoffs: list[tuple[str, float]] = field(default_factory=list)
    emails: int = 0

    def closings(self, most: int = 3) -> tuple[str, ...]:
        """The first lines of the user's most common sign-offs ("Best,", "Thanks!"), most common first."""
        return tuple(dict.fromkeys(pattern.split("\n", 1)[0] for pattern, _share in self.signoffs[:most]))

    def usual_signoff(self) -> str | None:
        """The sign-off the user writes ("Best,\nJeff"): their habit, else their most common one; None when their
        mail shows none."""
        return self.signoff or (self.signoffs[0][0] if self.signoffs else None)

    def signed_lines(self) -> list[str]:
        """The last line of each of the user's sign-offs, without its punctuation ("Regards,\nChris." gives "Chris",
        "Best,\nChristian König <ck@amd.com>" the name and the address), most common first."""
        return list(dict.fromkeys(p.rsplit("\n", 1)[-1].strip(" \t-–—~.,!") for p, _share in self.signoffs))

    def signed_names(self) -> list[str]:
        """The names among :meth:`signed_lines`: the user's own names and nicknames as they sign."""
        return [line for line in self.signed_lines() if looks_like_name(line) and not CLOSING_WORDS.match(line)]

    def signed_as(self) -> tuple[str, ...]:
        """Every name the user signs with: their first and full name, and the names on their sign-offs."""
        return tuple(dict.fromkeys(n for n in (self.first_name, self.name, *self.signed_names()) if n))

    def signature(self) -> str:
        """The name the user signs with: the most common name on their sign-offs that is one of their names
        ("Christian"), else the most common one at all (a nickname, "Chris"), else their first name."""
        signed = self.signed_names()
        mine = {n.casefold() for n in (self.first_name, self.name) if n}
        own = [n for n in signed if n.casefold() in mine]
        return (own or signed or [self.first_name or self.name])[0]

    def greet(self, recipient_first_name: str) -> str | None:
        """The usual greeting filled in for one recipient (None when unknown or it needs a name we lack)."""
        if not self.greeting:
            return None
        if NAME in self.greeting and not recipient_first_name:
            return None
        return self.greeting.replace(NAME, recipient_first_name)


def looks_like_name(text: str) -> bool:
    """One to three words, each begun with a capital letter ("Daniel Vetter", "Łukasz", "O'Brien")."""
    words = text.split()
    return 1 <= len(words) <= 3 and all(w[0].isalpha() and w[0].isupper() for w in words)


def first_name(display_name: str) -> str:
    """ "Raman, Priya" → "Priya"; "Dr. Wei Zhang" → "Wei"; "" when there is nothing name-like."""
    name = display_name.strip().strip("'\"")
    if "," in name:
        name = name.split(",", 1)[1].strip()
    words = [w for w in name.split() if w.rstrip(".").lower() not in {"dr", "mr", "mrs", "ms", "prof"}]
    return words[0] if words and words[0][:1].isalpha() and "@" not in words[0] else ""


def greeting_pattern(line: str, recipient_names: list[str]) -> str | None:
    """The greeting of a first line with recipients' names replaced by ``{name}``, or None if not one."""
    line = line.strip()
    if not line or len(line.split()) > 7 or not _GREETING_WORDS.match(line):
        return None
    pattern = line
    for name in sorted({n for n in recipient_names if n}, key=len, reverse=True):
        pattern = re.sub(rf"\b{re.escape(name)}\b", NAME, pattern)
    # "Hi {name} and {name}," / "Hi {name}, {name}," are the same habit as "Hi {name},".
    pattern = re.sub(r"\{name\}(?:(?:,\s*|\s+(?:and|&)\s+)\{name\})+", NAME, pattern)
    if NAME not in pattern:
        # A name we could not match (a nickname, a team): keep the greeting word, generalise the rest.
        m = re.match(
            r"^(.*?\b(?:hi|hello|hey|dear|hiya|morning|evening|afternoon))\s+([A-Z][\w'-]*)([,!.:]?)$",
            line,
            re.IGNORECASE,
        )
        if m and m.group(2).lower() not in _GROUP_WORDS:
            pattern = f"{m.group(1)} {NAME}{m.group(3)}"
    return pattern


def signoff_pattern(lines: list[str]) -> str | None:
    """The closing of an email from its last lines: "Best,\\nAlex", "Thanks!\\nAlex", "Cheers", or None."""
    tail = [line.strip() for line in lines[-3:] if line.strip()]
    for i in range(len(tail) - 1, -1, -1):
        line = tail[i]
        if len(line.split()) <= 4 and CLOSING_WORDS.match(line):
            rest = tail[i + 1 :]
            if len(rest) <= 1 and all(len(r.split()) <= 3 for r in rest):
                return "\n".join([line, *rest])
            return None
    last = tail[-1] if tail else ""
    if re.fullmatch(r"[-–—~]\s?[A-Z][\w'-]*", last):  # "-Alex"
        return last
    return None


# A sign-off run on after the last sentence with no space ("…my help.Best,Jeff"): mail whose line breaks were
# lost on the way (a flattened export, some HTML-to-text conversions). With a space it could be a sentence
# ("…done. Thanks Bob"), so only the run-on form counts.
_RUN_ON = re.compile(
    rf"[.!?…)\"'”’](?P<closing>(?i:{CLOSING_WORDS.pattern.lstrip('^')})[,!.]?(?:[ \t]?[A-Z][\w'-]*){{0,2}}[.!]?)\s*$"
)
# A one-line email ending in a word run on after its last sentence ("…facility.Kay"): perhaps the name alone as
# a sign-off, known only once the user's name is.
_SENTENCE_THEN_WORD = re.compile(r"[.!?…)\"'”’][-–—~]?[A-Z][\w'-]*[.!]?$")


def run_on_signoff(line: str) -> str | None:
    """The sign-off run on at the end of ``line`` ("…my help.Best,Jeff" → "Best,Jeff"), or None."""
    found = _RUN_ON.search(line.strip())
    return found.group("closing") if found else None


def learn_voice(db: sqlite_utils.Database, sample: int = SAMPLE) -> Voice:
    """Count the user's greetings and sign-offs over their recent sent mail (cached until mail changes)."""
    # New mail raises MAX(id) and `mailvoice me` changes the addresses: both O(1) to read, unlike a count
    # of sent mail (an index scan of every sent email, before every draft).
    newest = db.execute("SELECT MAX(id) FROM messages").fetchone()[0]
    key = (db.conn, newest, tuple(load_me(db)), sample)
    if key in _cache:
        return _cache[key]
    rows = db.execute(
        "SELECT from_name, to_json, body FROM messages WHERE sent_by_me = 1 AND automated = 0 "
        "AND is_forward = 0 AND body != '' ORDER BY date DESC LIMIT ?",
        [sample],
    ).fetchall()
    names: Counter[str] = Counter()
    greetings: Counter[str] = Counter()
    signoffs: Counter[str] = Counter()
    unsigned: list[str] = []  # last lines with no closing found: the name alone may be one
    for from_name, to_json, body in rows:
        if from_name:
            names[from_name.strip()] += 1
        lines = [line for line in body.split("\n") if line.strip()]
        if not lines:
            continue
        names_to = [first_name(n) for n, _addr in recipients(to_json)]
        pattern = greeting_pattern(lines[0], names_to)
        if pattern:
            greetings[pattern] += 1
        closing = (signoff_pattern(lines[1:]) if len(lines) > 1 else None) or run_on_signoff(lines[-1])
        if closing:
            signoffs[closing] += 1
        elif len(lines) > 1 or _SENTENCE_THEN_WORD.search(lines[-1]):
            unsigned.append(lines[-1].strip())
    voice = Voice(emails=len(rows))
    voice.name = names.most_common(1)[0][0] if names else _name_from_address(load_me(db))
    voice.first_name = first_name(voice.name)
    if voice.first_name:  # the name alone signs off too: "…\nAlex", "…facility.Kay"
        alone = re.compile(rf"(?:^|[.!?…)\"'”’])[-–—~]?[ \t]?{re.escape(voice.first_name)}[.!]?$")
        count = sum(bool(alone.search(line)) for line in unsigned)
        if count:
            signoffs[voice.first_name] = count  # no other pattern is a bare name: signoff_pattern's has a dash
    voice.greetings = _shares(greetings, len(rows))
    voice.signoffs = _shares(signoffs, len(rows))
    voice.greeting = _habit(voice.greetings, len(rows))
    voice.signoff = _habit(voice.signoffs, len(rows))
    if len(_cache) > 16:  # one entry per open database and state of its mail; old ones are dead
        _cache.clear()
    _cache[key] = voice
    return voice


def recipients(to_json: str | None) -> list[tuple[str, str]]:
    try:
        return [(str(n or ""), str(a or "")) for n, a in json.loads(to_json or "[]")]
    except (ValueError, TypeError):
        return []


def _shares(counts: Counter[str], total: int) -> list[tuple[str, float]]:
    return [(p, c / total) for p, c in counts.most_common(3)] if total else []


def _habit(shares: list[tuple[str, float]], total: int) -> str | None:
    """The most common pattern, if it is a habit (in at least 2 emails and 15% of them)."""
    if not shares:
        return None
    pattern, share = shares[0]
    return pattern if share >= 0.15 and round(share * total) >= 2 else None


def _name_from_address(addresses: list[str]) -> str:
    """ "alex.morgan@example.org" → "Alex Morgan", the best guess when no sent mail carries a name."""
    if not addresses:
        return ""
    local = re.split(r"[+@]", addresses[0])[0]
    return " ".join(part.capitalize() for part in re.split(r"[._-]", local) if part.isalpha())
