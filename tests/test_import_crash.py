"""A killed import (kill -9) resumes with nothing lost and nothing stored twice; parallel parsing agrees."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import killpoint
import mailgen as gen
import pytest

from assistant import importer
from assistant.importer import import_paths
from assistant.store import open_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_mbox(tmp_path_factory):
    path = tmp_path_factory.mktemp("mail") / "archive.mbox"
    gen.write_mbox(path, gen.iter_messages(3000, seed=5))
    return path


def snapshot(db_path):
    conn = sqlite3.connect(db_path)
    rows = sorted(conn.execute("SELECT message_id, content_hash, body, sent_by_me, thread_id FROM messages"))
    fts = conn.execute("SELECT COUNT(*) FROM messages_fts").fetchone()[0]
    conn.close()
    return rows, fts


def mailvoice(home, *args, capture=False):
    exe = os.path.join(os.path.dirname(sys.executable), "mailvoice")
    pipe = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [exe, *args], env=dict(os.environ, MAILVOICE_HOME=str(home)), stdout=pipe, stderr=pipe
    )


def stored(home) -> int:
    try:
        conn = sqlite3.connect(home / "mailvoice.db", timeout=5)
        n = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        conn.close()
        return n
    except sqlite3.Error:
        return 0


def test_kill_9_at_several_points_then_resume(tmp_path, big_mbox):
    reference = tmp_path / "reference"
    import_paths(open_store(reference), [big_mbox], me=["alex.morgan@example.org"])
    home = tmp_path / "killed"
    killed_at: list[int] = []
    for threshold in (1, 900, 1800):  # kill once the store holds at least this many messages
        proc = mailvoice(home, "import", str(big_mbox), "--me", "alex.morgan@example.org")
        deadline = time.monotonic() + 60
        while proc.poll() is None and stored(home) < threshold and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the import finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at.append(stored(home))
    final = mailvoice(
        home, "import", str(big_mbox), "--me", "alex.morgan@example.org", "--json", capture=True
    )
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    assert killed_at == sorted(killed_at) and 0 < killed_at[-1] < 3000  # each run went further
    assert snapshot(home / "mailvoice.db") == snapshot(reference / "mailvoice.db")


KILL_SEED = 1009
KILLPOINT = str(Path(killpoint.__file__))


def armed_import(home, mbox, at: int, tally=None) -> subprocess.CompletedProcess:
    """The real ``mailvoice --json import`` in a fresh process, killed at its ``at``-th SQL statement (0: never)."""
    env = dict(os.environ, MAILVOICE_HOME=str(home), **{killpoint.KILL_AT: str(at)})
    if tally is not None:
        env[killpoint.TALLY] = str(tally)
    args = ["--json", "import", str(mbox), "--me", "alex.morgan@example.org"]
    return subprocess.run([sys.executable, KILLPOINT, *args], env=env, capture_output=True, text=True, timeout=300)


def test_kill_9_at_20_seeded_points_across_the_whole_run_then_resume(tmp_path):
    """20 kill points drawn evenly from every SQL statement of a clean import (schema set-up, each row of each
    batch, search indexing, thread assignment, the final counts); after each, one resume must give the store of
    the clean run, with each message imported exactly once over the two runs."""
    mbox = tmp_path / "archive.mbox"
    gen.write_mbox(mbox, gen.iter_messages(1000, seed=5))
    tally = tmp_path / "tally"
    clean = armed_import(tmp_path / "clean", mbox, 0, tally)
    assert clean.returncode == 0, clean.stderr
    total, reference = int(tally.read_text()), snapshot(tmp_path / "clean" / "mailvoice.db")
    new = json.loads(clean.stdout)["imported"]
    assert total > 2000 and len(reference[0]) == new > 900
    points = sorted(random.Random(KILL_SEED).sample(range(1, total + 1), 20))
    kept = []
    for n, at in enumerate(points):
        home = tmp_path / f"try-{n}"
        killed = armed_import(home, mbox, at)
        assert killed.returncode == -signal.SIGKILL, f"point {at}/{total}: {killed.stderr[-500:]}"
        kept.append(stored(home))
        resumed = armed_import(home, mbox, 0)
        assert resumed.returncode == 0, f"point {at}/{total}: {resumed.stderr[-500:]}"
        assert json.loads(resumed.stdout)["imported"] == new - kept[-1], f"point {at}/{total}"
        assert snapshot(home / "mailvoice.db") == reference, f"point {at}/{total}"
    assert kept == sorted(kept) and kept[0] < new  # a later point never kept less
    print(f"kill points (of {total} statements): {points}; messages stored when killed: {kept}")


def test_parallel_workers_give_the_same_store(tmp_path, big_mbox, monkeypatch):
    serial = open_store(tmp_path / "serial")
    import_paths(serial, [big_mbox])
    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(importer, "WORKERS", 2)
    parallel = open_store(tmp_path / "parallel")
    report = import_paths(parallel, [big_mbox])
    assert report.seen == 3000
    assert snapshot(tmp_path / "parallel" / "mailvoice.db") == snapshot(tmp_path / "serial" / "mailvoice.db")
