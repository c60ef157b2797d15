"""Datasets in and out: export formats, and imports that report bad rows one by one."""

from __future__ import annotations

import csv
import json

import pytest

from trainer.pairs import export_pairs, import_pairs, list_pairs, set_status
from trainer.pairs.csvrows import quote_start
from trainer.pairs.errors import DatasetError
from trainer.pairs.scrub import ScrubSettings, save_settings

ROWS = [
    {"instruction": "Ask Rosa about the plumber on Monday.", "input": "", "output": "Hi Rosa,\n\nMonday?\n\nAlex"},
    {"instruction": "Thank Kenji for the numbers.", "input": "From: Kenji\n\nNumbers attached.",
     "output": "Thanks Kenji, \"great\", got them.", "split": "validation"},
    {"instruction": "Tell Grace the code is 482913.", "input": "", "output": "Grace, the code is 482913."},
]  # fmt: skip


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_export_round_trip_in_every_format(db, tmp_path):
    report = import_pairs(db, write(tmp_path / "in.json", json.dumps(ROWS)))
    assert report.imported == 3 and report.dropped == []
    set_status(db, 1, "excluded")
    for kind in ("jsonl", "json", "csv"):
        out = tmp_path / f"out.{kind}"
        assert export_pairs(db, out) == 2  # excluded pairs stay out
        if kind == "csv":
            with out.open(encoding="utf-8", newline="") as f:
                rows = list(csv.DictReader(f))
        elif kind == "json":
            rows = json.loads(out.read_text(encoding="utf-8"))
        else:
            rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [list(r) for r in rows] == [["instruction", "input", "output", "split"]] * 2
        assert rows[0]["output"] == 'Thanks Kenji, "great", got them.' and rows[0]["split"] == "validation"
        assert rows[1]["output"] == "Grace, the code is [CODE]."  # scrubbed, as training will see it
        assert rows[1]["instruction"] == "Tell Grace the code is [CODE]."
    assert export_pairs(db, tmp_path / "val.jsonl", split="validation") == 1


def test_export_to_an_unknown_format_is_refused(db, tmp_path):
    with pytest.raises(DatasetError, match=r"\.jsonl, \.json or \.csv"):
        export_pairs(db, tmp_path / "out.xlsx")


def test_malformed_csv_rows_are_reported_one_by_one(db, tmp_path):
    text = (
        "instruction,input,output,split\n"
        'Ask Rosa about Monday.,,"Hi Rosa,\nMonday?",train\n'  # row 2: a quoted value over two lines
        "Tell Kenji the news.,,,\n"  # row 3: no output
        'Thank Grace.,ctx,"Thanks!",validation,extra,values\n'  # row 4: too many values
        ",,Some email without an instruction,\n"  # row 5: no instruction
        "Remind Sam about the invoice.\n"  # row 6: only one value: no output
        'Confirm the booking for Friday.,,"Booked, see you Friday."\n'  # row 7: no split column value
    )
    report = import_pairs(db, write(tmp_path / "set.csv", text))
    assert report.imported == 2
    assert report.dropped == [
        {"row": 3, "reason": "no output (the email text is missing or empty)"},
        {"row": 4, "reason": "2 more value(s) than the header has columns (an unquoted comma?)"},
        {"row": 5, "reason": "no instruction"},
        {"row": 6, "reason": "no output (the email text is missing or empty)"},
    ]
    pairs = list_pairs(db)
    assert [p.input for p in pairs] == ["", ""] and pairs[0].output == "Hi Rosa,\nMonday?"
    assert {p.source for p in pairs} == {"imported"} and pairs[1].origin == "set.csv row 7"
    assert report.filled_input == 2


def test_json_with_missing_values_and_wrong_shapes(db, tmp_path):
    data = {"data": [
        {"instruction": "Ask Rosa about Monday.", "output": "Hi Rosa, Monday?"},  # no input: filled with ""
        {"instruction": "Tell Kenji.", "input": None, "output": None},
        "just a string",
        {"instruction": "Thank Grace.", "input": "ctx", "output": ""},
        {"Instruction": "Book it.", "Output": "Booked for Friday.", "split": "bogus"},
    ]}  # fmt: skip
    report = import_pairs(db, write(tmp_path / "set.json", json.dumps(data)))
    assert report.imported == 2 and report.filled_input == 2
    assert [d["row"] for d in report.dropped] == [2, 3, 4]
    assert report.dropped[1]["reason"].startswith("not an object")
    assert all(p.input == "" for p in list_pairs(db))
    assert {p.split for p in list_pairs(db)} <= {"train", "validation"}


def test_jsonl_bad_lines_are_reported_by_line_number(db, tmp_path):
    lines = [json.dumps(ROWS[0]), "{not json", "", json.dumps({"instruction": "x y z", "input": ""})]
    report = import_pairs(db, write(tmp_path / "set.jsonl", "\n".join(lines) + "\n"))
    assert report.imported == 1
    assert [d["row"] for d in report.dropped] == [2, 4]
    assert report.dropped[0]["reason"].startswith("not valid JSON")


