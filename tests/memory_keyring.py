"""A keyring held in memory, for tests and for processes they start (``PYTHON_KEYRING_BACKEND=memory_keyring.
MemoryKeyring``): ``MAILVOICE_TEST_KEYRING`` (JSON ``{"name": "secret"}``) fills it for service "mailvoice"."""

from __future__ import annotations

import json
import os

import keyring.backend
import keyring.errors


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        seeded = json.loads(os.environ.get("MAILVOICE_TEST_KEYRING", "{}"))
        self.store: dict[tuple[str, str], str] = {("mailvoice", k): v for k, v in seeded.items()}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        if self.store.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")
