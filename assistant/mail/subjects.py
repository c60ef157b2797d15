"""Subjects as a model should see them: the real topic, without reply/forward chains, list tags and markers.

Stored subjects stay exactly as they arrived (threading, search and the mail app's reply subject need them);
only text that reaches a model goes through :func:`prompt_subject`. A prompt that shows
``[List] Re: [EXTERN] Re: Re: Budget`` teaches a model to write and expect that clutter, and a training
instruction built from it carries the clutter into every draft.
"""

from __future__ import annotations

import re

__all__ = ["is_reply", "prompt_subject"]

# Reply and forward prefixes in the languages mail clients write them in (Outlook, Apple Mail, Thunderbird,
# Gmail, Lotus): English, German (AW, WG), Scandinavian (SV, VS, VB, VL, Vedr), French (TR, Réf), Spanish and
# Portuguese (RV, RE, RES, ENC), Dutch (Antw, Doorst), Polish (Odp, PD), Italian (R, Rif), Turkish (YNT,
# İLT), Greek (ΑΠ, ΣΧΕΤ, ΠΡΘ), Russian (Отв, Ответ, Пересл), Hebrew, Chinese and Japanese. A counter is
# allowed ("Re[2]:", "Re(3):", "Re^2:") and so is a space or a full-width colon before the colon.
_REPLY_WORDS = "re|aw|sv|vs|vedr|res|antw|antwort|odp|r|rif|ref|réf|ynt|απ|σχετ|отв|ответ|השב|回复|回覆|答复|答覆|返信"
_FORWARD_WORDS = "fwd?|wg|vb|vl|tr|rv|enc|doorst|pd|ilt|πρθ|пересл|הועבר|转发|轉寄|转寄|転送"
_COUNTER = r"\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]+"
_PREFIX = re.compile(rf"(?:(?P<reply>{_REPLY_WORDS})|{_FORWARD_WORDS}){_COUNTER}", re.IGNORECASE)
# A list or gateway tag: "[List]", "[hikers-club]", "[EXTERN]", "[External Sender]" (no colon inside: a
# bracketed "[Fwd: ...]" is a whole forwarded subject, handled apart).
_TAG = re.compile(r"\[[^\[\]:]{1,60}\]")
# Markers mail gateways put before the subject of mail from outside the organisation, when not in brackets.
_MARKER = re.compile(
    r"(?:\*+|\(|\{)\s*(?:extern|external|ext)(?:[\s_-]+(?:sender|email|mail|message))?\s*(?:\*+|\)|\})"
    r"|(?-i:EXTERNAL|EXTERN|EXT)\s*[:：]",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"\s*(?:[-–—|]\s+)?")  # "[List] - Budget": the dash belongs to the tag
_WRAPPED_FORWARD = re.compile(r"\[\s*(?:fwd?|fw)\s*[:：]\s*(.*)\]", re.IGNORECASE | re.DOTALL)
_FWD_SUFFIX = re.compile(r"\s*\((?:fwd?|fw)\)\s*$", re.IGNORECASE)  # Pine's "Budget (fwd)"
_PREFIXES = (_PREFIX, _TAG, _MARKER)


def prompt_subject(subject: str | None) -> str:
    """``subject`` without the prefixes mail piles up in front of it, on one line.

    Strips, in any order and any number: reply and forward prefixes (``Re:``, ``RE:``, ``Fwd:``, ``FW:``,
    ``AW:``, ``WG:``, ``SV:``, ``Re[2]:``... see ``_REPLY_WORDS``), bracketed list and gateway tags
    (``[List]``, ``[EXTERN]``), external-mail markers (``*EXTERNAL*``, ``EXTERNAL:``), a whole subject
    wrapped as ``[Fwd: ...]`` and a trailing ``(fwd)``. What follows is kept as written. A subject that is
    nothing but such prefixes becomes ``""``: no subject is better than a tag posing as one.
    """
    return _strip(subject)[0]


def is_reply(subject: str | None) -> bool:
    """True when the outermost reply or forward prefix, behind any tags, marks a reply ("[List] AW: x").

    "Re: Fwd: x" answers a forward, so it is a reply; "Fwd: Re: x" passes a reply on, so it is not.
    """
    return _strip(subject)[1] == "reply"


def _strip(subject: str | None) -> tuple[str, str]:
    """(the subject without its prefixes, "reply", "forward" or "" for the outermost prefix found)."""
    text = " ".join((subject or "").split())
    outermost = ""
    while True:
        wrapped = _WRAPPED_FORWARD.fullmatch(text)
        if wrapped:
            text, outermost = wrapped.group(1).strip(), outermost or "forward"
            continue
        before = text
        for pattern in _PREFIXES:
            found = pattern.match(text)
            if found:
                if pattern is _PREFIX and not outermost:
                    outermost = "reply" if found.group("reply") else "forward"
                text = text[found.end() :]
                text = text[_SEPARATOR.match(text).end() :]  # type: ignore[union-attr]  # always matches
        text = _FWD_SUFFIX.sub("", text)
        if text == before:
            return text.strip(), outermost
