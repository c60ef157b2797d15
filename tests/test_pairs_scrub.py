"""The privacy scrub: secrets in real-looking mail become placeholders; dates, amounts and ids stay."""

from __future__ import annotations

import pytest

from trainer.pairs.scrub import ScrubSettings, iban_ok, load_settings, luhn_ok, save_settings, scrub

ALL = ScrubSettings(phones=True, addresses=True)


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("Your verification code is 482913. It expires in 10 minutes.",
         "Your verification code is [CODE]. It expires in 10 minutes.", "CODE"),
        ("Use the login code: 123 456 to get in", "Use the login code: [CODE] to get in", "CODE"),
        ("482913 is your Slack confirmation code", "[CODE] is your Slack confirmation code", "CODE"),
        ("The door code is 4411 and the alarm PIN is 0000.", "The door code is [CODE] and the alarm PIN is [CODE].",
         "CODE"),
        ("Backup code for the shared account: X7K9P2Q4", "Backup code for the shared account: [CODE]", "CODE"),
        ("The wifi password is Tr0ub4dor&3, enjoy the stay!", "The wifi password is [PASSWORD], enjoy the stay!",
         "PASSWORD"),
        ("Password: hunter2", "Password: [PASSWORD]", "PASSWORD"),
        ("password for the staging box is 'n0t-s0-secret'.", "password for the staging box is '[PASSWORD]'.",
         "PASSWORD"),
        ("Can you charge it to my card 4111 1111 1111 1111, exp 09/27?",
         "Can you charge it to my card [CARD], exp 09/27?", "CARD"),
        ("Amex 3782-822463-10005 works too", "Amex [CARD] works too", "CARD"),
        ("Please wire the deposit to DE89 3704 0044 0532 0130 00 by Friday.",
         "Please wire the deposit to [IBAN] by Friday.", "IBAN"),
        ("IBAN: GB82WEST12345698765432", "IBAN: [IBAN]", "IBAN"),
        ("IBAN GB82 WEST 1234 5698 7654 32 ASAP please", "IBAN [IBAN] ASAP please", "IBAN"),
        ("My account number is 12345678, sort code 20-00-00.", "My account number is [ACCOUNT], sort code [ACCOUNT].",
         "ACCOUNT"),
    ],
)  # fmt: skip
def test_secrets_are_always_replaced(text, expected, kind):
    done = scrub(text)  # default settings: secrets only
    assert done.text == expected
    assert done.found.get(kind, 0) >= 1


def test_a_real_looking_email_keeps_everything_but_the_secrets():
    email = (
        "Hi Rosa,\n\nThe deposit of $1,250.00 (€1.150) went out on 2023-01-31 for invoice INV-9466, order #48213.\n"
        "If the bank asks, the IBAN I used is FR14 2004 1010 0505 0001 3M02 606 and my card ends in 4242.\n"
        "The code they texted me was 729104, the portal password is Sunny-Day-42.\n"
        "We meet on 31.01.2023 at 10:30 in room 4.12; 15 people, version 2.1.3, Q3 2023, zip code 94110.\n\n"
        "Best,\nAlex"
    )
    done = scrub(email)
    assert done.found == {"IBAN": 1, "CODE": 1, "PASSWORD": 1}
    for kept in ("$1,250.00", "€1.150", "2023-01-31", "INV-9466", "#48213", "4242", "31.01.2023", "10:30",
                 "4.12", "2.1.3", "Q3 2023", "94110", "Hi Rosa,", "Best,\nAlex"):  # fmt: skip
        assert kept in done.text
    for gone in ("FR14", "729104", "Sunny-Day-42"):
        assert gone not in done.text


@pytest.mark.parametrize(
    "text",
    [
        "The budget is $12,500.00 and we spent €3.400,50 so far.",
        "Let's meet 2023-03-14 at 14:00-15:30, or 9-11 on 12/05/2023.",
        "Invoice INV-4028 for 1,200 units; PO 4500012345.",
        "The password is in the vault, ask Sam.",
        "The code review is on Monday; the dress code is casual.",
        "Card 4111 1111 1111 1112 fails the Luhn check, so it is just a number.",
        "Version 10.4.2 of the app, build 20231107.",
    ],
)
def test_ordinary_numbers_and_words_are_left_alone(text):
    assert scrub(text, ALL).text == text


def test_phones_and_addresses_only_when_chosen():
    text = "Call me at (415) 555-0132 or +49 30 1234567. I moved to 221B Baker Street, Apt 4; office: Hauptstraße 5."
    assert scrub(text).text == text
    done = scrub(text, ALL)
    assert done.text == "Call me at [PHONE] or [PHONE]. I moved to [ADDRESS]; office: [ADDRESS]."
    assert done.found == {"PHONE": 2, "ADDRESS": 2}


def test_scrubbing_is_idempotent():
    text = "Code 482913, card 4111-1111-1111-1111, IBAN DE89370400440532013000, call 020 7946 0958."
    once = scrub(text, ALL).text
    assert scrub(once, ALL).text == once and scrub(once, ALL).found == {}


def test_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE88 3704 0044 0532 0130 00")


def test_settings_are_stored(db):
    assert load_settings(db) == ScrubSettings()
    save_settings(db, ScrubSettings(phones=True))
    assert load_settings(db) == ScrubSettings(phones=True, addresses=False)
