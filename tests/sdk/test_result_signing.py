"""Result records are signed; a pickled one is read only with a valid signature, and
only from a storage the reader trusts (never the one a reference names)."""

from __future__ import annotations

import base64
import enum
import json
import pickle
from pathlib import Path

import pytest
from tests.planted import evil_ref, plant

from flowyard.errors import InvalidInput
from flowyard.results import LocalFileSystem, ResultStore, UntrustedResult, load_result
from flowyard.sdk.result_refs import reference
from flowyard.sdk.results import DefaultSerializer, PickleSerializer
from flowyard.sdk.signing import signing_key
from flowyard.settings import Settings

KEY = b"k" * 32
OTHER = b"o" * 32


class Colour(enum.StrEnum):
    RED = "red"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FLOWYARD_HOME, and no signing or secret key from the environment."""
    monkeypatch.setenv("FLOWYARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLOWYARD_RESULT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("FLOWYARD_SECRET_KEY", raising=False)
    return tmp_path / "home"


def _store(folder: Path, key: bytes = KEY) -> ResultStore:
    return ResultStore(LocalFileSystem(folder), DefaultSerializer(), signing_key=key)


class TestSignatures:
    def test_a_pickled_record_round_trips_with_its_signature(self, tmp_path):
        """A value JSON cannot hold is pickled, signed, and read back by the same key."""
        _store(tmp_path).write("r", (1, "a"), expiration=None, owner="t")
        metadata = json.loads((tmp_path / "r").read_bytes())["metadata"]
        assert metadata["serializer"]["type"] == "pickle"
        assert metadata["signature"].startswith("hmac-sha256:")
        assert _store(tmp_path).load("r").value == (1, "a")

    def test_a_record_signed_with_another_key_is_refused(self, tmp_path):
        """Another key's record is refused by load (saying so) and is a miss for read."""
        _store(tmp_path, OTHER).write("r", {1, 2}, expiration=None, owner="t")
        with pytest.raises(UntrustedResult, match="does not match .* signing key"):
            _store(tmp_path).load("r")
        assert _store(tmp_path).read("r") is None

    def test_an_unsigned_pickle_is_never_unpickled(self, tmp_path):
        """A planted unsigned pickle is refused before any of it runs."""
        marker = tmp_path / "ran"
        plant(tmp_path / "store", "r", marker)
        with pytest.raises(UntrustedResult, match="it is not signed"):
            _store(tmp_path / "store").load("r")
        assert _store(tmp_path / "store").read("r") is None  # a cache miss, recomputed
        assert not marker.exists()

    def test_a_forged_signature_is_refused(self, tmp_path):
        """A record with a made-up signature is refused; nothing is unpickled."""
        marker = tmp_path / "ran"
        plant(tmp_path / "store", "r", marker, signature="hmac-sha256:" + "0" * 64)
        with pytest.raises(UntrustedResult, match="does not match"):
            _store(tmp_path / "store").load("r")
        assert not marker.exists()

    def test_an_altered_or_moved_record_is_refused(self, tmp_path):
        """Changing a signed record's payload, or copying it under another key, breaks
        its signature."""
        store = _store(tmp_path)
        store.write("a", (1,), expiration=None, owner="t")
        raw = (tmp_path / "a").read_bytes()
        (tmp_path / "b").write_bytes(raw)
        record = json.loads(raw)
        record["result"] = base64.encodebytes(pickle.dumps((2,))).decode()
        (tmp_path / "a").write_text(json.dumps(record))
        for key in ("a", "b"):
            with pytest.raises(UntrustedResult):
                store.load(key)

    def test_plain_json_data_is_written_as_json_and_read_even_unsigned(self, tmp_path):
        """The default writes plain JSON data as JSON; a JSON record needs no signature
        (reading it runs no code), so other tools may write them."""
        record = _store(tmp_path).write("j", {"a": [1, 2.5, None]}, expiration=None, owner="t")
        assert record.serializer == "json"
        (tmp_path / "u").write_bytes(b'{"serializer": "json", "expiration": null}\n[1, 2]')
        assert _store(tmp_path, OTHER).load("u").value == [1, 2]

    @pytest.mark.parametrize(
        "value", [(1, 2), {1: "a"}, Colour.RED, float("nan"), [b"x"], {"k": (1,)}]
    )
    def test_values_json_would_change_are_pickled(self, tmp_path, value):
        """Tuples, non-str keys, enums, NaN, bytes: JSON would not give them back, so they
        are pickled (and signed)."""
        record = _store(tmp_path).write("v", value, expiration=None, owner="t")
        assert record.serializer == "pickle"
        back = _store(tmp_path).load("v").value
        assert type(back) is type(value) and (back == value or value != value)

    def test_an_explicit_pickle_serializer_is_kept(self, tmp_path):
        """result_serializer="pickle" pickles plain data too (signed)."""
        store = ResultStore(LocalFileSystem(tmp_path), PickleSerializer(), signing_key=KEY)
        assert store.write("p", [1], expiration=None, owner="t").serializer == "pickle"


