"""S3Bucket result storage against moto's S3 server on loopback (an emulator: no real AWS
is reachable from our machines), with its credentials in an aws-credentials block saved on
a real Flowyard server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import boto3
import httpx
import pytest

from flowyard import flow, task
from flowyard.blocks import AwsCredentials, S3Bucket
from flowyard.cache_policies import INPUTS
from flowyard.cli.processes import free_port
from tests.moto_lambda import moto_server_command
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server on a free loopback port; its URL."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto-s3") / "moto.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [moto_server_command(), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/moto-api/", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, timeout=30)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def bucket(moto_s3: str, server, monkeypatch) -> S3Bucket:
    """A fresh bucket, and an aws-credentials block pointing at moto saved on the server."""
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    creds = AwsCredentials(
        aws_access_key_id="test",
        aws_secret_access_key="test-secret",
        region_name="us-east-1",
        endpoint_url=moto_s3,
    )
    creds.save("moto")
    name = f"results-{free_port()}"
    creds.get_client("s3").create_bucket(Bucket=name)
    return S3Bucket(bucket_name=name, bucket_folder="flows/etl", credentials="moto")


def test_results_are_written_to_and_read_from_the_bucket(bucket: S3Bucket):
    """A persisted task result lands in the bucket under the folder; a cached task in a
    later flow run reads it back from there instead of running."""
    calls = []

    @task(cache_policy=INPUTS, result_storage=bucket)
    def expensive(n: int) -> dict[str, int]:
        calls.append(n)
        return {"n": n, "square": n * n}

    @flow
    def pipeline(n: int) -> dict[str, int]:
        return expensive(n)

    assert pipeline(7) == {"n": 7, "square": 49}
    assert pipeline(7) == {"n": 7, "square": 49}
    assert calls == [7]
    s3 = boto3.client(
        "s3",
        endpoint_url=AwsCredentials.load("moto").endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test-secret",
        region_name="us-east-1",
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket.bucket_name)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("flows/etl/")
    assert bucket.location("k") == f"s3://{bucket.bucket_name}/flows/etl/k"


def test_a_missing_key_reads_as_nothing(bucket: S3Bucket):
    """Reading a key never written gives None (a cache miss), not an error."""
    assert bucket.read("never-written") is None
    bucket.write("k", b"data")
    assert bucket.read("k") == b"data"


def test_the_block_round_trips_through_the_server(bucket: S3Bucket):
    """Saved and loaded like any block; the credentials' secret is masked in the API."""
    bucket.save("results")
    assert S3Bucket.load("results") == bucket
    from flowyard.client import FlowyardClient
    from flowyard.settings import Settings

    with FlowyardClient.from_settings(Settings()) as api:
        shown = api.read_block("aws-credentials", "moto")
    assert "test-secret" not in str(shown.data)


def test_saved_blocks_are_named_by_type_and_name_as_in_prefect(bucket: S3Bucket, tmp_path):
    """``result_storage="s3-bucket/<name>"`` loads the saved block at run time (so does
    ``local-file-system/<name>``); a name that is not saved fails the run, naming it."""
    from flowyard.blocks import LocalFileSystem

    bucket.save("by-slug")
    LocalFileSystem(basepath=str(tmp_path / "lfs")).save("lfs")

    @task(cache_policy=INPUTS, result_storage="s3-bucket/by-slug")
    def to_bucket(n: int) -> int:
        return n + 1

    @task(persist_result=True, result_storage="local-file-system/lfs")
    def to_folder(n: int) -> int:
        return n + 2

    @task(persist_result=True, result_storage="s3-bucket/never-saved")
    def nowhere(n: int) -> int:
        return n

    @flow
    def pipeline(n: int) -> tuple[int, int]:
        return to_bucket(n), to_folder(n)

    assert pipeline(1) == (2, 3)
    listed = bucket._client().list_objects_v2(Bucket=bucket.bucket_name)
    assert len(listed["Contents"]) == 1
    assert len(list((tmp_path / "lfs").iterdir())) == 1

    @flow
    def broken() -> int:
        return nowhere(1)

    state = broken(return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="s3-bucket/never-saved"):
        state.result()
