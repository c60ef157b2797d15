"""Core messages fit any front end: they name no command-line option or command. How to do the thing on the
command line goes in the error's ``cli`` text, which only the CLI prints (after the message)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from assistant.errors import MailvoiceError

REPO = Path(__file__).resolve().parents[1]
COMMAND_LINE = re.compile(r"(?<![\w-])--[a-z][a-z-]*|\bmailvoice [a-z]+|(?<![\w-])-o\b")


def messages_naming_the_command_line() -> list[str]:
    """Every string in the message (positional arguments) of an ``…Error(…)`` call in the core that names one."""
    found = []
    for package in ("assistant", "trainer"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path.relative_to(REPO).parts[:2] in (("assistant", "cli"), ("assistant", "gui")):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                    continue
                if not node.func.id.endswith("Error"):
                    continue
                texts = [p.value for a in node.args for p in ast.walk(a) if isinstance(p, ast.Constant)]
                found += [f"{path.relative_to(REPO)}:{node.lineno}: {t!r}" for t in texts
                          if isinstance(t, str) and COMMAND_LINE.search(t)]  # fmt: skip
    return found


def test_the_reading_finds_a_flag_or_a_command():
    assert COMMAND_LINE.search("--n must be at least 1.") and COMMAND_LINE.search("run: mailvoice pairs build")
    assert COMMAND_LINE.search("give another path with -o") and not COMMAND_LINE.search("a well-known e-mail")


def test_no_core_message_names_a_command_line_option_or_command():
    assert messages_naming_the_command_line() == []


def test_the_command_line_hears_the_message_then_how_to_do_it_there():
    error = MailvoiceError("Ask for at least one draft.", cli="--n must be at least 1.")
    assert str(error) == "Ask for at least one draft."  # what the app shows
    assert error.for_command_line() == "Ask for at least one draft. --n must be at least 1."
    assert MailvoiceError("Nothing to add.").for_command_line() == "Nothing to add."