class TestSigningKey:
    def test_the_configured_key_is_used_and_a_short_one_refused(self, home, monkeypatch):
        """FLOWYARD_RESULT_SIGNING_KEY is the key; one under 32 characters is refused."""
        monkeypatch.setenv("FLOWYARD_RESULT_SIGNING_KEY", "s" * 32)
        assert signing_key(Settings()) == b"s" * 32
        monkeypatch.setenv("FLOWYARD_RESULT_SIGNING_KEY", "short")
        with pytest.raises(InvalidInput, match="at least 32 characters"):
            signing_key(Settings())

    def test_the_default_key_is_derived_from_the_home_s_secret(self, home, tmp_path, monkeypatch):
        """Without a configured key, processes sharing a home share a key derived from
        its secret.key (never that secret itself); another home has another key."""
        first, again = signing_key(Settings()), signing_key(Settings())
        assert first == again and len(first) == 32
        assert (home / "secret.key").stat().st_mode & 0o077 == 0
        assert first != (home / "secret.key").read_bytes().strip()
        monkeypatch.setenv("FLOWYARD_HOME", str(tmp_path / "elsewhere"))
        assert signing_key(Settings()) != first

    def test_a_secret_key_setting_gives_the_same_key_in_every_home(self, home, monkeypatch):
        """With FLOWYARD_SECRET_KEY set (as replicas share it), the derived key does not
        depend on the home."""
        from cryptography.fernet import Fernet

        monkeypatch.setenv("FLOWYARD_SECRET_KEY", Fernet.generate_key().decode())
        here = signing_key(Settings())
        monkeypatch.setenv("FLOWYARD_HOME", str(home.parent / "other"))
        assert signing_key(Settings()) == here


class TestTrustedStorage:
    def test_a_reference_to_a_folder_of_its_choosing_is_refused(self, home, tmp_path):
        """load_result never reads from a folder the reference names (not even to look):
        it is neither the default storage nor a saved block."""
        marker = tmp_path / "ran"
        plant(tmp_path / "evil", "r", marker)
        with pytest.raises(UntrustedResult, match="neither this process's default storage"):
            load_result(evil_ref(tmp_path / "evil", "r"))
        assert not marker.exists()

    def test_a_storage_a_task_of_this_process_declared_is_trusted(self, home, tmp_path):
        """A reference to a task's declared result_storage is read from that storage (the
        task's object, not one built from the reference)."""
        from flowyard import task

        @task(persist_result=True, result_storage=str(tmp_path / "declared"))
        def seven() -> tuple[int]:
            return (7,)

        store = seven.result_store()
        record = store.write("r", seven.fn(), expiration=None, owner="t")
        assert load_result(reference(store, record)) == (7,)

    def test_the_storage_given_by_the_reader_is_used(self, home, tmp_path):
        """With storage= (the task's result_storage), only the reference's key is used."""
        store = ResultStore(LocalFileSystem(tmp_path / "mine"), DefaultSerializer())
        record = store.write("r", (7,), expiration=None, owner="t")
        ref = {**reference(store, record), "storage": evil_ref(tmp_path / "evil", "r")["storage"]}
        assert load_result(ref, storage=str(tmp_path / "mine")) == (7,)
        assert load_result(ref, storage=store) == (7,)

    def test_the_default_storage_is_trusted_and_still_checks_signatures(self, home, tmp_path):
        """A reference to this process's default storage is read from it; a pickle planted
        there unsigned is refused all the same."""
        from flowyard.results import default_storage

        store = ResultStore(default_storage(), DefaultSerializer())
        record = store.write("ok", (1,), expiration=None, owner="t")
        assert load_result(reference(store, record)) == (1,)
        marker = tmp_path / "ran"
        plant(home / "storage", "planted", marker)
        with pytest.raises(UntrustedResult, match="not signed"):
            load_result(evil_ref(home / "storage", "planted"))
        assert not marker.exists()
