"""Tests for assistant.mail.clean: own words vs quoted history, forwards, signatures and disclaimers."""

from __future__ import annotations

import random

import pytest

from assistant.mail.clean import CleanedBody, clean_body, is_forward_subject


def parts(body: str, subject: str = "") -> tuple[str, str, str]:
    cleaned = clean_body(body, subject)
    return cleaned.text, cleaned.quoted, cleaned.signature


# --- plain messages ----------------------------------------------------------------------------------


def test_plain_message_is_kept_whole_and_tidied():
    body = "\n\nHi Priya,\n\n\n\nThe venue is booked for the 14th.   \n  \nSee you there.\n\nThanks,\nOwen\n\n"
    assert clean_body(body) == CleanedBody(
        text="Hi Priya,\n\nThe venue is booked for the 14th.\n\nSee you there.\n\nThanks,\nOwen",
        quoted="",
        signature="",
        is_forward=False,
    )


def test_crlf_and_cr_line_endings_are_normalised():
    body = (
        "Sounds good.\r\n\r\nOn Mon, Jun 1, 2020 at 9:00 AM Ines Cole <ines@example.com> wrote:\r\n> Lunch?\r\r> Noon?"
    )
    assert parts(body) == (
        "Sounds good.",
        "On Mon, Jun 1, 2020 at 9:00 AM Ines Cole <ines@example.com> wrote:\n> Lunch?\n\n> Noon?",
        "",
    )


def test_message_without_signoff_keeps_its_last_lines():
    body = "Meeting moved to 3pm.\nRoom 4B, second floor\nBring laptops\nwww.example.com has the agenda"
    assert parts(body) == (body, "", "")


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   \n\n  ",
        "no newline at all, just one long line " * 200,
        "\x00\x01\x02\ufffd\ufeff>>>--\n\n-- \n\x7f",
        ">",
        "--",
        "wrote:",
        "On wrote:\n",
        "From:\nSent:\nTo:\nSubject:",
        "01/12/2000 03:30 PM",
        "x on 01/12/2000 03:30 PM\nTo:",
        "Thanks,\n",
        "-Rosie",
        "________________________________",
        ":" * 5000 + " " * 5000 + "x",
        "01/01/2000 10:00" + " " * 20000 + "x\nTo: y",
        "Thanks,\nJo\n" + "a@" * 20000,
    ],
)
def test_never_raises_on_odd_input(body: str):
    result = clean_body(body, subject=body[:50])
    assert isinstance(result, CleanedBody)


def test_never_raises_on_random_mail_like_noise():
    rng = random.Random(1234)
    atoms = [
        "> ", ">", "-- ", "--", "\n", "\r\n", "\r", "On Tue, Mar 3, 2020 John <j@x.com> wrote:",
        "Thanks,", "Best", "-----Original Message-----", "From: a", "Sent: b", "To: c", "Subject: d",
        "01/12/2000 03:30 PM", "______________________", "Sent from my iPhone", "CONFIDENTIAL",
        "This email is confidential", "---------- Forwarded message ---------", "x", " ", "\t", "é",
        "写道：", "skrev:", "@", "www.", "+1 555 0100",
    ]  # fmt: skip
    for _ in range(300):
        body = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 60)))
        result = clean_body(body, rng.choice(["", "Fwd: x", "Re: y"]))
        # Nothing is invented: every output line comes from the input.
        for line in (result.text + "\n" + result.quoted + "\n" + result.signature).split("\n"):
            assert line.strip() in body.replace("\r", "\n") or not line.strip()


def test_one_megabyte_body_of_thirty_thousand_lines_completes():
    own = "Here is my next point on the plan.\n"
    quote = "> and what you said about it, ok.\n"
    body = "".join(own if i % 2 else quote for i in range(30_000))
    assert 1_000_000 <= len(body) < 1_100_000
    result = clean_body(body)
    # Interleaved one by one, so every own line and every quoted line is its own block.
    assert result.text == "\n\n".join(["Here is my next point on the plan."] * 15_000)
    assert result.quoted == "\n\n".join(["> and what you said about it, ok."] * 15_000)
    assert result.signature == ""


# --- "> " quoting -----------------------------------------------------------------------------------


