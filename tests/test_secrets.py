"""Secrets live only in the keyring: set/get/delete round trips, clear errors, never a byte on disk."""

from __future__ import annotations

import keyring
import keyring.backend
import keyring.errors
import pytest

from assistant import secrets
from assistant.identities import stats
from assistant.secrets import SecretsError

TOKEN = "hf_FAKEtokenFORtests0123456789abcdef"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An isolated keyring held in a dict: what the system keyring does, without touching it."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        if self.store.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")


class LockedKeyring(MemoryKeyring):
    def get_password(self, service, username):
        raise keyring.errors.KeyringLocked("the collection is locked")

    def set_password(self, service, username, password):
        raise keyring.errors.KeyringLocked("the collection is locked")


class ForgetfulKeyring(MemoryKeyring):
    """Like keyring's null backend: accepts everything, keeps nothing."""

    def set_password(self, service, username, password):
        pass


class PlaintextKeyring(MemoryKeyring):
    """Named like keyrings.alt's backend that writes secrets to a readable file."""


def use(backend: keyring.backend.KeyringBackend):
    keyring.set_keyring(backend)
    return backend


@pytest.fixture(autouse=True)
def isolated_keyring():
    previous = keyring.get_keyring()
    yield use(MemoryKeyring())
    keyring.set_keyring(previous)


def test_a_token_round_trips_under_the_mailvoice_service(isolated_keyring):
    assert secrets.get_token("huggingface") is None
    secrets.set_token("huggingface", f"  {TOKEN}\n")  # pasted with spaces and a newline
    assert secrets.get_token("huggingface") == TOKEN
    assert isolated_keyring.store == {("mailvoice", "huggingface"): TOKEN}
    secrets.set_token("huggingface", TOKEN + "2")
    assert secrets.get_token("huggingface") == TOKEN + "2"
    assert secrets.delete_token("huggingface") is True
    assert secrets.delete_token("huggingface") is False
    assert secrets.get_token("huggingface") is None and isolated_keyring.store == {}


def test_the_token_never_reaches_the_data_folder(db, data_home):
    secrets.set_token("huggingface", TOKEN)
    stats(db)  # the app's usual reads and writes in the same data folder
    db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES ('probe', '1')")
    db.conn.commit()
    written = [p for p in data_home.rglob("*") if p.is_file()]
    assert written and not [p for p in written if TOKEN.encode() in p.read_bytes()]
    rows = db.execute("SELECT key, value FROM settings").fetchall()
    assert not [r for r in rows if TOKEN in str(r)]


def test_a_locked_keyring_is_a_clear_error_without_the_token():
    use(LockedKeyring())
    with pytest.raises(SecretsError, match="Unlock your keyring") as err:
        secrets.set_token("huggingface", TOKEN)
    assert TOKEN not in str(err.value)
    with pytest.raises(SecretsError, match="Could not read"):
        secrets.get_token("huggingface")


def test_a_keyring_that_keeps_nothing_is_reported_at_once():
    use(ForgetfulKeyring())
    with pytest.raises(SecretsError, match="did not keep the token"):
        secrets.set_token("huggingface", TOKEN)


def test_a_plain_text_keyring_is_refused():
    backend = use(PlaintextKeyring())
    with pytest.raises(SecretsError, match="plain text"):
        secrets.set_token("huggingface", TOKEN)
    assert backend.store == {}


def test_no_keyring_at_all_says_what_to_install():
    from keyring.backends import fail

    use(fail.Keyring())
    with pytest.raises(SecretsError, match="GNOME Keyring or KWallet"):
        secrets.set_token("huggingface", TOKEN)


@pytest.mark.parametrize("bad", ["", " ", "name "])
def test_bad_names_and_empty_tokens_are_refused(bad):
    with pytest.raises(ValueError):
        secrets.set_token(bad, TOKEN)
    with pytest.raises(SecretsError, match="empty"):
        secrets.set_token("huggingface", "  \n")
