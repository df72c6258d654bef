"""Blocks through the real API, the client and the CLI: saved, listed, masked, deleted."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import SecretStr

from flowyard.blocks import MASK, DockerHost, DockerRegistryCredentials, Secret
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from tests.servers import run_cli

SECRET = "pw-" + "7c41d09e"  # assembled, so that grepping the sources never finds it


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class TestPython:
    def test_save_and_load_round_trip_with_secrets(self, api: FlowyardClient):
        """``save`` then ``load`` gives the block back, its secret held as ``SecretStr``."""
        name = unique("ghcr")
        DockerRegistryCredentials(registry_url="ghcr.io", username="me", password=SECRET).save(
            name, client=api
        )
        loaded = DockerRegistryCredentials.load(name, client=api)
        assert loaded.password.get_secret_value() == SECRET
        assert loaded.username == "me"

    def test_api_masks_secrets_unless_asked(self, api: FlowyardClient):
        """Reads, lists and save answers mask secrets; ``include_secrets`` reveals them."""
        name = unique("token")
        saved = api.save_block("secret", name, {"value": SECRET})
        assert saved.data == {"value": MASK}
        assert api.read_block("secret", name).data == {"value": MASK}
        assert SECRET not in repr(api.list_blocks())
        assert api.read_block("secret", name, include_secrets=True).data == {"value": SECRET}

    def test_masked_value_saved_back_keeps_the_secret(self, api: FlowyardClient):
        """Saving a document read masked does not replace the secret with the mask."""
        name = unique("token")
        Secret(value=SecretStr(SECRET)).save(name, client=api)
        api.save_block("secret", name, api.read_block("secret", name).data)
        assert Secret.load(name, client=api).get() == SECRET

    def test_create_refuses_an_existing_name_and_bad_fields(self, api: FlowyardClient):
        """Create without overwrite is a 409 on a taken name; a wrong field is a 422."""
        name = unique("host")
        DockerHost(base_url="unix:///x.sock").save(name, overwrite=False, client=api)
        with pytest.raises(ApiError) as taken:
            DockerHost().save(name, overwrite=False, client=api)
        assert taken.value.status_code == 409
        with pytest.raises(ApiError) as bad:
            api.save_block("docker-host", unique("host"), {"base_urll": "x"})
        assert bad.value.status_code == 422 and "base_urll" in bad.value.message
        with pytest.raises(ApiError) as unknown:
            api.save_block("no-such-type", "x", {})
        assert unknown.value.status_code == 422

    def test_delete(self, api: FlowyardClient):
        """A deleted block is gone (404)."""
        name = unique("token")
        Secret(value=SecretStr("x")).save(name, client=api)
        Secret.delete(name, client=api)
        with pytest.raises(ApiError) as gone:
            api.read_block("secret", name)
        assert gone.value.status_code == 404

    def test_secrets_are_encrypted_at_rest_and_never_logged(self, api, server: ServerProcess):
        """The database file and the server's log never contain a saved secret."""
        Secret(value=SecretStr(SECRET)).save(unique("token"), client=api)
        assert SECRET.encode() not in (server.home / "flowyard.db").read_bytes()
        wal = server.home / "flowyard.db-wal"
        assert not wal.exists() or SECRET.encode() not in wal.read_bytes()
        assert SECRET not in server.tail(100_000)


class TestCli:
    def test_create_ls_inspect_delete_never_print_the_secret(self, server: ServerProcess):
        """The CLI saves a block from --field, lists it, inspects it masked, deletes it."""
        ref = f"docker-registry-credentials/{unique('reg')}"
        fields = ["--field", "registry_url=r.example", "--field", "username=me"]
        created = run_cli(server, "block", "create", ref, *fields, "--field", f"password={SECRET}")
        assert created.returncode == 0, created.stderr
        listed = run_cli(server, "block", "ls")
        shown = run_cli(server, "block", "inspect", ref)
        shown_json = run_cli(server, "block", "inspect", ref, "--json")
        types = run_cli(server, "block", "type", "ls")
        for done in (listed, shown, shown_json, types):
            assert done.returncode == 0, done.stderr
            assert SECRET not in done.stdout + done.stderr
        assert ref in listed.stdout
        assert json.loads(shown_json.stdout)["data"]["password"] == MASK
        assert "password" in types.stdout and "docker-host" in types.stdout
        assert run_cli(server, "block", "delete", ref).returncode == 0

    def test_create_from_a_file(self, server: ServerProcess, tmp_path):
        """``--file`` gives the fields as a JSON object; a bad reference is a clean error."""
        path = tmp_path / "host.json"
        path.write_text(json.dumps({"base_url": "tcp://docker.example:2376", "tls_verify": True}))
        ref = f"docker-host/{unique('prod')}"
        assert run_cli(server, "block", "create", ref, "--file", str(path)).returncode == 0
        shown = run_cli(server, "block", "inspect", ref)
        assert "tcp://docker.example:2376" in shown.stdout
        bad = run_cli(server, "block", "inspect", "not-a-ref")
        assert bad.returncode != 0 and "TYPE/NAME" in bad.stderr