def test_broken_files_are_one_clear_error(db, tmp_path):
    with pytest.raises(DatasetError, match=r"not valid JSON \(line 1"):
        import_pairs(db, write(tmp_path / "bad.json", '[{"instruction": "x",'))
    with pytest.raises(DatasetError, match="no 'output' column"):
        import_pairs(db, write(tmp_path / "bad.csv", "prompt,completion\na,b\n"))
    with pytest.raises(DatasetError, match="expected a JSON list"):
        import_pairs(db, write(tmp_path / "bad2.json", '{"a": 1}'))
    (tmp_path / "latin1.csv").write_bytes("instruction,output\nSag Hallo,Grüße\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        import_pairs(db, tmp_path / "latin1.csv")


def test_importing_twice_adds_nothing_and_scrub_settings_apply(db, tmp_path):
    path = write(
        tmp_path / "set.json", json.dumps([{"instruction": "Call Sam.", "output": "Call me on 020 7946 0958."}])
    )
    assert import_pairs(db, path).imported == 1
    again = import_pairs(db, path)
    assert (again.imported, again.duplicates) == (0, 1)
    assert list_pairs(db)[0].output == "Call me on 020 7946 0958."
    save_settings(db, ScrubSettings(phones=True))
    assert list_pairs(db)[0].output == "Call me on [PHONE]."  # settings apply to what is stored already


# --- CSV: long emails and broken quoting ---------------------------------------------------------------

LONG_EMAIL = "Hi Rosa,\n\n" + ('A long line about the lease, the tap, and "the keys".\n' * 4000) + "\nBest,\nAlex"


def store_one(db, tmp_path, output: str) -> None:
    pair = {"instruction": "Write to Rosa about the lease.", "input": "", "output": output, "split": "train"}
    assert import_pairs(db, write(tmp_path / "one.json", json.dumps([pair]))).imported == 1


def other_store(tmp_path):
    from assistant.store import open_store

    return open_store(tmp_path / "other")


def test_csv_round_trip_of_an_email_longer_than_the_csv_module_allows(db, tmp_path):
    assert len(LONG_EMAIL) > 131_072  # Python's csv field size limit
    store_one(db, tmp_path, LONG_EMAIL)
    assert export_pairs(db, tmp_path / "out.csv") == 1
    other = other_store(tmp_path)
    report = import_pairs(other, tmp_path / "out.csv")
    assert (report.imported, report.dropped) == (1, [])
    assert [(p.instruction, p.output) for p in list_pairs(other)] == [("Write to Rosa about the lease.", LONG_EMAIL)]


QUOTED = 'instruction,input,output,split\nAsk Rosa.,,"Hi Rosa,\n\nMonday?",train\n'  # rows 1-2, lines 1-4


@pytest.mark.parametrize(
    ("rest", "line", "row"),
    [
        # The quote opened on line 5 swallows lines 6-7 up to the next row's opening quote.
        ('Thank Kenji.,,"Thanks Kenji,\nTell Grace.,,Done,train\nBook it.,,"Booked, see you.",train\n', 5, 3),
        # The quote opened on line 5 runs to the end of the file.
        ('Thank Kenji.,,"Thanks Kenji,train\nTell Grace.,,Done,train\n', 5, 3),
        # A quote inside a quoted value that is not written twice.
        ('Thank Kenji.,,"Thanks "Kenji", see you.",train\n', 5, 3),
    ],
)
def test_an_unclosed_quote_is_refused_with_the_line_it_was_opened_on(db, tmp_path, rest, line, row):
    with pytest.raises(DatasetError, match=rf"the quoted value that starts on line {line} \(row {row}\) is not closed"):
        import_pairs(db, write(tmp_path / "set.csv", QUOTED + rest))
    assert list_pairs(db) == []


def test_multi_line_emails_that_look_like_rows_inside_are_not_refused(db, tmp_path):
    tricky = 'Hi,\n\nTell Grace.,,Done,train\n"Quoted", she said,\n\n,,,\nBest,\nAlex'
    store_one(db, tmp_path, tricky)
    export_pairs(db, tmp_path / "out.csv")
    other = other_store(tmp_path)
    assert import_pairs(other, tmp_path / "out.csv").imported == 1
    assert list_pairs(other)[0].output == tricky


def test_quote_start_finds_the_open_value():
    assert quote_start(['a,,"b\n', "c,d\n"], 7) == 7
    assert quote_start(['a,"x ""y""",z\n'], 1) is None  # closed properly, doubled quotes inside
    assert quote_start(['a,,"ok",\n', 'b,"open\n', "more\n"], 10) == 11
