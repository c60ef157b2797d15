"""Reverse instructions: ask a model what request would have produced an email, check it, retry, fall back.

Small models answer with a greeting, a copy of the email, or a ramble as often as with an instruction, so
every answer is cleaned (labels, preambles, quotes, style words, "Write an email to X asking..." wrappers
and chatty follow-up sentences removed; "Thanks for X" turned into "Thank NAME for X") and checked: it must
start with a verb, be 3-45 words, not copy a run of the email, and not borrow facts from the prompt's worked
examples. A rejected answer is retried with another seed; the prompt is unchanged, so llama.cpp re-reads
nothing, and an answer whose first word already fails is cut there, so a retry costs a few tokens.
When every try fails, an extractive instruction is built from the recipient, the subject and the email's
question or first sentence, and flagged ``fallback``: an email is never dropped silently.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.drafting.backend import Backend, GenerationParams
from assistant.errors import Cancelled
from assistant.mail.subjects import is_reply, prompt_subject
from trainer.pairs.candidates import own_text
from trainer.pairs.prompt import Request, ReversePrompt

CHECKS_VERSION = 1  # raise when cleaning, checks or the fallback change: it is part of the cache key
TRIES = 4  # failed tries are cheap: the prompt is cached and hopeless answers are cut at word two
MAX_TOKENS = 64  # an instruction is one sentence; a longer answer is a ramble and is cut
MAX_WORDS = 45
MAX_CHARS = 320
MIN_WORDS = 3
COPY_RUN = 10  # this many consecutive words of the email make an instruction a copy...
COPY_SHARE = 0.7  # ...and so does a run covering this share of the instruction (when it has 6+ words)
TEMPERATURES = (0.2, 0.7, 0.9, 1.0)  # near-greedy first; retries need randomness to differ at all

VERBS = frozenset(
    """ask tell thank let confirm send remind invite decline accept share update follow propose suggest request
    schedule reschedule apologize apologise congratulate inform check explain answer reply respond offer agree
    give say write email review approve reject cancel book arrange introduce welcome forward recommend point
    notify warn announce report summarize summarise flag note mention chase nudge encourage wish acknowledge
    reassure clarify describe outline list provide recap order pay plan set organize organise coordinate push
    move postpone delay ping loop sign submit attach query object turn rsvp promise commit volunteer hand
    delegate assign okay ok disagree bring pick drop return call text meet join host celebrate admit ask
    express welcome prepare draft finalize finalise discuss help support sort book find look get make keep
    hold put take try pass raise cover close open start stop finish run wrap""".split()  # noqa: SIM905
)
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
_WORD = re.compile(r"[\w'’]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\d\"“])")
_THANKS = re.compile(r",?\s*(?:please and )?thank(?:s| you)[.!]*$", re.I)  # "..., thank you." is the email's voice


@dataclass
class Instruction:
    """A written (or extracted) instruction and what it took."""

    text: str
    flags: list[str] = field(default_factory=list)  # "retried", "fallback"
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
    kept = [first] + [s for s in rest[:1] if (_words(s) or [""])[0] in VERBS and _words(s)[:2] != ["thank", "you"]]
    return _THANKS.sub(".", " ".join(kept)).rstrip()


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def longest_common_run(a: list[str], b: list[str]) -> int:
    """Length of the longest run of consecutive words shared by ``a`` and ``b``."""
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


_COMMON = frozenset(
    """that this with from have will your about their there would could should which what when where were been
    because instead still just some more than they them then also into over only very much week today again
    last here come free date want sorry quick second home answers subject thanks i'll we're can't count heads
    super present notes numbers email""".split()  # noqa: SIM905
)


@functools.cache
def example_words(prompt: ReversePrompt) -> frozenset[str]:
    """Distinctive words of the prompt's examples: a small model copies them into answers ("faucet")."""
    words = set()
    for email, instruction in prompt.examples:
        words.update(w for w in _words(email + " " + instruction) if len(w) >= 4 and not w.isdigit())
    return frozenset(words - _COMMON - VERBS)


