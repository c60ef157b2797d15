"""Checks of a written instruction: why an answer cannot be a pair's instruction, or None when it can.

An instruction must start with a verb, be 3-45 words, say something beyond the verb and the names, not copy
a run of 8 words of the email, go on from a forced start as an order does ("Tell Bo about are right" does
not), speak of the recipient rather than to them ("your project" is the email's voice), hold no email in
quotes ('email to Bo: "Hi Bo, ...'), and take its numbers and most of its words from the email, its subject
or the email it answers, not from the prompt's worked examples (a small model copies "faucet" from them).
"""

from __future__ import annotations

import functools
import re

from trainer.pairs.prompt import Request, ReversePrompt
from trainer.pairs.wording import LINKS, SECOND_PERSON, VERBS, words

MAX_WORDS = 45
MAX_CHARS = 320
MIN_WORDS = 3
COPY_RUN = 8  # this many consecutive words of the email make an instruction a copy...
COPY_SHARE = 0.7  # ...and so does a run covering this share of the instruction (when it has 6+ words)
UNSUPPORTED_SHARE = 0.5  # more than this share of an instruction's content words not in the email: made up


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
# Words that carry no fact: an instruction may use them whether or not the email does.
_FILLER = _COMMON | frozenset(
    """the and for but not are was has had can may might must shall being does did doing done onto upon within
    without whether while they them their theirs he him his she her hers its it's our ours mine myself me my we
    us you i i'm i've i'll i'd also know let's lets please need needs needed like well good great fine sure
    okay yes back soon later tomorrow yesterday next both each every other another any many most such same
    something anything nothing everything someone anyone everyone thing things time times way ways able
    reply message mail emails note update details information question questions request status""".split()  # noqa: SIM905
)
# What cannot follow a forced start: "Tell Bo about are right", "Invite Bo are the ones", "Ask Bo to the list".
_LINK_WORDS = frozenset(w for links in LINKS.values() for w in links)
_AUXILIARIES = frozenset("are is was were am have has had will would can could should do does did".split())  # noqa: SIM905
_QUOTE = re.compile(r":\s*[\"“]")
_NOT_A_VERB = frozenset("me a an the him her them us my your their his our it this that and or".split())  # noqa: SIM905


@functools.cache
def example_words(prompt: ReversePrompt) -> frozenset[str]:
    """Distinctive words of the prompt's examples: a small model copies them into answers ("faucet")."""
    found: set[str] = set()
    for email, instruction in prompt.examples:
        found.update(w for w in words(email + " " + instruction) if len(w) >= 4 and not w.isdigit())
    return frozenset(found - _COMMON - VERBS)


def problem(instruction: str, request: Request, prompt: ReversePrompt | None = None) -> str | None:
    """Why ``instruction`` is unusable for the email of ``request`` (a short reason), or None when it is fine."""
    email = request.body
    said = words(instruction)
    if not said:
        return "empty"
    if said[0] not in VERBS:
        return "not_imperative"
    if len(said) < MIN_WORDS or not _content(said, set(words(request.to))):
        return "too_short"  # "Tell Ana that." or "Invite Ana to meet with them" says nothing
    if len(said) > MAX_WORDS or len(instruction) > MAX_CHARS:
        return "too_long"
    run = longest_common_run(said, words(email))
    if run >= COPY_RUN or (len(said) >= 6 and run >= COPY_SHARE * len(said)):
        return "copy"
    if _QUOTE.search(instruction):
        return "quoted"  # 'email to Bo: "Hi Bo, I hope ...': an email inside the answer, not an order
    if _garbled(said, set(words(request.to))):
        return "garbled"  # "Ask Ana to me, and ...": a forced start the model could not go on with
    thanked = "thank you" in " ".join(said) and said[0] not in ("tell", "say")  # "Invite Bo and thank you for"
    if thanked or (any(w in SECOND_PERSON for w in said) and "thank you" not in " ".join(said)):
        return "email_voice"  # "Invite the LOI, and I'm glad to hear about your project": the email, not an order
    known = set(words(f"{request.to} {request.subject} {email} {request.context_sender} {request.context_text}"))
    if prompt is not None and any(w in example_words(prompt) and w not in known for w in said):
        return "example_leak"  # facts borrowed from the worked examples, not from this email
    if unsupported(said, known):
        return "unsupported"
    return None


def _garbled(said: list[str], names: set[str]) -> bool:
    """True when what follows the verb, the recipients and a linking word cannot go on an order."""
    at = 2 if said[1:2] == ["to"] else 1  # "Apologize to Bo", "Reply to Bo"
    while at < len(said) and (said[at] in names or said[at] in ("and", "others")):
        at += 1
    link = said[at] if at < len(said) and said[at] in _LINK_WORDS else ""
    after = said[at + bool(link)] if at + bool(link) < len(said) else ""
    return after in _AUXILIARIES or (link == "to" and after in _NOT_A_VERB)


def unsupported(said: list[str], known: set[str]) -> bool:
    """True when an instruction's numbers, or most of its content words, are not in the email or its context."""
    stems = {_stem(w) for w in known}
    content = [w for w in _content(said) if w not in VERBS]  # "ask", "confirm": how, not what
    missing = [w for w in content if w not in known and _stem(w) not in stems]
    if any(_digit(w) for w in missing):
        return True  # a date, amount or number the email does not hold
    return len(missing) > UNSUPPORTED_SHARE * len(content)


def _content(said: list[str], names: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """The words after the verb that may carry facts: not filler, not a recipient's name."""
    skip = _FILLER | names
    return [w for w in said[1:] if w not in skip and (len(w) >= 4 or _digit(w))]


def _digit(word: str) -> bool:
    return any(c.isdigit() for c in word)


def _stem(word: str) -> str:
    """A crude stem, enough to match "slipping" with "slips" and "invoices" with "invoice"."""
    word = word.removesuffix("'s")
    for suffix in ("ing", "ed", "es", "s", "ly", "er"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)][:6]
    return word[:6]
