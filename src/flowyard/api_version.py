"""The API's version, and which clients a server accepts.

Clients (workers, engines, the CLI, ``FlowyardClient``) send ``Flowyard-API-Version:
MAJOR.MINOR`` with every request; the server answers with its own. A server accepts a
client of its major version that is at most one minor version older, so that operators
can upgrade the server first and their workers and running engines after (see
docs/upgrading.md). A request without the header (curl, a browser, the web UI) is
accepted: the header is a promise about documents, not a credential.

Within a major version the API only grows: a new minor version may add routes, optional
request fields and response fields (which older clients ignore, ``schemas.read``), never
remove or rename one, or make an optional request field required.
"""

from __future__ import annotations

import re

API_VERSION = "1.1"  # 1.1: PATCH /api/deployments/{ref}; ResultRef.value_json; StateChange.with_run
HEADER = "Flowyard-API-Version"
_FORM = re.compile(r"^(\d{1,4})\.(\d{1,4})$")


class VersionRefused(Exception):
    """The client's API version is not one this server serves; ``status`` is the HTTP
    status to answer (426: the client must upgrade; 400: malformed or newer than us)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse(text: str) -> tuple[int, int]:
    """``(major, minor)`` of ``MAJOR.MINOR``; ValueError otherwise."""
    match = _FORM.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not MAJOR.MINOR")
    return int(match.group(1)), int(match.group(2))


def check_client(client: str, server: str = API_VERSION) -> None:
    """Raise VersionRefused unless a server at ``server`` serves a client at ``client``."""
    major, minor = parse(server)
    try:
        client_major, client_minor = parse(client)
    except ValueError:
        shown = client[:40].encode("unicode_escape").decode("ascii")
        raise VersionRefused(
            400, f"the {HEADER} header must be MAJOR.MINOR (e.g. {server}), not '{shown}'"
        ) from None
    oldest = f"{major}.{max(minor - 1, 0)}"
    if client_major < major or (client_major == major and client_minor < minor - 1):
        raise VersionRefused(
            426,
            f"this client speaks the Flowyard API {client}, too old for this server (API "
            f"{server}, which serves clients from {oldest}): upgrade the client (the "
            "worker's or engine's flowyard package or image) to the server's version",
        )
    if (client_major, client_minor) > (major, minor):
        raise VersionRefused(
            400,
            f"this client speaks the Flowyard API {client}, newer than this server (API "
            f"{server}): upgrade the server first, then its workers",
        )
