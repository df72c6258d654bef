"""Secrets at rest: the key's origin and mode, sealing and unsealing."""

from __future__ import annotations

import stat

import pytest
from cryptography.fernet import Fernet

from flowyard.blocks.encryption import KEY_FILE, load_key, seal, unseal
from flowyard.errors import FlowyardError, InvalidInput


class TestKey:
    def test_generated_once_with_owner_only_mode(self, tmp_path):
        """Without a configured key one is generated into home, mode 0600, and reused."""
        first = load_key(None, tmp_path)
        assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
        assert load_key(None, tmp_path) == first
        Fernet(first)

    def test_configured_key_wins(self, tmp_path):
        """``FLOWYARD_SECRET_KEY`` is used as is and no file is written."""
        key = Fernet.generate_key().decode()
        assert load_key(key, tmp_path) == key.encode()
        assert not (tmp_path / KEY_FILE).exists()

    def test_a_bad_key_is_a_clear_error(self, tmp_path):
        """A key that is not a Fernet key is refused, naming where it came from."""
        with pytest.raises(InvalidInput, match="FLOWYARD_SECRET_KEY"):
            load_key("not-a-key", tmp_path)


class TestSeal:
    def test_round_trip_and_ciphertext_hides_the_value(self):
        """Sealed secrets come back equal and the token does not contain them."""
        fernet = Fernet(Fernet.generate_key())
        token = seal(fernet, {"password": "hunter2"})
        assert token and "hunter2" not in token
        assert unseal(fernet, token) == {"password": "hunter2"}

    def test_nothing_to_seal(self):
        """A block without set secrets stores no token."""
        fernet = Fernet(Fernet.generate_key())
        assert seal(fernet, {}) is None
        assert unseal(fernet, None) == {}

    def test_another_key_cannot_unseal(self):
        """A changed key gives a clear error, never garbage."""
        token = seal(Fernet(Fernet.generate_key()), {"v": "x"})
        with pytest.raises(FlowyardError, match="secret key changed"):
            unseal(Fernet(Fernet.generate_key()), token)
