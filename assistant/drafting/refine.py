"""Refining the user's own text in their voice: shorter, longer, more formal, friendlier, fixed, or translated.

:func:`refine` rewrites a text with the engine that drafts (the chosen model and adapter, the user's habits,
the same streaming and cleaning as :func:`assistant.drafting.drafts.draft`), asking it to keep every fact,
name, number and link. Then it checks: every number, URL, email address and capitalised name of the text
that the rewrite lacks is listed in :attr:`RefineResult.dropped`, so the user can see what went missing
before sending. Nothing is saved: the rewrite replaces text in an editor, or goes to stdout.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

import assistant.drafting.drafts as drafts_module
from assistant.drafting.backend import Backend, Cancel, GenerationParams
from assistant.drafting.models import engine_settings
from assistant.drafting.postprocess import StreamCleaner, signoff_end
from assistant.drafting.prompting import MARGIN, PromptError, _data, _habits, load_prompt
from assistant.drafting.voice import Voice, learn_voice

# What each kind of rewrite asks for; ``{language}`` is the translation's.
HOWS = {
    "shorter": "Make it shorter: say the same in fewer words.",
    "longer": "Make it longer and fuller: explain a little more where it helps, without adding facts.",
    "formal": "Make it more formal.",
    "friendly": "Make it friendlier and warmer.",
    "fix": "Fix only its spelling, grammar and punctuation; change nothing else.",
    "translate": "Translate it into {language}.",
}
# How a finished rewrite is named to the user ("Rewritten shorter.").
DONE = {
    "shorter": "shorter",
    "longer": "longer",
    "formal": "more formal",
    "friendly": "friendlier",
    "fix": "with spelling and grammar fixed",
    "translate": "in {language}",
}
# Room for the rewrite, as a share of the text's own tokens (a translation can take more tokens than the text).
ROOM = {"shorter": 1.0, "longer": 2.5, "formal": 1.5, "friendly": 1.5, "fix": 1.3, "translate": 2.5}
ROOM_EXTRA = 64  # tokens on top: a greeting or a sign-off the rewrite adds
TEMPERATURE = {"fix": 0.2, "translate": 0.3}  # the others: GenerationParams' default
MAX_LANGUAGE_CHARS = 40
STOP = ("\n<email>", "</email>", "<example>", "\n### ")  # a second email or a new section: not this rewrite

_URL = re.compile(r"(?:\bhttps?://|\bwww\.)[^\s<>\"'()]+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NUMBER = re.compile(r"(?<![\w])\d+(?:[.,:/-]\d+)*")
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_OPENING = " \t\"'([«“‘”’»)]*_-•"  # between a sentence's end and its first word
_TRAILING = ".,;:!?)]}'\"»”’"
# Capitalised words that are not names: the pronoun, greetings and sign-offs, and short forms.
# fmt: off
_NOT_NAMES = frozenset({
    "I", "I'm", "I'll", "I've", "I'd", "Hi", "Hello", "Hey", "Dear", "Thanks", "Thank", "Best", "Regards", "Cheers",
    "Yours", "Sincerely", "Kind", "Warm", "PS", "OK", "Ok", "Mr", "Mrs", "Ms", "Dr", "Re", "Fwd",
})
# fmt: on
NAME_SHARE_LIMIT = 0.3  # past this share of capitalised words mid-sentence (German nouns), names are not checked


@dataclass
class RefineResult:
    text: str
    how: str
    language: str | None = None
    dropped: list[str] = field(default_factory=list)  # numbers, links, addresses and names the rewrite lacks
    model: str = ""
    adapter: str | None = None
    seconds: float = 0.0
    tokens: int = 0

    @property
    def kept_all(self) -> bool:
        """Every number, link, address and name of the text is in the rewrite."""
        return not self.dropped

    def done(self) -> str:
        """How the text was rewritten, for "Rewritten …"."""
        return DONE[self.how].format(language=self.language or "")

    def warning(self) -> str:
        """What the rewrite left out, in one sentence ("" when it kept everything)."""
        if not self.dropped:
            return ""
        return (f"The rewrite left out {', '.join(self.dropped)}: check it before you send it, or undo it and "
                "try again.")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "dropped": self.dropped,
            "how": self.how,
            "language": self.language,
            "kept_all": self.kept_all,
            "model": self.model,
            "adapter": self.adapter,
            "seconds": round(self.seconds, 3),
            "tokens": self.tokens,
        }


def refine(
    db: sqlite_utils.Database,
    text: str,
    how: str,
    *,
    language: str | None = None,
    backend: Backend | None = None,
    adapter: str | None = None,
    model: str | Path | None = None,
    seed: int | None = None,
    cancel: Cancel | None = None,
    on_chunk: Callable[[str], None] | None = None,
) -> RefineResult:
    """Rewrite ``text`` (the user's own) as ``how`` asks, in their voice; stream it, check what it dropped.

    Args:
        how: shorter, longer, formal, friendly, fix or translate (see :data:`HOWS`).
        language: the language to translate into (``translate`` only, and needed there).
        backend: the engine (the GUI keeps one; tests pass a fake); a llama.cpp one when None.
        adapter: a registered adapter's name, ``"none"``, or None for the one chosen with ``mailvoice use``.
        model: a GGUF path overriding the chosen model.
        seed: for a reproducible rewrite; random when None.
        cancel: polled while generating; when it returns True, :class:`~assistant.errors.Cancelled` is raised.
        on_chunk: called with cleaned text as it arrives.

    Raises:
        PromptError: an unknown ``how``, no language for a translation, an empty text, or one too long for
            the model.
    """
    started = time.perf_counter()
    how, language = _check_request(text, how, language)
    settings, adapter_name = engine_settings(db, model, adapter)
    if backend is None:
        backend = drafts_module.LlamaBackend(settings)
    else:
        backend.configure(settings)
    voice = learn_voice(db)
    messages, max_tokens = _prompt(text, how, language, voice, backend)
    params = GenerationParams(
        max_tokens=max_tokens,
        seed=seed if seed is not None else random.randrange(2**31),
        stop=STOP,
        temperature=TEMPERATURE.get(how, GenerationParams.temperature),
    )
    # The rewrite ends at the user's sign-off, as a draft does, unless their text goes on after its own (a P.S.).
    names, own = [voice.first_name, voice.name], text.strip()
    end = signoff_end(own + "\n", names)  # its last line is a whole line
    names = names if end is not None and not own[end:].strip() else []
    cleaner = StreamCleaner(me=voice.first_name)
    with drafts_module._generating:
        drafts_module._generate(backend, messages, params, cleaner, on_chunk, cancel, names)
    rewrite = cleaner.text
    return RefineResult(
        text=rewrite,
        how=how,
        language=language,
        dropped=dropped_items(text, rewrite),
        model=Path(settings.model_path).name,
        adapter=adapter_name,
        seconds=time.perf_counter() - started,
        tokens=backend.count_tokens(cleaner.raw) if cleaner.raw else 0,
    )


def _check_request(text: str, how: str, language: str | None) -> tuple[str, str | None]:
    if how not in HOWS:
        raise PromptError(f"Unknown rewrite {how!r}: choose one of {', '.join(HOWS)}.")
    if not text or not text.strip():
        raise PromptError("There is no text to rewrite: write or paste your email first.")
    if how != "translate":
        return how, None
    language = " ".join((language or "").split())
    if not language:
        raise PromptError("Say which language to translate into, e.g. German.", cli="Give --translate LANG.")
    if len(language) > MAX_LANGUAGE_CHARS or not re.fullmatch(r"[^\W\d_][\w ()'-]*", language):
        raise PromptError(f"{language[:MAX_LANGUAGE_CHARS]!r} is not a language: name one, e.g. German or "
                          "Brazilian Portuguese.")  # fmt: skip
    return how, language


def _prompt(
    text: str, how: str, language: str | None, voice: Voice, backend: Backend
) -> tuple[list[dict[str, str]], int]:
    """The chat messages and the room for the rewrite; PromptError when the text leaves it too little."""
    me = voice.name or "the user"
    system = load_prompt("refine_system").format(me=me, habits=_habits(voice, ""))
    user = load_prompt("refine_user").format(text=_data(text.strip()), how=HOWS[how].format(language=language))
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    own = backend.count_tokens(text)
    free = backend.n_ctx - backend.count_tokens(system) - backend.count_tokens(user) - MARGIN
    wanted = int(own * ROOM[how]) + ROOM_EXTRA
    if free < min(wanted, own + 16):
        raise PromptError(
            f"The text is too long for the model's {backend.n_ctx:,}-token context window to rewrite it: refine a "
            "part of it at a time."
        )
    return messages, min(wanted, free)


def dropped_items(before: str, after: str) -> list[str]:
    """The numbers, URLs, email addresses and capitalised names of ``before`` that ``after`` lacks, in order.

    A number counts as kept when it is written another way ("1,500" as "1500"); a name is a capitalised word
    that is not the first of a sentence or line (unless it is capitalised mid-sentence elsewhere too), nor a
    greeting or sign-off word. In a text that capitalises most words mid-sentence (German nouns), names are not
    checked: every noun would be one.
    """
    found: list[str] = []
    rest = before
    for pattern, kept in ((_URL, _url_kept), (_EMAIL, _email_kept)):
        for match in pattern.finditer(rest):
            item = match.group(0).rstrip(_TRAILING)
            if item and not kept(item, after):
                found.append(item)
        rest = pattern.sub(" ", rest)
    after_numbers = {_digits(m.group(0)) for m in _NUMBER.finditer(after)}
    for match in _NUMBER.finditer(rest):
        number = match.group(0).rstrip(_TRAILING)
        if _digits(number) not in after_numbers and not _whole(number, after):
            found.append(number)
    found += [name for name in _names(rest) if not _whole(name, after)]
    return list(dict.fromkeys(found))


def _url_kept(url: str, after: str) -> bool:
    bare = url.rstrip("/")
    return bare in after or bare.lower() in after.lower()


def _email_kept(address: str, after: str) -> bool:
    return address.lower() in after.lower()


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)


def _whole(word: str, text: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text) is not None


def _names(text: str) -> list[str]:
    seen: list[tuple[str, bool]] = []  # (word, first of its sentence or line)
    words = 0
    for match in _WORD.finditer(text):
        word = re.sub(r"['’]s$", "", match.group(0)).rstrip("'’-")
        words += 1
        if len(word) > 1 and word[0].isupper() and word not in _NOT_NAMES:
            seen.append((word, _starts_sentence(text, match.start())))
    inside = {w for w, first in seen if not first}
    if words and len(inside) > NAME_SHARE_LIMIT * words:
        return []
    return list(dict.fromkeys(w for w, first in seen if not first or w in inside or w.isupper()))


def _starts_sentence(text: str, at: int) -> bool:
    """Whether the word at ``at`` opens the text, a line or a sentence (behind quotes, brackets, bullets)."""
    i = at - 1
    while i >= 0 and text[i] in _OPENING:
        i -= 1
    return i < 0 or text[i] in ".!?:;\n\r"