def test_bottom_posted_reply_with_attribution():
    body = (
        "On Tue, Mar 3, 2020 at 10:01 AM John Smith <john@example.com> wrote:\n"
        "> Can you send the deck before Thursday?\n"
        ">\n"
        "> Thanks\n"
        "\n"
        "Sure, attached.\n"
        "\n"
        "Best,\n"
        "Maria\n"
    )
    assert parts(body) == (
        "Sure, attached.\n\nBest,\nMaria",
        "On Tue, Mar 3, 2020 at 10:01 AM John Smith <john@example.com> wrote:\n"
        "> Can you send the deck before Thursday?\n>\n> Thanks",
        "",
    )


def test_interleaved_inline_replies_keep_the_answers():
    body = (
        "Hi Tom,\n\nAnswers inline.\n\n"
        "On 3/3/2020 9:12 AM, Tom Baker wrote:\n"
        "> Are we still on for Friday?\n\n"
        "Yes, 2pm works.\n\n"
        "> Should I book the room?\n"
        ">> (the big one, not the corner office)\n"
        ">Also: projector?\n\n"
        "Please do, and yes to the projector.\n\n"
        "Cheers,\nAnn"
    )
    assert parts(body) == (
        "Hi Tom,\n\nAnswers inline.\n\nYes, 2pm works.\n\nPlease do, and yes to the projector.\n\nCheers,\nAnn",
        "On 3/3/2020 9:12 AM, Tom Baker wrote:\n> Are we still on for Friday?\n\n"
        "> Should I book the room?\n>> (the big one, not the corner office)\n>Also: projector?",
        "",
    )


def test_attribution_wrapped_over_two_lines():
    body = (
        "Sounds great, count me in.\n\n"
        "On Tue, Mar 3, 2020 at 10:01 AM Jonathan Smithers <\n"
        "jonathan.smithers@example.com> wrote:\n\n"
        "> Lunch tomorrow at the Thai place?\n"
    )
    assert parts(body) == (
        "Sounds great, count me in.",
        "On Tue, Mar 3, 2020 at 10:01 AM Jonathan Smithers <\njonathan.smithers@example.com> wrote:\n\n"
        "> Lunch tomorrow at the Thai place?",
        "",
    )


def test_attribution_with_wrote_alone_on_the_second_line():
    body = (
        "Done.\n\nOn Wed, Apr 8, 2020 at 4:15 PM Priya Natarajan <priya@example.org>\nwrote:\n"
        "> Can you merge the branch?"
    )
    assert parts(body) == (
        "Done.",
        "On Wed, Apr 8, 2020 at 4:15 PM Priya Natarajan <priya@example.org>\nwrote:\n> Can you merge the branch?",
        "",
    )


def test_own_line_above_an_attribution_is_not_taken_as_its_first_half():
    body = "At the review we agreed on 3 sprints.\nDana Cruz <dana@example.com> wrote:\n> Three sprints?\n\nYes."
    assert parts(body) == (
        "At the review we agreed on 3 sprints.\n\nYes.",
        "Dana Cruz <dana@example.com> wrote:\n> Three sprints?",
        "",
    )


def test_sentence_ending_in_wrote_colon_is_not_a_header():
    body = "Here is what I wrote:\n\nThe budget is final.\nNo more changes please.\n\nKai"
    assert parts(body) == (body, "", "")


# --- top-posted reply headers ------------------------------------------------------------------------

