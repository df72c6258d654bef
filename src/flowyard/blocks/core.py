"""``Block``: a typed configuration document saved on the server as ``TYPE/NAME``.

A block type is a pydantic model with a ``block_type_slug``; fields typed ``SecretStr``
are its secrets: the server encrypts them at rest and masks them in every answer unless
the caller asks for them explicitly (``Block.load`` does, the CLI never does).

Plain functions here are pure: they turn a block into the document sent to the API
(secrets revealed, for the server to encrypt) and split, mask and merge documents.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr

from flowyard.errors import InvalidInput

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

MASK = "********"
"""What a secret field reads as in every answer that did not ask for secrets."""

SLUG_PATTERN = r"^[a-z0-9][a-z0-9\-]{0,49}$"
BLOCK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$"
"""Block names have no dots or slashes, so ``TYPE/NAME.field`` reads one way only."""


class Block(BaseModel):
    """Base of every block type; subclasses set ``block_type_slug`` and declare fields."""

    model_config = ConfigDict(extra="forbid")

    block_type_slug: ClassVar[str] = ""
    _saved_name: str | None = PrivateAttr(default=None)

    @property
    def saved_name(self) -> str | None:
        """The name this block was saved or loaded under, if any: how to refer to it
        without copying its values (a Secret's value, say) anywhere else."""
        return self._saved_name

    @classmethod
    def secret_fields(cls) -> list[str]:
        return secret_fields(cls)

    def to_document(self) -> dict[str, Any]:
        """The block as JSON data with secrets in clear (only ever sent to the API)."""
        return reveal(self)

    def save(
        self, name: str, *, overwrite: bool = True, client: FlowyardClient | None = None
    ) -> Self:
        """Store this block as ``<slug>/<name>`` on the server."""
        with _client(client) as api:
            api.save_block(self.block_type_slug, name, self.to_document(), overwrite=overwrite)
        self._saved_name = name
        return self

    @classmethod
    def load(cls, name: str, *, client: FlowyardClient | None = None) -> Self:
        """Read ``<slug>/<name>`` from the server, secrets included (held as ``SecretStr``)."""
        with _client(client) as api:
            doc = api.read_block(cls.block_type_slug, name, include_secrets=True)
        block = cls.model_validate(doc.data)
        block._saved_name = name
        return block

    @classmethod
    def delete(cls, name: str, *, client: FlowyardClient | None = None) -> None:
        with _client(client) as api:
            api.delete_block(cls.block_type_slug, name)


def secret_fields(block_type: type[BaseModel]) -> list[str]:
    """Names of the fields typed ``SecretStr`` (optional ones included)."""
    found = []
    for name, info in block_type.model_fields.items():
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        if annotation is SecretStr or SecretStr in args:
            found.append(name)
    return found


def reveal(block: BaseModel) -> dict[str, Any]:
    """JSON data of ``block`` with every ``SecretStr`` field in clear."""
    data: dict[str, Any] = block.model_dump(mode="json")
    for name in secret_fields(type(block)):
        value = getattr(block, name)
        data[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return data


def split_secrets(data: dict[str, Any], names: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public fields, secret fields) of a validated document."""
    public = {k: v for k, v in data.items() if k not in names}
    secrets = {k: v for k, v in data.items() if k in names and v is not None}
    return public, secrets


def masked(public: dict[str, Any], secrets: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The document as anyone may see it: each set secret reads as ``MASK``."""
    return {**public, **{name: (MASK if name in secrets else None) for name in names}}


def keep_masked_secrets(
    data: dict[str, Any], stored: dict[str, Any], names: list[str]
) -> dict[str, Any]:
    """A secret sent back as ``MASK`` (an edited ``inspect --json``) keeps its stored value."""
    kept = dict(data)
    for name in names:
        if kept.get(name) == MASK and name in stored:
            kept[name] = stored[name]
    return kept


def parse_ref(ref: str) -> tuple[str, str]:
    """``TYPE/NAME`` → (type slug, name), each checked."""
    slug, sep, name = ref.partition("/")
    if not sep or not re.match(SLUG_PATTERN, slug) or not re.match(BLOCK_NAME_PATTERN, name):
        raise InvalidInput(f"{ref!r} is not a block reference TYPE/NAME (e.g. docker-host/prod)")
    return slug, name


def _client(client: FlowyardClient | None) -> Any:
    import contextlib

    if client is not None:
        return contextlib.nullcontext(client)
    from flowyard.client import FlowyardClient
    from flowyard.settings import Settings

    return FlowyardClient.from_settings(Settings())
