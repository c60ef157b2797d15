"""Deterministic generator of realistic synthetic mailboxes: test fixtures, benchmarks and ``mailvoice demo``.

One small, coherent world: the owner Alex Morgan, about thirty correspondents, a few mailing lists,
newsletters and no-reply services. Conversations carry proper Message-ID / In-Reply-To / References
chains and are quoted in the styles real clients use (Gmail, Apple Mail, Outlook, Thunderbird, German
Gmail, inline answers). Alex's own words are recorded in ``own_text`` so a cleaner can be scored.

With ``hard_cases`` the stream also holds what real archives contain: missing or garbage headers,
duplicates, ``From `` body lines, broken MIME, 8-bit header bytes, mislabelled charsets, 100 KB lines
and empty bodies. Everything is stdlib only and byte-identical for a given seed. Messages are assembled
as bytes by hand (no ``email.message`` objects), so the stream runs at thousands of messages a second.
"""

from __future__ import annotations

import base64
import binascii
import os
import random
import re
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote as _pct

__all__ = [
    "ME", "ME_ADDR", "ME_ALIAS", "KINDS", "HARD_CASES", "GeneratedMessage", "generate_messages",
    "iter_messages", "write_mbox", "write_maildir", "write_eml_folder", "write_enron_folder",
    "write_mbox_bytes_target",
]  # fmt: skip

ME = "Alex Morgan <alex.morgan@example.org>"
ME_NAME = "Alex Morgan"
ME_ADDR = "alex.morgan@example.org"
ME_ALIAS = "alex@morgan.example"
ME_ALIAS_FULL = f"{ME_NAME} <{ME_ALIAS}>"

KINDS = (
    "plain", "html_only", "alternative", "reply", "forward", "automated", "list", "list_munged",
    "charset", "attachment", "broken", "no_headers", "huge",
)  # fmt: skip
HARD_CASES = (
    "missing_date", "missing_from", "missing_message_id", "garbage_date", "duplicate", "from_line",
    "unclosed_boundary", "bad_base64", "uuencode", "raw_8bit_header", "subject_8bit", "long_line",
    "empty_body",
)  # fmt: skip
# How many of each hard case every block of _BLOCK messages holds.
_HARD_PER_BLOCK = {
    "missing_date": 2, "missing_from": 2, "missing_message_id": 2, "garbage_date": 2, "duplicate": 2,
    "from_line": 3, "unclosed_boundary": 1, "bad_base64": 1, "uuencode": 1, "raw_8bit_header": 1,
    "subject_8bit": 1, "long_line": 1, "empty_body": 2,
}  # fmt: skip
# Rare shapes forced into every _FORCED_EVERY-th block (the first included), so 200 messages show them all.
_FORCED = (
    "bounce", "auto_reply", "calendar", "newsletter", "digest", "list_munged_me", "hikers_me",
    "forward", "forward_attached", "html_only_me", "alias_me", "inline_reply", "outlook_reply",
    "german_quote", "thunderbird_bottom", "apple_reply", "latin1_qp", "german_latin1", "cp1252_qp",
    "koi8r", "iso2022jp", "shift_jis", "gb2312", "mislabelled", "utf8_emoji", "rfc2047_split",
    "rfc2231_filename",
)  # fmt: skip
_BLOCK = 200
_FORCED_EVERY = 3  # the rare shapes are forced into every third block (the random mix has them too)
_FIRST_VARIANTS = {k: k for k in ("html_only_me", "alias_me", "rfc2231_filename")}
_BLOCK_SPREAD = 150  # forced episodes start within the first 150 messages of their block

_START = 1641200400  # Mon 3 Jan 2022 09:00 UTC
_SPAN = 730 * 86400  # two years
_NL = "\n"


@dataclass(slots=True)
class GeneratedMessage:
    """One generated message and the ground truth about it."""

    raw: bytes  # RFC 5322 bytes (LF or CRLF), no mbox "From " line
    kind: str  # one of KINDS
    sent_by_me: bool
    folder: str  # "Sent", "Inbox", "Archive"
    message_id: str | None  # without <>; None when the message has none
    own_text: str | None  # for Alex's messages: his exact words, greeting and sign-off included
    thread_key: str  # shared by the messages of one conversation
    hard_case: str | None = None  # one of HARD_CASES, or None
    variant: str = ""  # finer shape: "newsletter", "bounce", "koi8r", "inline_reply", ...
    labels: tuple[str, ...] = ()  # Gmail Takeout labels for X-Gmail-Labels
    timestamp: int = 0  # when it was sent (UTC epoch), also for headers that lack or garble it
    envelope_from: str = ""  # address for the mbox "From " line


# --- the world ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Person:
    key: str
    first: str
    last: str
    addr: str
    rel: str  # work, client, vendor, friend, family
    tz: int  # minutes east of UTC
    client: str  # gmail, gmail_de, outlook, iphone, apple, thunderbird, webmail
    greet: str  # how they open a mail to Alex ("" for none)
    signoff: str  # how they close one
    header: str  # their address as it appears in From/To (RFC 2047 where needed)
    hello: str  # how Alex greets them
    sig: str  # their signature block (not part of their words)

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


def _ew(text: str, charset: str = "utf-8", enc: str = "B") -> str:
    """One RFC 2047 encoded word."""
    data = text.encode(charset)
    if enc == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    out = []
    for b in data:
        ch = chr(b)
        out.append("_" if b == 32 else ch if ch.isalnum() and b < 128 else f"={b:02X}")
    return f"=?{charset}?Q?{''.join(out)}?="


def _display(first: str, last: str, style: str) -> str:
    name = f"{first} {last}"
    if style == "lastfirst":
        return f'"{last}, {first}"'
    if style == "q-utf8":
        return _ew(name, "utf-8", "Q")
    if style == "b-utf8":
        return _ew(name, "utf-8", "B")
    if style == "q-latin1":
        return _ew(name, "iso-8859-1", "Q")
    return name


# key, first, last, address, rel, tz, client, greeting, sign-off, display style, signature
_PEOPLE_DATA = (
    ("priya", "Priya", "Raman", "priya.raman@example.org", "work", -300, "outlook", "Hi Alex,",
     "Thanks,\n{f}", "lastfirst", "Priya Raman\nDirector of Product | Example Org"),
    ("daniel", "Daniel", "Okafor", "daniel.okafor@example.org", "work", -300, "gmail", "Hey Alex,",
     "- {f}", "plain", ""),
    ("sofia", "Sofia", "Lindqvist", "sofia.lindqvist@example.org", "work", 60, "gmail", "Hi Alex,",
     "Best,\n{f}", "plain", "-- \nSofia Lindqvist\nSenior Engineer, Platform"),
    ("marcus", "Marcus", "Webb", "marcus.webb@example.org", "work", -360, "outlook", "Alex,",
     "Regards,\n{f}", "lastfirst", "Marcus Webb | Finance\nExample Org"),
    ("hannah", "Hannah", "Becker", "hannah.becker@example.org", "work", 60, "gmail_de", "Hi Alex,",
     "Viele Grüße\n{f}", "plain", ""),
    ("kenji", "Kenji", "Watanabe", "kenji.watanabe@example.org", "work", 540, "thunderbird", "Hi Alex,",
     "Best regards,\n{f}", "plain", ""),
    ("olga", "Olga", "Petrova", "olga.petrova@example.org", "work", 180, "thunderbird", "Hi Alex,",
     "Thanks,\n{f}", "plain", ""),
    ("wei", "Wei", "Zhang", "wei.zhang@example.org", "work", 480, "webmail", "Hi Alex,",
     "Thanks!\n{f}", "plain", ""),
    ("rachel", "Rachel", "Kim", "rachel.kim@example.org", "work", -480, "apple", "Hi Alex,",
     "Cheers,\n{f}", "plain", ""),
    ("sam", "Sam", "Patel", "sam.patel@example.org", "work", -300, "gmail", "Hi Alex,",
     "Thanks,\n{f}", "plain", ""),
    ("nina", "Nina", "Kowalski", "nina.kowalski@example.org", "work", 60, "outlook", "Hello Alex,",
     "Kind regards,\n{f}", "plain", "Nina Kowalski\nOperations Manager"),
    ("jonas", "Jonas", "Meyer", "jonas.meyer@example.org", "work", 60, "thunderbird", "Hi Alex,",
     "Cheers,\n{f}", "plain", "-- \nJonas Meyer\nData Engineering"),
    ("leila", "Leila", "Haddad", "leila.haddad@example.org", "work", 0, "gmail", "Hi Alex,",
     "Best,\n{f}", "plain", ""),
    ("ben", "Ben", "Carter", "ben.carter@example.org", "work", -300, "iphone", "Alex -",
     "{f}", "plain", ""),
    ("grace", "Grace", "Liu", "grace.liu@example.org", "work", -480, "gmail", "Hi Alex!",
     "Thanks,\n{f}", "plain", ""),
    ("oliver", "Oliver", "Grant", "oliver@bluefin-print.example.com", "vendor", -300, "outlook",
     "Dear Alex,", "Best regards,\n{f} {l}", "plain", "Oliver Grant\nAccounts, Bluefin Print"),
    ("maya", "Maya", "Fischer", "maya.fischer@client.example.net", "client", -360, "outlook", "Hi Alex,",
     "Best,\n{f}", "plain", "Maya Fischer\nHead of Operations"),
    ("ravi", "Ravi", "Iyer", "ravi@studio.example.com", "vendor", 330, "gmail", "Hi Alex,",
     "Regards,\n{f}", "plain", ""),
    ("lucas", "Lucas", "Moreau", "lucas.moreau@agency.example.net", "vendor", 60, "apple", "Hi Alex,",
     "Best,\n{f}", "plain", ""),
    ("chloe", "Chloé", "Dubois", "chloe.dubois@agency.example.net", "client", 60, "thunderbird",
     "Bonjour Alex,", "Bien à vous,\n{f}", "q-latin1", ""),
    ("tomas", "Tomás", "Herrera", "tomas.herrera@example.com", "vendor", -300, "gmail", "Hi Alex,",
     "Saludos,\n{f}", "q-utf8", ""),
    ("rosa", "Rosa", "Alvarez", "rosa@properties.example.net", "landlord", -300, "outlook", "Hi Alex,",
     "Thank you,\n{f}", "plain", "Rosa Alvarez\nProperty Manager"),
    ("jamie", "Jamie", "Morgan", "jamie.morgan@webmail.test", "family", -300, "iphone", "Hey!",
     "xx\n{f}", "plain", ""),
    ("linda", "Linda", "Morgan", "linda.morgan@mailbox.test", "family", -300, "webmail", "Hi honey,",
     "Love,\nMom", "plain", ""),
    ("chris", "Chris", "Dalton", "chris.dalton@mailbox.test", "friend", -300, "gmail", "Hey Alex,",
     "{f}", "plain", ""),
    ("emma", "Emma", "Novak", "emma.novak@webmail.test", "friend", 60, "iphone", "Hi Alex!",
     "Emma x", "plain", ""),
    ("theo", "Theo", "Brandt", "theo.brandt@mailbox.test", "friend", -300, "gmail", "Yo Alex,",
     "- {f}", "plain", ""),
    ("zoe", "Zoe", "Adams", "zoe.adams@webmail.test", "friend", -480, "apple", "Hi Alex,",
     "Cheers,\n{f}", "plain", ""),
    ("ines", "Inês", "Duarte", "ines.duarte@mailbox.test", "friend", 0, "gmail", "Olá Alex!",
     "Beijinhos,\n{f}", "b-utf8", ""),
    ("felix", "Felix", "Wagner", "felix.wagner@webmail.test", "friend", 60, "thunderbird", "Hi Alex,",
     "Gruß\n{f}", "plain", ""),
)  # fmt: skip


def _make_people() -> dict[str, _Person]:
    out = {}
    for key, first, last, addr, rel, tz, client, greet, signoff, style, sig in _PEOPLE_DATA:
        header = f"{_display(first, last, style)} <{addr}>"
        hello = "Hi Mom," if key == "linda" else f"Hi {first},"
        out[key] = _Person(
            key,
            first,
            last,
            addr,
            rel,
            tz,
            client,
            greet,
            signoff.format(f=first, l=last),
            header,
            hello,
            sig,
        )
    return out


_PEOPLE = _make_people()
_ME_PERSON = _Person("me", "Alex", "Morgan", ME_ADDR, "me", -300, "gmail", "", "", ME, "", "")
_POOLS = {
    rel: tuple(p for p in _PEOPLE.values() if p.rel in rels)
    for rel, rels in (("work", ("work",)), ("vendor", ("vendor",)), ("client", ("client",)),
                      ("landlord", ("landlord",)), ("friend", ("friend",)), ("family", ("family",)))
}  # fmt: skip
_COLLEAGUE_NAMES = tuple(p.first for p in _POOLS["work"])
_DEV_POSTERS = tuple(_PEOPLE[k] for k in ("daniel", "sofia", "jonas", "sam", "grace", "kenji", "leila"))
_HIKERS = tuple(_PEOPLE[k] for k in ("chris", "emma", "theo", "zoe", "ines", "felix"))

_SIG_DASH = "-- \nAlex Morgan\nProduct Lead, Example Org\n+1 555 0100"
_SIG_OUTLOOK = "Alex Morgan | Product Lead\nExample Org | alex.morgan@example.org\n+1 555 0100"
_IPHONE = "Sent from my iPhone"
_DISCLAIMER = (
    "CONFIDENTIALITY NOTICE: This email and any attachments are for the sole use of the intended "
    "recipient(s) and may contain confidential and privileged information. If you are not the intended "
    "recipient, please contact the sender by reply email and destroy all copies of the original message."
)
_DEV_FOOTER = (
    "-- \nYou received this message because you are subscribed to the Dev List group.\nTo unsubscribe "
    "from this group and stop receiving emails from it, send an email to dev+unsubscribe@lists.example.org."
)
_NEWSLETTERS = {
    "weekly": ("The Weekly Byte", "news@weekly.example.com", "weekly.example.com"),
    "trail": ("Trail Notes", "newsletter@trails.example.net", "trailnotes.trails.example.net"),
    "allhands": ("Example Org Announcements", "announce@example.org", "announce.example.org"),
}
_HIKERS_FOOTER = (
    "_______________________________________________\nHikers mailing list\nhikers@lists.example.net\n"
    "https://lists.example.net/mailman/listinfo/hikers"
)

# --- slot values for the templates ---------------------------------------------------------------------

