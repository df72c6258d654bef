"""``flowyard.serializers``: how persisted results are encoded (by default JSON when the
value is plain JSON data, else pickle; or one of them always)."""

from flowyard.sdk.results import DefaultSerializer, JSONSerializer, PickleSerializer, Serializer

__all__ = ["DefaultSerializer", "JSONSerializer", "PickleSerializer", "Serializer"]
