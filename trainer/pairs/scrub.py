"""Privacy scrub of training text: secrets always become placeholders; phones and street addresses optionally.

A fine-tuned model can repeat what it was trained on, so one-time codes, passwords, card numbers (Luhn
checked), IBANs (mod-97 checked) and bank account numbers named as such are always replaced by
``[CODE]``, ``[PASSWORD]``, ``[CARD]``, ``[IBAN]`` and ``[ACCOUNT]``. Phone numbers (``[PHONE]``) and street
addresses (``[ADDRESS]``) are part of many people's voice ("call me on ...") and are scrubbed only when the
settings say so. Checksums and context words keep dates, amounts, times and invoice numbers untouched.
Scrubbing is idempotent: placeholders hold no digits, so scrubbing scrubbed text changes nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

import sqlite_utils

from assistant.store.db import get_setting, set_setting

SETTINGS_KEY = "pairs_scrub"
ALWAYS = ("IBAN", "CARD", "ACCOUNT", "CODE", "PASSWORD")
OPTIONAL = ("PHONE", "ADDRESS")


@dataclass(frozen=True)
class ScrubSettings:
    """What is scrubbed besides the secrets that always are."""

    phones: bool = False
    """Replace phone numbers with [PHONE]."""
    addresses: bool = False
    """Replace street addresses (number + street name) with [ADDRESS]."""


def load_settings(db: sqlite_utils.Database) -> ScrubSettings:
    stored = get_setting(db, SETTINGS_KEY, {}) or {}
    return ScrubSettings(**{k: bool(v) for k, v in stored.items() if k in ScrubSettings.__dataclass_fields__})


def save_settings(db: sqlite_utils.Database, settings: ScrubSettings) -> None:
    set_setting(db, SETTINGS_KEY, asdict(settings))


@dataclass(frozen=True)
class Scrubbed:
    text: str
    found: dict[str, int]  # placeholder kind -> how many were replaced


# --- checksums ---------------------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    iban = iban.replace(" ", "").upper()
    if not (15 <= len(iban) <= 34 and iban[:2].isalpha() and iban[2:4].isdigit() and iban.isalnum()):
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


# --- the patterns ------------------------------------------------------------------------------------------

_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_CONNECT = r"\s*(?:(?:is|was|are|:|=|-|#|no\.?)\s*)*"
_ACCOUNT = re.compile(
    r"\b(?:account (?:number|no\.?|#)|acct\.?(?: no\.?| #)?|routing (?:number|no\.?)|sort code|bsb|kontonummer)"
    + _CONNECT
    + r"(\d(?:[ -]?\d){5,16})\b",
    re.I,
)
_CODE_WORDS = (
    r"(?:one[- ]time (?:pass)?code|verification code|security code|confirmation code|login code|"
    r"sign[- ]in code|access code|auth(?:entication)? code|2fa code|two[- ]factor code|passcode|otp|pin|tan|"
    r"code)"
)
_CODE_AFTER = re.compile(
    r"(?<!zip )(?<!postal )(?<!post )(?<!area )(?<!country )(?<!dress )(?<!promo )(?<!discount )"
    rf"\b{_CODE_WORDS}\b"
    # "code: 123456", or a few words then a connector ("code they texted me was 123456"), never bare words
    # ("code freeze starts in 2023").
    r"(?:(?:\s+[\w'’-]+){1,4}?\s*(?:\bis\b|\bwas\b|:|=)|\s*(?:is|was|are|:|=|-|#|no\.?)?)\s*(?:is\s+)?"
    r"(\d{3,4}[ -]\d{3,4}\b|[A-Za-z0-9]{4,10}\b)",
    re.I,
)
_CODE_BEFORE = re.compile(
    r"\b(\d{4,8})\s+(?:is|as)\s+(?:your|the|my)\s+(?:[\w-]+\s+){0,2}(?:code|passcode|otp|pin)\b", re.I
)
_PASSWORD = re.compile(
    r"\b(?:wi-?fi password|password|passwort|passwd|pwd|pw|passphrase|mot de passe|contraseña)"
    r"(?:\s+(?:for|to|of|on)\s+(?:the\s+|my\s+|our\s+)?[\w-]+(?:\s+[\w-]+)?)?"
    r"\s*(?:is|was|:|=)\s*(?:is\s+|now\s+)?"
    r"[\"'“‘]?(\S+?)[\"'”’]?(?=[\s,;)]|[.!?](?:\s|$)|$)",
    re.I,
)
# Words that follow "password is" without being one ("the password is in the vault").
_NOT_PASSWORDS = set(
    """in on at the a an still not same written saved stored attached below above here there available changed
    expired correct wrong incorrect too very being required needed missing reset now easy hard simple
    different new old your my our their his her it that this""".split()  # noqa: SIM905
)
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,8}){1,4}(?![\w])"
    r"|(?<![\w+])\+\d{8,14}\b"
)
_DATE_LIKE = re.compile(r"^(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[ .-]\d{1,2}[ .-]\d{2,4}|(?:19|20)\d\d-(?:19|20)\d\d)$")
_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Square|Sq|"
    r"Parkway|Pkwy|Highway|Hwy|Close|Crescent|Row|Walk)"
)
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][\w'’.-]*\s+){{1,4}}{_STREET}\b\.?(?:,?\s+(?:Apt|Suite|Unit|Flat)\.?\s*\w+)?"
    r"|\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm)\s+\d{1,4}[a-z]?\b"
)


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _iban(m: re.Match[str]) -> str | None:
    # The pattern may run on into following capitalised words: try the longest prefix of groups that checks.
    groups = m.group(0).split(" ")
    for end in range(len(groups), 0, -1):
        if iban_ok("".join(groups[:end])):
            return "[IBAN]" + m.group(0)[len(" ".join(groups[:end])) :]
    return None


def _card(m: re.Match[str]) -> str | None:
    digits = _digits(m.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else None


def _code_token(token: str) -> bool:
    plain = token.replace(" ", "").replace("-", "")
    digits = sum(c.isdigit() for c in plain)
    if plain.isdigit():
        return 4 <= len(plain) <= 8
    # Alphanumeric codes ("X7K9P2"): capitals and digits mixed, never an ordinary word.
    return digits >= 2 and plain == plain.upper() and 6 <= len(plain) <= 10


def _phone(m: re.Match[str]) -> str | None:
    text = m.group(0)
    digits = _digits(text)
    if not 7 <= len(digits) <= 15 or _DATE_LIKE.match(text):
        return None
    groups = re.split(r"[ .-]", text.lstrip("+"))
    if "." in text and all(len(g) == 3 for g in groups[1:]):
        return None  # 12.500.000: an amount with thousands separators
    return "[PHONE]"


def _sub(pattern: re.Pattern[str], text: str, found: Counter, kind: str, repl: Callable) -> str:
    def one(m: re.Match[str]) -> str:
        out = repl(m)
        if out is None:
            return m.group(0)
        found[kind] += 1
        return out

    return pattern.sub(one, text)


def _replace_group(placeholder: str, check: Callable[[str], bool] = lambda _s: True) -> Callable:
    def repl(m: re.Match[str]) -> str | None:
        token = m.group(1)
        if not check(token):
            return None
        start, end = m.span(1)
        whole = m.group(0)
        return whole[: start - m.start()] + placeholder + whole[end - m.start() :]

    return repl


def _password_token(token: str) -> bool:
    return token.lower() not in _NOT_PASSWORDS and not token.startswith("[")


def scrub(text: str, settings: ScrubSettings | None = None) -> Scrubbed:
    """Replace secrets (and, per ``settings``, phones and addresses) in ``text`` by placeholders."""
    settings = settings or ScrubSettings()
    found: Counter = Counter()
    if not text:
        return Scrubbed(text or "", {})
    text = _sub(_IBAN, text, found, "IBAN", _iban)
    text = _sub(_CARD, text, found, "CARD", _card)
    text = _sub(_ACCOUNT, text, found, "ACCOUNT", _replace_group("[ACCOUNT]", lambda t: len(_digits(t)) >= 6))
    text = _sub(_CODE_AFTER, text, found, "CODE", _replace_group("[CODE]", _code_token))
    text = _sub(_CODE_BEFORE, text, found, "CODE", _replace_group("[CODE]"))
    text = _sub(_PASSWORD, text, found, "PASSWORD", _replace_group("[PASSWORD]", _password_token))
    if settings.phones:
        text = _sub(_PHONE, text, found, "PHONE", _phone)
    if settings.addresses:
        text = _sub(_ADDRESS, text, found, "ADDRESS", lambda _m: "[ADDRESS]")
    return Scrubbed(text, dict(found))


def scrub_fields(fields: dict[str, str], settings: ScrubSettings | None = None) -> tuple[dict[str, str], dict]:
    """Scrub several texts of one pair; return them and the placeholders found in all of them together."""
    total: Counter = Counter()
    out = {}
    for name, value in fields.items():
        done = scrub(value or "", settings)
        out[name] = done.text
        total.update(done.found)
    return out, dict(total)