_SLOT_VALUES: dict[str, tuple[str, ...]] = {
    "project": ("Atlas", "Heron", "the onboarding revamp", "the billing migration", "the search redesign",
                "Northstar", "the mobile launch", "the data pipeline", "Lighthouse", "the partner portal"),
    "doc": ("launch plan", "design doc", "pricing one-pager", "roadmap", "hiring plan", "survey summary",
            "release notes", "retro notes", "migration plan", "support playbook"),
    "item": ("the timeline slide", "section 3", "the cost estimate", "the FAQ", "the rollout dates",
             "the appendix", "the success metrics", "the risks section", "the intro", "the staffing table"),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"),
    "time1": ("9:30", "10:00", "11:30", "1:00", "2:30", "3:00", "4:15"),
    "quarter": ("Q1", "Q2", "Q3", "Q4"),
    "city": ("Lisbon", "Denver", "Toronto", "Berlin", "Austin", "Copenhagen", "Seattle", "Madrid", "Dublin"),
    "team": ("design", "platform", "growth", "support", "data", "mobile"),
    "food": ("a salad", "dessert", "the lemon cake", "some bread", "a bottle of wine", "snacks"),
    "place": ("the Thai place on Main", "our usual spot", "the new ramen bar", "the taco truck by the park",
              "the rooftop bar downtown", "that Georgian restaurant"),
    "trail": ("Eagle Ridge", "the lake loop", "Cedar Falls", "Mount Pearl", "the canyon trail", "Fox Hollow"),
    "book": ("The Salt Road", "A Year of Small Things", "Glass Harbor", "The Quiet Engine",
             "North of Everything", "Paper Lanterns"),
    "film": ("Harbor Lights", "The Long Field", "Signal Lost", "Tidewater"),
    "candidate": ("Taylor B.", "Jordan K.", "Casey M.", "Riley P.", "Avery S."),
    "skill": ("systems design", "user research", "SQL", "stakeholder management", "data modeling"),
    "skill2": ("mobile", "roadmapping", "hiring", "performance work", "pricing"),
    "risk": ("the data migration", "the vendor contract", "load testing", "the new auth flow",
             "the API freeze", "hiring for the second backend role"),
    "service": ("the spring print run", "design work in March", "the website refresh", "hosting and support",
                "the workshop"),
    "gift": ("a nice garden bench", "a weekend trip", "a new camera", "concert tickets", "a cooking class"),
}  # fmt: skip
_WD = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WD_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WD_DE = ("Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So.")
_MON = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MON_LONG = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MON_DE = ("Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez.")


class _Topic(NamedTuple):
    pool: str  # which people: work, vendor, friend, family
    subj: tuple[str, ...]
    a1: tuple[str, ...]  # Alex opens
    a2: tuple[str, ...]  # optional second paragraph for Alex
    o1: tuple[str, ...]  # they open
    ar: tuple[str, ...]  # Alex replies
    orr: tuple[str, ...]  # they reply
    attach: str = ""  # the attachment an opener usually carries


_TOPICS: dict[str, _Topic] = {
    "meeting": _Topic(
        "work",
        ("Quick sync on {project}?", "{project} check-in", "30 min on {day}?", "Catch up re {project}"),
        ("Could we grab 30 minutes on {day} to go over {project}? I'm free at {time1} or {time2}, whichever "
         "works better for you.",
         "I'd like to get a few of us together this week to talk through {project}. Does {day} at {time1} "
         "work? If not, send me a couple of times and I'll move things around.",
         "Do you have time for a quick call about {project} on {day}? Nothing urgent, I just want to make "
         "sure we're aligned before the review."),
        ("I'll put together a short agenda beforehand so we don't run over.",
         "If it's easier, we can also just do it over lunch.",
         "{colleague} might join for the first 10 minutes."),
        ("Do you have 30 minutes this week to talk about {project}? {day} afternoon would be ideal for me.",
         "Can we find a time to go over {project}? A few things came up in yesterday's standup that I'd "
         "like your take on.", "Would {day} at {time1} work for a quick sync on {project}?"),
        ("Thanks, {time1} works for me. I'll send an invite.",
         "{day} is tricky for me, could we do {time2} the day after instead?", "Sounds good, see you then.",
         "Works for me. I'll book a room."),
        ("Perfect, see you {day} at {time1}.", "{time2} is better for me if that's still open.",
         "Great, invite sent.", "Sorry, something came up. Can we push to {day2}?"),
    ),
    "review": _Topic(
        "work", ("Review: {doc}", "Notes on the {doc}", "{doc} feedback", "Can you review the {doc}?"),
        ("I went through the {doc} this morning. Overall it looks solid, a few notes:\n\n- On {item}: can we "
         "tighten this up a bit?\n- The numbers in {item2} don't match the spreadsheet\n- Let's move the "
         "open questions to the end",
         "Thanks for sharing the {doc}. I left comments in the doc, but the main thing is {item}. I think "
         "it needs another pass before it goes to {colleague}.",
         "Could you take a look at the {doc} when you get a chance? I'm mostly unsure about {item}. Here's "
         "the link: https://docs.example.org/d/{docid}"),
        ("Happy to chat if any of this is unclear.", "No rush, end of week is fine.",
         "Really nice work overall."),
        ("I've attached the latest version of the {doc}. Could you take a look before {day}? I'm "
         "especially unsure about {item}.",
         "Here's the {doc}: https://docs.example.org/d/{docid}\n"
         "I'd love your feedback on {item} in particular.",
         "I went through the {doc} and left some comments. Mostly small stuff, but {item} needs a decision "
         "from you."),
        ("Good catch on {item}. I'll fix it before {day}.",
         "Done. I've updated the doc and shared it with {colleague}.",
         "Thanks, this is really helpful. I agree with most of it, let's discuss {item} tomorrow.",
         "Looks great to me. Ship it!"),
        ("Thanks, I'll make those changes today.", "Makes sense. Updated version is in the same folder.",
         "Agreed on all points except {item}, can we talk about that one?"),
        "docx",
    ),
    "budget": _Topic(
        "work", ("{quarter} budget draft", "Budget for {project}", "Re-forecast for {quarter}"),
        ("Attached is the first draft of the {quarter} budget for the {team} team. Main changes: we're "
         "asking for {amount} more for contractors and cutting travel by about {pct}%.",
         "I've put together the numbers for {project}. We're about {amount} over the original plan, mostly "
         "because of the extra contractor time in {quarter}."),
        ("Could you take a look before {day}? I'd like to send it to finance by end of week.",
         "Let me know if anything looks off. I'm not fully confident in the hosting estimate."),
        ("Finance needs the {quarter} numbers for the {team} team by {day}. Can you send me your draft?",
         "Quick heads up: we have to cut about {pct}% from the {quarter} budget. Can you suggest where it "
         "would hurt least?"),
        ("Sure, I'll send the draft by {day}.",
         "I can find most of it in travel and the conference budget. I'll send options tomorrow.",
         "That's a big cut. Let's talk before I commit to anything."),
        ("Thanks, this looks reasonable. I'll forward it to finance.",
         "Can you break out the contractor line by month?", "Approved. Nice work keeping it tight."),
        "pdf",
    ),
    "status": _Topic(
        "work", ("{project} status update", "Update on {project}", "{project}: where we are"),
        ("Quick update on {project}: we're on track for the {date} milestone. The remaining risk is {risk}, "
         "and {colleague} is looking into it.",
         "Short version: {project} slipped by about a week. Getting {risk} done took longer than expected, "
         "but we have "
         "a plan and the new date is {date}."),
        ("I'll send a fuller update after {day}'s review.",
         "Let me know if you want to go through the details.",
         "Nothing needed from you right now."),
        ("Where are we with {project}? {colleague} asked me this morning and I didn't have a good answer.",
         "Can you send me a short status on {project} before the leadership meeting on {day}?"),
        ("We're on track. I'll send a one-pager by {day}.",
         "Slightly behind because of {risk}, but nothing that changes the {date} date.",
         "I'll write something up tonight."),
        ("Great, thanks for the update.", "Thanks. Let me know if you need me to unblock anything.",
         "Good to hear. Keep me posted on {risk}."),
    ),
    "travel": _Topic(
        "work", ("Trip to {city}", "{city} next week", "Travel plans for {city}"),
        ("I'm booked on the {time1} flight to {city} on {day} and back on {day2}. The hotel is the one near "
         "the office again.",
         "Looks like I'll be in {city} the week of {date} for the customer visits."),
        ("Let me know if you want to meet up while I'm there.",
         "If anyone needs anything from the {city} office, now's the time to ask."),
        ("Are you still coming to {city} on {day}? We'd love to have you at the team dinner.",
         "I booked your hotel for the {city} trip. Confirmation is in the shared folder."),
        ("Yes, I'll be there! Count me in for dinner.", "Thanks so much for sorting that out.",
         "Unfortunately I had to cancel the trip, I'll join remotely instead."),
        ("Great, see you in {city}!", "No problem, safe travels.", "Noted, I'll update the list."),
    ),
    "hiring": _Topic(
        "work", ("Interview feedback: {candidate}", "{candidate} next steps"),
        ("I spoke with {candidate} yesterday. Strong on {skill}, a bit less experience with {skill2} than "
         "I'd hoped, but I'd lean towards moving forward.",
         "Just finished with {candidate}. Honestly a great conversation: clear thinking, good questions "
         "about the team. I'm a yes."),
        ("Happy to do the reference calls if that helps.", "Notes are in the tracker."),
        ("Can you send your feedback on {candidate} by {day}? We want to make a decision this week.",
         "{candidate} accepted the offer! Start date is {date}."),
        ("Will do, I'll write it up this afternoon.",
         "That's great news! I'll set up their onboarding buddy.",
         "I'm a yes. Notes are in the tracker."),
        ("Thanks, agreed. Let's move to the final round.", "Thanks for the quick turnaround."),
    ),
    "invoice": _Topic(
        "vendor", ("Invoice {inv}", "Invoice {inv} for {service}", "Payment for {inv}"),
        ("Thanks for sending invoice {inv}. I've passed it on to our finance team and payment should go out "
         "by {date}.",
         "Quick question on invoice {inv}: the line for {service} looks higher than what we agreed. Could "
         "you double-check?"),
        ("Thanks again for the quick turnaround on {service}.",
         "Let me know if you need anything else from us."),
        ("Please find attached invoice {inv} for {service}. Payment terms are 30 days.",
         "Just a friendly reminder that invoice {inv} is now past due. Could you check on the status?"),
        ("Thanks, I'll chase it with finance today.", "Sorry about that! It should be paid by {date}.",
         "Received, thank you."),
        ("Thanks for checking. You're right, a corrected invoice is attached.",
         "Thank you, much appreciated.",
         "Payment received, thanks!"),
        "pdf",
    ),
    "proposal": _Topic(
        "client", ("Proposal for {project}", "Kickoff next week", "Contract renewal"),
        ("Thanks for the call yesterday. As promised, here's a summary: we'll start with {project} in "
         "{quarter} "
         "and revisit the scope after the first month.",
         "Attached is the updated proposal. The main change is the timeline, which now has the launch on "
         "{date}."),
        ("Let me know if I missed anything.",
         "Happy to jump on a call if it's easier to go through it together."),
        ("Thanks for sending the proposal. Our team has a few questions about {item}. Could we set up a "
         "call on "
         "{day}?", "We're ready to sign. Can you send over the final version by {day}?"),
        ("Of course. {day} at {time1} works for me.", "Great news! I'll send the final version today.",
         "Good question. I'll check with {colleague} and get back to you by {day}."),
        ("Perfect, thank you!", "Thanks Alex, that answers our questions.", "Got it, thanks."),
        "pdf",
    ),
    "weekend": _Topic(
        "friend", ("This weekend?", "Saturday", "Plans for {day}?"),
        ("Are you around this weekend? I was thinking we could try {place} on Saturday.",
         "We're having a few people over on Saturday, nothing fancy. Want to come? Around 7."),
        ("Let me know!", "Bring {food} if you feel like it, but no pressure."),
        ("Are you free on Saturday? A few of us are going to {place}.",
         "Long time no see! Want to grab dinner this week?"),
        ("Yes! Count me in.", "Ha, that's great. See you {day}.",
         "I can't this weekend, but how about next Friday?", "Works for me, I'll bring {food}."),
        ("Perfect, see you then!", "Great, I'll book a table for 7.", "Next Friday works!"),
    ),
    "hike": _Topic(
        "friend", ("{trail} hike", "Hiking on {day}?", "Photos from {trail}"),
        ("The weather looks great for {day}. Want to do {trail}? I can drive and pick you up around {time1}.",
         "I finally have a free weekend. Up for {trail}? It should take about four hours with the detour "
         "to the lake.",
         "Here are the photos from {trail}! A few came out really well."),
        ("Let me know by Thursday so I can plan.", "Bring layers, it gets windy at the top."),
        ("Want to do {trail} on {day}? Forecast looks perfect.",
         "Photos from {trail} are up: https://photos.example.net/album/{docid}"),
        ("Definitely. I'll bring snacks.", "Love these, thanks for sharing!",
         "Can't make it this time, have fun!"),
        ("Yes! See you at {time1}.", "Sounds good, I'll bring the map."),
        "png",
    ),
    "family": _Topic(
        "family", ("Sunday dinner", "Mom's birthday", "Visiting on {day}"),
        ("For Mom's birthday, should we go in on something together? I was thinking {gift}.",
         "Are we still on for Sunday dinner? I can bring {food}.",
         "I'm planning to come by on {day} afternoon, is that still okay?"),
        ("Talk soon!", "Let me know what you think."),
        ("Are you coming on Sunday? Let me know so I can plan the food.",
         "Can you call me when you get a chance? Nothing urgent."),
        ("Yes, I'll be there around 6.", "Sure, I'll call you tonight.", "Sounds good, see you {day}!"),
        ("Wonderful, see you then.", "Great idea, let's do it.", "Ok! Drive safe."),
    ),
    "books": _Topic(
        "friend", ("Book rec", "You have to read this", "{book}"),
        ("Just finished {book} and I think you'd love it. I'll bring my copy on {day}.",
         "Thanks again for recommending {book}. I stayed up way too late finishing it."),
        ("Also, we should really plan that trip we keep talking about.",),
        ("Have you read {book}? It reminded me of our conversation last month.",
         "What was that show you mentioned the other day? I need something new to watch."),
        ("Not yet, adding it to my list!", "It's called {film}. Start with the second season.",
         "Yes! The ending was so good."),
        ("Thanks, starting it tonight.", "Ha, I knew you'd like it."),
    ),
    "home": _Topic(
        "landlord", ("Kitchen faucet", "Repair on {day}?", "Lease renewal"),
        ("The kitchen faucet is leaking again. Could someone come by on {day} morning? I'll be home until "
         "noon.",
         "Thanks for sending over the renewal. I've signed it and attached a scan."),
        ("Thanks for your help with this.",),
        ("Just confirming the plumber will come by on {day} between 9 and 12.",
         "Your lease is up for renewal on {date}. Please let us know by the end of the month."),
        ("Great, thanks. I'll be there.", "Thanks for the reminder, I'll send it back this week."),
        ("Thank you, noted.", "Perfect, thanks Alex."),
    ),
}  # fmt: skip
_WORK_TOPICS = (
    "meeting",
    "meeting",
    "review",
    "review",
    "budget",
    "status",
    "status",
    "travel",
    "hiring",
    "invoice",
    "proposal",
    "home",
)
_PERSONAL_TOPICS = ("weekend", "weekend", "hike", "family", "family", "books")

