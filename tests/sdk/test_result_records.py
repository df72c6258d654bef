"""Result records on disk in Prefect 3.9.1's layout, so that tools reading Prefect's
result files read Flowyard's; Flowyard's older records are still read.

Follows Prefect's ``tests/results/test_result_record.py`` (a record is one JSON document
of ``metadata`` and ``result``; ``ResultRecord.deserialize`` reads it). ``PREFECT_*``
below are the files Prefect 3.9.1 wrote for ``{'x': 2}`` with ``result_serializer='json'``
and for ``{'x': 1, 'l': [1, 2]}`` pickled, with ``result_storage_key``."""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path

import pytest
from tests.planted import Payload

from flowyard.errors import UntrustedResult
from flowyard.sdk import signing
from flowyard.sdk.results import (
    DefaultSerializer,
    JSONSerializer,
    LocalFileSystem,
    PickleSerializer,
    ResultStore,
)

KEY = b"k" * 32

PREFECT_JSON = (
    b'{"metadata":{"storage_key":"/tmp/pfres/storage/j-2","expiration":null,"serializer":'
    b'{"type":"json","jsonlib":"json","object_encoder":"prefect.serializers.prefect_json_'
    b'object_encoder","object_decoder":"prefect.serializers.prefect_json_object_decoder",'
    b'"dumps_kwargs":{},"loads_kwargs":{}},"prefect_version":"3.9.1","storage_block_id":null}'
    b',"result":"{\\"x\\": 2}"}'
)
PREFECT_PICKLE = (
    b'{"metadata":{"storage_key":"/tmp/pfres/storage/r-1","expiration":null,"serializer":'
    b'{"type":"pickle","picklelib":"cloudpickle","picklelib_version":null},"prefect_version"'
    b':"3.9.1","storage_block_id":null},"result":"gAWVFwAAAAAAAAB9lCiMAXiUSwGMAWyUXZQoSwFLAmV1Lg'
    b'==\\n"}'
)


def _store(folder: Path, serializer=None) -> ResultStore:
    return ResultStore(LocalFileSystem(folder), serializer or DefaultSerializer(), KEY)


@pytest.mark.parametrize(
    ("prefect", "serializer", "value"),
    [(PREFECT_JSON, JSONSerializer(), {"x": 2}), (PREFECT_PICKLE, PickleSerializer(), {"x": 1})],
)
def test_a_record_has_prefects_layout(tmp_path, prefect, serializer, value):
    """Same keys in the same order, the serializer described by Prefect's fields, and the
    result encoded as Prefect encodes it (JSON text; base64 of the pickle)."""
    _store(tmp_path, serializer).write("r", value, expiration=None, owner="t")
    ours, theirs = json.loads((tmp_path / "r").read_bytes()), json.loads(prefect)
    assert list(ours) == list(theirs) == ["metadata", "result"]
    assert list(ours["metadata"])[:5] == list(theirs["metadata"])
    assert ours["metadata"]["storage_key"] == str(tmp_path / "r")
    assert set(ours["metadata"]["serializer"]) == set(theirs["metadata"]["serializer"])
    if serializer.type == "json":
        assert ours["result"] == json.dumps(value)
    else:
        assert pickle.loads(base64.decodebytes(ours["result"].encode())) == value
    assert (tmp_path / "r").read_bytes().startswith(b'{"metadata":{"storage_key":')


def test_prefects_json_records_are_read_and_its_pickles_refused(tmp_path):
    """A JSON record runs no code to read: Prefect's is read as it is. Its pickled ones
    carry no signature of this key, so they are never unpickled (see
    docs/flows-and-tasks.md, 'Which results are read')."""
    (tmp_path / "j-2").write_bytes(PREFECT_JSON)
    (tmp_path / "r-1").write_bytes(PREFECT_PICKLE)
    store = _store(tmp_path)
    assert store.load("j-2").value == {"x": 2}
    with pytest.raises(UntrustedResult, match="it is not signed"):
        store.load("r-1")


def test_a_planted_record_in_prefects_layout_is_not_unpickled(tmp_path):
    marker = tmp_path / "ran"
    record = json.loads(PREFECT_PICKLE)
    record["result"] = base64.encodebytes(pickle.dumps(Payload(marker))).decode()
    record["metadata"]["signature"] = "hmac-sha256:" + "0" * 64
    (tmp_path / "r").write_text(json.dumps(record))
    with pytest.raises(UntrustedResult, match="does not match"):
        _store(tmp_path).load("r")
    assert not marker.exists()


def test_records_of_the_older_layout_are_still_read(tmp_path):
    """A header line, then the payload: what Flowyard wrote before (signed pickles, and
    JSON records signed or not)."""
    payload = pickle.dumps((1, "a"))
    header = {"serializer": "pickle", "expiration": None, "owner": "old"}
    header[signing.FIELD] = signing.sign(KEY, "old", header, payload)
    (tmp_path / "old").write_bytes(json.dumps(header).encode() + b"\n" + payload)
    (tmp_path / "oldj").write_bytes(b'{"serializer": "json", "expiration": null}\n{"a": 1}')
    store = _store(tmp_path)
    assert store.load("old").value == (1, "a")
    assert store.load("oldj").value == {"a": 1}
