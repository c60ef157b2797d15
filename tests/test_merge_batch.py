"""Mail merge on the fake backend: a draft per row, placeholders and the recipient's line, recipient-aware
examples, bad rows skipped and named, bad files refused, resume after a stop, the preview kept."""

from __future__ import annotations

import csv
import json

import pytest
from fakes import FakeBackend

from assistant.drafting.batch import BATCH_COLUMNS
from assistant.drafting.drafts import list_drafts
from assistant.drafting.mailmerge import MERGE_COLUMNS, PREVIEW_ROWS, mail_merge
from assistant.drafting.merge_csv import MAX_FIELD_CHARS, RecipientsError, placeholders

ROSA = ["Rosa Alvarez", "rosa@properties.example.net"]
HEADER = "name,email,company,role,interests,last contact\n"


@pytest.fixture
def mail(db):
    """Three emails the user sent to Rosa, and one to someone else."""
    for i, (topic, to) in enumerate([("faucet repair", ROSA), ("rent receipt", ROSA), ("faucet again", ROSA),
                                     ("launch party", ["Zed", "zed@other.example"])]):  # fmt: skip
        db["messages"].insert({
            "message_id": f"s{i}@test", "date": f"2024-02-0{i + 1}T09:00:00+00:00", "from_name": "Alex Morgan",
            "from_addr": "alex.morgan@example.org", "from_key": "alex.morgan@example.org", "to_json": json.dumps([to]),
            "cc_json": "[]", "subject": topic.title(), "is_forward": 0, "sent_by_me": 1, "automated": 0,
            "body": f"Hi {to[0].split()[0]},\n\nA note about the {topic}, as promised this week.\n\nBest,\nAlex",
        })  # fmt: skip
    return db


def write(tmp_path, text: str, name: str = "people.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read_out(path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def last_user(prompt: list[dict[str, str]]) -> str:
    return prompt[-1]["content"]


def test_each_row_gives_a_draft_with_its_values_in_the_prompt(mail, tmp_path):
    people = write(tmp_path, HEADER + f"Rosa Alvarez,{ROSA[1]},Properties Inc,Manager,gardening,March\n"
                   "Bob Stone,bob@new.example,Stone Ltd,CTO,sailing,\n")  # fmt: skip
    fake = FakeBackend(replies=["Hi Rosa,\n\nCome to the launch.\n\nBest,\nAlex", "Hi Bob,\n\nCome too."])
    out = tmp_path / "out.csv"
    report = mail_merge(mail, people, "invite {name} to the launch on May 3", out, backend=fake)
    assert (report.written, report.drafted, report.resumed, report.skipped) == (2, 2, 0, [])
    rows = read_out(out)
    assert tuple(rows[0]) == MERGE_COLUMNS and MERGE_COLUMNS[: len(BATCH_COLUMNS)] == BATCH_COLUMNS
    assert [r["instruction"] for r in rows] == ["invite Rosa Alvarez to the launch on May 3",
                                                "invite Bob Stone to the launch on May 3"]  # fmt: skip
    assert [(r["row"], r["to"], r["known_recipient"]) for r in rows] == [
        ("2", ROSA[1], "yes"),
        ("3", "bob@new.example", "no"),
    ]
    assert rows[0]["generated_email"] == "Hi Rosa,\n\nCome to the launch.\n\nBest,\nAlex"
    rosa, bob = (last_user(p) for p in fake.prompts)
    assert "Recipient: Rosa Alvarez <rosa@properties.example.net>" in rosa
    about = "About the recipient: company: Properties Inc; role: Manager; interests: gardening; last contact: March"
    assert about in rosa
    assert "About the recipient: company: Stone Ltd; role: CTO; interests: sailing\n" in bob  # the empty value left out
    assert "name:" not in rosa and "email:" not in rosa  # the name and address have lines of their own
    assert [d["recipient"] for d in reversed(list_drafts(mail))] == [ROSA[1], "bob@new.example"]
    assert report.known_recipients == 1


def test_examples_are_the_users_mail_to_that_recipient(mail, tmp_path):
    people = write(tmp_path, f"name,email\nRosa,{ROSA[1]}\nZed,zed@other.example\n")
    fake = FakeBackend()
    mail_merge(mail, people, "ask {name} about the faucet", None, backend=fake)
    shown = [[m["content"] for m in p[1:-1:2]] for p in fake.prompts]  # the example requests
    assert shown[0] and all(" to Rosa" in text for text in shown[0])
    assert shown[1][0].count(" to Zed")  # Zed's one email first, though it is not about a faucet


def test_rows_that_cannot_be_drafted_are_skipped_and_named(mail, tmp_path):
    people = write(tmp_path, "name,email,notes\n"
                   "Ann,ann@a.example,fine\n"
                   "\n"
                   ",,\n"
                   f"Long,long@a.example,{'x' * (MAX_FIELD_CHARS + 1)}\n"
                   "Carl,not an address,x\n"
                   "Dee,dee@a.example,one,two\n"
                   ",eve@a.example,no name\n"
                   '"Fay\nFox",fay@a.example,two lines\n')  # fmt: skip
    fake = FakeBackend()
    out = tmp_path / "out.csv"
    report = mail_merge(mail, people, "thank {name}", out, backend=fake)
    assert [(s["row"], s["line"]) for s in report.skipped] == [(3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (8, 8)]
    reasons = [s["reason"] for s in report.skipped]
    assert reasons[:2] == ["an empty row", "an empty row"]
    assert f"its notes is {MAX_FIELD_CHARS + 1:,} characters long" in reasons[2]
    assert reasons[3] == "'not an address' in the column email is not an email address"
    assert "4 cells, but the header names 3 columns" in reasons[4]
    assert reasons[5] == "no value for {name}, which the instruction uses"
    assert [r["row"] for r in read_out(out)] == ["2", "9"] and report.written == len(fake.prompts) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"name,email\n", "has a header but no recipients"),
        (b"ann@a.example,Ann\nbob@b.example,Bob\n", "has no header row"),
        (b"Ann,42\n", "has no header row"),
        (b"name,email,name\nAnn,a@a.example,A\n", "names the column 'name' twice"),
        (b"name,email\nZo\xeb,zoe@a.example\n", r"is not UTF-8 text \(line 2\)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is a binary file"),
    ],
)
def test_a_file_that_cannot_be_used_is_refused_before_anything_is_drafted(mail, tmp_path, content, message):
    people = tmp_path / "people.csv"
    people.write_bytes(content)
    fake = FakeBackend()
    with pytest.raises(RecipientsError, match=message):
        mail_merge(mail, people, "thank them", tmp_path / "out.csv", backend=fake)
    assert fake.prompts == [] and not (tmp_path / "out.csv").exists()


