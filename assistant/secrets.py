"""Secrets (tokens a user enters, such as a model-hub token) live only in the system keyring, never on disk.

The operating system's keyring (macOS Keychain, Windows Credential Manager, Secret Service / KWallet on
Linux) keeps them encrypted and unlocked with the user's login. Nothing here writes a secret to the
database, the settings table, a log or any file: a missing or locked keyring is an error to fix, not a
reason to fall back to plain text. Backends that store in plain text (``keyrings.alt``'s
``PlaintextKeyring``) are refused for the same reason.
"""

from __future__ import annotations

import keyring
import keyring.errors

from assistant.errors import MailvoiceError

SERVICE = "mailvoice"
_PLAIN_TEXT_BACKENDS = {"PlaintextKeyring", "UncryptedFileKeyring"}  # keyrings.alt: readable files on disk


class SecretsError(MailvoiceError):
    """The system keyring is missing, locked or refused the request."""


def get_token(name: str) -> str | None:
    """The token stored under ``name`` (e.g. ``"huggingface"``), or None when there is none."""
    backend = _backend()
    try:
        return backend.get_password(SERVICE, _check_name(name))
    except keyring.errors.KeyringError as exc:
        raise _explain(exc, "read") from exc


def set_token(name: str, value: str) -> None:
    """Store ``value`` under ``name`` in the system keyring, replacing any previous one.

    Raises:
        SecretsError: no usable keyring, or it did not keep the token (read back to make sure).
    """
    token = value.strip()  # a pasted token often carries a newline
    if not token:
        raise SecretsError("The token is empty. Paste the whole token and try again.")
    backend = _backend()
    try:
        backend.set_password(SERVICE, _check_name(name), token)
        kept = backend.get_password(SERVICE, name)
    except keyring.errors.KeyringError as exc:
        raise _explain(exc, "store") from exc
    if kept != token:  # a "null" keyring accepts and discards: better to say so now than fail later
        raise SecretsError(
            f"The system keyring ({_describe(backend)}) did not keep the token. "
            "Set up a working keyring (see below) and enter it again."
        )


def delete_token(name: str) -> bool:
    """Delete the token stored under ``name``; True when there was one."""
    backend = _backend()
    try:
        if backend.get_password(SERVICE, _check_name(name)) is None:
            return False
        backend.delete_password(SERVICE, name)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as exc:
        raise _explain(exc, "delete") from exc
    return True


def _backend() -> keyring.backend.KeyringBackend:
    backend = keyring.get_keyring()
    if type(backend).__name__ in _PLAIN_TEXT_BACKENDS:
        raise SecretsError(
            f"The configured keyring ({_describe(backend)}) stores secrets as plain text on disk, so Mailvoice "
            "will not use it. Choose the system keyring and try again.",
            cli="(python -m keyring --list-backends lists the keyrings)",
        )
    return backend


def _check_name(name: str) -> str:
    if not name or not name.strip() or name != name.strip():
        raise ValueError(f"a token name must be a non-empty word, not {name!r}")
    return name


def _describe(backend: keyring.backend.KeyringBackend) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def _explain(exc: keyring.errors.KeyringError, action: str) -> SecretsError:
    if isinstance(exc, keyring.errors.KeyringLocked):
        hint = "Unlock your keyring (log in to the desktop session, or open your password manager) and try again."
    elif isinstance(exc, keyring.errors.NoKeyringError):
        hint = (
            "No system keyring was found. On Linux install and start GNOME Keyring or KWallet "
            "(a Secret Service provider); macOS and Windows have one built in."
        )
    else:
        hint = "Check that your system keyring works (python -m keyring diagnose) and try again."
    # The keyring's own message, never the token: exceptions from set_password do not carry it.
    return SecretsError(f"Could not {action} the token in the system keyring ({type(exc).__name__}: {exc}). {hint}")