def problem(instruction: str, request: Request, prompt: ReversePrompt | None = None) -> str | None:
    """Why ``instruction`` is unusable for the email of ``request`` (a short reason), or None when it is fine."""
    email = request.body
    words = _words(instruction)
    if not words:
        return "empty"
    if words[0] not in VERBS:
        return "not_imperative"
    if len(words) < MIN_WORDS:
        return "too_short"
    if len(words) > MAX_WORDS or len(instruction) > MAX_CHARS:
        return "too_long"
    run = longest_common_run(words, _words(email))
    if run >= COPY_RUN or (len(words) >= 6 and run >= COPY_SHARE * len(words)):
        return "copy"
    if prompt is not None:
        known = set(_words(f"{request.to} {request.subject} {email} {request.context_text}"))
        if any(w in example_words(prompt) and w not in known for w in words):
            return "example_leak"  # facts borrowed from the worked examples, not from this email
    return None


def first_names(to: str) -> list[str]:
    """ "Priya Raman and Marcus Webb" -> ["Priya", "Marcus"]."""
    return [n.split()[0] for n in re.split(r",\s*|\s+and\s+", to) if n.strip() and n.strip() != "others"]


def fallback(request: Request) -> str:
    """A deterministic instruction from the recipient, subject and the email's first sentence and question."""
    names = first_names(request.to)
    who = (" and ".join(names) if len(names) <= 2 else f"{names[0]} and the others") or "them"
    # No CHECKS_VERSION change for subject cleaning: it changes the fallback only for subjects it changes, and
    # those change the prompt's request text (see prompt.py), which is in the cache key.
    topic = prompt_subject(request.subject)
    lines = [re.sub(r"^[-*•]\s*", "", ln) for ln in own_text(request.body).splitlines()]
    sentences = [s.strip() for ln in lines for s in _SENTENCE.split(ln) if s.strip()]
    first = _clip(sentences[0] if sentences else "", 20)
    question = next((s for s in sentences[1:] if s.endswith("?")), None)
    if question:
        question = question.rsplit(": ", 1)[-1]  # "On the risks section: can we tighten it?" -> the ask
    thanked = salvage(first, request)
    if thanked != first:
        text = thanked  # "Thanks for the invoice." -> "Thank Ravi for the invoice."
    else:
        replying = request.context_text or is_reply(request.subject)
        about = f' about "{topic}"' if topic else ""
        text = f"{'Reply to' if replying else 'Write to'} {who}{about}: {first}".rstrip(": ")
    if question:
        text = f"{text.rstrip('.')} and ask: {_clip(question, 15)}"
    return text


def _clip(sentence: str, words: int) -> str:
    parts = sentence.split()
    return sentence if len(parts) <= words else " ".join(parts[:words]) + " …"


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


def write_instruction(
    backend: Backend,
    prompt: ReversePrompt,
    request: Request,
    *,
    seed: int,
    tries: int = TRIES,
    cancel: Callable[[], bool] | None = None,
) -> Instruction:
    """Ask ``backend`` for the instruction behind one email; retry bad answers; fall back when all fail."""
    budget = backend.n_ctx - MAX_TOKENS - 64  # 64: chat-template tokens count_tokens does not see
    messages = prompt.messages(request, backend.count_tokens, budget)
    prompt_tokens = sum(backend.count_tokens(m["content"]) for m in messages)
    result = Instruction("")
    started = time.perf_counter()
    for attempt in range(tries):
        params = GenerationParams(
            max_tokens=MAX_TOKENS,
            temperature=TEMPERATURES[min(attempt, len(TEMPERATURES) - 1)],
            seed=(seed + 7919 * attempt) % 2**31,
            repeat_penalty=1.05,
            stop=("\n",),
        )
        text, n = _generate(backend, messages, params, request, cancel)
        result.tries += 1
        result.prompt_tokens += prompt_tokens if attempt == 0 else 1  # the same prompt again: all cached
        result.completion_tokens += n
        text = salvage(clean(text), request)
        why = problem(text, request, prompt)
        if why is None:
            result.text = text
            break
        result.rejected.append(why)
    else:
        result.text = fallback(request)
        result.flags.append("fallback")
    if result.tries > 1:
        result.flags.append("retried")
    result.seconds = time.perf_counter() - started
    return result


def _generate(backend: Backend, messages: list, params: GenerationParams, request: Request, cancel) -> tuple[str, int]:
    """One answer, stopped early when it is already hopeless; (text, chunks received)."""
    chunks: list[str] = []
    stream = backend.stream(messages, params, cancel)
    try:
        for chunk in stream:
            chunks.append(chunk)
            if len(chunks) <= 8 and _hopeless("".join(chunks), request):
                break
    finally:
        stream.close()  # stops llama.cpp at once
    if cancel is not None and cancel():
        raise Cancelled()
    return "".join(chunks), len(chunks)
