"""Reverse instructions: ask a model what request would have produced an email, check it, retry, fall back.

Small models answer with a greeting, a copy of the email, or a ramble as often as with an instruction, so
every answer is cleaned (labels, preambles, quotes, style words, "Write an email to X asking..." wrappers
and chatty follow-up sentences removed; "Thanks for X" turned into "Thank NAME for X"; "you" in an order that
names its recipient is the user: "Tell Ana that you're late" -> "... that I'm late") and checked
(:mod:`trainer.pairs.checks`). The tries go from free to constrained. The first is free and near-greedy; a
free answer that was an order but failed a check is tried free again with another seed (the prompt is
unchanged, so llama.cpp re-reads nothing, and an answer whose first word already fails is cut there). One
that was no order at all, as from the embedded 135M model, goes on to answers whose start a llama.cpp grammar
forces: "Ask NAME whether/to/if...", "Tell NAME that/about/to" or "Thank NAME for" by the kind of email, the
same with another seed, then a choice of addressed verbs ("Remind NAME ..."). A forced start alone let a tiny
model write "Invite the LOI, and I'm glad to hear about your project" (QUALITY.md); the checks refuse that.
When every try fails, the extractive instruction of :mod:`trainer.pairs.fallback` is used and flagged
``fallback``: an email is never dropped silently. :attr:`Instruction.method` says which path made the
instruction: ``model`` (first try), ``retried``, ``grammar`` or ``fallback``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from assistant.drafting.backend import Backend, GenerationParams, Messages
from assistant.errors import Cancelled
from trainer.pairs.checks import COPY_RUN, longest_common_run, problem
from trainer.pairs.fallback import fallback, first_names, recipient, to_recipient
from trainer.pairs.prompt import Request, ReversePrompt, email_text
from trainer.pairs.wording import LINKS, SECOND_PERSON, VERBS, words

__all__ = [
    "COPY_RUN",
    "VERBS",
    "Instruction",
    "clean",
    "fallback",
    "instruction_tries",
    "longest_common_run",
    "problem",
    "stop_early",
    "write_instruction",
]

CHECKS_VERSION = 3  # raise when cleaning, checks, the tries or the fallback change: it is part of the cache key
TRIES = 4  # failed tries are cheap: the prompt is cached and hopeless answers are cut at word two
GRAMMAR_TRIES = 3  # of the tries, up to this many start with a forced verb (when there are 2 tries or more)
MAX_TOKENS = 64  # an instruction is one sentence; a longer answer is a ramble and is cut
TEMPERATURES = (0.2, 0.7, 0.9, 1.0)  # near-greedy first; retries need randomness to differ at all
GRAMMAR_TEMPERATURES = (0.3, 0.8, 0.7)  # forced starts: the first close to greedy, the next ones freer
_NOT_AN_INSTRUCTION = ("empty", "not_imperative")  # a free answer so wrong that another free one will not help
# Verbs a forced start may choose, the recipient's name after them: an order to someone, not "List, I'm sorry".
_ADDRESSED = ("Tell", "Ask", "Remind", "Invite", "Update", "Let", "Warn", "Congratulate", "Thank", "Inform", "Send",
              "Offer", "Confirm", "Apologize to", "Reply to", "Explain to", "Propose to", "Suggest to")  # fmt: skip
# Second person in an instruction that names its recipient is the person giving it: "Tell Ana that you're late".
_TO_FIRST = ((r"\byou're\b", "I'm"), (r"\byou've\b", "I've"), (r"\byou'll\b", "I'll"), (r"\byou'd\b", "I'd"),
             (r"\byourself\b", "myself"), (r"\byours\b", "mine"), (r"\byour\b", "my"), (r"\byou are\b", "I am"),
             (r"\byou were\b", "I was"))  # fmt: skip
_YOU_SUBJECT = re.compile(
    r"\byou(?=\s+(?:have|had|can|could|will|would|should|may|might|must|do|did|don't|didn't|can't|won't|need|want"
    r"|know|think|see|get|like|mean|said|sent|wrote|asked|agree|already|also|still|just|plan|hope|feel|were|are)\b)",
    re.I,
)
_YOU_OBJECT = re.compile(
    r"\b(let|to|for|with|tell|ask|give|send|help|from|of|at|by|see|call|email|meet|remind) you\b", re.I
)
_YOU_AFTER = re.compile(r"\b(that|if|when|because|and|but|as|since|whether|so) you\b", re.I)  # "that you" -> "that I"
_STYLE = re.compile(
    r",?\s*\b(?:politely|kindly|warmly|briefly|casually|formally|informally|cheerfully|enthusiastically|"
    r"gently|firmly|concisely|friendly and |in a (?:friendly|polite|professional|casual|formal|warm|brief|"
    r"short) (?:tone|way|manner)|in (?:a )?(?:friendly|polite|professional|casual|formal) tone)\b",
    re.I,
)
_LABEL = re.compile(
    r"^\s*(?:[-*•>]+\s*|\d+[.)]\s*)?(?:\*\*)?(?:instruction|answer|assistant|output|task)\s*:?\**\s*", re.I
)
# Chat models' preambles: "Sure! Here is the instruction: Ask ..." (on one line; the first line is kept).
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|okay|ok|certainly)\s*[,!.]\s*)?(?:here(?:'s| is) (?:the|an|your) (?:instruction|request)"
    r"(?: (?:for|behind) (?:this|the) email)?\s*:\s*)?",
    re.I,
)
_LEADING = frozenset(("thanks", "here", "sure", "certainly", "instruction"))  # may still turn into an order
_WRAPPER = re.compile(
    r"^(?i:(?:please\s+)?(?:write|send|draft|compose)\s+(?:a|an)\s+(?:\w+\s+)?(?:e-?mail|message|note|reply)\s+"
    r"to)\s+(?P<who>[A-Z][\w'’-]*(?:\s+(?:and\s+)?[A-Z][\w'’-]*){0,3})\s*,?\s*"
    r"(?P<how>asking|telling|thanking|saying|letting|inviting|reminding|confirming|to ask|to tell|to thank|to say"
    r"|to let|to invite|to remind|to confirm)\s+(?:(?:him|her|them)\s+)?",
)
_HOW = {"asking": "Ask", "telling": "Tell", "thanking": "Thank", "saying": "Tell", "letting": "Let",
        "inviting": "Invite", "reminding": "Remind", "confirming": "Confirm"}  # fmt: skip
# A sentence ends at . ! or ? before a capital or a digit, but not after an abbreviation ("Dec. 16", "Mr. Li").
_ABBREVIATIONS = ("Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec", "Mr", "Mrs",
                  "Ms", "Dr", "St", "No", "vs", "etc", "approx")  # fmt: skip
_SENTENCE = re.compile("".join(rf"(?<!\b{a}\.)" for a in _ABBREVIATIONS) + r"(?<=[.!?])\s+(?=[A-Z\d\"“])")
_GLUED = re.compile(r"(?<=[a-z]{2}[.!?])(?=[A-Z])")
_THANKS = re.compile(r",?\s*(?:please and )?thank(?:s| you)[.!]*$", re.I)  # "..., thank you." is the email's voice


METHODS = ("model", "retried", "grammar", "fallback")  # how an instruction was made, from first try to last resort


@dataclass
class Instruction:
    """A written (or extracted) instruction and what it took."""

    text: str
    flags: list[str] = field(default_factory=list)  # "retried", "grammar", "fallback"
    method: str = "model"  # one of METHODS
    tries: int = 0
    rejected: list[str] = field(default_factory=list)  # why each rejected answer was rejected
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


def clean(raw: str) -> str:
    """The instruction in a model's answer: first line, labels and quotes off, style words out."""
    lines = [ln.strip() for ln in raw.strip().splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    text = _LABEL.sub("", _PREAMBLE.sub("", text, count=1)).strip().strip("\"'“”‘’`*").strip()
    text = re.sub(r"^please\s+", "", text, flags=re.I)
    wrapped = _WRAPPER.match(text)
    if wrapped:
        how = wrapped.group("how")
        verb = how[3:].capitalize() if how.startswith("to ") else _HOW[how]
        text = f"{verb} {wrapped.group('who')} {text[wrapped.end() :]}".strip()
    text = _STYLE.sub("", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(text.split()))
    text = text[:1].upper() + text[1:]
    # Later sentences stay only when they are orders too ("Ask X. Mention Y."), not the model chatting on.
    first, *rest = _SENTENCE.split(text) if text else [""]
    first = _GLUED.split(first, maxsplit=1)[0]  # "... out there.Jeff": the sign-off glued on
    kept = [first] + [s for s in rest[:1] if (_words(s) or [""])[0] in VERBS and _words(s)[:2] != ["thank", "you"]]
    return _THANKS.sub(".", " ".join(kept)).rstrip()


_words = words  # the name the checks and tests have long used


def speaker(text: str, request: Request) -> str:
    """Second person made first when the instruction already names its recipient: "Tell Ana that you're late"
    -> "Tell Ana that I'm late", "Ask Ana to let you know" -> "Ask Ana to let me know"."""
    said = words(text)
    names = {w for w in words(request.to)} | {"them"}
    if not any(w in names for w in said[1:4]) or not any(w in SECOND_PERSON for w in said):
        return text
    if said[0] == "thank":  # "Thank Ana for your help": the help is Ana's
        verb, _, rest = text.partition(" ")
        return f"{verb} {to_recipient(rest)}"
    kept = re.split(r"(?i)(\bthank you\b)", text)  # "thank you" stays as it is
    for i in range(0, len(kept), 2):
        part = kept[i]
        for pattern, first in _TO_FIRST:
            part = re.sub(pattern, first, part, flags=re.I)
        part = _YOU_OBJECT.sub(r"\1 me", part)  # "let you know" -> "let me know"
        part = _YOU_AFTER.sub(r"\1 I", _YOU_SUBJECT.sub("I", part))
        kept[i] = re.sub(r"\byou\b", "me", part, flags=re.I)
    return "".join(kept)


def salvage(text: str, request: Request) -> str:
    """Turn the commonest near-miss, an answer written as the email ("Thanks for the notes"), into an order."""
    m = re.match(r"^(?:thanks|thank you)(?: so much| a lot)?\s+for\b", text, re.I)
    if m:
        who = " and ".join(first_names(request.to)[:2]) or "them"
        return f"Thank {who} for{text[m.end() :]}"
    return text


def _hopeless(partial: str, request: Request) -> bool:
    """True once a streamed answer's first word shows it cannot pass (saves generating the rest)."""
    words = _words(salvage(clean(partial), request))
    return len(words) >= 2 and words[0] not in VERBS and words[0] not in _LEADING


def start(request: Request) -> str:
    """How a person would begin this email's instruction: "Thank Ana for", "Ask Ana", else "Tell Ana"."""
    who = recipient(request)
    text = email_text(request.body)
    if re.match(r"(?:many |so many )?(?:thanks|thank you)(?: so much| very much| a lot| again)?\s+for\b", text, re.I):
        return f"Thank {who}"
    return f"Ask {who}" if "?" in text else f"Tell {who}"


def grammar(start: str, request: Request) -> str:
    """A GBNF grammar for a one-line answer that begins with ``start`` ("Tell Ana") and the word that links it to
    what follows ("that", "whether", ...); ``""``: with one of the verbs of _ADDRESSED and the recipient."""
    if start:
        verb, _, who = start.partition(" ")
        # "Ask Ana to" goes on with a verb, not a name: "Ask Colleague to Jeff: I'm sorry" is the email again.
        links = [_literal(f" {w} ") + (" [a-z]" if w == "to" else "") for w in LINKS[verb]]
        head = f"{_literal(start)} ({' | '.join(links)})"
    else:
        who = recipient(request)
        head = f"({' | '.join(_literal(v) for v in _ADDRESSED)}) {_literal(' ' + who + ' ')} [a-z]"
    return f"root ::= {head} [^\\n]+\n"


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_instruction(
    backend: Backend,
    prompt: ReversePrompt,
    request: Request,
    *,
    seed: int,
    tries: int = TRIES,
    cancel: Callable[[], bool] | None = None,
) -> Instruction:
    """Ask ``backend`` for the instruction behind one email; retry bad answers; fall back when all fail.

    The tries are those of :func:`instruction_tries`, each streamed from ``backend`` in turn.
    """
    plan = instruction_tries(backend, prompt, request, seed=seed, tries=tries)
    answer = None
    try:
        while True:
            messages, params = plan.send(answer)
            answer = _generate(backend, messages, params, request, cancel)
    except StopIteration as finished:
        return finished.value


def instruction_tries(
    backend: Backend, prompt: ReversePrompt, request: Request, *, seed: int, tries: int = TRIES
) -> Generator[tuple[Messages, GenerationParams], tuple[str, int], Instruction]:
    """The tries for one email, as a generator: it yields (messages, params) for the next answer, is sent
    (answer text, chunks) back, and returns the :class:`Instruction` when an answer passed or all failed.
    ``backend`` only counts tokens here: one caller streams each try, another runs many emails' tries at once.

    The first try is free. A free answer that was an instruction but failed a check (a copy, too long) is
    retried free; one that was no instruction at all, as from a tiny model, goes on to forced starts (the
    last ``GRAMMAR_TRIES`` of ``tries``, from 2 tries on): "Ask NAME whether/to/...", "Tell NAME that/about/to",
    "Thank NAME for" by the kind of email, the same again with another seed, then a choice of verbs, each
    with the recipient's name. Stop an answer early with :func:`stop_early`.
    """
    budget = backend.n_ctx - MAX_TOKENS - 64  # 64: chat-template tokens count_tokens does not see
    messages = prompt.messages(request, backend.count_tokens, budget)
    prompt_tokens = sum(backend.count_tokens(m["content"]) for m in messages)
    forced = [start(request), start(request), ""][:GRAMMAR_TRIES] if tries >= 2 else []
    result = Instruction("")
    started = time.perf_counter()
    plain_tries = forced_tries = 0
    for attempt in range(tries):
        # Free again only after a free answer that was an instruction, and while a forced try still fits.
        plain = (
            not forced
            or attempt == 0
            or (forced_tries == 0 and result.rejected[-1] not in _NOT_AN_INSTRUCTION and tries - attempt >= 2)
        )
        lead = None if plain else forced.pop(0)
        temperature = TEMPERATURES[min(plain_tries, 3)] if plain else GRAMMAR_TEMPERATURES[min(forced_tries, 2)]
        plain_tries, forced_tries = plain_tries + plain, forced_tries + (not plain)
        params = GenerationParams(
            max_tokens=MAX_TOKENS,
            temperature=temperature,
            seed=(seed + 7919 * attempt) % 2**31,
            repeat_penalty=1.05,
            stop=("\n",),
            grammar=None if lead is None else grammar(lead, request),
        )
        text, n = yield messages, params
        result.tries += 1
        result.prompt_tokens += prompt_tokens if attempt == 0 else 1  # the same prompt again: all cached
        result.completion_tokens += n
        text = speaker(salvage(clean(text), request), request)
        why = problem(text, request, prompt)
        if why is None:
            result.text = text
            result.method = "grammar" if lead is not None else ("retried" if attempt else "model")
            break
        result.rejected.append(why)
    else:
        result.text = fallback(request)
        result.method = "fallback"
    if result.tries > 1:
        result.flags.append("retried")
    if result.method in ("grammar", "fallback"):
        result.flags.append(result.method)
    result.seconds = time.perf_counter() - started
    return result


def stop_early(request: Request, params: GenerationParams) -> Callable[[str, int], bool]:
    """When an answer (its text and chunks so far) has shown enough: a free answer whose first word already
    fails, or a whole sentence followed by a word that is no order (clean drops the rest)."""

    def enough(text: str, chunks: int) -> bool:
        if params.grammar is None and chunks <= 8 and _hopeless(text, request):
            return True
        return _said_enough(text)

    return enough


def _said_enough(text: str) -> bool:
    """True once an answer has a whole sentence and a word of the next one that is no order: clean drops the rest."""
    found = _SENTENCE.search(text)
    if not found:
        return False
    after = text[found.end() :].split(" ")
    return len(after) >= 2 and (words(after[0]) or [""])[0] not in VERBS


def _generate(backend: Backend, messages: list, params: GenerationParams, request: Request, cancel) -> tuple[str, int]:
    """One answer, stopped early when it is already hopeless; (text, chunks received)."""
    chunks: list[str] = []
    enough = stop_early(request, params)
    stream = backend.stream(messages, params, cancel)
    try:
        for chunk in stream:
            chunks.append(chunk)
            if enough("".join(chunks), len(chunks)):
                break
    finally:
        stream.close()  # stops llama.cpp at once
    if cancel is not None and cancel():
        raise Cancelled()
    return "".join(chunks), len(chunks)