REPLY_HEADERS = [
    "On Wed, Apr 8, 2020 at 4:15 PM Priya Natarajan <priya@example.org> wrote:",
    "On 08/04/2020 16:15, Priya Natarajan wrote:",
    "Am 08.04.2020 um 16:15 schrieb Priya Natarajan <priya@example.org>:",
    "Am Mi., 8. Apr. 2020 um 16:15 Uhr schrieb Priya Natarajan <priya@example.org>:",
    "Le mer. 8 avr. 2020 à 16:15, Priya Natarajan <priya@example.org> a écrit :",
    "El mié., 8 abr. 2020 a las 16:15, Priya Natarajan (<priya@example.org>) escribió:",
    "Il giorno mer 8 apr 2020 alle ore 16:15 Priya Natarajan <priya@example.org> ha scritto:",
    "Op wo 8 apr. 2020 om 16:15 schreef Priya Natarajan <priya@example.org>:",
    "Em qua., 8 de abr. de 2020 às 16:15, Priya Natarajan <priya@example.org> escreveu:",
    "Den 8 apr. 2020 kl. 16:15 skrev Priya Natarajan <priya@example.org>:",
    "ons 8 apr. 2020 kl 16:15 skrev Priya Natarajan <priya@example.org>:",
    "Priya Natarajan skrev:",
    "W dniu 08.04.2020 o 16:15, Priya Natarajan pisze:",
    "W dniu 8.04.2020 o 16:15 Priya Natarajan <priya@example.org> napisał(a):",
    "8 апреля 2020 г., в 16:15, Priya Natarajan <priya@example.org> написал(а):",
    "Priya Natarajan kirjoitti:",
    "ke 8. huhtik. 2020 klo 16.15 Priya Natarajan (priya@example.org) kirjoitti:",
    "在 2020年4月8日，下午4:15，Priya Natarajan <priya@example.org> 写道：",
    "2020年4月8日(水) 16:15 Priya Natarajan <priya@example.org>:",
]


@pytest.mark.parametrize("header", REPLY_HEADERS)
def test_top_posted_reply_header_quotes_everything_after_it(header: str):
    history = "Hi all,\nCan everyone make Thursday at ten?\nPriya"
    body = f"Thursday works for me.\n\nLiam\n\n{header}\n{history}\n"
    assert parts(body) == ("Thursday works for me.\n\nLiam", f"{header}\n{history}", "")


def test_outlook_original_message_separator():
    body = (
        "Approved, go ahead.\n\n"
        "-----Original Message-----\n"
        "From: Dev Patel [mailto:dev@example.com]\n"
        "Sent: Monday, March 2, 2020 4:50 PM\n"
        "To: Hana Berg\n"
        "Subject: PO 4411\n\n"
        "Can you approve the attached PO?"
    )
    assert parts(body, "RE: PO 4411") == (
        "Approved, go ahead.",
        "-----Original Message-----\nFrom: Dev Patel [mailto:dev@example.com]\n"
        "Sent: Monday, March 2, 2020 4:50 PM\nTo: Hana Berg\nSubject: PO 4411\n\n"
        "Can you approve the attached PO?",
        "",
    )
    assert clean_body(body, "RE: PO 4411").is_forward is False


@pytest.mark.parametrize(
    "separator",
    [
        "-----Ursprüngliche Nachricht-----",
        "-----Message d'origine-----",
        "-----Mensaje original-----",
        "----- Original Message -----",
        " -----Original Message----- ",
    ],
)
def test_localized_original_message_separators(separator: str):
    body = f"Passt.\n\n{separator}\nVon: Jonas Weber\nBetreff: Termin\n\nGeht Dienstag?"
    quoted = f"{separator.strip()}\nVon: Jonas Weber\nBetreff: Termin\n\nGeht Dienstag?"
    assert parts(body) == ("Passt.", quoted, "")


def test_outlook_underscore_line_then_from_header():
    body = (
        "I'll call you after lunch.\n\n"
        "________________________________\n"
        "From: Carla Mendes <carla@example.com>\n"
        "Sent: Friday, May 15, 2020 11:02 AM\n"
        "To: Ben Ortiz <ben@example.com>\n"
        "Subject: Quick question\n\n"
        "Do you have a minute today?"
    )
    text, quoted, signature = parts(body)
    assert text == "I'll call you after lunch."
    assert quoted.startswith("________________________________\nFrom: Carla Mendes")
    assert quoted.endswith("Do you have a minute today?")
    assert signature == ""


@pytest.mark.parametrize(
    "header",
    [
        "From: Carla Mendes <carla@example.com>\nSent: Friday, May 15, 2020 11:02 AM\nTo: Ben Ortiz\n"
        "Subject: Quick question",
        "*From:* Carla Mendes <carla@example.com>\n*Date:* Friday, May 15, 2020 at 11:02\n*To:* Ben Ortiz\n"
        "*Subject:* Quick question",
        "Von: Carla Mendes <carla@example.com>\nGesendet: Freitag, 15. Mai 2020 11:02\nAn: Ben Ortiz\n"
        "Betreff: Kurze Frage",
        "De : Carla Mendes <carla@example.com>\nEnvoyé : vendredi 15 mai 2020 11:02\nÀ : Ben Ortiz\n"
        "Objet : Petite question",
    ],
)
def test_outlook_header_block_without_separator(header: str):
    body = f"Yes, after lunch.\n\nBen\n\n{header}\n\nDo you have a minute today?"
    assert parts(body) == ("Yes, after lunch.\n\nBen", f"{header}\n\nDo you have a minute today?", "")


