"""Secret arguments are masked in what is recorded, by value or by annotation."""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import Secret as PydanticSecret
from pydantic import SecretBytes, SecretStr

from flowyard.blocks import Secret
from flowyard.sdk.redaction import OBFUSCATED, masked


def takes(
    token: SecretStr,
    maybe: SecretStr | None,
    many: list[SecretBytes],
    mode: Literal["Secret"],
    n: int,
):
    """A function whose annotations name secrets (with ``from __future__ import annotations``)."""


class TestMasked:
    def test_secret_values_are_masked_wherever_they_are(self):
        """SecretStr, SecretBytes, Secret[...], a Secret block: masked, inside containers too."""
        values = {
            "a": SecretStr("x"), "b": SecretBytes(b"x"), "c": PydanticSecret[int](3),
            "d": Secret(value="x"), "e": {"k": [SecretStr("x"), 1]}, "f": (SecretStr("x"),),
        }  # fmt: skip
        assert masked(values) == {
            "a": OBFUSCATED, "b": OBFUSCATED, "c": OBFUSCATED, "d": OBFUSCATED,
            "e": {"k": [OBFUSCATED, 1]}, "f": (OBFUSCATED,),
        }  # fmt: skip

    def test_a_named_tuple_holding_a_secret_keeps_its_type(self):
        """A named tuple is rebuilt field by field, its secret masked."""

        class Login(NamedTuple):
            user: str
            password: SecretStr

        assert masked({"x": Login("ann", SecretStr("x"))})["x"] == Login("ann", OBFUSCATED)  # type: ignore[arg-type]

    def test_values_without_secrets_are_the_same_objects(self):
        """Nothing is copied when there is nothing to mask."""
        nested = {"k": [1, "two"]}
        assert masked({"n": nested})["n"] is nested

    def test_parameters_annotated_secret_are_masked_whatever_their_value(self):
        """A plain str given for a SecretStr parameter (or Optional, or list of secrets) is
        masked; None stays None; a Literal naming "Secret" and an int are kept."""
        given = {"token": "x", "maybe": None, "many": [b"x"], "mode": "Secret", "n": 5}
        assert masked(given, takes) == {
            "token": OBFUSCATED, "maybe": None, "many": OBFUSCATED, "mode": "Secret", "n": 5,
        }  # fmt: skip
