"""Every file of the shared real-mail corpora: imported or skipped with a reason, never an exception."""

from __future__ import annotations

import pytest

from assistant.importer import import_paths

pytestmark = [pytest.mark.corpora, pytest.mark.slow]


def test_every_corpus_message_is_accounted_for(db, corpora):
    report = import_paths(db, [corpora])
    assert report.seen > 10_000
    assert report.imported + report.duplicates + len(report.skipped) == report.seen
    unreadable = [s for s in report.skipped if s.reason.startswith("unreadable")]
    assert unreadable == [], unreadable[:5]
    stored = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert stored == report.imported
    # The three exports of maven-dev 2017-11 hold the same mail: stored once.
    maven = db.execute(
        "SELECT COUNT(*) FROM messages WHERE source_file LIKE '%maven-dev-2017-11-%'"
    ).fetchone()[0]
    assert maven <= 321
    again = import_paths(db, [corpora])
    assert again.imported == 0