def test_from_line_without_other_headers_is_own_text():
    body = "From: the desk of the treasurer\n\nDues are due on Friday.\n\nAmir"
    assert parts(body) == (body, "", "")


# --- Lotus Notes / Enron ----------------------------------------------------------------------------


def test_lotus_notes_name_and_date_header():
    body = (
        "Mr. Hale will attend both meetings.\n\n"
        "Dottie\n\n\n\n"
        "Marla Quentin\n"
        "01/12/2000 03:30 PM\n\n"
        "To: Dorothy Vance/Corp/Northwind@NORTHWIND\n"
        "cc:\n"
        "Subject: STEERING COMMITTEE MEETINGS - MONDAY, JANUARY 17\n\n"
        "Please confirm attendance for both sessions.\n"
    )
    assert parts(body) == (
        "Mr. Hale will attend both meetings.\n\nDottie",
        "Marla Quentin\n01/12/2000 03:30 PM\n\nTo: Dorothy Vance/Corp/Northwind@NORTHWIND\ncc:\n"
        "Subject: STEERING COMMITTEE MEETINGS - MONDAY, JANUARY 17\n\n"
        "Please confirm attendance for both sessions.",
        "",
    )


def test_lotus_notes_address_above_date_without_to_line():
    body = (
        "We did get this from Dan.\n\n\nDan Hollis@NORTHWIND_INTL\n12/13/2000 02:14 PM\n\nCongratulations on the move."
    )
    assert parts(body) == (
        "We did get this from Dan.",
        "Dan Hollis@NORTHWIND_INTL\n12/13/2000 02:14 PM\n\nCongratulations on the move.",
        "",
    )


def test_lotus_notes_one_line_sender_on_date():
    body = (
        "Hi Donna -\n\nThe letter is fine.\n\nDottie\n\n\n\n"
        '"Donna Pratt" <dpratt@example.net> on 06/19/2000 04:40:19 PM\n'
        "To: <marcus.hale@northwind.example>\n"
        "cc:\n"
        "Subject: Letter to past honorees\n\n"
        "Marcus, thank you for thinking of this."
    )
    assert parts(body) == (
        "Hi Donna -\n\nThe letter is fine.\n\nDottie",
        '"Donna Pratt" <dpratt@example.net> on 06/19/2000 04:40:19 PM\nTo: <marcus.hale@northwind.example>\n'
        "cc:\nSubject: Letter to past honorees\n\nMarcus, thank you for thinking of this.",
        "",
    )


def test_lotus_notes_from_line_with_date():
    body = (
        "Does Marcus need to be on these?\n\n"
        "From:\tBea Lorne/NORTHWIND@northwindXgate on 10/05/2000 09:12 AM\n"
        "To:\tAnnual Review Team\n"
        "cc:\t\n"
        "Subject:\tReminder\n\n"
        "Presentations are due Monday."
    )
    assert parts(body) == (
        "Does Marcus need to be on these?",
        "From:\tBea Lorne/NORTHWIND@northwindXgate on 10/05/2000 09:12 AM\nTo:\tAnnual Review Team\ncc:\n"
        "Subject:\tReminder\n\nPresentations are due Monday.",
        "",
    )


def test_lotus_notes_forwarded_by_line():
    body = (
        "Can you handle this one?\n\nThanks\n\n"
        "---------------------- Forwarded by Gil Ruiz/HOU/NW on 04/30/2001 05:05 PM "
        "---------------------------\n\n"
        "Pat Kim\n04/27/2001 04:17 PM\nTo: Gil Ruiz/HOU/NW@NW\ncc:\nSubject: Q2 plan\n\nDraft attached."
    )
    cleaned = clean_body(body, "Q2 plan")
    assert (cleaned.text, cleaned.signature) == ("Can you handle this one?\n\nThanks", "")
    assert cleaned.quoted.startswith("---------------------- Forwarded by Gil Ruiz/HOU/NW")
    assert cleaned.quoted.endswith("Subject: Q2 plan\n\nDraft attached.")
    assert cleaned.is_forward is True


