"""``flowyard.serializers``: how persisted results are encoded (pickle by default, or JSON)."""

from flowyard.sdk.results import JSONSerializer, PickleSerializer, Serializer

__all__ = ["JSONSerializer", "PickleSerializer", "Serializer"]
