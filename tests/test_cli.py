"""The command-line contract: commands, --json keys, exit codes (0 ok, 1 user error, 2 bad usage)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mailgen as gen
import pytest
from click.testing import CliRunner

from assistant.cli import cli


@pytest.fixture
def mbox(tmp_path):
    path = tmp_path / "Sent.mbox"
    gen.write_mbox(path, gen.generate_messages(120, seed=11))
    return path


def run(*args: str) -> tuple[int, dict | str, str]:
    result = CliRunner().invoke(cli, list(args))
    out = result.stdout
    try:
        return result.exit_code, json.loads(out), result.stderr
    except json.JSONDecodeError:
        return result.exit_code, out, result.stderr


def test_import_json_keys(mbox):
    code, out, _ = run("import", str(mbox), "--json")
    assert code == 0
    assert {"seen", "imported", "duplicates", "skipped", "sent_by_me", "seconds"} <= set(out)
    assert out["seen"] == out["imported"] + out["duplicates"] + len(out["skipped"]) == 120
    assert all(set(s) == {"where", "reason"} for s in out["skipped"])


def test_identities_me_and_stats(mbox):
    run("import", str(mbox), "--json")
    code, out, _ = run("identities", "--json")
    assert code == 0 and out["identities"][0]["address"] == "alex.morgan@example.org"
    code, out, _ = run("me", "alex.morgan@example.org", "alex@morgan.example", "--json")
    assert code == 0 and out["me"] == ["alex.morgan@example.org", "alex@morgan.example"]
    code, stats, _ = run("stats", "--json")
    assert code == 0 and stats["sent"] == out["sent_by_me"] > 0
    assert {"messages", "sent", "threads", "pairs", "drafts", "adapters"} <= set(stats)


def test_data_dir_option_is_honoured(mbox, tmp_path):
    target = tmp_path / "elsewhere"
    code, out, _ = run("import", str(mbox), "--data-dir", str(target), "--json")
    assert code == 0 and (target / "mailvoice.db").exists()
    code, stats, _ = run("--data-dir", str(target), "stats", "--json")
    assert stats["messages"] == out["imported"]


def test_not_mail_is_a_one_line_error(tmp_path):
    junk = tmp_path / "photo.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 200)
    code, _, err = run("import", str(junk))
    assert code == 1
    assert err.startswith("Error: No mail found") and err.count("\n") == 1


def test_bad_usage_exits_2(mbox):
    assert run("import")[0] == 2
    assert run("import", str(mbox), "--since", "last tuesday")[0] == 2


def test_console_script_runs_with_json_on_stdout_and_progress_on_stderr(mbox, tmp_path):
    env = dict(os.environ, MAILVOICE_HOME=str(tmp_path / "h"))
    exe = os.path.join(os.path.dirname(sys.executable), "mailvoice")
    proc = subprocess.run([exe, "import", str(mbox), "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["seen"] == 120


def test_every_command_is_found_through_its_module_and_help_lists_them_all():
    import importlib

    from assistant.cli import MODULES

    found = {}
    for module in set(MODULES.values()):
        found.update((c.name, module) for c in importlib.import_module(f"assistant.cli.{module}").COMMANDS)
    assert found == MODULES
    code, out, _ = run("--help")
    assert code == 0
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(MODULES)
    assert run("no-such-command")[0] == 2


def test_an_import_starts_without_the_other_commands_modules(mbox, tmp_path):
    code = (
        "import sys; from assistant.cli import main; sys.argv = ['mailvoice', 'import', sys.argv[1], '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('assistant.drafting', 'assistant.cli.', 'trainer'))))"
    )
    env = dict(os.environ, MAILVOICE_HOME=str(tmp_path / "h"))
    proc = subprocess.run([sys.executable, "-c", code, str(mbox)], capture_output=True, text=True, env=env, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "['assistant.cli.common', 'assistant.cli.mail']"