def test_date_line_in_own_text_is_not_a_header():
    body = "The deadline is\n01/12/2000 03:30 PM\nso please hurry.\n\nMo"
    assert parts(body) == (body, "", "")


# --- forwards ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "-------- Forwarded Message --------",
        "Begin forwarded message:",
        "---------- Weitergeleitete Nachricht ----------",
        "-------- Message transféré --------",
        "---------- Mensaje reenviado ---------",
    ],
)
def test_forward_markers(marker: str):
    history = (
        "From: Alice Ng <alice@example.com>\nDate: Tue, Mar 3, 2020 at 10:01 AM\nSubject: Budget\n\nNumbers attached."
    )
    body = f"FYI, see the numbers below.\n\n{marker}\n{history}"
    assert clean_body(body, "Budget") == CleanedBody(
        text="FYI, see the numbers below.", quoted=f"{marker}\n{history}", signature="", is_forward=True
    )


def test_original_message_under_forward_subject_is_a_forward():
    body = "Passing this on.\n\n-----Original Message-----\nFrom: Zoe Hart\nSent: Monday\nTo: Ray\n\nTickets are in."
    cleaned = clean_body(body, "FW: tickets")
    assert (cleaned.text, cleaned.is_forward) == ("Passing this on.", True)
    assert cleaned.quoted.startswith("-----Original Message-----")


def test_forward_without_note_has_empty_text():
    body = "---------- Forwarded message ---------\nFrom: Alice <a@example.com>\n\nHello"
    assert clean_body(body) == CleanedBody("", body, "", True)


@pytest.mark.parametrize(
    "subject",
    ["Fwd: lunch", "FW: lunch", "Fw: lunch", "WG: Termin", "TR: réunion", "RV: reunión",
     "Doorst: vergadering",
     "VS: kokous", "[Fwd: lunch]", "Fwd[2]: lunch", "  fwd:lunch", "[team] Fwd: lunch", "lunch (fwd)",
     "Fwd: Re: lunch"],
)  # fmt: skip
def test_forward_subjects(subject: str):
    assert is_forward_subject(subject) is True


@pytest.mark.parametrize(
    "subject",
    ["", "Re: lunch", "AW: WG: Termin", "Re: Fwd: lunch", "Forward planning", "TRaining", "Fwd thinking"],
)
def test_non_forward_subjects(subject: str):
    assert is_forward_subject(subject) is False


# --- signatures --------------------------------------------------------------------------------------


def test_rfc3676_signature_delimiter():
    body = "Will do.\n\nJoe\n-- \nJoe Bloggs | Bloggs Plumbing\nhttps://bloggs.example\n"
    assert parts(body) == ("Will do.\n\nJoe", "", "-- \nJoe Bloggs | Bloggs Plumbing\nhttps://bloggs.example")


def test_bare_double_dash_delimiter_followed_by_quote():
    body = "Agreed.\n--\nJoe Bloggs\n\n> Shall we go with the blue one?\n> Rita"
    assert parts(body) == ("Agreed.", "> Shall we go with the blue one?\n> Rita", "--\nJoe Bloggs")


def test_signoff_name_and_contact_block():
    body = (
        "Hi Dana,\n\nThe contract is signed and on its way.\n\n"
        "Best regards,\nMark\n\n"
        "Mark Olsen\nHead of Operations | Brightline Ltd.\n+44 20 7946 0958\nwww.brightline.example\n"
        "Twitter: @brightline\n"
    )
    assert parts(body) == (
        "Hi Dana,\n\nThe contract is signed and on its way.\n\nBest regards,\nMark",
        "",
        "Mark Olsen\nHead of Operations | Brightline Ltd.\n+44 20 7946 0958\nwww.brightline.example\n"
        "Twitter: @brightline",
    )


def test_signoff_with_name_on_the_same_line():
    body = "Got it, thanks.\n\nCheers, Sam\nSam Reyes\nSenior Analyst\nsam.reyes@example.com"
    assert parts(body) == (
        "Got it, thanks.\n\nCheers, Sam",
        "",
        "Sam Reyes\nSenior Analyst\nsam.reyes@example.com",
    )


