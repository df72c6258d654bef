"""Block documents: secret fields, revealing, masking, references to saved blocks."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from flowyard.blocks import MASK, AwsCredentials, DockerRegistryCredentials, Secret, parse_ref
from flowyard.blocks.core import keep_masked_secrets, masked, reveal, split_secrets
from flowyard.blocks.registry import block_types, load_block_type
from flowyard.errors import InvalidInput


class TestSecretFields:
    def test_secret_fields_are_the_secretstr_ones(self):
        """Optional and required ``SecretStr`` fields are both secret; others are not."""
        assert AwsCredentials.secret_fields() == ["aws_secret_access_key", "aws_session_token"]
        assert DockerRegistryCredentials.secret_fields() == ["password"]

    def test_repr_and_json_never_show_a_secret(self):
        """A loaded block holds secrets as ``SecretStr``: repr and plain dumps hide them."""
        block = Secret(value=SecretStr("hunter2"))
        assert "hunter2" not in repr(block)
        assert "hunter2" not in block.model_dump_json()

    def test_reveal_puts_secrets_in_clear(self):
        """The document sent to the API carries the clear values for the server to encrypt."""
        block = DockerRegistryCredentials(registry_url="r.example", username="u", password="pw")
        assert reveal(block) == {
            "registry_url": "r.example",
            "username": "u",
            "password": "pw",
            "reauth": True,
        }

    def test_unknown_fields_are_refused(self):
        """A misspelt field is an error, not silently dropped."""
        with pytest.raises(ValidationError):
            Secret.model_validate({"value": "x", "valu": "y"})


class TestMasking:
    def test_split_and_mask(self):
        """Set secrets read as the mask, unset ones as None; public fields unchanged."""
        data = {"aws_access_key_id": "AK", "aws_secret_access_key": "s3", "aws_session_token": None}
        names = AwsCredentials.secret_fields()
        public, secrets = split_secrets(data, names)
        assert public == {"aws_access_key_id": "AK"}
        assert secrets == {"aws_secret_access_key": "s3"}
        assert masked(public, secrets, names) == {
            "aws_access_key_id": "AK",
            "aws_secret_access_key": MASK,
            "aws_session_token": None,
        }

    def test_a_masked_value_sent_back_keeps_the_stored_secret(self):
        """Saving an edited ``inspect --json`` does not overwrite a secret with the mask."""
        kept = keep_masked_secrets({"value": MASK}, {"value": "old"}, ["value"])
        assert kept == {"value": "old"}
        assert keep_masked_secrets({"value": "new"}, {"value": "old"}, ["value"]) == {
            "value": "new"
        }


class TestRefsAndRegistry:
    def test_parse_ref(self):
        """``TYPE/NAME`` splits in two; anything else is a clear error."""
        assert parse_ref("docker-host/prod") == ("docker-host", "prod")
        for bad in ("docker-host", "Docker/x", "docker-host/a.b", "docker-host/"):
            with pytest.raises(InvalidInput, match="TYPE/NAME"):
                parse_ref(bad)

    def test_builtins_register_through_entry_points(self):
        """Every built-in type is found through the ``flowyard.blocks`` group by its slug."""
        assert {
            "secret",
            "docker-host",
            "docker-registry-credentials",
            "kubernetes-cluster-config",
            "aws-credentials",
            "local-file-system",
        } <= set(block_types())
        assert load_block_type("secret") is Secret

    def test_unknown_type_names_the_known_ones(self):
        """An unknown slug says which types exist."""
        with pytest.raises(InvalidInput, match="known: .*docker-host"):
            load_block_type("nope")
