"""Expected errors of the core: things a person can fix, each with a message saying what to do.

Anything else that escapes the core is a bug. The CLI (``assistant.cli``) and the GUI each turn these
into a message in one place.
"""

from __future__ import annotations


class MailvoiceError(Exception):
    """A user-facing error: the message says what went wrong and what to do about it, in words that fit any
    front end (the app's buttons and the command line alike). ``cli`` says how to do it on the command line
    (its options and commands); the CLI prints it after the message, the app has its own controls.
    """

    def __init__(self, message: str = "", *, cli: str = ""):
        super().__init__(message)
        self.cli = cli

    def for_command_line(self) -> str:
        return f"{self} {self.cli}" if self.cli else str(self)


class NotMailError(MailvoiceError):
    """A path given to import holds nothing that looks like mail."""


class StoreError(MailvoiceError):
    """The database cannot be opened, is damaged, or the disk is full."""


class Cancelled(Exception):
    """Raised inside long jobs when the user asked them to stop; not an error."""