def test_dash_signoff_then_contact_block():
    body = "Ken is in Austin that night.\n\n-Dottie\nExecutive Assistant\nPhone: 713-555-0142"
    assert parts(body) == (
        "Ken is in Austin that night.\n\n-Dottie",
        "",
        "Executive Assistant\nPhone: 713-555-0142",
    )


@pytest.mark.parametrize(
    ("signoff", "contact"),
    [
        ("Viele Grüße\nJonas", "Jonas Weber\nProjektleiter\nTel. +49 30 1234567"),
        ("Mit freundlichen Grüßen\nJonas Weber", "Weber & Partner GmbH\nHauptstraße 5, 10115 Berlin"),
        ("Cordialement,\nCamille", "Camille Durand\nResponsable commerciale\n01 23 45 67 89"),
        ("Bien à vous,\nCamille", "www.durand-conseil.example"),
        ("Un saludo,\nLucía", "Lucía Romero\nDepartamento de Ventas\nlucia@ejemplo.example"),
        ("Atentamente,\nLucía Romero", "Directora Financiera"),
        ("Saludos\nLucía", "Móvil: 600 123 456"),
    ],
)
def test_localized_signoffs_keep_the_signoff_and_move_the_contact_block(signoff: str, contact: str):
    body = f"Kurz zur Info: alles erledigt.\n\n{signoff}\n\n{contact}"
    assert parts(body) == (f"Kurz zur Info: alles erledigt.\n\n{signoff}", "", contact)


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Sent from my Android",
        "Get Outlook for iOS",
        "Sent from Mail for Windows",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
    ],
)
def test_mobile_footers_go_to_signature(footer: str):
    body = f"Running 5 min late, start without me\n\n{footer}\n"
    assert parts(body) == ("Running 5 min late, start without me", "", footer)


def test_thanks_inside_a_sentence_is_not_a_signoff_with_a_name():
    body = "I'll be late, so I'll pass. Please pass along my\nthanks, though.\nJt\nLogistics\n\nSent from my BlackBerry"
    assert parts(body) == (
        "I'll be late, so I'll pass. Please pass along my\nthanks, though.\nJt\nLogistics",
        "",
        "Sent from my BlackBerry",
    )


def test_mobile_footer_before_reply_header():
    body = (
        "Running late\n\nSent from my iPhone\n\n"
        "On Mar 3, 2020, at 10:01, Kim Lee <kim@example.com> wrote:\n\n> Where are you?"
    )
    assert parts(body) == (
        "Running late",
        "On Mar 3, 2020, at 10:01, Kim Lee <kim@example.com> wrote:\n\n> Where are you?",
        "Sent from my iPhone",
    )


@pytest.mark.parametrize(
    "disclaimer",
    [
        "This email and any attachments are confidential and intended solely for the addressee. If you have\n"
        "received it in error, please notify the sender and delete it.",
        "CONFIDENTIALITY NOTICE: The contents of this e-mail message and any attachments are intended\n"
        "solely for the addressee(s) and may contain confidential and/or privileged information.",
        "The information contained in this e-mail is confidential and may be legally privileged.",
        "If you are not the intended recipient, you are hereby notified that any dissemination\nis prohibited.",
        "This message (including any attachments) contains confidential information intended for a specific\n"
        "individual. Unauthorized copying or distribution is strictly prohibited.",
        "DISCLAIMER: Opinions expressed here are my own.",
    ],
)
def test_disclaimer_after_signoff_goes_to_signature(disclaimer: str):
    body = f"Numbers look right to me.\n\nRegards,\nPaul\n\n{disclaimer}\n"
    assert parts(body) == ("Numbers look right to me.\n\nRegards,\nPaul", "", disclaimer)


def test_disclaimer_without_signoff_still_goes_to_signature():
    body = (
        "Invoice attached.\n\n"
        "This e-mail and any files transmitted with it are confidential. If you are not the intended\n"
        "recipient, any use or disclosure is prohibited."
    )
    assert parts(body) == (
        "Invoice attached.",
        "",
        "This e-mail and any files transmitted with it are confidential. If you are not the intended\n"
        "recipient, any use or disclosure is prohibited.",
    )


