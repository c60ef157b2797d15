"""Verbatim copy detection (assistant/overlap.py): the 50-character line, whitespace and case, offsets, scale."""

from __future__ import annotations

import random
import string

import pytest

from assistant.overlap import CopyIndex, normalise

SOURCE = (
    "Hi Rosa, the plumber confirmed he can come on Monday morning between nine and eleven, "
    "so please leave the side gate open for him. Thanks a lot, Alex"
)


def index_of(*texts: str, min_chars: int = 50) -> CopyIndex:
    index = CopyIndex(min_chars=min_chars)
    for key, text in enumerate(texts):
        index.add(text, key=f"email-{key}")
    return index


def test_normalise_collapses_whitespace_lowers_and_maps_offsets():
    norm, where = normalise("  Hello\n\n  World\tAgain ")
    assert norm == "hello world again"
    assert len(where) == len(norm)
    assert [where[i] for i in (0, 5, 6)] == [2, 10, 11]  # "h", the space (last blank before "W"), "w"


@pytest.mark.parametrize("length", [49, 50])
def test_the_line_is_50_characters(length):
    index = index_of(SOURCE)
    copied = SOURCE[21 : 21 + length]
    assert copied == copied.strip()
    draft = f"Dear landlord§{copied}§see you then."
    found = index.find(draft)
    if length == 49:
        assert found == [] and not index.copies(draft)
    else:
        assert index.copies(draft)
        [hit] = found
        assert hit.key == "email-0" and draft[hit.start : hit.end] == copied and len(hit.copied) == 50


def test_the_line_holds_at_every_alignment():
    """Whatever the offset of the copied run in the source (the index keeps every 25th window only)."""
    index = index_of(SOURCE)
    for offset in range(len(SOURCE) - 50):
        run = SOURCE[offset : offset + 50]
        if run != run.strip():
            continue  # a run starting or ending in a blank normalises shorter
        assert index.copies("zz§" + run + "§qq"), offset
        assert not index.copies("zz§" + run[:49] + "§qq"), offset


def test_whitespace_and_case_differences_do_not_hide_a_copy():
    index = index_of(SOURCE)
    rewrapped = "THE PLUMBER confirmed he can come\non Monday   morning\n\tbetween nine and eleven"
    [hit] = index.find("Note: " + rewrapped + "!")
    assert hit.copied == "the plumber confirmed he can come on monday morning between nine and eleven"
    assert ("Note: " + rewrapped + "!")[hit.start : hit.end] == rewrapped


def test_reports_each_source_and_the_longest_run():
    other = "Totally different words about quarterly budget numbers and the team offsite in Lisbon next spring."
    index = index_of(SOURCE, other)
    draft = SOURCE[:70] + " and also " + other[10:80]
    found = index.find(draft)
    assert [c.key for c in found] == ["email-0", "email-1"]
    assert found[0].copied == " ".join(SOURCE[:70].lower().split())  # grown to the whole shared run
    assert found[1].copied == " ".join(other[10:80].lower().split())
    assert index.find("Hi Rosa, Monday morning works. Thanks a lot, Alex") == []


def test_duplicate_sources_and_default_keys():
    index = CopyIndex()
    index.add_many([SOURCE, SOURCE])
    assert len(index) == 2
    assert sorted(c.key for c in index.find(SOURCE)) == [0, 1]
    assert CopyIndex().find(SOURCE) == []
    with pytest.raises(ValueError):
        CopyIndex(min_chars=1)


def test_finds_a_copy_among_thousands_of_emails():
    rng = random.Random(4)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(3000)]
    emails = [" ".join(rng.choices(words, k=rng.randint(40, 200))) for _ in range(3000)]
    index = CopyIndex()
    for i, text in enumerate(emails):
        index.add(text, key=i)
    target = emails[1234]
    run = target[100:160]
    draft = " ".join(rng.choices(words, k=80)) + " " + run + " " + " ".join(rng.choices(words, k=80))
    keys = {c.key for c in index.find(draft)}
    assert 1234 in keys
    fresh = " ".join(rng.choices(words, k=300))
    assert all(len(c.copied) >= 50 for c in index.find(fresh))  # random text may share nothing this long
