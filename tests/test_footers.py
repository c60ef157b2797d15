"""Mailing-list footers: removed wherever they are (own text, quotes, a MIME part of their own), per list
server, while a person's own words about unsubscribing stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.mail.clean import clean_body
from assistant.mail.footers import strip_footers
from assistant.mail.parse import parse_message

MAILMAN3 = (
    "_______________________________________________\n"
    "Linaro-mm-sig mailing list -- linaro-mm-sig@lists.linaro.org\n"
    "To unsubscribe send an email to linaro-mm-sig-leave@lists.linaro.org"
)
MAILMAN2 = (
    "_______________________________________________\n"
    "dri-devel mailing list\n"
    "dri-devel@lists.freedesktop.org\n"
    "https://lists.freedesktop.org/mailman/listinfo/dri-devel"
)
GOOGLE_GROUPS = (
    "-- \n"
    'You received this message because you are subscribed to the Google Groups "Hikers" group.\n'
    "To unsubscribe from this group and stop receiving emails from it, send an email to "
    "hikers+unsubscribe@googlegroups.com.\n"
    "To view this discussion on the web visit https://groups.google.com/d/msgid/hikers/abc%40mail.example.com.\n"
    "For more options, visit https://groups.google.com/d/optout."
)
GOOGLE_GROUPS_OLD = (
    "--~--~---------~--~----~------------~-------~--~----~\n"
    'You received this message because you are subscribed to the Google Groups "Hikers" group.\n'
    "To post to this group, send email to hikers@googlegroups.com\n"
    "To unsubscribe from this group, send email to hikers+unsubscribe@googlegroups.com\n"
    "For more options, visit this group at http://groups.google.com/group/hikers?hl=en\n"
    "-~----------~----~----~----~------~----~------~--~---"
)
GROUPS_IO = (
    "-=-=-=-=-=-=-=-=-=-=-=-\n"
    "Groups.io Links: You receive all messages sent to this group.\n"
    "View/Reply Online (#4242): https://groups.io/g/hikers/message/4242\n"
    "Mute This Topic: https://groups.io/mt/12345/67890\n"
    "Group Owner: hikers+owner@groups.io\n"
    "Unsubscribe: https://groups.io/g/hikers/unsub [me@example.com]\n"
    "-=-=-=-=-=-=-=-=-=-=-=-"
)
SYMPA = (
    "--\n"
    "You received this message as a subscriber on the list:\n"
    "     hikers@lists.example.org\n"
    "To unsubscribe, send a message to sympa@lists.example.org with the subject: unsubscribe hikers"
)
LISTSERV = (
    "########################################################################\n"
    "\n"
    "To unsubscribe from the HIKERS-L list, click the following link:\n"
    "https://listserv.example.edu/cgi-bin/wa?SUBED1=HIKERS-L&A=1"
)
EZMLM = (
    "---------------------------------------------------------------------\n"
    "To unsubscribe, e-mail: dev-unsubscribe@maven.apache.org\n"
    "For additional commands, e-mail: dev-help@maven.apache.org"
)
EZMLM_WITH_BLURB = (
    "---------------------------------------------------------------------\n"
    "The official User-To-User support forum of the Apache HTTP Server Project.\n"
    "See <URL:http://httpd.apache.org/userslist.html> for more info.\n"
    "To unsubscribe, e-mail: users-unsubscribe@httpd.apache.org\n"
    '   "   from the digest: users-digest-unsubscribe@httpd.apache.org\n'
    "For additional commands, e-mail: users-help@httpd.apache.org"
)
MAJORDOMO = (
    "--\n"
    'To unsubscribe from this list: send the line "unsubscribe linux-kernel" in\n'
    "the body of a message to majordomo@vger.kernel.org\n"
    "More majordomo info at  http://vger.kernel.org/majordomo-info.html\n"
    "Please read the FAQ at  http://www.tux.org/lkml/"
)
YAHOO = (
    "To unsubscribe from this group, send an email to:\n"
    "hikers-unsubscribe@yahoogroups.com\n"
    "\n"
    "Your use of Yahoo! Groups is subject to http://docs.yahoo.com/info/terms/"
)

FOOTERS = {
    "mailman3": MAILMAN3,
    "mailman2": MAILMAN2,
    "google-groups": GOOGLE_GROUPS,
    "google-groups-2009": GOOGLE_GROUPS_OLD,
    "groups.io": GROUPS_IO,
    "sympa": SYMPA,
    "listserv": LISTSERV,
    "ezmlm": EZMLM,
    "ezmlm-with-blurb": EZMLM_WITH_BLURB,
    "majordomo": MAJORDOMO,
    "yahoo-groups": YAHOO,
}
OWN = "Hi all,\n\nThe fence patch looks fine to me.\n\nThanks,\nJo"


def quote(text: str, marker: str = "> ") -> str:
    return "\n".join((marker + line).rstrip() for line in text.split("\n"))


@pytest.mark.parametrize("software", FOOTERS)
def test_footer_appended_to_the_body_is_removed(software):
    assert strip_footers(f"{OWN}\n\n{FOOTERS[software]}\n") == f"{OWN}\n\n"


@pytest.mark.parametrize("software", FOOTERS)
def test_footer_inside_a_quote_is_removed_and_the_rest_kept(software):
    answered = "Can someone review the fence patch?\n\nAnn"
    body = f"On Mon, Jo wrote:\n{quote(answered)}\n>\n{quote(FOOTERS[software])}\n\nLooks good to me.\n"
    expected = f"On Mon, Jo wrote:\n{quote(answered)}\n\nLooks good to me.\n"
    assert strip_footers(body) == expected


@pytest.mark.parametrize("software", ["mailman3", "mailman2", "ezmlm", "google-groups"])
def test_footer_two_quote_levels_deep_is_removed(software):
    body = f"> > Ann wrote the first line.\n> >\n{quote(FOOTERS[software], '> > ')}\n> Reply in between.\n"
    assert strip_footers(body) == "> > Ann wrote the first line.\n> Reply in between.\n"


def test_footer_right_under_a_signature_keeps_the_signature():
    body = f"Sounds good.\n\n-- \nDaniel Vetter\nSoftware Engineer\nhttp://blog.example.ch\n{MAILMAN3}\n"
    assert strip_footers(body) == "Sounds good.\n\n-- \nDaniel Vetter\nSoftware Engineer\nhttp://blog.example.ch\n"


def test_footer_lines_directly_under_own_words_are_cut_from_them():
    body = (
        "Count me in for Saturday!\nTo unsubscribe from this group, send an email to:\nhikers-unsubscribe@egroups.com"
    )
    assert strip_footers(body) == "Count me in for Saturday!"


def test_mailman2_footer_whose_link_was_mangled_in_a_quote():
    body = (
        "> _______________________________________________\n> dri-devel mailing list\n"
        "> dri-devel@lists.freedesktop.org\n>\n"
        "https://nam11.safelinks.protection.outlook.com/?url=https%3A%2F%2Flists.example.org%2Fmailman%2Flistinfo%2\n"
        "\nMy reply."
    )
    assert strip_footers(body).startswith("https://nam11.safelinks")


def test_template_line_left_alone_by_rewrapped_quoting_is_removed():
    body = "> > > Text.\n> > > ---------\n> > >\n> > > To unsubscribe, e-mail: dev-unsubscribe@maven.apache.org\n"
    body += "> > For additional commands, e-mail: dev-help@maven.apache.org\n> >\n> > Reply.\n"
    assert strip_footers(body) == "> > > Text.\n> > Reply.\n"


def test_github_notification_footer_in_a_quote_is_removed():
    body = (
        "> I don't think so.\n>\n> —\n> You are receiving this because you authored the thread.\n"
        "> Reply to this email directly, view it on GitHub\n> <https://github.com/o/r/pull/2#pullrequestreview-1>,\n"
        "> or mute the thread\n> <https://github.com/notifications/unsubscribe-auth/ABC>\n> .\n\nAgreed."
    )
    assert strip_footers(body) == "> I don't think so.\n\nAgreed."


@pytest.mark.parametrize(
    "own",
    [
        "I had to unsubscribe from the list because of the volume.",
        "Please don't unsubscribe me, I still read everything.",
        "To unsubscribe, just send a mail to the -leave address, as the footer says.",
        "To unsubscribe, send an email to hikers-leave@lists.example.org and it stops.",
        "Did you unsubscribe?\nYou received this message because you are subscribed, I think.",
        "The archives are at\nhttps://lists.example.org/mailman/listinfo/hikers.\nCheck them first.",
        "Join the hikers mailing list\nhikers@lists.example.org\nto hear about trips.",
    ],
)
def test_a_persons_words_about_unsubscribing_stay(own):
    assert strip_footers(f"Hi Ann,\n\n{own}\n\nJo") == f"Hi Ann,\n\n{own}\n\nJo"


def test_a_list_servers_template_line_is_removed_even_alone():
    body = "Hi Ann,\n\nTo unsubscribe send an email to hikers-leave@lists.example.org\n\nJo"
    assert strip_footers(body) == "Hi Ann,\n\n\nJo"


def test_a_persons_list_of_list_addresses_stays():
    own = (
        "The lists we keep:\n\ntdwg@lists.example.org\nAnnouncements only\n"
        "http://lists.example.org/mailman/listinfo/tdwg\n\nUnsubscribe: tdwg-unsubscribe@lists.example.org"
    )
    assert strip_footers(own) == own


def test_text_without_any_footer_word_is_returned_as_it_is():
    text = "No lists here.\n> Nor here.\n"
    assert strip_footers(text) is text


def test_clean_body_keeps_footers_out_of_own_text_quotes_and_signature():
    answered = quote(f"Can someone review it?\n\nAnn\n{MAILMAN3}")
    body = f"On Tue, Ann <ann@example.com> wrote:\n{answered}\n\nReviewed, looks good.\n\nJo\n\n{MAILMAN2}"
    cleaned = clean_body(body)
    assert cleaned.text == "Reviewed, looks good.\n\nJo"
    assert cleaned.quoted == "On Tue, Ann <ann@example.com> wrote:\n> Can someone review it?\n>\n> Ann"
    assert "mailing list" not in cleaned.signature


def mailman3_message(body: str, flowed: bool = False) -> bytes:
    """A post as Mailman 3 delivers it: the author's part, then the footer as a text part of its own."""
    fmt = "; format=flowed" if flowed else ""
    return (
        "From: Jo Bloggs <jo@example.com>\nTo: hikers@lists.example.org\nSubject: Re: Saturday\n"
        "Message-ID: <1@example.com>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="===b=="\n\n'
        f"--===b==\nContent-Type: text/plain; charset=utf-8{fmt}\n\n{body}\n"
        '--===b==\nContent-Type: text/plain; charset="us-ascii"\nContent-Transfer-Encoding: 7bit\n'
        f"Content-Disposition: inline\n\n{MAILMAN3}\n--===b==--\n"
    ).encode()


def test_footer_in_a_mime_part_of_its_own_never_reaches_the_stored_text():
    msg = parse_message(mailman3_message("Count me in.\n\nJo"))
    cleaned = clean_body(msg.text, msg.subject)
    assert (cleaned.text, cleaned.quoted, cleaned.signature) == ("Count me in.\n\nJo", "", "")


def test_answered_email_from_a_file_reaches_the_prompt_without_footer(tmp_path: Path):
    from assistant.drafting.prompting import reply_from_file

    path = tmp_path / "answered.eml"
    path.write_bytes(mailman3_message("Who is driving \non Saturday?\n\nAnn", flowed=True))
    reply = reply_from_file(path)
    assert reply.body == "Who is driving on Saturday?\n\nAnn"
