"""``mailvoice demo``: the whole pipeline on the embedded model, with every process's network attempts recorded."""

from __future__ import annotations

import csv
import gzip
import importlib.resources
import json
import mailbox
import os
import subprocess
import sys
from pathlib import Path

import mailgen
import pytest
from mailgen.writers import DEMO_MESSAGES, DEMO_SEED, demo_mailbox_bytes

from assistant import netguard
from assistant.cli.demo import MAILBOX, MAILBOX_MESSAGES, MARKER, DemoFailed, prepare_folder, sample_mailbox

MAILVOICE = str(Path(sys.executable).with_name("mailvoice"))


def test_prepare_folder_replaces_an_earlier_demo_but_never_a_foreign_folder(tmp_path):
    demo = tmp_path / "demo"
    prepare_folder(demo)
    (demo / "old.txt").write_text("from the last run")
    prepare_folder(demo)
    assert sorted(p.name for p in demo.iterdir()) == [MARKER]

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(DemoFailed, match="not empty"):
        prepare_folder(foreign)
    assert (foreign / "thesis.tex").read_text() == "keep me"


def test_the_shipped_mailbox_is_what_the_generator_makes():
    shipped = (importlib.resources.files("resources") / "demo" / MAILBOX).read_bytes()
    fresh = demo_mailbox_bytes()
    # The mbox inside, byte for byte (the deflate stream itself may differ with another zlib build).
    assert gzip.decompress(shipped) == gzip.decompress(fresh), (
        "resources/demo/alex-morgan.mbox.gz is stale: python tests/mailgen --demo resources/demo/alex-morgan.mbox.gz"
    )
    assert shipped[:10] == fresh[:10]  # gzip header: no name, time 0
    assert MAILBOX_MESSAGES == DEMO_MESSAGES


def test_the_demo_imports_the_first_messages_of_the_shipped_mailbox(tmp_path):
    everything = mailgen.generate_messages(DEMO_MESSAGES, seed=DEMO_SEED)
    for n in (50, 150, 999):
        expected = tmp_path / f"{n}.mbox"
        mailgen.write_mbox(expected, everything[:n])
        assert sample_mailbox(n) == expected.read_bytes(), n
    mbox = tmp_path / "all.mbox"
    mbox.write_bytes(sample_mailbox())
    box = mailbox.mbox(str(mbox), create=False)
    assert len(box) == DEMO_MESSAGES
    box.close()


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline_offline_and_says_where_everything_is(tmp_path):
    netlog = tmp_path / "net.jsonl"
    env = dict(os.environ, MAILVOICE_NETLOG=str(netlog), OMP_WAIT_POLICY="PASSIVE")
    done = subprocess.run(
        [MAILVOICE, "--data-dir", str(tmp_path / "home"), "--json", "demo",
         "--messages", "150", "--pairs", "6", "--steps", "1", "--eval-limit", "1"],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)

    # Every stage ran, in order, through the public commands.
    assert [s["command"][1] for s in out["steps"]] == ["import", "pairs", "pairs", "train", "draft", "eval", "export",
                                                       "stats"]
    assert out["imported"] > 100 and out["pairs_built"] >= 4
    assert out["adapter"] == "demo" and out["train_loss"] is not None
    assert out["draft"].strip()
    assert 0.0 <= out["eval"]["bleu"] <= 1.0 and out["eval"]["verbatim_overlap"] is not None

    # Each artefact it names exists where it says.
    art = out["artefacts"]
    for key in ("mailbox", "database", "pairs", "adapter", "drafts_csv", "eval_report", "eval_json"):
        assert Path(art[key]).is_file(), key
    assert Path(art["adapter"]).read_bytes()[:4] == b"GGUF"
    with open(art["drafts_csv"], encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["generated_email"] for r in rows if r["adapter"] == "demo"]
    assert len(Path(art["pairs"]).read_text().splitlines()) == out["pairs_built"]
    assert str(tmp_path / "home" / "demo") == out["folder"]  # the user's own data folder was not used

    # Nothing left the machine: every guarded process (CLI steps, import and training workers) logged its attempts.
    attempts = netguard.read_log(netlog)
    assert attempts.refused == [], attempts.refused
    assert all(netguard.is_local_host(a.host) or a.host.startswith("/") or a.host == "" for a in attempts.attempts)