def test_a_placeholder_without_a_column_is_refused_with_the_columns(mail, tmp_path):
    people = write(tmp_path, "Full Name,Email\nAnn Lee,ann@a.example\n")
    with pytest.raises(RecipientsError, match=r"uses \{company\}, but .* \(its columns: Full Name, Email\)"):
        mail_merge(mail, people, "thank {name} and {company}", None, backend=FakeBackend())
    named = mail_merge(mail, people, "thank {name} at {email}", None, backend=FakeBackend())
    assert named.results[0]["instruction"] == "thank Ann Lee at ann@a.example"
    with pytest.raises(RecipientsError, match="The instruction is empty"):
        mail_merge(mail, people, "  ", None, backend=FakeBackend())
    with pytest.raises(RecipientsError, match="is the list of recipients itself"):
        mail_merge(mail, people, "thank {name}", people, backend=FakeBackend())
    assert people.read_text().startswith("Full Name,Email\n")


def test_placeholders_match_loosely_and_first_name_comes_from_the_name(mail, tmp_path):
    people = write(tmp_path, "Full_Name;E-Mail;Last-Contact\nAnn Lee;ann@a.example;the fair\n", "semi.csv")
    fake = FakeBackend()
    report = mail_merge(mail, people, "remind {first name} of {last contact} {{as promised}}", None, backend=fake)
    assert report.results[0]["instruction"] == "remind Ann of the fair {as promised}"
    assert placeholders("a {x} {{y}} {z}} {x}") == ["x", "z"]
    assert "About the recipient" not in last_user(fake.prompts[0])  # every value is in the instruction


def test_a_stopped_merge_run_again_drafts_only_the_rest(mail, tmp_path):
    people = write(tmp_path, "name,email\n" + "".join(f"P{i},p{i}@a.example\n" for i in range(6)))
    out = tmp_path / "out.csv"
    fake = FakeBackend()
    first = mail_merge(mail, people, "thank {name}", out, backend=fake, cancel=lambda: len(fake.prompts) >= 3)
    assert first.cancelled and first.written == 2  # the third was stopped as it was written: not saved
    seen = []
    again = mail_merge(mail, people, "thank {name}", out, backend=fake, progress=seen.append)
    assert (again.resumed, again.drafted, again.written, again.cancelled) == (2, 4, 6, False)
    assert seen[0].earlier == 2 and seen[-1].done == 6
    rows = read_out(out)
    assert [r["row"] for r in rows] == [str(i) for i in range(2, 8)]
    assert [r["draft_id"] for r in rows[:2]] == [str(i) for i in first.draft_ids]
    assert len(list_drafts(mail)) == 6  # no row twice
    done = mail_merge(mail, people, "thank {name}", out, backend=fake)
    assert (done.resumed, done.drafted) == (6, 0) and len(fake.prompts) == 7
    other = mail_merge(mail, people, "thank {name} warmly", out, backend=fake)  # another merge
    assert (other.resumed, other.drafted) == (0, 6)


def test_the_preview_is_kept_when_the_rest_is_drafted(mail, tmp_path):
    people = write(tmp_path, "name,email\n" + "".join(f"P{i},p{i}@a.example\n" for i in range(5)))
    fake = FakeBackend()
    preview = mail_merge(mail, people, "thank {name}", None, limit=PREVIEW_ROWS, backend=fake, tone="warm")
    assert [r["row"] for r in preview.results] == [2, 3, 4] and preview.out == ""
    rest = mail_merge(mail, people, "thank {name}", tmp_path / "out.csv", backend=fake, tone="warm")
    assert (rest.resumed, rest.drafted) == (3, 2) and rest.draft_ids[:3] == preview.draft_ids
    cold = mail_merge(mail, people, "thank {name}", None, limit=1, backend=fake, tone="cold")
    assert cold.drafted == 1  # other options, another merge


def test_progress_counts_rows_and_its_eta_is_this_runs_pace(mail, tmp_path):
    people = write(tmp_path, "name,email\nA,a@a.example\n\nB,b@a.example\n")
    seen = []
    mail_merge(mail, people, "thank {name}", None, backend=FakeBackend(), progress=lambda p: seen.append(
        (p.done, p.total, p.drafted, p.eta is None, p.result and p.result["row"])))  # fmt: skip
    assert seen == [(0, 3, 0, True, None), (1, 3, 1, False, 2), (2, 3, 1, False, None), (3, 3, 2, False, 4)]
