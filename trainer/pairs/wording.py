"""Words shared by writing, checking and extracting instructions: the verbs an instruction starts with, and more."""

from __future__ import annotations

import re

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
# After the recipient's name a forced start goes on with one of these words: "Ask Ana, I'm sorry" is the email.
LINKS = {"Tell": ("that", "about", "to"), "Ask": ("to", "whether", "if", "about", "for", "what", "when", "how", "why",
         "who", "which"), "Thank": ("for",)}  # fmt: skip
SECOND_PERSON = frozenset(["you", "your", "yours", "you're", "you've", "you'll", "you'd", "yourself", "yourselves"])
_WORD = re.compile(r"[\w'’]+")


def words(text: str) -> list[str]:
    """The words of ``text``, lower case, with straight apostrophes."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]