_INLINE_ANSWERS = (
    "Yes, {day} works.", "Agreed, let's keep it as is.", "I'll check with {colleague} and get back to you.",
    "Good point. I've updated {item}.", "Not yet, but it's on my list for this week.",
    "Let's discuss this one live.",
)  # fmt: skip
_EXTRAS = {
    "work": ("Also, heads up that I'm out on {day2}. {colleague} can cover anything urgent.",
             "On a separate note, the offsite is confirmed for {date}. More details soon.",
             "One more thing: can you loop in {colleague}? They'll want to weigh in on {item}.",
             "For context, this came up in the leadership meeting last week and there's a lot of interest in "
             "getting it right, so I'd rather take an extra few days than rush it."),
    "personal": ("How's everything with you? It feels like ages since we properly caught up.",
                 "Also, did you ever try {place}? I keep hearing good things.",
                 "We finally finished painting the living room, so you have to come see it."),
}  # fmt: skip
_DEV_TOPICS = (
    ("Proposal: move the nightly build to {time1} UTC",
     "The nightly build keeps colliding with the backup window. I'd like to move it to {time1} UTC starting "
     "{day}. Objections?"),
    ("Flaky integration test in {project}",
     "Has anyone else seen test_sync_retry fail intermittently? It failed three times this week on main. "
     "Logs: https://ci.example.org/build/{docid}"),
    ("Heads up: staging database maintenance on {day}",
     "Staging will be read-only on {day} from {time1} for about two hours while we upgrade the database."),
    ("Deprecating the v1 export API",
     "We'd like to remove the v1 export API in {quarter}. Usage is down to a handful of internal scripts. "
     "Please shout if you depend on it."),
)  # fmt: skip
_DEV_REPLIES = (
    "+1, makes sense to me.",
    "Fine by me as long as the reports still go out before standup.",
    "Can we wait until after the release on {date}?",
    "I've seen it too, mostly on the ARM runners.",
)
_ALEX_DEV_REPLIES = (
    "Thanks for flagging this. I'm in favor, but let's give the {team} team a week's notice.",
    "+1 from me. Happy to help with the migration guide.",
    "I'd rather wait until after {date}, we have too much going on before then.",
)  # fmt: skip
_HIKER_TOPICS = (
    ("Group hike to {trail} on {day}", "Who's in for {trail} on {day}? Meeting at the trailhead at {time1}."),
    ("Carpool for {day}", "I have two free seats leaving from downtown at {time1}. Reply if you want one."),
    ("Lost: blue water bottle at {trail}", "Did anyone pick up a blue water bottle at {trail} last weekend?"),
)  # fmt: skip

# --- low-level formatting ------------------------------------------------------------------------------


def _lt(ts: int, tz: int) -> time.struct_time:
    return time.gmtime(ts + tz * 60)


def _tz(tz: int) -> str:
    a = abs(tz)
    return f"{'-' if tz < 0 else '+'}{a // 60:02d}{a % 60:02d}"


def _rfc_date(ts: int, tz: int) -> str:
    t = _lt(ts, tz)
    return (
        f"{_WD[t.tm_wday]}, {t.tm_mday} {_MON[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {_tz(tz)}"
    )


def _hm12(t: time.struct_time) -> str:
    return f"{t.tm_hour % 12 or 12}:{t.tm_min:02d} {'AM' if t.tm_hour < 12 else 'PM'}"


def _alex_tz(ts: int) -> int:
    return -240 if 4 <= time.gmtime(ts).tm_mon <= 10 else -300


def _daytime(ts: int, jitter_h: int) -> int:
    """Move a night-time start (Alex's clock) into the morning."""
    hour = (ts + _alex_tz(ts) * 60) // 3600 % 24
    return ts + (8 - hour + jitter_h) * 3600 if hour < 8 else ts


def _inner_html(html: str) -> str:
    """What a reply embeds of an HTML document: the inside of its <body>."""
    i = html.find("<body")
    if i < 0:
        return html
    return html[html.find(">", i) + 1 : html.rfind("</body>")]


def _gmail_date(ts: int, tz: int) -> str:
    t = _lt(ts, tz)
    return f"{_WD[t.tm_wday]}, {_MON[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year} at {_hm12(t)}"


def _attribution(style: str, ts: int, tz: int, name: str, addr: str) -> str:
    """The "On ... wrote:" line each client puts above a quote."""
    t = _lt(ts, tz)
    hm = f"{t.tm_hour:02d}:{t.tm_min:02d}"
    if style == "apple":
        return f"On {_MON[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year}, at {_hm12(t)}, {name} <{addr}> wrote:"
    if style == "apple_uk":
        return f"On {t.tm_mday} {_MON[t.tm_mon - 1]} {t.tm_year}, at {hm}, {name} <{addr}> wrote:"
    if style == "thunderbird":
        return f"On {t.tm_mday:02d}/{t.tm_mon:02d}/{t.tm_year} {hm}, {name} wrote:"
    if style == "german":
        return (
            f"Am {_WD_DE[t.tm_wday]}, {t.tm_mday}. {_MON_DE[t.tm_mon - 1]} {t.tm_year} um {hm} Uhr "
            f"schrieb {name} <{addr}>:"
        )
    line = f"On {_gmail_date(ts, tz)} {name} <{addr}> wrote:"
    return line.replace(" wrote:", "\nwrote:") if len(line) > 78 else line  # Gmail wraps its plain text


def _outlook_date(ts: int, tz: int) -> str:
    t = _lt(ts, tz)
    return f"{_WD_LONG[t.tm_wday]}, {_MON_LONG[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year} {_hm12(t)}"


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_URL = re.compile(r"(https?://[^\s<]+)")


def _html_line(line: str) -> str:
    line = _esc(line)
    return _URL.sub(r'<a href="\1">\1</a>', line) if "http" in line else line


def _html_blocks(text: str, style: str) -> str:
    """Plain text (blank-line separated blocks, "- " bullets) as HTML the way a client writes it."""
    out = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith("- ") for line in lines):
            out.append("<ul>" + "".join(f"<li>{_html_line(x[2:])}</li>" for x in lines) + "</ul>")
        elif style == "gmail":
            out.append("".join(f"<div>{_html_line(x) or '<br>'}</div>" for x in lines))
        elif style == "outlook":
            out.append("".join(f'<p class="MsoNormal">{_html_line(x)}<o:p></o:p></p>' for x in lines))
        else:
            out.append("<p>" + "<br>".join(_html_line(x) for x in lines) + "</p>")
    if style == "gmail":
        return "<div><br></div>".join(out)
    if style == "outlook":
        return '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'.join(out)
    return "".join(out)


_GMAIL_QUOTE = (
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">{attr}<br></div><blockquote '
    'class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);'
    'padding-left:1ex">{body}</blockquote></div>'
)
_OUTLOOK_HEAD = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta http-equiv="Content-Type" '
    'content="text/html; charset=utf-8"><style><!--\np.MsoNormal, li.MsoNormal {margin:0in;'
    'font-size:11.0pt;font-family:"Calibri",sans-serif;}\n.WordSection1 {page:WordSection1;}\n--></style>'
    '</head><body lang="EN-US" link="#0563C1"><div class="WordSection1">'
)
_WEB_HEAD = (
    '<html><head><meta charset="utf-8"><style type="text/css">body { font-family: Helvetica, Arial, '
    "sans-serif; font-size: 14px; } blockquote { border-left: 2px solid #ccc; margin-left: 4px; "
    "padding-left: 8px; } p { margin: 0 0 1em 0; }</style></head><body>"
)


def _qp(data: bytes) -> bytes:
    return binascii.b2a_qp(data)


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data)


Entity = tuple[str, bytes]  # (MIME header lines, each ending in "\n"; body bytes)


def _text_entity(
    text: str, subtype: str, charset: str, cte: str, params: str = "", codec: str | None = None
) -> Entity:
    """A text/* entity; ``codec`` encodes when the declared charset lies (mislabelled mail)."""
    data = text.encode(codec or charset)
    if cte == "quoted-printable":
        data = _qp(data)
    elif cte == "base64":
        data = _b64(data)
    label = f'"{charset}"' if charset[:1].isupper() else charset
    return f"Content-Type: text/{subtype}; charset={label}{params}\nContent-Transfer-Encoding: {cte}\n", data


def _simple_text(text: str) -> Entity:
    """7bit us-ascii when it can be, else UTF-8 in 8bit (what simple mailers send)."""
    if text.isascii():
        return _text_entity(text, "plain", "us-ascii", "7bit")
    return _text_entity(text, "plain", "UTF-8", "8bit")


def _multipart(
    subtype: str, parts: list[Entity], boundary: str, *, close: bool = True, params: str = ""
) -> Entity:
    bnd = boundary.encode()
    chunks = []
    for hdr, body in parts:
        chunks.append(b"--" + bnd + b"\n" + hdr.encode() + b"\n" + body)
        if not body.endswith(b"\n"):
            chunks.append(b"\n")
    if close:
        chunks.append(b"--" + bnd + b"--\n")
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"{params}\n', b"".join(chunks)


def _attachment(ctype: str, filename: str, b64: bytes, *, rfc2231: bool = False) -> Entity:
    if rfc2231:
        name = f'name="{_ew(filename, "UTF-8", "Q")}"'
        disp = f"attachment; filename*=UTF-8''{_pct(filename)}"
    else:
        name = f'name="{filename}"'
        disp = f'attachment; filename="{filename}"'
    hdr = f"Content-Type: {ctype}; {name}\nContent-Disposition: {disp}\nContent-Transfer-Encoding: base64\n"
    return hdr, b64


def _render(headers: list[tuple[str, str]], entity: Entity, *, nl: str = _NL, codec: str = "utf-8") -> bytes:
    """Assemble a whole message (headers, MIME headers of ``entity``, blank line, body) with ``nl`` endings.

    ``codec`` encodes the header block; lone surrogates in header values become raw 8-bit bytes.
    """
    head = "".join(f"{k}: {v}\n" for k, v in headers) + "MIME-Version: 1.0\n" + entity[0]
    raw = head.encode(codec, "surrogateescape") + b"\n" + entity[1]
    return raw.replace(b"\n", b"\r\n") if nl == "\r\n" else raw


def _fold_refs(ids: list[str]) -> str:
    return "\n ".join(f"<{i}>" for i in ids)


_MAGIC = {
    "pdf": b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "docx": b"PK\x03\x04\x14\x00\x06\x00",
    "zip": b"PK\x03\x04\x14\x00\x00\x00",
    "mov": b"\x00\x00\x00\x14ftypqt  ",
}
_CTYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "zip": "application/zip",
    "mov": "video/quicktime",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


# --- composing one mail ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Prev:
    """What a reply needs to know about the message it answers."""

    name: str
    addr: str
    header: str
    to: str
    ts: int
    tz: int
    subject: str
    msg_id: str | None
    refs: list[str]
    body: str  # full plain text (own words, signature, its own quote)
    html: str | None
    paras: list[str]  # the content paragraphs of its author's own words


@dataclass(slots=True)
class _Ctx:
    """One conversation in progress."""

    key: str
    topic: _Topic
    rel: str  # work or personal
    people: list[_Person]
    slots: dict[str, str]
    subject: str
    ts: int
    alias: bool = False
    force: str = ""
    prev: _Prev | None = None
    turns: int = 0


class _Body(NamedTuple):
    text: str  # the plain text (the text/plain part unless html_only; what a reply quotes)
    html: str | None  # the text/html part
    paras: list[str]
    html_only: bool = False


def _compose_plain(own: str, sig: str, quote: str, style: str, prev: _Prev | None, bottom: bool) -> str:
    """Own words + signature/footer + the quoted previous message, in a client's layout."""
    top = own + ("\n\n" + sig if sig else "")
    if prev is None:
        return top
    if style == "outlook":
        sep = "-----Original Message-----" if len(prev.body) % 2 else "_" * 32
        block = (
            f"{sep}\nFrom: {prev.name} <{prev.addr}>\nSent: {_outlook_date(prev.ts, prev.tz)}\n"
            f"To: {prev.to}\nSubject: {prev.subject}\n\n{prev.body}"
        )
        return top + "\n\n" + block
    sep = "\n\n" if style in ("apple", "apple_uk") else "\n"
    quoted = quote + sep + _quote(prev.body)
    return quoted + "\n\n" + top if bottom else top + "\n\n" + quoted


def _compose_html(own: str, sig: str, attr: str, prev: _Prev | None, style: str) -> str:
    body = _html_blocks(own, style)
    if sig:
        sig_html = "<br>".join(_esc(x) for x in sig.split("\n"))
        body += (
            f'<br><div class="gmail_signature">{sig_html}</div>' if style == "gmail" else f"<p>{sig_html}</p>"
        )
    q = ""
    if prev is not None:
        inner = prev.html or _html_blocks(prev.body, "web")
        if style == "gmail":
            q = _GMAIL_QUOTE.format(attr=_esc(attr).replace("\n", " "), body=inner)
        elif style == "outlook":
            q = (
                '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in">'
                f'<p class="MsoNormal"><b>From:</b> {_esc(prev.name)} &lt;{prev.addr}&gt;<br><b>Sent:</b> '
                f"{_outlook_date(prev.ts, prev.tz)}<br><b>Subject:</b> {_esc(prev.subject)}</p></div>{inner}"
            )
        else:
            q = f'<p>{_esc(attr)}</p><blockquote type="cite">{inner}</blockquote>'
    if style == "gmail":
        return f'<div dir="ltr">{body}</div><br>{q}\n'
    if style == "outlook":
        return f"{_OUTLOOK_HEAD}{body}{q}</div></body></html>\n"
    return f"{_WEB_HEAD}{body}{q}</body></html>\n"


def _html_style(client: str) -> str:
    return "outlook" if client == "outlook" else "gmail" if client in ("gmail", "gmail_de") else "web"


# Per client: html mode, quote style, plain line endings, mailer header.
_CLIENTS = {
    "gmail": ("alt", "gmail", _NL, ""),
    "gmail_de": ("alt", "german", _NL, ""),
    "outlook": ("alt", "outlook", "\r\n", "X-Mailer: Microsoft Outlook 16.0"),
    "iphone": ("", "apple", _NL, "X-Mailer: iPhone Mail (20H115)"),
    "apple": ("", "apple_uk", _NL, "X-Mailer: Apple Mail (2.3731.700.6)"),
    "thunderbird": ("", "thunderbird", _NL, "User-Agent: Mozilla Thunderbird/115.6.0"),
    "webmail": ("only", "web", _NL, "X-Mailer: Example Webmail 3.2"),
}  # fmt: skip
_ALEX_CLIENTS = {
    "work": ("gmail",) * 11 + ("outlook",) * 5 + ("iphone",) * 3 + ("thunderbird", "webmail"),
    "personal": ("gmail",) * 9 + ("iphone",) * 6 + ("thunderbird",) * 2 + ("apple",) * 2 + ("webmail",),
}  # fmt: skip


