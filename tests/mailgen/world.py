"""The generated mailbox's world: its owner Alex Morgan, the people who write to him, the topics, the
slot values the templates draw from, the names of days and months, and the charset samples."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import NamedTuple

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


# --- charset samples ------------------------------------------------------------------------------------


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
