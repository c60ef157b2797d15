"""``python tests/mailgen --demo resources/demo/alex-morgan.mbox.gz``: write the demo mailbox ``mailvoice demo``
ships (tests/test_demo.py checks that the shipped file is what this writes)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a folder or a file path: make the package importable as ``mailgen``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailgen.writers import DEMO_MESSAGES, DEMO_SEED, write_demo_mailbox  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/mailgen", description=__doc__)
    parser.add_argument("--demo", metavar="PATH", required=True, help="where to write the gzipped demo mbox")
    args = parser.parse_args(argv)
    size = write_demo_mailbox(args.demo)
    print(f"{args.demo}: {DEMO_MESSAGES} messages (seed {DEMO_SEED}), {size:,} bytes gzipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