def test_confidential_in_the_authors_own_sentence_is_kept():
    body = (
        "Hi team,\n\nThe information in the attached report is confidential, so keep it internal.\n"
        "Distribution is limited to this list.\n\nThanks,\nNora"
    )
    assert parts(body) == (body, "", "")


def test_confidential_paragraph_without_signoff_is_kept():
    body = "Hi,\n\nThe information in the attached report is confidential and must not be distributed.\n\nBob"
    assert parts(body) == (body, "", "")


def test_disclaimer_words_in_the_middle_of_a_paragraph_are_kept():
    body = "Ops review notes below. The attached file is\nConfidential and privileged; do not distribute it.\n\nBob"
    assert parts(body) == (body, "", "")


def test_confidential_sentence_right_above_the_signoff_is_kept():
    body = "Salary bands are attached. This is confidential, no distribution please.\nThanks,\nNora"
    assert parts(body) == (body, "", "")


def test_disclaimer_ending_in_thank_you_is_one_block():
    disclaimer = (
        "This message is intended only for the named recipient and may contain privileged material.\n"
        "If you received it by mistake, please delete it.\nThank you."
    )
    body = f"See attached.\n\nPaul\n\n{disclaimer}"
    assert parts(body) == ("See attached.\n\nPaul", "", disclaimer)


def test_rule_line_between_contact_block_and_disclaimer():
    body = (
        "Confirmed for the 12th.\n\nRegards,\nLuis Ortega\nDirector of Planning\nTel.: +34 915 550 123\n"
        "__________________________________________________________________\n"
        "This message is for the named person's use only. It may contain confidential or legally\n"
        "privileged information."
    )
    assert parts(body) == (
        "Confirmed for the 12th.\n\nRegards,\nLuis Ortega",
        "",
        "Director of Planning\nTel.: +34 915 550 123\n"
        "__________________________________________________________________\n"
        "This message is for the named person's use only. It may contain confidential or legally\n"
        "privileged information.",
    )


def test_assistant_signature_block_enron_style():
    body = (
        "Mr. Hale suggests you call Ms. Dunn directly.\n\nRegards,\nTerri Vale\n"
        "Assistant to Marcus Hale\n713.555.0184\n713.555.0185 (fax)\nterri.vale@northwind.example"
    )
    assert parts(body) == (
        "Mr. Hale suggests you call Ms. Dunn directly.\n\nRegards,\nTerri Vale",
        "",
        "Assistant to Marcus Hale\n713.555.0184\n713.555.0185 (fax)\nterri.vale@northwind.example",
    )


def test_bulleted_list_at_the_end_is_not_a_dash_signoff():
    body = "Shopping list for Saturday:\n- Milk\n- Bread\nCheese from the market"
    assert parts(body) == (body, "", "")


def test_lines_after_signoff_separated_by_a_quote_are_inline_answers():
    body = "Thanks,\nJo\nNorthwind Team\n\n> Did the parcel arrive?\n\nParcel arrived Monday"
    assert parts(body) == (
        "Thanks,\nJo\nNorthwind Team\n\nParcel arrived Monday",
        "> Did the parcel arrive?",
        "",
    )


def test_postscript_after_signoff_is_kept():
    body = "See you Sunday.\n\nLove,\nMom\n\nP.S. Don't forget to bring the casserole dish back."
    assert parts(body) == (body, "", "")


def test_sentence_after_signoff_is_kept():
    body = "Ok.\n\nThanks,\nJo\n\nAlso the car needs gas before Monday"
    assert parts(body) == (body, "", "")


def test_long_paragraph_after_signoff_is_not_a_signature():
    paragraph = (
        "Our office will be closed between the holidays and reopens on the second of January.\n"
        "Orders placed during that time will be processed in the order they were received.\n"
        "For urgent matters regarding deliveries already on their way, call the courier directly.\n"
        "We wish everyone a restful break and look forward to working together next year."
    )
    body = f"Order confirmed.\n\nBest,\nRuth\n\n{paragraph}"
    assert parts(body) == (body, "", "")


# --- everything at once ------------------------------------------------------------------------------


