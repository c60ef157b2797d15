"""The extractive instruction: when every model answer fails, a request built from the email's own sentences.

It must read like what a person types to an assistant, not like a quote: "Thank Ravi for the invoice and ask
whether the second one is coming", "Answer Ana's question about the import error: say that the API already
has a helper for this". Simple rules rewrite the email's main sentences as orders: a thanks becomes "Thank
NAME for ...", a question "Ask NAME whether/what ..." (or "Ask NAME to ..." for "Could you ...?"), a request
"Please send ..." becomes "Ask NAME to send ...", and a statement "say that ..." or "Tell NAME that ...".
First person stays ("say that I will revert it"); second person is turned to the recipient ("your" ->
"their"). Nothing here runs a model, and the same email always gives the same instruction.
"""

from __future__ import annotations

import re

from assistant.mail.subjects import is_reply, prompt_subject
from trainer.pairs.prompt import Request, email_text
from trainer.pairs.wording import VERBS

CLAUSE_WORDS = 18  # a clause longer than this is cut where a clause ends, else here with "…"
TOPIC_WORDS = 8  # a longer subject is a sentence, not a topic: it is left out
# Sentence ends, also where an export glued sentences together ("What fun.I know", "loose.Thanks,Kay").
_SENTENCE = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)\s+(?=[A-Z\d\"“])|(?<=[a-z]{2}[.!?])(?=[A-Z][a-z]|I\b)|(?<=[a-z]{2}:)(?=[A-Z][a-z])"
)
_INTERJECTION = re.compile(
    r"^(?:yes|yeah|yep|no|nope|ok|okay|well|so|hi|hello|great|sure|also|and|but|anyway|actually|fyi|btw|"
    r"ah|oh|hmm|right|indeed|absolutely|cool|perfect|fine|agreed|done|correct|exactly)\b[,!.:;]*\s+",
    re.I,
)
_PLEASANTRY = re.compile(
    r"^(?:i hope|hope|good (?:morning|afternoon|evening)|hi|hello|dear|greetings|how are you|thanks again|"
    r"regards|best|cheers|sincerely|yours|i trust)\b",
    re.I,
)
_THANKS = re.compile(r"^(?:many |so many )?(?:thanks|thank you)(?: (?:so|very) much| a lot| again)?\s+for\b\s*", re.I)
_SORRY = re.compile(r"^(?:(?:i'?m |i am |so |very )*sorry|apologies|my apologies)\b[,!]?\s*", re.I)
_PLEASE = re.compile(r"^(?:please|pls|kindly)\s+", re.I)
_LETS = re.compile(r"^let(?:'s|’s| us)\s+", re.I)
_YOU_REQUEST = re.compile(r"^(?:could|can|would|will)\s+you\s+(?:please\s+)?", re.I)
_AUX = "do|does|did|can|could|will|would|should|shall|may|might|must|is|are|was|were|have|has|had"
# "Can we ...", "Could Sofia ...", "Is the report ...": the auxiliary, its subject, the rest.
_YES_NO = re.compile(
    rf"^(?P<aux>(?i:{_AUX}))\s+(?P<who>(?i:i|we|you|they|it|he|she|that|this|there)|[A-Z][\w-]+"
    r"|(?i:the|a|an|my|our|your|their|his|her|this|that|these|those)\s+[\w'-]+)\s+(?P<rest>.+)$"
)
_PRONOUN_SUBJECTS = frozenset(["i", "we", "you", "they", "it", "he", "she", "that", "this", "there"])
_WH = re.compile(
    rf"^(?P<wh>what|when|where|which|who|why|how)(?:\s+(?P<aux>{_AUX})\s+(?P<who>i|we|you|they|it|he|she|that|"
    rf"this|there)\b)?\s*(?P<rest>.*)$",
    re.I,
)
_AFTER_AUX_YOU = re.compile(rf"\b({_AUX}|if|when|whether|that)\s+you\b", re.I)  # "did you" -> "did they"
_SUBJECT_YOU = re.compile(
    r"\byou(?=\s+(?:are|were|have|had|can|could|will|would|should|may|might|must|do|did|don't|didn't|can't|"
    r"won't|need|want|know|think|see|get|like|mean|said|sent|wrote|asked|agree|already|also|still|just|all)\b)",
    re.I,
)
# Second person turned to the recipient, longest forms first ("you're" before "you").
_PRONOUNS = (
    (r"\byou're\b", "they're"), (r"\byou've\b", "they've"), (r"\byou'll\b", "they'll"), (r"\byou'd\b", "they'd"),
    (r"\byourself\b", "themselves"), (r"\byourselves\b", "themselves"), (r"\byours\b", "theirs"),
    (r"\byour\b", "their"), (r"^you\b", "they"),
)  # fmt: skip
_CUT = re.compile(r";\s|\s(?:because|but|which|so that|although|though|since|while|and then)\s", re.I)
# An opening salutation glued to the text ("Fred,If we", "Scott:Here are") or followed by a colon.
_SALUTATION = re.compile(
    r"^(?:(?:hi|hello|hey|dear|greetings)\s+)?[A-Z][\w.'-]*(?:\s*(?:/|&|and)\s*[A-Z][\w.'-]*)?(?::\s*|,(?=[A-Z]))"
    r"|^(?i:hi|hello|hey|dear|greetings)\s+[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,2},\s*"
    r"|^(?!(?i:sorry|thanks|yes|no|ok|okay|well|great|sure|also|so|but|and|please|however|unfortunately|anyway|"
    r"meanwhile|otherwise|first|second|finally|again|now|then|today|tomorrow|yesterday|here|there|oh|ah|hmm|"
    r"indeed|actually|personally|ideally|obviously|honestly|frankly|basically|fyi|btw|ps)\b)"
    r"[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,3},\s+"
)
_HERE = re.compile(r"^(?:here(?:'s| is| are)|attached (?:is|are))\s+", re.I)
_CONGRATS = re.compile(r"^congratulations\b(?:\s+to\s+(?:you folks|you all|you both|all of you|you))?\s*", re.I)
# A sentence that starts with its verb, the author's "I" left out ("Talked to Pescetti", "Might close today").
_PAST = frozenset(
    """talked met spoke sent got had left heard saw went told said thought made took found came gave wrote did read
    called received spent finished forwarded attached checked looked tried asked agreed signed""".split()  # noqa: SIM905
)
_MODAL = frozenset(["might", "may", "will", "would", "should", "can", "could", "must"])
_SEEMS = frozenset(["looks", "sounds", "seems", "works"])
# Words that start a sentence without being a name: lowered after "that" ("that the plan ...").
_STARTERS = frozenset(
    """the a an it it's its this that these those there there's we we're we've we'll our my they they're their he
    she his her here just some all any both each every no not one if when as after before since while once also
    most many much more less only still yet now then today tomorrow yesterday everything something nothing
    someone everyone nobody looks sounds seems works in on at for with by from to as so because though although
    unless until yes no please thanks sorry count do does did can could will would should shall may might must is
    are was were have has had unfortunately fortunately however hopefully basically""".split()  # noqa: SIM905
)


def fallback(request: Request) -> str:
    """A deterministic instruction, phrased as a request, from the recipient, subject and the email's sentences."""
    who = recipient(request)
    sentences = _sentences(request.body)
    thanks = next((s for s in sentences if _THANKS.match(s)), None)
    question = next((s for s in sentences if s.endswith("?") and len(s.split()) >= 3), None)
    main = next((s for s in sentences if s not in (thanks, question) and len(s.split()) >= 3), None)
    clauses = [c for c in (thanks and thank(thanks), main and state(main), question and ask(question)) if c][:2]
    if not clauses:
        clauses = [state(sentences[0])] if sentences else ["say so"]
    lead = _lead(request, who)
    if lead:
        return _sentence(f"{lead}: {_join(clauses)}")
    first, *rest = clauses
    return _sentence(_join([_name(first, who), *rest]))


def recipient(request: Request) -> str:
    """The recipients' first names as an instruction names them: "Priya", "Priya and Marcus", "Priya and others"."""
    names = first_names(request.to)
    return (" and ".join(names) if len(names) <= 2 else f"{names[0]} and the others") or "them"


def first_names(to: str) -> list[str]:
    """ "Priya Raman and Marcus Webb" -> ["Priya", "Marcus"]."""
    return [n.split()[0] for n in re.split(r",\s*|\s+and\s+", to) if n.strip() and n.strip() != "others"]


def _sentences(body: str) -> list[str]:
    """The email's sentences, salutation, pleasantries and one-word lines left out, longer ones first."""
    lines = [re.sub(r"^[-*•]\s*", "", ln) for ln in email_text(body).splitlines()]
    if len(lines) > 1 and lines[0].endswith(",") and len(lines[0].split()) <= 7:
        lines = lines[1:]  # "Most esteemed Lady Dulcinea,"
    if lines:
        lines[0] = _SALUTATION.sub("", lines[0], count=1) or lines[0]
    found = [s.strip() for ln in lines for s in _SENTENCE.split(ln) if s.strip()]
    kept = [s for s in found if not _PLEASANTRY.match(s) and not re.fullmatch(r"(?i)here (?:it is|they are)\.?", s)]
    kept = kept or found
    # Sentences of three words or fewer ("FYI.", "Count me in.") say little: the others come first, in order.
    return [s for s in kept if len(s.split()) > 3] + [s for s in kept if len(s.split()) <= 3]


def _lead(request: Request, who: str) -> str:
    """ "Answer Ana's question about X" / "Reply to Ana about X" / "Write to Ana about X", or "" without a topic."""
    topic = prompt_subject(request.subject).rstrip("…!.?").strip()
    start = " ".join(email_text(request.body).split())[:200].lower()
    if not topic or len(topic.split()) > TOPIC_WORDS or topic.lower() in start:
        return ""  # no subject, a sentence, or the email's own opening (datasets without subjects): no topic
    if request.context_text and "?" in email_text(request.context_text) and who != "them":
        owner = request.context_sender.split()[0] if request.context_sender else who
        return f"Answer {owner}'s question about {topic}"
    if request.context_text or is_reply(request.subject):
        return f"Reply to {who} about {topic}"
    return f"Write to {who} about {topic}"


def thank(sentence: str) -> str:
    """ "Thanks so much for the notes!" -> "thank them for the notes"."""
    return f"thank them for {_clip(to_recipient(_THANKS.sub('', sentence)))}"


def state(sentence: str) -> str:
    """A statement or request of the email as the detail of an order ("say that ...", "ask them to ...")."""
    text = _INTERJECTION.sub("", sentence).strip() or sentence
    sorry = _SORRY.match(text)
    if sorry:
        rest = text[sorry.end() :]
        if re.match(r"for\b", rest, re.I):
            return f"apologize {_clip(to_recipient(rest))}"
        return f"say that I'm sorry {_clip(to_recipient(rest))}".rstrip()
    if _CONGRATS.match(text):
        return f"congratulate them {_clip(to_recipient(_CONGRATS.sub('', text)))}".rstrip()
    if _HERE.match(text):
        return f"send them {_clip(to_recipient(_lower(_HERE.sub('', text).split(':')[0])))}"
    if _PLEASE.match(text):
        return f"ask them to {_clip(to_recipient(_lower(_PLEASE.sub('', text))))}"
    if _LETS.match(text):
        return f"propose that we {_clip(to_recipient(_LETS.sub('', text)))}"
    first = text.split(" ", 1)[0].lower()
    if (
        first in VERBS
        and first not in ("ok", "okay", "email", "text", "note", "list", "order", "report")
        or re.match(r"let me know\b", text, re.I)
    ):  # the email's own order to the reader: "Gather our supplies." / "Let me know ..."
        return f"ask them to {_clip(to_recipient(_lower(text)))}"
    if text.endswith("?") or _YOU_REQUEST.match(text):
        return ask(text)
    return f"say that {_clip(to_recipient(_subject(_lower(text))))}"


def ask(question: str) -> str:
    """A question of the email as an order: "Could you send it?" -> "ask them to send it"."""
    text = _INTERJECTION.sub("", question).strip().rstrip("?").strip() or question.rstrip("?")
    request = _YOU_REQUEST.match(text)
    if request:
        return f"ask them to {_clip(to_recipient(text[request.end() :]))}"
    yes_no = _YES_NO.match(text)
    if yes_no and yes_no.group("aux").lower() not in ("did", "does"):
        return f"ask whether {_clip(to_recipient(_inverted(yes_no)))}"
    wh = _WH.match(text)
    if wh and (wh.group("aux") or "").lower() not in ("did", "does"):
        inverted = _inverted(wh) if wh.group("aux") else wh.group("rest")
        return f"ask {wh.group('wh').lower()} {_clip(to_recipient(inverted))}".rstrip()
    if text.split(" ", 1)[0].lower() in _PRONOUN_SUBJECTS:  # "You think it will pass?" (no auxiliary)
        return f"ask whether {_clip(to_recipient(_lower(text)))}"
    return f"ask: {_clip(to_recipient(_lower(text)))}?"


def _inverted(m: re.Match) -> str:
    """ "can we" + rest -> "we can rest"; "do you" + rest -> "you rest"."""
    aux, who = m.group("aux").lower(), m.group("who")
    who = who.lower() if who.lower() in _PRONOUN_SUBJECTS and who != "I" else who
    return f"{who} {m.group('rest')}" if aux == "do" else f"{who} {aux} {m.group('rest')}"


def _subject(text: str) -> str:
    """The subject a terse sentence leaves out: "talked to Bo" -> "I talked to Bo", "looks good" -> "it looks good"."""
    first = text.split(" ", 1)[0].lower()
    if first in _PAST:
        return f"I {text}"
    if first in _MODAL:
        return f"we {text}"
    if first in _SEEMS:
        return f"it {text}"
    return text


def to_recipient(text: str) -> str:
    """Second person turned to the recipient: "your draft" -> "their draft", "you are" -> "they are"."""
    text = _AFTER_AUX_YOU.sub(r"\1 they", text)
    text = _SUBJECT_YOU.sub("they", text)
    for pattern, replacement in _PRONOUNS:
        text = re.sub(pattern, replacement, text, flags=re.I)
    return re.sub(r"\byou\b", "them", text, flags=re.I)


def _clip(text: str) -> str:
    """At most CLAUSE_WORDS words, cut where a clause ends when one is near; no final full stop."""
    text = re.split(r"(?<=[a-z]):(?=[A-Z])", text.strip())[0].strip().rstrip(".!;:,")  # "...information:Confidential"
    words = text.split()
    if len(words) <= CLAUSE_WORDS:
        return text
    head = " ".join(words[:CLAUSE_WORDS])
    cuts = [m.start() for m in _CUT.finditer(head) if len(head[: m.start()].split()) >= 6]
    return head[: cuts[0]].rstrip(" ,;:") if cuts else head.rstrip(" ,;:") + " …"


def _lower(text: str) -> str:
    """The first letter lowered when the first word is a common one, not a name ("The plan" but "Nancy")."""
    first = text.split(" ", 1)[0].lower()
    if first in _STARTERS or first in _PAST or first in _MODAL or first in _SEEMS:
        return text[:1].lower() + text[1:]
    return text


def _name(clause: str, who: str) -> str:
    """The first clause names the recipient: "say that ..." -> "Tell Ana that ..."."""
    for plain, named in (("say that ", f"tell {who} that "), ("send them ", f"send {who} "),
                         ("congratulate them ", f"congratulate {who} "), ("ask them to ", f"ask {who} to "),
                         ("thank them for ", f"thank {who} for "), ("ask whether ", f"ask {who} whether "),
                         ("ask: ", f"ask {who}: "), ("apologize ", f"apologize to {who} "),
                         ("propose that ", f"propose to {who} that ")):  # fmt: skip
        if clause.startswith(plain):
            return named + clause[len(plain) :]
    if clause.startswith("ask "):  # "ask what they think" -> "ask Ana what they think"
        return f"ask {who} {clause[4:]}"
    return clause


def _join(clauses: list[str]) -> str:
    return " and ".join(clauses)


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:]
    return text if text.endswith(("?", "…", ".")) else text + "."