class _Gen:
    """The stateful, seeded generator behind iter_messages."""

    def __init__(
        self,
        n: int,
        seed: int,
        hard_cases: bool = True,
        huge_bytes: int = 0,
        bulk: bool = False,
        span_n: int = 0,
    ) -> None:
        self.n, self.seed, self.hard, self.huge_bytes, self.bulk = n, seed, hard_cases, huge_bytes, bulk
        self.rng = random.Random(seed)
        self.emitted = 0
        self.mid = 0
        self.threads = 0
        self.cursor = _START
        self.step = _SPAN / max(1, span_n or n)
        self.forced: deque[tuple[int, str]] = deque()
        self.next_block = 0
        self.last_sent: GeneratedMessage | None = None
        self.pool = self._make_pool(seed) if bulk else b""
        self.issue = {"weekly": 120, "trail": 40, "allhands": 10, "digest": 300}
        self.flips: dict[str, int] = {}

    # -- driving ------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[GeneratedMessage]:
        pending: deque[GeneratedMessage] = deque()
        while self.emitted < self.n:
            if not pending:
                pending.extend(self._episode())
                continue
            msg = pending.popleft()
            self.emitted += 1
            if msg.sent_by_me and msg.message_id and msg.hard_case is None and msg.folder == "Sent":
                self.last_sent = msg
            yield msg

    def _plan_block(self) -> None:
        items = [name for name, k in _HARD_PER_BLOCK.items() for _ in range(k)] if self.hard else []
        if self.next_block % (_BLOCK * _FORCED_EVERY) == 0:
            items += _FORCED
        self.rng.shuffle(items)
        offsets = sorted(self.rng.sample(range(_BLOCK_SPREAD), len(items)))
        self.forced.extend((self.next_block + off, it) for off, it in zip(offsets, items, strict=True))
        self.next_block += _BLOCK

    def _episode(self) -> list[GeneratedMessage]:
        while self.emitted >= self.next_block:
            self._plan_block()
        if self.huge_bytes and self.emitted >= self.n // 2:
            size, self.huge_bytes = self.huge_bytes, 0
            return self._advance(self._huge(size))
        if self.forced and self.forced[0][0] <= self.emitted:
            item = self.forced.popleft()[1]
            return self._advance(self._HARD[item](self) if item in self._HARD else self._forced(item))
        return self._advance(self._random_episode())

    def _advance(self, msgs: list[GeneratedMessage]) -> list[GeneratedMessage]:
        self.cursor += int(self.step * max(1, len(msgs)) * self.rng.uniform(0.4, 1.6))
        return msgs

    def _random_episode(self) -> list[GeneratedMessage]:
        r = self.rng.random()
        if r < 0.33:
            return self._conversation("work")
        if r < 0.47:
            return self._conversation("personal")
        if r < 0.64:
            return self._newsletter()
        if r < 0.85:
            return self._notification()
        if r < 0.93:
            return self._dev_thread()
        if r < 0.97:
            return self._hikers_thread()
        return self._charset(
            self.rng.choice(
                (
                    "latin1_qp",
                    "german_latin1",
                    "cp1252_qp",
                    "utf8_emoji",
                    "koi8r",
                    "iso2022jp",
                    "gb2312",
                    "rfc2047_split",
                )
            )
        )

    # -- small helpers ------------------------------------------------------------------------------

    def _start(self) -> int:
        """A start time for the next episode, in Alex's waking hours."""
        return _daytime(self.cursor + self.rng.randrange(0, 6 * 3600), self.rng.randrange(0, 3))

    def _alternate(self, name: str) -> bool:
        """True, False, True, ... per name: hard cases come in both flavours even in short streams."""
        self.flips[name] = self.flips.get(name, 0) + 1
        return self.flips[name] % 2 == 1

    def _key(self) -> str:
        self.threads += 1
        return f"t{self.threads:06d}"

    def _msgid(self, client: str, domain: str) -> str:
        self.mid += 1
        r = self.rng.getrandbits(64)
        if client in ("gmail", "gmail_de"):
            return f"CA{self.mid:06X}{r:016x}Qw@mail.{domain}"
        if client == "outlook":
            return f"SJ0PR11MB{self.mid:06d}{r:016X}@SJ0PR11MB{r % 9000 + 1000}.prod.{domain}"
        if client in ("iphone", "apple"):
            h = f"{r:016X}{self.mid:016X}"
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}@{domain}"
        if client == "thunderbird":
            h = f"{r:016x}{self.mid:08x}"
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:]}@{domain}"
        return f"{self.mid}.{r:x}@{domain}"

    def _boundary(self, client: str = "") -> str:
        r = self.rng.getrandbits(64)
        if client == "outlook":
            return f"_000_SJ0PR11MB{r:016X}_"
        if client in ("iphone", "apple"):
            return f"Apple-Mail={r:016X}-{self.mid:08X}"
        return f"000000000000{r:016x}"

    def _slots(self) -> dict[str, str]:
        c, r = self.rng.choice, self.rng
        s = {k: c(v) for k, v in _SLOT_VALUES.items()}
        s["item2"] = c(_SLOT_VALUES["item"])
        s["day2"] = c(_SLOT_VALUES["day"])
        s["time2"] = c(_SLOT_VALUES["time1"])
        s["colleague"] = c(_COLLEAGUE_NAMES)
        t = time.gmtime(self.cursor + r.randrange(3, 40) * 86400)
        s["date"] = f"{_MON_LONG[t.tm_mon - 1]} {t.tm_mday}"
        s["amount"] = f"${r.randrange(4, 60) * 500:,}"
        s["pct"] = str(r.randrange(5, 25))
        s["inv"] = f"INV-{r.randrange(1000, 9999)}"
        s["docid"] = f"{r.getrandbits(40):010x}"
        return s

    def _labels(self, folder: str, sent: bool, category: str = "") -> tuple[str, ...]:
        r = self.rng.random()
        if sent:
            return ("Sent", "Important") if r < 0.1 else ("Sent",)
        out = ["Inbox" if folder == "Inbox" else "Archived"]
        if category:
            out.append(category)
        elif r < 0.25:
            out.append("Important")
        r2 = self.rng.random()
        out.append("Unread" if r2 < 0.15 else "Opened" if r2 < 0.75 else "")
        return tuple(x for x in out if x)

    def _blob(self, kind: str, size: int) -> bytes:
        """Base64 lines of a small fake file of ``kind`` (or a big one from the bulk pool)."""
        magic = _MAGIC[kind]
        if not self.pool or size < 20_000:
            return _b64(magic + self.rng.randbytes(size))
        head = _b64(magic + self.rng.randbytes(57 * 4 - len(magic)))
        lines = len(self.pool) // 77
        n = min(size // 57, lines - 1)
        start = self.rng.randrange(0, lines - n) * 77
        return head + self.pool[start : start + n * 77]

    @staticmethod
    def _make_pool(seed: int) -> bytes:
        return _b64(random.Random(seed ^ 0x5EED).randbytes(57 * 80_000))  # ~6 MB of base64 lines

    def _attach_size(self) -> int:
        if self.bulk:
            return int(self.rng.paretovariate(1.2) * 40_000)
        return self.rng.randrange(800, 24_000)

    def _alex_from(self, ctx: _Ctx) -> tuple[str, str]:
        return (ME_ALIAS_FULL, ME_ALIAS) if ctx.alias else (ME, ME_ADDR)

    # -- conversations -------------------------------------------------------------------------------

    def _new_ctx(self, rel: str, topic_name: str = "", force: str = "") -> _Ctx:
        rng = self.rng
        topic = _TOPICS[topic_name or rng.choice(_WORK_TOPICS if rel == "work" else _PERSONAL_TOPICS)]
        people = [rng.choice(_POOLS[topic.pool])]
        if topic.pool == "work" and rng.random() < 0.15:
            extra = rng.choice(_POOLS["work"])
            if extra is not people[0]:
                people.append(extra)
        slots = self._slots()
        subject = _cap(rng.choice(topic.subj).format_map(slots))
        ts = self._start()
        alias = force == "alias_me" or (rel == "personal" and rng.random() < 0.3)
        return _Ctx(self._key(), topic, rel, people, slots, subject, ts, alias, force)

    def _conversation(
        self, rel: str, topic: str = "", force: str = "", length: int = 0, me_first: bool | None = None
    ) -> list[GeneratedMessage]:
        rng = self.rng
        ctx = self._new_ctx(rel, topic, force)
        length = length or rng.choice((1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 5, 6))
        me_first = rng.random() < 0.45 if me_first is None else me_first
        out: list[GeneratedMessage] = []
        for k in range(length):
            if (k % 2 == 0) == me_first:
                msg = self._alex_turn(ctx)
                out.append(msg)
                if ctx.rel == "work" and (force == "auto_reply" or rng.random() < 0.015):
                    out.append(self._auto_reply(ctx, msg))
                    force = ctx.force = ""
            else:
                out.append(self._other_turn(ctx, ctx.people[(k // 2) % len(ctx.people)]))
            ctx.ts += rng.randrange(300, 86400 if rel == "work" else 2 * 86400)
        if force in ("forward", "forward_attached") or (rel == "work" and rng.random() < 0.06):
            out.append(self._forward(ctx, attached=force == "forward_attached"))
        return out

    def _alex_paras(self, ctx: _Ctx, first: bool) -> list[str]:
        rng, t, s = self.rng, ctx.topic, ctx.slots
        if first and ctx.force == "html_only_me":  # bullets and a link, for the HTML list/anchor case
            return [
                t.a1[0].format_map(s),
                "The doc is here: https://docs.example.org/d/{docid}".format_map(s),
            ]
        if first:
            paras = [rng.choice(t.a1).format_map(s)]
            if rng.random() < 0.6:
                paras.append(rng.choice(t.a2).format_map(s))
        else:
            paras = [rng.choice(t.ar).format_map(s)]
        if rng.random() < 0.1:  # a few longer ones
            extras = _EXTRAS["work" if ctx.rel == "work" else "personal"]
            paras[1:1] = [e.format_map(s) for e in rng.sample(extras, min(len(extras), rng.randrange(2, 4)))]
        return paras

    def _alex_frame(self, ctx: _Ctx, first: bool) -> tuple[str, str]:
        """(greeting or "", sign-off) in Alex's voice."""
        rng = self.rng
        greeting = ""
        if first or rng.random() < 0.8:
            names = [p.first for p in ctx.people]
            if len(names) == 1:
                greeting = ctx.people[0].hello
            else:
                greeting = "Hi all," if len(names) > 2 else f"Hi {names[0]} and {names[1]},"
        if ctx.people[0].key == "linda":
            return greeting, "Love,\nAlex"
        if ctx.rel == "personal":
            return greeting, "Thanks!\nAlex" if rng.random() < 0.2 else "Cheers,\nAlex"
        r = rng.random()
        return greeting, "Best,\nAlex" if r < 0.6 else "Thanks!\nAlex" if r < 0.9 else "Thanks,\nAlex"

    def _alex_client(self, ctx: _Ctx) -> str:
        f = ctx.force
        if f in ("outlook_reply", "cp1252_qp"):
            return "outlook"
        if f == "thunderbird_bottom":
            return "thunderbird"
        if f == "apple_reply":
            return "iphone"
        if f == "html_only_me":
            return "webmail"
        if f in ("inline_reply", "german_quote"):
            return "gmail"
        return self.rng.choice(_ALEX_CLIENTS["work" if ctx.rel == "work" else "personal"])

    def _alex_sig(self, client: str, ctx: _Ctx) -> tuple[str, str]:
        """(signature/footer after the sign-off, disclaimer at the very end)."""
        r = self.rng.random()
        work = ctx.rel == "work"
        if client == "iphone":
            return _IPHONE, ""
        if client == "outlook":
            return (_SIG_OUTLOOK if r < 0.8 else ""), (
                _DISCLAIMER if work and self.rng.random() < 0.5 else ""
            )
        if client in ("gmail", "thunderbird") and work and r < 0.35:
            return _SIG_DASH, ""
        return "", ""

    def _inline(self, ctx: _Ctx, greeting: str, signoff: str, attr: str) -> tuple[str, str]:
        """Answers interleaved with the quoted paragraphs: returns (own words, plain body)."""
        prev = ctx.prev
        assert prev is not None
        intro = self.rng.choice(("Answers inline.", "Comments inline below.", "See my notes inline."))
        answers = [self.rng.choice(_INLINE_ANSWERS).format_map(ctx.slots) for _ in prev.paras]
        head = [x for x in (greeting, intro) if x]
        body = [*head, attr]
        for para, ans in zip(prev.paras, answers, strict=True):
            body[-1] += "\n" + _quote(para)
            body.append(ans)
        body.append(signoff)
        return "\n\n".join([*head, *answers, signoff]), "\n\n".join(body)

    def _alex_style(self, ctx: _Ctx, client: str) -> tuple[str, bool, bool]:
        """(quote style, inline answers?, bottom-posted?) for Alex's reply."""
        rng, prev = self.rng, ctx.prev
        style = _CLIENTS[client][1]
        if prev is None:
            return style, False, False
        if ctx.force == "german_quote" or (client == "gmail" and rng.random() < 0.04):
            style = "german"
        inline = bool(prev.paras) and (
            ctx.force == "inline_reply" or (client == "gmail" and rng.random() < 0.04)
        )
        bottom = client == "thunderbird" and (ctx.force == "thunderbird_bottom" or rng.random() < 0.5)
        return style, inline, bottom

    def _alex_turn(self, ctx: _Ctx, paras: list[str] | None = None, client: str = "") -> GeneratedMessage:
        prev = ctx.prev
        paras = paras or self._alex_paras(ctx, prev is None)
        greeting, signoff = self._alex_frame(ctx, prev is None)
        own = "\n\n".join([*([greeting] if greeting else []), *paras, signoff])
        client = client or self._alex_client(ctx)
        mode, _, nl, mailer = _CLIENTS[client]
        style, inline, bottom = self._alex_style(ctx, client)
        sig, disclaimer = self._alex_sig(client, ctx)
        attr = _attribution(style, prev.ts, prev.tz, prev.name, prev.addr) if prev else ""
        if inline:
            sig = ""
            own, text = self._inline(ctx, greeting, signoff, attr)
            variant = "inline_reply"
        else:
            text = _compose_plain(own, sig, attr, style, prev, bottom)
            variant = (
                ("bottom_post" if bottom else f"{style}_reply")
                if prev
                else _FIRST_VARIANTS.get(ctx.force, "")
            )
        if disclaimer:
            text += "\n\n" + disclaimer
        html = None
        if mode:
            hsig = f"{sig}\n\n{disclaimer}".strip() if disclaimer else sig
            html = _compose_html(own, hsig, attr, prev, _html_style(client))
        frm, addr = self._alex_from(ctx)
        to = ", ".join(p.header for p in ctx.people)
        kind = "reply" if prev else {"alt": "alternative", "only": "html_only"}.get(mode, "plain")
        body = _Body(text, html, paras, mode == "only")
        return self._finish(
            ctx, frm, addr, to, "", client, _alex_tz(ctx.ts), body, kind, True, own, nl, mailer, variant
        )

    def _other_words(self, p: _Person, paras: list[str], greet: bool = True) -> str:
        parts = [p.greet] if p.greet and greet else []
        parts.extend(paras)
        parts.append(p.signoff)
        return "\n\n".join(parts)

    def _other_turn(self, ctx: _Ctx, p: _Person) -> GeneratedMessage:
        rng, prev = self.rng, ctx.prev
        t, s = ctx.topic, ctx.slots
        paras = [rng.choice(t.o1 if prev is None else t.orr).format_map(s)]
        own = self._other_words(p, paras, greet=prev is None or rng.random() < 0.6)
        mode, style, nl, mailer = _CLIENTS[p.client]
        sig = _IPHONE if p.client == "iphone" else p.sig
        attr = _attribution(style, prev.ts, prev.tz, prev.name, prev.addr) if prev else ""
        text = _compose_plain(own, sig, attr, style, prev, False)
        html = _compose_html(own, sig, attr, prev, _html_style(p.client)) if mode else None
        to = ME_ALIAS_FULL if ctx.alias else ME
        cc = ", ".join(x.header for x in ctx.people if x is not p)
        kind = "reply" if prev else {"alt": "alternative", "only": "html_only"}.get(mode, "plain")
        return self._finish(
            ctx,
            p.header,
            p.addr,
            to,
            cc,
            p.client,
            p.tz,
            _Body(text, html, paras, mode == "only"),
            kind,
            False,
            None,
            nl,
            mailer,
            f"{style}_reply" if prev else "",
            name=p.name,
        )

    def _reply_subject(self, ctx: _Ctx, client: str, refs: bool) -> str:
        if ctx.prev is None:
            return ctx.subject
        if refs and client == "outlook":
            return "RE: " + ctx.subject
        if refs and client == "gmail_de" and self.rng.random() < 0.5:
            return "AW: " + ctx.subject
        return "Re: " + ctx.subject

    def _threading(self, prev: _Prev | None) -> tuple[list[str], list[tuple[str, str]], bool]:
        """(references chain, In-Reply-To/References headers, whether they were dropped)."""
        refs = (prev.refs + [prev.msg_id]) if prev and prev.msg_id else []
        if not refs:
            return refs, [], prev is not None
        if self.rng.random() < 0.08:  # a client that drops the threading headers: only the subject links
            return refs, [], True
        headers = [("In-Reply-To", f"<{refs[-1]}>")]
        if self.rng.random() < 0.93:
            headers.append(("References", _fold_refs(refs[-12:])))
        return refs, headers, False

    def _finish(
        self, ctx: _Ctx, frm: str, addr: str, to: str, cc: str, client: str, tz: int, body: _Body,
        kind: str, me: bool, own: str | None, nl: str, mailer: str, variant: str, name: str = ME_NAME,
    ) -> GeneratedMessage:  # fmt: skip
        """Headers + MIME structure for a conversation turn; updates the thread state."""
        msg_id = self._msgid(client, addr.split("@", 1)[1])
        refs, threading, dropped = self._threading(ctx.prev)
        subject = self._reply_subject(ctx, client, not dropped)
        headers = [("Date", _rfc_date(ctx.ts, tz)), ("From", frm), ("To", to), ("Cc", cc)][: 4 if cc else 3]
        headers += [("Subject", self._subject_header(subject)), ("Message-ID", f"<{msg_id}>"), *threading]
        if mailer:
            k, v = mailer.split(": ", 1)
            headers.append((k, v))
        if not me:
            headers[:0] = self._received(addr, ctx.ts)
        attach = self._maybe_attachment(ctx)
        raw = _render(headers, self._body_entity(body, client, attach), nl=nl)
        folder = "Sent" if me else ("Inbox" if self.rng.random() < 0.75 else "Archive")
        kind, labels = "attachment" if attach else kind, self._labels(folder, me)
        msg = GeneratedMessage(
            raw, kind, me, folder, msg_id, own, ctx.key, None, variant, labels, ctx.ts, addr
        )
        html = _inner_html(body.html) if body.html else None
        ctx.prev = _Prev(name, addr, frm, to, ctx.ts, tz, subject, msg_id, refs, body.text, html, body.paras)
        ctx.turns += 1
        return msg

    def _subject_header(self, subject: str) -> str:
        return subject if subject.isascii() else _ew(subject, "UTF-8", "B")

    def _received(self, addr: str, ts: int) -> list[tuple[str, str]]:
        domain = addr.split("@", 1)[1]
        host = domain if domain.startswith("mail.") else f"mail.{domain}"
        rid = f"{self.rng.getrandbits(48):012x}"
        return [
            ("Return-Path", f"<{addr}>"),
            ("Delivered-To", ME_ADDR),
            (
                "Received",
                f"from {host} ({host} [192.0.2.{ts % 250 + 1}])\n"
                f"        by mx.example.org with ESMTPS id {rid}\n"
                f"        for <{ME_ADDR}>; {_rfc_date(ts + 2, 0)}",
            ),
        ]

    def _maybe_attachment(self, ctx: _Ctx) -> list[Entity]:
        rng = self.rng
        want = ctx.force == "rfc2231_filename" or (ctx.topic.attach and ctx.turns == 0 and rng.random() < 0.5)
        if self.bulk and rng.random() < 0.3:
            want = True
        if not want or ctx.force in ("html_only_me", "alias_me"):
            return []
        ext = ctx.topic.attach or rng.choice(("pdf", "png", "docx"))
        if ctx.force == "rfc2231_filename":
            ctx.force = ""
            return [
                _attachment(
                    "application/pdf",
                    "Übersicht Q3 – Entwurf.pdf",
                    self._blob("pdf", self._attach_size()),
                    rfc2231=True,
                )
            ]
        names = {
            "pdf": f"{ctx.slots['quarter']}-budget-draft.pdf",
            "png": f"IMG_{rng.randrange(1000, 9999)}.png",
            "docx": f"Review notes - {ctx.slots['doc']}.docx",
        }
        return [_attachment(_CTYPES[ext], names[ext], self._blob(ext, self._attach_size()))]

    def _body_entity(self, body: _Body, client: str, attach: list[Entity]) -> Entity:
        parts = [] if body.html_only else [self._plain_entity(body.text, client)]
        if body.html is not None:
            parts.append(self._html_entity(body.html, client))
        entity = parts[0] if len(parts) == 1 else _multipart("alternative", parts, self._boundary(client))
        if attach:
            entity = _multipart("mixed", [entity, *attach], self._boundary(client))
        return entity

    def _plain_entity(self, text: str, client: str) -> Entity:
        ascii_ = text.isascii()
        long_ = not ascii_ or any(len(line) > 76 for line in text.split("\n"))
        if client == "thunderbird":
            return _text_entity(
                text, "plain", "UTF-8", "8bit" if not ascii_ else "7bit", "; format=fixed" if ascii_ else ""
            )
        if client == "outlook" and not ascii_:
            try:
                text.encode("windows-1252")
                return _text_entity(text, "plain", "Windows-1252", "quoted-printable")
            except UnicodeEncodeError:
                pass
        charset = ("us-ascii" if client in ("iphone", "apple", "outlook") else "UTF-8") if ascii_ else "UTF-8"
        if not ascii_ and client == "gmail" and self.rng.random() < 0.3:
            return _text_entity(text, "plain", charset, "base64")
        return _text_entity(text, "plain", charset, "quoted-printable" if long_ else "7bit")

    def _html_entity(self, html: str, client: str) -> Entity:
        if client == "outlook":
            return _text_entity(html, "html", "us-ascii" if html.isascii() else "utf-8", "quoted-printable")
        return _text_entity(html, "html", "UTF-8", "quoted-printable")

    def _auto_reply(self, ctx: _Ctx, original: GeneratedMessage) -> GeneratedMessage:
        """An out-of-office answer to Alex's message, threaded onto it."""
        p = ctx.people[0]
        de = p.client == "gmail_de"
        prefix = (
            "Abwesenheitsnotiz: "
            if de
            else "Automatic reply: "
            if p.client == "outlook"
            else "Out of Office: "
        )
        text = (
            f"Thank you for your message. I'm out of the office until {ctx.slots['date']} with limited "
            f"access to email. For anything urgent, please contact {ctx.slots['colleague']}.\n\n{p.first}"
        )
        if de:
            text = "Ich bin bis zum " + ctx.slots["date"] + " nicht im Büro.\n\n" + text
        ts, mid = ctx.ts + 40, self._msgid(p.client, p.addr.split("@", 1)[1])
        headers = self._received(p.addr, ts) + [
            ("Date", _rfc_date(ts, p.tz)), ("From", p.header), ("To", ME),
            ("Subject", self._subject_header(prefix + self._subject_of(ctx))), ("Message-ID", f"<{mid}>"),
            ("In-Reply-To", f"<{original.message_id}>"), ("References", f"<{original.message_id}>"),
            ("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All"),
            ("Precedence", "auto_reply"),
        ]  # fmt: skip
        charset = "us-ascii" if text.isascii() else "UTF-8"
        raw = _render(headers, _text_entity(text, "plain", charset, "quoted-printable"))
        labels = self._labels("Inbox", False, "Category Updates")
        key, variant = ctx.key, "auto_reply"
        return GeneratedMessage(
            raw, "automated", False, "Inbox", mid, None, key, None, variant, labels, ts, p.addr
        )

    def _subject_of(self, ctx: _Ctx) -> str:
        return ctx.prev.subject if ctx.prev else ctx.subject

    def _forward(self, ctx: _Ctx, attached: bool = False) -> GeneratedMessage:
        """Alex forwards the thread's last message to a colleague, with a short note."""
        rng, prev = self.rng, ctx.prev
        assert prev is not None
        target = rng.choice([p for p in _POOLS["work"] if p not in ctx.people])
        ctx.ts += rng.randrange(600, 20000)
        note = rng.choice(
            (
                "FYI, see below. Can you take a look before {day}?",
                "Forwarding this one to you since it's more "
                "your area. Let me know if you need anything from me.",
                "See below. Could you handle this?",
            )
        )
        own = f"{target.hello}\n\n{note.format_map(ctx.slots)}\n\nThanks!\nAlex"
        client = "gmail" if attached or rng.random() < 0.7 else "outlook"
        base = prev.subject.removeprefix("Re: ").removeprefix("RE: ").removeprefix("AW: ")
        if client == "gmail":
            block = (
                f"---------- Forwarded message ---------\nFrom: {prev.name} <{prev.addr}>\nDate: "
                f"{_gmail_date(prev.ts, prev.tz)}\n"
                f"Subject: {prev.subject}\nTo: {prev.to}\n\n\n{prev.body}"
            )
            subject = "Fwd: " + base
        else:
            block = (
                f"________________________________\nFrom: {prev.name} <{prev.addr}>\nSent: "
                f"{_outlook_date(prev.ts, prev.tz)}\nTo: {prev.to}\nSubject: {prev.subject}\n\n{prev.body}"
            )
            subject = "FW: " + base
        return self._forward_msg(ctx, target, own, subject, client, None if attached else block)

    def _forward_msg(
        self, ctx: _Ctx, target: _Person, own: str, subject: str, client: str, block: str | None
    ) -> GeneratedMessage:
        prev = ctx.prev
        assert prev is not None
        mid = self._msgid(client, "example.org")
        refs = prev.refs + ([prev.msg_id] if prev.msg_id else [])
        headers = [("Date", _rfc_date(ctx.ts, _alex_tz(ctx.ts))), ("From", ME), ("To", target.header),
                   ("Subject", self._subject_header(subject)), ("Message-ID", f"<{mid}>")]  # fmt: skip
        if refs:
            headers += [("In-Reply-To", f"<{refs[-1]}>"), ("References", _fold_refs(refs[-12:]))]
        if block is None:  # forwarded as an attachment
            attached = ('Content-Type: message/rfc822\nContent-Disposition: attachment; filename="fwd.eml"\n',
                        self._prev_raw(prev))  # fmt: skip
            entity = _multipart("mixed", [self._plain_entity(own, client), attached], self._boundary())
            variant = "forward_attached"
        else:
            html = (f'<div dir="ltr">{_html_blocks(own, "gmail")}<br><div class="gmail_quote">'
                    f"{_html_blocks(block, 'web')}</div></div>\n")  # fmt: skip
            parts = [self._plain_entity(own + "\n\n" + block, client), self._html_entity(html, client)]
            entity = _multipart("alternative", parts, self._boundary(client))
            variant = "forward"
        raw = _render(headers, entity, nl=_CLIENTS[client][2])
        key, ts = ctx.key, ctx.ts
        return GeneratedMessage(
            raw, "forward", True, "Sent", mid, own, key, None, variant, ("Sent",), ts, ME_ADDR
        )

    def _prev_raw(self, prev: _Prev) -> bytes:
        headers = [
            ("Date", _rfc_date(prev.ts, prev.tz)),
            ("From", prev.header),
            ("To", prev.to),
            ("Subject", self._subject_header(prev.subject)),
        ]
        if prev.msg_id:
            headers.append(("Message-ID", f"<{prev.msg_id}>"))
        return _render(headers, _text_entity(prev.body, "plain", "UTF-8", "quoted-printable"))

    # -- forced shapes -------------------------------------------------------------------------------

    def _forced(self, item: str) -> list[GeneratedMessage]:
        if item in _CHARSET_VARIANTS:
            return self._charset(item)
        simple: dict[str, Callable[[], list[GeneratedMessage]]] = {
            "bounce": self._bounce,
            "calendar": self._calendar,
            "newsletter": self._newsletter,
            "digest": self._digest,
            "list_munged_me": lambda: self._dev_thread(me=True),
            "hikers_me": lambda: self._hikers_thread(me=True),
            "alias_me": lambda: self._conversation("personal", force="alias_me", length=2, me_first=True),
        }
        if item in simple:
            return simple[item]()
        if item == "html_only_me":
            return self._conversation("work", "review", force=item, length=3, me_first=True)
        rel = "work"
        if item in ("auto_reply", "forward", "forward_attached", "html_only_me", "rfc2231_filename"):
            return self._conversation(rel, force=item, length=2 if "forward" in item else 1, me_first=True)
        return self._conversation(rel, force=item, length=2, me_first=False)  # reply styles

    # -- automated mail -----------------------------------------------------------------------------

    def _auto_msg(
        self, headers: list[tuple[str, str]], entity: Entity, addr: str, variant: str, category: str, ts: int,
        key: str = "", mid: str | None = None,
    ) -> GeneratedMessage:  # fmt: skip
        folder = "Inbox" if self.rng.random() < 0.7 else "Archive"
        raw = _render(self._received(addr, ts) + headers, entity)
        key, labels = key or self._key(), self._labels(folder, False, category)
        return GeneratedMessage(
            raw, "automated", False, folder, mid, None, key, None, variant, labels, ts, addr
        )

    def _newsletter_body(self, name: str, lid: str, items: list[str], token: str, issue: int) -> Entity:
        links = [f"https://{lid}/r/{token[:6]}{i}" for i in range(len(items))]
        text = "\n\n".join(
            [f"{name} - issue {issue}",
             *(f"* {h}\n  Read more: {u}" for h, u in zip(items, links, strict=True)),
             f"You are receiving this because you subscribed at {lid}.\nUnsubscribe: https://{lid}/u/{token}"]
        )  # fmt: skip
        cells = "".join(
            f'<h2>{_esc(h)}</h2><p><a href="{u}">Read more</a></p>' for h, u in zip(items, links, strict=True)
        )
        html = (
            f'{_WEB_HEAD}<table width="100%" cellpadding="0"><tr><td><h1>{_esc(name)}</h1>{cells}'
            f'<p style="font-size:11px">Unsubscribe: <a href="https://{lid}/u/{token}">here</a></p>'
            f'<img src="https://t.{lid}/o/{token}.gif" width="1" height="1" alt="">'
            "</td></tr></table></body></html>\n"
        )
        parts = [_text_entity(text, "plain", "utf-8", "quoted-printable"),
                 _text_entity(html, "html", "utf-8", "quoted-printable")]  # fmt: skip
        return _multipart("alternative", parts, self._boundary())

    def _newsletter(self) -> list[GeneratedMessage]:
        rng = self.rng
        which = rng.choice(tuple(_NEWSLETTERS))
        name, addr, lid = _NEWSLETTERS[which]
        self.issue[which] += 1
        s = self._slots()
        heads = [
            f"{rng.randrange(3, 9)} tools we're excited about this month",
            f"What we learned shipping {s['project']}",
            f"The best trails near {s['city']}", f"Office update: {s['city']} opens in {s['quarter']}",
            "Your reading list for the weekend",
        ]  # fmt: skip
        items = rng.sample(heads, 3)
        token, ts = f"{rng.getrandbits(64):016x}", self._start()
        entity = self._newsletter_body(name, lid, items, token, self.issue[which])
        mid = f"{token}.{self.mid}@{lid}"
        self.mid += 1
        headers = [
            ("Date", _rfc_date(ts, 0)), ("From", f"{name} <{addr}>"), ("To", ME),
            ("Subject", f"{name} #{self.issue[which]}: {items[0]}"), ("Message-ID", f"<{mid}>"),
            ("List-Id", f"{name} <{lid}>"),
            ("List-Unsubscribe", f"<mailto:unsubscribe@{lid}?subject=unsub-{token}>,\n <https://{lid}/u/{token}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"), ("Precedence", "bulk"),
            ("X-Campaign-Id", token[:10]),
        ]  # fmt: skip
        category = "Category Updates" if which == "allhands" else "Category Promotions"
        return [self._auto_msg(headers, entity, addr, "newsletter", category, ts, mid=mid)]

    _SERVICES = (
        (
            "Example CI",
            "notifications@ci.example.org",
            "[{slug}] Build #{n} failed on main",
            "Build #{n} of {slug} failed on main.\n\nFailing tests:\n  test_sync_retry\n"
            "  test_export_v1_compat\n\n"
            "Details: https://ci.example.org/{slug}/builds/{n}",
        ),
        (
            "Example Bank",
            "no-reply@bank.example.net",
            "Your {month} statement is ready",
            "Your statement for {month} is now available in online banking.\n\nThis is an automated message, "
            "please do not reply.",
        ),
        (
            "Example Shop",
            "orders@shop.example.com",
            "Your order #{n} has shipped",
            "Good news! Your order #{n} is on its way and should arrive within 3-5 business days.\n\n"
            "Track your package: https://shop.example.com/track/{n}",
        ),
        (
            "Example Account",
            "no-reply@accounts.example.com",
            "New sign-in to your account",
            "We noticed a new sign-in to your account from Firefox on Windows.\n\nIf this was you, you can "
            "ignore this message.",
        ),
        (
            "Example Air",
            "noreply@air.example.net",
            "Your trip to {city}: booking confirmation {code}",
            "Thank you for booking with Example Air.\n\nConfirmation code: {code}\nDestination: {city}\n\n"
            "Manage your booking: https://air.example.net/manage/{code}",
        ),
        (
            "Example Docs",
            "comments-noreply@docs.example.org",
            '{person} mentioned you in "{doc}"',
            '{person} mentioned you in a comment:\n\n  "@Alex can you confirm the numbers here?"\n\n'
            "Open: https://docs.example.org/d/{docid}",
        ),
    )

    def _notification(self) -> list[GeneratedMessage]:
        rng = self.rng
        name, addr, subj, body = rng.choice(self._SERVICES)
        ts = self._start()
        vals = dict(
            self._slots(), slug=rng.choice(("atlas", "heron", "web", "api")),
            n=str(rng.randrange(1000, 99999)),
            month=_MON_LONG[time.gmtime(ts).tm_mon - 1], code=f"{rng.getrandbits(30):08X}"[:6],
            person=rng.choice(_POOLS["work"]).name,
        )  # fmt: skip
        mid = self._msgid("", addr.split("@", 1)[1])
        headers = [
            ("Date", _rfc_date(ts, 0)), ("From", f"{name} <{addr}>"), ("To", ME),
            ("Subject", subj.format_map(vals)), ("Message-ID", f"<{mid}>"),
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "All"),
        ]  # fmt: skip
        text = body.format_map(vals)
        entity = _text_entity(text, "plain", "UTF-8", "7bit")
        if rng.random() < 0.5:
            html = _text_entity(_compose_html(text, "", "", None, "web"), "html", "UTF-8", "quoted-printable")
            entity = _multipart("alternative", [entity, html], self._boundary())
        return [self._auto_msg(headers, entity, addr, "notification", "Category Updates", ts, mid=mid)]

    def _calendar(self) -> list[GeneratedMessage]:
        rng = self.rng
        org = rng.choice(_POOLS["work"])
        ts = self._start()
        start = time.gmtime(ts + 3 * 86400)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", start)
        uid = f"{rng.getrandbits(64):016x}@calendar.example.com"
        title = f"{_cap(self._slots()['project'])} sync"
        ics = (
            "BEGIN:VCALENDAR\nPRODID:-//Example Calendar//EN\nVERSION:2.0\nMETHOD:REQUEST\nBEGIN:VEVENT\n"
            f"DTSTART:{stamp}\nDTEND:{stamp}\nUID:{uid}\nSUMMARY:{title}\nORGANIZER;CN={org.name}:mailto:"
            f"{org.addr}\nATTENDEE;CN={ME_NAME};PARTSTAT=NEEDS-ACTION:mailto:{ME_ADDR}\nEND:VEVENT\nEND:VCALENDAR\n"
        )
        when = time.strftime("%a %b %d, %Y %H:%M UTC", start)
        text = f"{org.name} has invited you to {title}.\n\nWhen: {when}\n"
        mid, sender = self._msgid("", "calendar.example.com"), "calendar-notification@calendar.example.com"
        day = f"{_WD[start.tm_wday]} {start.tm_mday} {_MON[start.tm_mon - 1]}"
        headers = [
            ("Date", _rfc_date(ts, 0)), ("From", f"{org.name} (Example Calendar) <{sender}>"),
            ("Reply-To", org.header), ("To", ME), ("Subject", f"Invitation: {title} @ {day}"),
            ("Message-ID", f"<{mid}>"), ("Auto-Submitted", "auto-generated"),
        ]  # fmt: skip
        parts = [_text_entity(text, "plain", "UTF-8", "7bit"),
                 _text_entity(ics, "calendar", "UTF-8", "7bit", "; method=REQUEST")]  # fmt: skip
        entity = _multipart("alternative", parts, self._boundary())
        return [self._auto_msg(headers, entity, sender, "calendar", "Category Updates", ts, mid=mid)]

    def _bounce(self) -> list[GeneratedMessage]:
        """Alex mails a mistyped address; the mail server returns it."""
        ctx = self._new_ctx("work", "meeting")
        p = ctx.people[0]
        typo = p.addr.replace("@", "x@", 1)
        ctx.people = [replace(p, addr=typo, header=f"{p.name} <{typo}>")]
        sent = self._alex_turn(ctx, client="gmail")
        ts, mid, daemon = ctx.ts + 5, self._msgid("", "mail.example.org"), "MAILER-DAEMON@mail.example.org"
        report = (
            f"Reporting-MTA: dns; mail.example.org\nArrival-Date: {_rfc_date(ctx.ts, 0)}\n\n"
            f"Final-Recipient: rfc822; {typo}\nOriginal-Recipient: rfc822;{typo}\nAction: failed\n"
            f"Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <{typo}>: Recipient address rejected: "
            "User unknown in virtual mailbox table\n"
        )
        text = (
            "This is the mail system at host mail.example.org.\n\nI'm sorry to have to inform you that your "
            "message could not be delivered to one or more recipients.\n\n"
            f"<{typo}>: host mx.example.org said: 550 5.1.1 User unknown\n"
        )
        parts = [_text_entity(text, "plain", "us-ascii", "7bit"),
                 ("Content-Type: message/delivery-status\n", report.encode()),
                 ("Content-Type: message/rfc822\n", sent.raw.replace(b"\r\n", b"\n"))]  # fmt: skip
        entity = _multipart("report", parts, self._boundary(), params="; report-type=delivery-status")
        headers = [
            ("Date", _rfc_date(ts, 0)), ("From", f"Mail Delivery System <{daemon}>"), ("To", ME),
            ("Subject", "Undelivered Mail Returned to Sender"), ("Message-ID", f"<{mid}>"),
            ("Auto-Submitted", "auto-replied"),
        ]  # fmt: skip
        return [sent, self._auto_msg(headers, entity, daemon, "bounce", "", ts, ctx.key, mid)]

    # -- mailing lists --------------------------------------------------------------------------------

    def _list_headers(self, dev: bool, ts: int) -> list[tuple[str, str]]:
        if dev:
            return [
                ("List-Id", "Dev List <dev.lists.example.org>"),
                ("Mailing-list", "list dev@lists.example.org; contact dev+owners@lists.example.org"),
                ("List-Post", "<mailto:dev@lists.example.org>"),
                ("List-Unsubscribe", "<mailto:dev+unsubscribe@lists.example.org>"),
                ("Precedence", "list"),
            ]
        return [
            ("List-Id", "Hikers mailing list <hikers.lists.example.net>"),
            ("List-Post", "<mailto:hikers@lists.example.net>"),
            ("Precedence", "list"),
            (
                "List-Unsubscribe",
                "<https://lists.example.net/mailman/options/hikers>,\n "
                "<mailto:hikers-request@lists.example.net?subject=unsubscribe>",
            ),
        ]

    def _dev_thread(self, me: bool = False) -> list[GeneratedMessage]:
        rng = self.rng
        s = self._slots()
        subj_t, body_t = rng.choice(_DEV_TOPICS)
        subject = subj_t.format_map(s)
        key, ts = self._key(), self._start()
        poster = rng.choice(_DEV_POSTERS)
        msgs, refs = [], []
        n_replies = rng.randrange(1, 4) if not me else 1
        authors = [poster] + [
            None if me and i == n_replies - 1 else rng.choice(_DEV_POSTERS) for i in range(n_replies)
        ]
        if not me and rng.random() < 0.25:
            authors[-1] = None
        for i, author in enumerate(authors):
            msgs.append(self._dev_post(author, subject, s, body_t if i == 0 else "", refs, key, ts))
            ts += rng.randrange(600, 86400)
        return msgs

    def _dev_words(self, author: _Person | None, body_t: str, s: dict[str, str]) -> tuple[str, list[str]]:
        """(own words, paragraphs) of a Dev List post."""
        rng = self.rng
        if author is None:
            paras = [rng.choice(_ALEX_DEV_REPLIES).format_map(s)]
            hello = "Hi all," if rng.random() < 0.6 else ""
            bye = "Best,\nAlex" if rng.random() < 0.6 else "Thanks!\nAlex"
        else:
            paras = [(body_t or rng.choice(_DEV_REPLIES)).format_map(s)]
            hello, bye = ("Hi all," if body_t else ""), f"Thanks,\n{author.first}"
        return "\n\n".join(x for x in (hello, *paras, bye) if x), paras

    def _dev_post(
        self, author: _Person | None, subject: str, s: dict[str, str], body_t: str, refs: list[str], key: str,
        ts: int,
    ) -> GeneratedMessage:  # fmt: skip
        """A post through the Dev List, which rewrites From ("Name via Dev List") and sets Reply-To."""
        own, _ = self._dev_words(author, body_t, s)
        me = author is None
        who = author or _ME_PERSON
        name, addr, client, tz = who.name, who.addr, who.client, _alex_tz(ts) if me else who.tz
        mid = self._msgid(client, addr.split("@", 1)[1])
        headers = self._received("dev@lists.example.org", ts) + [
            ("Date", _rfc_date(ts, tz)), ("From", f'"{name} via Dev List" <dev@lists.example.org>'),
            ("Reply-To", f"{name} <{addr}>"), ("To", "Dev List <dev@lists.example.org>"),
            ("Subject", ("Re: " if refs else "") + subject), ("Message-ID", f"<{mid}>"),
        ]  # fmt: skip
        if refs:
            headers += [("In-Reply-To", f"<{refs[-1]}>"), ("References", _fold_refs(refs))]
        headers += [("X-Original-Sender", addr), *self._list_headers(True, ts)]
        raw = _render(headers, self._plain_entity(own + "\n\n" + _DEV_FOOTER, "gmail"))
        refs.append(mid)
        labels = ("Inbox", "Category Forums") if me else self._labels("Inbox", False, "Category Forums")
        variant, bounce = ("list_munged_me" if me else "list_munged"), "dev+bncBAABBQ@lists.example.org"
        return GeneratedMessage(raw, "list_munged", me, "Inbox", mid, own if me else None, key, None, variant,
                                labels, ts, bounce)  # fmt: skip

    def _hikers_thread(self, me: bool = False) -> list[GeneratedMessage]:
        rng = self.rng
        s = self._slots()
        subj_t, body_t = rng.choice(_HIKER_TOPICS)
        subject = "[Hikers] " + subj_t.format_map(s)
        key, ts = self._key(), self._start()
        refs: list[str] = []
        out = [self._hiker_post(rng.choice(_HIKERS), subject, body_t.format_map(s), refs, key, ts)]
        for _ in range(rng.randrange(0, 3) if not me else 0):
            ts += rng.randrange(600, 86400)
            out.append(self._hiker_post(rng.choice(_HIKERS), subject, "I'm in!", refs, key, ts))
        if me or rng.random() < 0.3:
            ts += rng.randrange(600, 86400)
            out.append(
                self._hiker_post(
                    None,
                    subject,
                    rng.choice(
                        (
                            "Count me in! I can bring an extra pair of poles if anyone needs them.",
                            "I have a spare seat too, leaving from the north side.",
                            "Not this time, but have fun everyone!",
                        )
                    ),
                    refs,
                    key,
                    ts,
                )
            )
        return out

    def _hiker_post(
        self, author: _Person | None, subject: str, para: str, refs: list[str], key: str, ts: int
    ) -> GeneratedMessage:
        """A post to the Hikers list (Mailman, From kept); Alex's own posts are his Sent copies."""
        me = author is None
        who = author or replace(_ME_PERSON, addr=ME_ALIAS, header=ME_ALIAS_FULL)
        own = f"Hi all,\n\n{para}\n\nCheers,\nAlex" if me else f"{para}\n\n{who.first}"
        client = "gmail" if me or who.client == "webmail" else who.client
        mid = self._msgid(client, who.addr.split("@", 1)[1])
        headers = [
            ("Date", _rfc_date(ts, _alex_tz(ts) if me else who.tz)), ("From", who.header),
            ("To", "hikers@lists.example.net"), ("Subject", ("Re: " if refs else "") + subject),
            ("Message-ID", f"<{mid}>"),
        ]  # fmt: skip
        if refs:
            headers += [("In-Reply-To", f"<{refs[-1]}>"), ("References", _fold_refs(refs))]
        if not me:
            headers = self._received("hikers-bounces@lists.example.net", ts) + headers
            headers += self._list_headers(False, ts)
        raw = _render(headers, self._plain_entity(own if me else own + "\n\n" + _HIKERS_FOOTER, "gmail"))
        refs.append(mid)
        folder, variant = ("Sent", "hikers_me") if me else ("Inbox", "list")
        labels = self._labels(folder, me, "Category Forums")
        own_text = own if me else None
        return GeneratedMessage(
            raw, "list", me, folder, mid, own_text, key, None, variant, labels, ts, who.addr
        )

    def _digest(self) -> list[GeneratedMessage]:
        rng = self.rng
        self.issue["digest"] += 1
        n, ts = self.issue["digest"], self._start()
        posts = [
            (rng.choice(_DEV_POSTERS), t.format_map(self._slots())) for t, _ in rng.sample(_DEV_TOPICS, 3)
        ]
        topics = "\n".join(f"   {i + 1}. {t} ({p.name})" for i, (p, t) in enumerate(posts))
        bodies = "\n\n------------------------------\n\n".join(
            f"Message: {i + 1}\nDate: {_rfc_date(ts - 3600 * (i + 1), p.tz)}\nFrom: {p.name} <{p.addr}>\n"
            f"Subject: {t}\n\n{rng.choice(_DEV_REPLIES).format_map(self._slots())}"
            for i, (p, t) in enumerate(posts)
        )
        text = (
            "Send pyusers mailing list submissions to\n\tpyusers@lists.example.com\n\n"
            f"Today's Topics:\n\n{topics}\n\n\n{'-' * 70}\n\n{bodies}\n\n"
            f"End of pyusers Digest, Vol 4, Issue {n}\n{'*' * 40}\n"
        )
        mid = self._msgid("", "lists.example.com")
        headers = [
            ("Date", _rfc_date(ts, 0)), ("From", "pyusers-request@lists.example.com"), ("To", ME),
            ("Subject", f"pyusers Digest, Vol 4, Issue {n}"), ("Message-ID", f"<{mid}>"),
            ("List-Id", "Local Python users <pyusers.lists.example.com>"), ("Precedence", "list"),
        ]  # fmt: skip
        bounce = "pyusers-bounces@lists.example.com"
        raw = _render(self._received(bounce, ts) + headers, _text_entity(text, "plain", "us-ascii", "7bit"))
        labels = self._labels("Inbox", False, "Category Forums")
        key = self._key()
        return [
            GeneratedMessage(raw, "list", False, "Inbox", mid, None, key, None, "digest", labels, ts, bounce)
        ]

    # -- charsets -------------------------------------------------------------------------------------

    def _charset(self, variant: str) -> list[GeneratedMessage]:
        spec = _CHARSET_VARIANTS[variant]
        if spec.me:
            return [self._charset_me(variant, spec)]
        first = self._charset_received(variant, spec)
        return first

    def _charset_me(self, variant: str, spec: _CharsetSpec) -> GeneratedMessage:
        """Alex's own mail in a telling charset (Outlook windows-1252, mislabelled, emoji, split subject)."""
        p, ts, own = _PEOPLE[spec.person], self._start(), spec.text
        emoji = variant == "utf8_emoji"
        mid = self._msgid(spec.client, "morgan.example" if emoji else "example.org")
        frm, addr = (ME_ALIAS_FULL, ME_ALIAS) if emoji else (ME, ME_ADDR)
        subj = self._subject_header(spec.subject)
        if variant == "rfc2047_split":
            subj = _ew(spec.subject[:23], "UTF-8", "Q") + "\n " + _ew(spec.subject[23:], "UTF-8", "Q")
        headers = [("Date", _rfc_date(ts, _alex_tz(ts))), ("From", frm), ("To", p.header), ("Subject", subj),
                   ("Message-ID", f"<{mid}>")]  # fmt: skip
        if spec.client == "outlook":
            headers.append(("X-Mailer", "Microsoft Outlook 16.0"))
        text = own + ("\n\n" + _SIG_OUTLOOK if spec.client == "outlook" else "")
        entity = _text_entity(text, "plain", spec.charset, spec.cte, codec=spec.codec)
        if emoji:
            html = self._html_entity(_compose_html(own, "", "", None, "gmail"), "gmail")
            entity = _multipart("alternative", [entity, html], self._boundary())
        raw = _render(headers, entity, nl=_CLIENTS[spec.client][2])
        key = self._key()
        return GeneratedMessage(
            raw, "charset", True, "Sent", mid, own, key, None, variant, ("Sent",), ts, addr
        )

    def _charset_received(self, variant: str, spec: _CharsetSpec) -> list[GeneratedMessage]:
        """A colleague writes in their own charset; sometimes Alex answers (in English, quoting it)."""
        rng, p = self.rng, _PEOPLE[spec.person]
        ctx = self._new_ctx("work", "meeting")
        ctx.people, ctx.subject, ts = [p], spec.subject, ctx.ts
        mid = self._msgid(p.client, p.addr.split("@", 1)[1])
        display = _ew(spec.name, spec.charset.lower(), "B") if spec.name else p.header.split(" <")[0]
        subj_enc = "Q" if spec.charset.lower().startswith("iso-8859") else "B"
        headers = self._received(p.addr, ts) + [
            ("Date", _rfc_date(ts, p.tz)), ("From", f"{display} <{p.addr}>"), ("To", ME),
            ("Subject", _ew(spec.subject, spec.charset.lower(), subj_enc)), ("Message-ID", f"<{mid}>"),
        ]  # fmt: skip
        raw = _render(headers, _text_entity(spec.text, "plain", spec.charset, spec.cte))
        labels = self._labels("Inbox", False)
        first = GeneratedMessage(
            raw, "charset", False, "Inbox", mid, None, ctx.key, None, variant, labels, ts, p.addr
        )
        paras = spec.text.split("\n\n")[1:-1]
        ctx.prev = _Prev(
            p.name, p.addr, p.header, ME, ts, p.tz, spec.subject, mid, [], spec.text, None, paras
        )
        ctx.turns = 1
        if rng.random() < 0.6:
            return [first]
        ctx.ts += rng.randrange(600, 86400)
        return [first, self._alex_turn(ctx, paras=[rng.choice(spec.replies)])]

    # -- hard cases -----------------------------------------------------------------------------------

    def _oneoff(self, me: bool, client: str = "") -> tuple[_Ctx, GeneratedMessage]:
        ctx = self._new_ctx("work" if self.rng.random() < 0.7 else "personal")
        ctx.alias = False
        if me:
            return ctx, self._alex_turn(ctx, client=client)
        return ctx, self._other_turn(ctx, ctx.people[0])

    def _mutate(self, msg: GeneratedMessage, case: str, header: str, value: str | None) -> GeneratedMessage:
        raw = _set_header(msg.raw, header, value)
        kind = (
            "no_headers"
            if case.startswith("missing_")
            else ("broken" if case == "garbage_date" else msg.kind)
        )
        mid = None if case == "missing_message_id" else msg.message_id
        return replace(msg, raw=raw, kind=kind, hard_case=case, message_id=mid)

    def _h_missing(self, header: str, case: str) -> list[GeneratedMessage]:
        _, msg = self._oneoff(self._alternate(case))
        return [self._mutate(msg, case, header, None)]

    def _h_garbage_date(self) -> list[GeneratedMessage]:
        _, msg = self._oneoff(self._alternate("garbage_date"))
        value = self.rng.choice(
            (
                "sometime last tuesday",
                "32 Foo 2021 25:61:00 +9999",
                "Mon, 2 Jan 0000 00:00:00",
                str(msg.timestamp),
                "2023-13-45T99:99:99",
                "Tue, 31 Feb 2023 10:00:00 GMT+25",
            )
        )
        return [self._mutate(msg, "garbage_date", "Date", value)]

    def _h_duplicate(self) -> list[GeneratedMessage]:
        out = []
        original = self.last_sent
        if original is None:
            _, original = self._oneoff(True)
            out.append(original)
        copy = replace(original, folder="Archive", hard_case="duplicate", labels=("Archived",))
        return out + [copy]

    def _h_from_line(self) -> list[GeneratedMessage]:
        rng = self.rng
        ctx = self._new_ctx("work", rng.choice(("status", "review", "budget")))
        if self._alternate("from_line"):
            paras = [
                "From what I can tell, the numbers add up. {colleague} double-checked the totals.".format_map(
                    ctx.slots
                ),
                "From now on, let's keep the working copy in the shared folder\nso we don't lose edits.",
            ]
            msg = self._alex_turn(ctx, paras=paras, client=rng.choice(("iphone", "thunderbird")))
            return [replace(msg, hard_case="from_line", variant="from_line")]
        p = ctx.people[0]
        paras = [
            ">From the release notes: the v1 export API will be removed in {quarter}.".format_map(ctx.slots),
            "From my side that's fine, but we should tell the {team} team.".format_map(ctx.slots),
        ]
        return [self._plain_from(ctx, p, paras)]

    def _plain_from(self, ctx: _Ctx, p: _Person, paras: list[str]) -> GeneratedMessage:
        own = self._other_words(p, paras)
        mid = self._msgid(p.client, p.addr.split("@", 1)[1])
        headers = self._received(p.addr, ctx.ts) + [
            ("Date", _rfc_date(ctx.ts, p.tz)),
            ("From", p.header),
            ("To", ME),
            ("Subject", ctx.subject),
            ("Message-ID", f"<{mid}>"),
        ]
        raw = _render(headers, _simple_text(own))
        return GeneratedMessage(
            raw,
            "plain",
            False,
            "Inbox",
            mid,
            None,
            ctx.key,
            "from_line",
            "from_line_gt",
            self._labels("Inbox", False),
            ctx.ts,
            p.addr,
        )

    def _broken_base(self, who: str = "") -> tuple[_Ctx, _Person, list[tuple[str, str]], str]:
        ctx = self._new_ctx("work")
        p = _PEOPLE[who] if who else ctx.people[0]
        mid = self._msgid(p.client, p.addr.split("@", 1)[1])
        headers = self._received(p.addr, ctx.ts) + [
            ("Date", _rfc_date(ctx.ts, p.tz)),
            ("From", p.header),
            ("To", ME),
            ("Subject", ctx.subject),
            ("Message-ID", f"<{mid}>"),
        ]
        return ctx, p, headers, mid

    def _broken_msg(self, ctx: _Ctx, p: _Person, raw: bytes, mid: str, case: str) -> list[GeneratedMessage]:
        return [
            GeneratedMessage(
                raw,
                "broken",
                False,
                "Inbox",
                mid,
                None,
                ctx.key,
                case,
                case,
                self._labels("Inbox", False),
                ctx.ts,
                p.addr,
            )
        ]

    def _h_unclosed_boundary(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base()
        text = self._other_words(p, [self.rng.choice(ctx.topic.o1).format_map(ctx.slots)])
        blob = self._blob("pdf", 6000)
        cut = blob[: len(blob) // 2 - 13]  # the transfer was cut off mid-attachment
        entity = _multipart(
            "mixed",
            [_text_entity(text, "plain", "UTF-8", "7bit"), _attachment("application/pdf", "draft.pdf", cut)],
            self._boundary(),
            close=False,
        )
        return self._broken_msg(ctx, p, _render(headers, entity), mid, "unclosed_boundary")

    def _h_bad_base64(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base()
        text = self._other_words(p, [self.rng.choice(ctx.topic.o1).format_map(ctx.slots)])
        enc = _b64(text.encode())
        bad = enc[:20] + b"!!%%" + enc[20:-4] + b"\xe9*\n"  # junk characters, broken padding
        entity = _text_entity("", "plain", "UTF-8", "base64")
        return self._broken_msg(ctx, p, _render(headers, (entity[0], bad)), mid, "bad_base64")

    def _h_uuencode(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base()
        text = self._other_words(p, [self.rng.choice(ctx.topic.o1).format_map(ctx.slots)]).encode()
        lines = b"".join(binascii.b2a_uu(text[i : i + 45]) for i in range(0, len(text), 45))
        body = b"begin 644 message.txt\n" + lines + b"`\nend\n"
        hdr = "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: x-uuencode\n"
        return self._broken_msg(ctx, p, _render(headers, (hdr, body)), mid, "uuencode")

    def _h_raw_8bit_header(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base("tomas")
        headers = [
            (
                k,
                f"{p.name} <{p.addr}>"
                if k == "From"
                else "Revisión del presupuesto — año fiscal"
                if k == "Subject"
                else v,
            )
            for k, v in headers
        ]
        text = (
            "Hola Alex,\n\nTe mando la revisión del presupuesto. ¿Podemos hablar el jueves?\n\n"
            "Saludos,\nTomás"
        )
        raw = _render(headers, _text_entity(text, "plain", "UTF-8", "8bit"))
        return self._broken_msg(ctx, p, raw, mid, "raw_8bit_header")

    def _h_subject_8bit(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base("chloe")
        headers = [
            (
                k,
                f"Chlo\udce9 Dubois <{p.addr}>"
                if k == "From"
                else "R\udce9union de jeudi \udce0 10h"
                if k == "Subject"
                else v,
            )
            for k, v in headers
        ]
        text = "Bonjour Alex,\n\nLa réunion de jeudi est confirmée à 10h.\n\nBien à vous,\nChloé"
        raw = _render(headers, _text_entity(text, "plain", "iso-8859-1", "8bit"), codec="ascii")
        return self._broken_msg(ctx, p, raw, mid, "subject_8bit")

    def _h_long_line(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base()
        chunk = ",".join(f'"k{i}":{self.rng.randrange(100000)}' for i in range(120))
        line = ("{" + chunk * (100_000 // len(chunk) + 1))[:100_000] + "}"
        text = f"{p.greet}\n\nHere's the minified config that breaks the build:\n\n{line}\n\n{p.signoff}"
        raw = _render(headers, _simple_text(text))
        return [
            GeneratedMessage(
                raw,
                "plain",
                False,
                "Inbox",
                mid,
                None,
                ctx.key,
                "long_line",
                "long_line",
                self._labels("Inbox", False),
                ctx.ts,
                p.addr,
            )
        ]

    def _h_empty_body(self) -> list[GeneratedMessage]:
        ctx = self._new_ctx("work", "meeting")
        me = self._alternate("empty_body")
        p = ctx.people[0]
        tz, frm, addr = (_alex_tz(ctx.ts), ME, ME_ADDR) if me else (p.tz, p.header, p.addr)
        mid = self._msgid("gmail", addr.split("@", 1)[1])
        headers = [("Date", _rfc_date(ctx.ts, tz)), ("From", frm), ("To", p.header if me else ME),
                   ("Subject", "Call me when you get a chance"), ("Message-ID", f"<{mid}>")]  # fmt: skip
        raw = _render(headers, _text_entity("", "plain", "UTF-8", "7bit"))
        folder, own, case = ("Sent" if me else "Inbox"), ("" if me else None), "empty_body"
        labels, key = self._labels(folder, me), ctx.key
        return [GeneratedMessage(raw, "plain", me, folder, mid, own, key, case, case, labels, ctx.ts, addr)]

    def _huge(self, size: int) -> list[GeneratedMessage]:
        ctx = self._new_ctx("personal", "hike")
        ctx.people = [_PEOPLE["jamie"]]
        ctx.alias = False
        own = "Hi Jamie,\n\nHere's the video from Saturday. It's huge, sorry!\n\nCheers,\nAlex"
        ts, mid = ctx.ts, self._msgid("gmail", "example.org")
        headers = [
            ("Date", _rfc_date(ts, _alex_tz(ts))),
            ("From", ME),
            ("To", _PEOPLE["jamie"].header),
            ("Subject", "Video from Saturday"),
            ("Message-ID", f"<{mid}>"),
        ]
        payload = max(0, (size + 2000) * 57 // 77 + 57)
        blob = _b64(_MAGIC["mov"] + self.rng.randbytes(payload))
        entity = _multipart(
            "mixed",
            [
                _text_entity(own, "plain", "UTF-8", "7bit"),
                _attachment("video/quicktime", "IMG_4410.MOV", blob),
            ],
            self._boundary(),
        )
        raw = _render(headers, entity)
        return [
            GeneratedMessage(
                raw, "huge", True, "Sent", mid, own, ctx.key, None, "huge", ("Sent",), ts, ME_ADDR
            )
        ]

    _HARD: dict[str, Callable[[_Gen], list[GeneratedMessage]]] = {
        "missing_date": lambda g: g._h_missing("Date", "missing_date"),
        "missing_from": lambda g: g._h_missing("From", "missing_from"),
        "missing_message_id": lambda g: g._h_missing("Message-ID", "missing_message_id"),
        "garbage_date": lambda g: g._h_garbage_date(),
        "duplicate": lambda g: g._h_duplicate(),
        "from_line": lambda g: g._h_from_line(),
        "unclosed_boundary": lambda g: g._h_unclosed_boundary(),
        "bad_base64": lambda g: g._h_bad_base64(),
        "uuencode": lambda g: g._h_uuencode(),
        "raw_8bit_header": lambda g: g._h_raw_8bit_header(),
        "subject_8bit": lambda g: g._h_subject_8bit(),
        "long_line": lambda g: g._h_long_line(),
        "empty_body": lambda g: g._h_empty_body(),
    }


def _set_header(raw: bytes, name: str, value: str | None) -> bytes:
    """Replace (or, with None, delete) a top-level header, folded continuation lines included."""
    nl = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    end = raw.find(nl + nl)
    head, body = (raw, b"") if end < 0 else (raw[: end + len(nl)], raw[end + len(nl) :])
    pat = re.compile(rb"^" + re.escape(name.encode()) + rb":[^\n]*\n(?:[ \t][^\n]*\n)*", re.I | re.M)
    new = b"" if value is None else f"{name}: {value}".encode() + nl
    return pat.sub(lambda _: new, head, count=1) + body


class _CharsetSpec(NamedTuple):
    me: bool
    person: str
    charset: str
    cte: str
    subject: str
    text: str
    client: str = "gmail"
    codec: str | None = None  # what the bytes really are when the label lies
    name: str = ""  # the sender's name in their script, RFC 2047 encoded in From
    replies: tuple[str, ...] = ()


_CHARSET_VARIANTS: dict[str, _CharsetSpec] = {
    "latin1_qp": _CharsetSpec(
        False, "chloe", "iso-8859-1", "quoted-printable", "Réunion de jeudi",
        "Bonjour Alex,\n\nMerci pour le compte-rendu de la réunion. Je préfère la deuxième option, mais il "
        "faudrait revoir le budget prévu pour l'été.\n\nÀ bientôt,\nChloé",
        replies=("Thanks Chloé! Let's go with the second option then, I'll rework the summer budget.",)),
    "german_latin1": _CharsetSpec(
        False, "hannah", "ISO-8859-1", "quoted-printable", "Kurze Frage zum Entwurf",
        "Hallo Alex,\n\ndanke für die schnelle Rückmeldung! Können wir das Gespräch auf Donnerstag "
        "verschieben? Ich schicke dir vorher die überarbeitete Übersicht.\n\nViele Grüße\nHannah",
        replies=("Sure, Thursday works. Thanks for sending the overview!",)),
    "koi8r": _CharsetSpec(
        False, "olga", "koi8-r", "base64", "Отчёт за квартал",
        "Привет, Алекс!\n\nОтправляю отчёт за квартал. Посмотри, пожалуйста, раздел про бюджет, там есть "
        "вопросы.\n\nВстреча в четверг в силе?\n\nСпасибо,\nОльга", name="Ольга Петрова",
        replies=("Thanks Olga! Thursday is still on. I'll look at the budget section tonight.",)),
    "iso2022jp": _CharsetSpec(
        False, "kenji", "ISO-2022-JP", "7bit", "来週の打ち合わせについて",
        "アレックスさん\n\nお疲れ様です。渡辺です。\n\n来週の打ち合わせの資料を共有します。木曜日の午後は空いて"
        "いますか？\n\nよろしくお願いします。\n渡辺", name="渡辺 健二",
        replies=("Thanks Kenji, Thursday afternoon works for me.",)),
    "shift_jis": _CharsetSpec(
        False, "kenji", "Shift_JIS", "base64", "資料の確認",
        "アレックスさん\n\n資料を確認しました。特に問題はありません。\n\nよろしくお願いします。\n渡辺",
        name="渡辺 健二", replies=("Great, thank you for checking!",)),
    "gb2312": _CharsetSpec(
        False, "wei", "gb2312", "base64", "下周会议议程",
        "Alex，你好！\n\n附件是下周会议的议程，请查收。如果有问题，请随时告诉我。\n\n谢谢！\n张伟",
        name="张伟",
        replies=("Thanks Wei, the agenda looks good.",)),
    "cp1252_qp": _CharsetSpec(
        True, "maya", "Windows-1252", "quoted-printable", "Updated proposal",
        "Hi Maya,\n\nThanks for the “final” version – it reads much better now. A couple of small things…\n\n"
        "- The “Next steps” section still says March\n- Could we add the pricing table from last week’s deck?"
        "\n\nBest,\nAlex", client="outlook"),
    "mislabelled": _CharsetSpec(
        True, "felix", "iso-8859-1", "8bit", "Weekend plans",
        "Hi Felix,\n\nThe naïve estimate was €1,200 for the whole weekend, not bad at all. The cabin "
        "near the lake is free on the 14th — shall I book it?\n\nCheers,\nAlex",
        client="thunderbird", codec="utf-8"),
    "utf8_emoji": _CharsetSpec(
        True, "emma", "UTF-8", "quoted-printable", "Merci pour le tuyau 🙏",
        "Hi Emma,\n\nThe café you recommended was amazing, thank you! 😊 We're back on Sunday, let's do "
        "brunch soon 🥐\n\nCheers,\nAlex"),
    "rfc2047_split": _CharsetSpec(
        True, "sofia", "UTF-8", "quoted-printable", "Résumé review — notes from Thursday’s café meeting",
        "Hi Sofia,\n\nHere are my notes from the café meeting. The résumé looks strong; I'd only shorten the "
        "first section.\n\nBest,\nAlex"),
}  # fmt: skip


# --- public API ----------------------------------------------------------------------------------------


def iter_messages(n: int, seed: int = 0, **kw: object) -> Iterator[GeneratedMessage]:
    """Stream ``n`` messages in constant memory (kw: hard_cases, huge_bytes as for generate_messages)."""
    hard = bool(kw.pop("hard_cases", True))
    huge = int(kw.pop("huge_bytes", 0))  # type: ignore[call-overload]
    bulk = bool(kw.pop("_bulk", False))
    span_n = int(kw.pop("_span_n", 0))  # type: ignore[call-overload]
    if kw:
        raise TypeError(f"unexpected arguments: {', '.join(kw)}")
    return iter(_Gen(n, seed, hard, huge, bulk, span_n))


def generate_messages(
    n: int, seed: int = 0, *, hard_cases: bool = True, huge_bytes: int = 0
) -> list[GeneratedMessage]:
    """``n`` messages of Alex Morgan's mailbox, byte-identical for a given seed.

    ``huge_bytes`` > 0 makes one of them (half-way through) a message of at least that many bytes.
    """
    return list(iter_messages(n, seed, hard_cases=hard_cases, huge_bytes=huge_bytes))


_MBOXRD = re.compile(rb"^(>*From )", re.M)
_MBOXO = re.compile(rb"^From ", re.M)


def _mbox_entry(m: GeneratedMessage, i: int, gmail_labels: bool, rd: bool) -> bytes:
    raw = m.raw.replace(b"\r\n", b"\n") if b"\r" in m.raw else m.raw
    if b"From " in raw:
        raw = _MBOXRD.sub(rb">\1", raw) if rd else _MBOXO.sub(b">From ", raw)
    when = time.asctime(time.gmtime(m.timestamp or _START))
    sender = m.envelope_from if m.envelope_from and i % 9 != 4 else "-"
    head = f"From {sender} {when}\n"
    if gmail_labels:
        key = m.thread_key.encode()
        thrid = (zlib.crc32(key) << 28) | zlib.crc32(key[::-1], 7) & 0xFFFFFFF
        head += f"X-GM-THRID: {thrid}\nX-Gmail-Labels: {','.join(m.labels or (m.folder,))}\n"
    return head.encode() + raw + (b"\n" if raw.endswith(b"\n") else b"\n\n")


def write_mbox(
    path: str | os.PathLike[str],
    messages: Iterable[GeneratedMessage],
    *,
    gmail_labels: bool = True,
    style: str = "mboxrd",
) -> int:
    """Write an mbox (LF line endings, ``From `` lines escaped per ``style``); return the bytes written."""
    if style not in ("mboxrd", "mboxo"):
        raise ValueError(f"style must be 'mboxrd' or 'mboxo', not {style!r}")
    rd = style == "mboxrd"
    total = 0
    with open(path, "wb", buffering=1 << 20) as f:
        for i, m in enumerate(messages):
            chunk = _mbox_entry(m, i, gmail_labels, rd)
            f.write(chunk)
            total += len(chunk)
    return total


def write_maildir(
    root: str | os.PathLike[str], messages: Iterable[GeneratedMessage], *, layout: str = "maildir++"
) -> int:
    """Write a maildir: Inbox at ``root`` and other folders as ``.Sent`` etc. (Maildir++), or with
    ``layout="plain"`` every folder as ``root/<Folder>``. Unread mail goes to ``new/``. Returns the count."""
    root = Path(root)
    made: set[Path] = set()
    count = 0
    for i, m in enumerate(messages, 1):
        inbox = m.folder == "Inbox"
        box = root / m.folder if layout == "plain" else root if inbox else root / f".{m.folder}"
        if box not in made:
            for sub in ("cur", "new", "tmp"):
                (box / sub).mkdir(parents=True, exist_ok=True)
            made.add(box)
        ts = m.timestamp or _START
        unread = "Unread" in m.labels
        name = f"{ts}.M{i}P1.mailvoice" + ("" if unread else ":2,S")
        (box / ("new" if unread else "cur") / name).write_bytes(m.raw)
        count += 1
    if not made:
        for sub in ("cur", "new", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
    return count


def write_eml_folder(root: str | os.PathLike[str], messages: Iterable[GeneratedMessage]) -> int:
    """One ``.eml`` file per message, in a subfolder named after its folder. Returns the count."""
    root = Path(root)
    count = 0
    for i, m in enumerate(messages, 1):
        folder = root / m.folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:06d}.eml").write_bytes(m.raw)
        count += 1
    return count


_ENRON_USER = "morgan-a"
_ENRON_SENT = ("sent", "_sent_mail", "sent_items")
_ENRON_FOLDERS = {"Inbox": "inbox", "Archive": "all_documents", "Drafts": "drafts"}
_FROM_HDR = re.compile(rb"^From:[ \t]*([^\r\n]*)", re.M | re.I)
_TO_HDR = re.compile(rb"^To:[ \t]*([^\r\n]*)", re.M | re.I)


def _enron_name(value: bytes) -> str:
    text = value.decode("utf-8", "replace")
    name, _, addr = text.rpartition("<")
    return (name.strip().strip('"') or addr.rstrip(">").strip()) if addr else text.strip()


def _enron_bytes(m: GeneratedMessage, folder: str) -> bytes:
    nl = b"\r\n" if b"\r\n" in m.raw[:2000] else b"\n"
    end = m.raw.find(nl + nl)
    head, body = (m.raw, b"") if end < 0 else (m.raw[:end], m.raw[end:])
    fm, to = _FROM_HDR.search(head), _TO_HDR.search(head)
    label = "'Sent Mail" if folder in _ENRON_SENT else folder.replace("_", " ").title()
    extra = [
        f"X-From: {_enron_name(fm.group(1)) if fm else ''}",
        f"X-To: {_enron_name(to.group(1)) if to else ''}",
        "X-cc: ",
        "X-bcc: ",
        f"X-Folder: \\Alex_Morgan_Dec2023\\Morgan, Alex\\{label}",
        "X-Origin: Morgan-A",
        "X-FileName: amorgan (Non-Privileged).pst",
    ]
    return head + nl + nl.join(x.encode() for x in extra) + (body or nl + nl)


def write_enron_folder(root: str | os.PathLike[str], messages: Iterable[GeneratedMessage]) -> int:
    """CMU Enron layout: ``root/morgan-a/<folder>/<n>.`` with X-Folder/X-From headers. Returns the count."""
    base = Path(root) / _ENRON_USER
    counters: dict[str, int] = {}
    count = 0
    for i, m in enumerate(messages):
        folder = _ENRON_SENT[i % 3] if m.folder == "Sent" else _ENRON_FOLDERS.get(m.folder, m.folder.lower())
        counters[folder] = counters.get(folder, 0) + 1
        (base / folder).mkdir(parents=True, exist_ok=True)
        (base / folder / f"{counters[folder]}.").write_bytes(_enron_bytes(m, folder))
        count += 1
    return count


def write_mbox_bytes_target(path: str | os.PathLike[str], target_bytes: int, seed: int = 0) -> int:
    """Stream attachment-heavy messages (like a real Takeout) into an mbox until it holds ``target_bytes``."""
    total = 0
    stream = iter_messages(1 << 62, seed, _bulk=True, _span_n=max(1000, target_bytes // 60_000))
    with open(path, "wb", buffering=1 << 22) as f:
        for i, m in enumerate(stream):
            if total >= target_bytes:
                break
            chunk = _mbox_entry(m, i, True, True)
            f.write(chunk)
            total += len(chunk)
    return total