def test_mixed_reply_with_signature_disclaimer_and_quoted_history():
    body = (
        "Hi Aaron,\r\n\r\n"
        "Thursday at 10 works. I'll book room 3.\r\n\r\n"
        "Kind regards,\r\n"
        "Helen\r\n\r\n"
        "Helen Marsh\r\n"
        "Operations Manager\r\n"
        "Northwind Logistics\r\n"
        "T: +1 (312) 555-0199\r\n\r\n"
        "This email and any attachments are confidential and may be privileged. If you are not the\r\n"
        "intended recipient, please notify the sender and delete this message.\r\n\r\n"
        "From: Aaron Blake <aaron@example.com>\r\n"
        "Sent: Tuesday, March 3, 2020 9:14 AM\r\n"
        "To: Helen Marsh <helen@northwind.example>\r\n"
        "Subject: Review meeting\r\n\r\n"
        "Hi Helen,\r\n"
        "Could we meet Thursday or Friday morning?\r\n"
        "Aaron\r\n"
    )
    assert clean_body(body, "RE: Review meeting") == CleanedBody(
        text="Hi Aaron,\n\nThursday at 10 works. I'll book room 3.\n\nKind regards,\nHelen",
        quoted="From: Aaron Blake <aaron@example.com>\nSent: Tuesday, March 3, 2020 9:14 AM\n"
        "To: Helen Marsh <helen@northwind.example>\nSubject: Review meeting\n\n"
        "Hi Helen,\nCould we meet Thursday or Friday morning?\nAaron",
        signature="Helen Marsh\nOperations Manager\nNorthwind Logistics\nT: +1 (312) 555-0199\n\n"
        "This email and any attachments are confidential and may be privileged. If you are not the\n"
        "intended recipient, please notify the sender and delete this message.",
        is_forward=False,
    )


def test_bottom_posted_reply_with_delimiter_signature():
    body = (
        "On 03/03/2020 10:01, Ravi Kumar wrote:\n"
        "> Is the build green again?\n\n"
        "Yes, fixed in 4f2a.\n\n"
        "Cheers,\nLea\n"
        "-- \n"
        "Lea Novak · Release Engineering\n"
    )
    assert parts(body) == (
        "Yes, fixed in 4f2a.\n\nCheers,\nLea",
        "On 03/03/2020 10:01, Ravi Kumar wrote:\n> Is the build green again?",
        "-- \nLea Novak · Release Engineering",
    )


# --- spacing and list footers ------------------------------------------------------------------------


def test_no_break_spaces_become_spaces_and_line_ends_lose_their_blanks():
    body = "Merci\u00a0! Le prix\u202fest bon. \t\nÀ\u00a0demain\u00a0\n\n> Tu viens\u00a0? \nOn 1/2/2020, Jo wrote:"
    cleaned = clean_body(body)
    assert cleaned.text == "Merci ! Le prix est bon.\nÀ demain"
    assert "\u00a0" not in cleaned.quoted and not any(line.endswith(" ") for line in cleaned.quoted.split("\n"))


def test_long_blank_runs_at_line_ends_are_stripped_too():
    assert parts("Padded like Outlook does" + " " * 40 + "\nit.\t \t \t\n\nJo   ")[0] == (
        "Padded like Outlook does\nit.\n\nJo"
    )


def test_signature_delimiter_keeps_its_space():
    assert parts("Done.\n\n-- \nLea   \n")[2] == "-- \nLea"


def test_list_footer_is_neither_own_text_nor_signature_nor_quote():
    body = (
        "Yes, fixed in 4f2a.\n\nCheers,\nLea\n\n"
        "_______________________________________________\ndev mailing list -- dev@lists.example.org\n"
        "To unsubscribe send an email to dev-leave@lists.example.org\n\n"
        "On Mon, Jun 1, 2020 at 9:00 AM Ravi <ravi@example.com> wrote:\n> Is the build green again?\n>\n"
        "> _______________________________________________\n> dev mailing list -- dev@lists.example.org\n"
        "> To unsubscribe send an email to dev-leave@lists.example.org\n"
    )
    assert parts(body) == (
        "Yes, fixed in 4f2a.\n\nCheers,\nLea",
        "On Mon, Jun 1, 2020 at 9:00 AM Ravi <ravi@example.com> wrote:\n> Is the build green again?",
        "",
    )


def test_own_sentence_about_unsubscribing_stays_in_the_text():
    body = "I unsubscribed from the dev list last week.\nTo unsubscribe, I just wrote to the -leave address."
    assert parts(body)[0] == body
