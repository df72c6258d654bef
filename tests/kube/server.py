"""An emulated Kubernetes API server on 127.0.0.1, for the official client to talk to.

It serves what the Job worker uses, as the real one does:

- ``batch/v1`` Jobs: create (validated with ``kubernetes-validate --strict`` at
  ``KUBE_VERSION``; 422 when invalid), get, list and watch (label and field selectors),
  delete with ``propagationPolicy``;
- ``v1`` Pods: get, list and watch by label selector, and logs (``follow``,
  ``timestamps``);
- ``v1`` Secrets: create (``stringData`` stored base64-encoded under ``data``), get, list;
  the kubelet reads a container's ``secretKeyRef`` variables from them (``secrets``);
- ``v1`` Events: list and watch (field selectors on ``involvedObject.*``): the Job
  controller's ``FailedCreate`` when ``admission`` (``kubelet.admission``) refused a pod;
- watches: ``?watch=true`` with ``resourceVersion`` and ``timeoutSeconds``, as chunked
  JSON lines, 410 Gone (an ``ERROR`` event) for a version older than the history kept.

Over HTTPS when given a ``tls`` context (``tests.kube.tls``), as a pod's in-cluster client
needs. Fault knobs: ``tokens`` (the bearer tokens accepted, others answered 401, as after
a service-account token was rotated), ``forbidden`` (resources answered 403, as to a
worker whose Role lacks them), ``gone_next_watches(n, http=False)``,
``refuse_next_creates(n)``, ``compact()``, ``close_watches()`` and
``restart(down_seconds)`` (connections refused meanwhile; objects and pods live on).
``requests`` counts every request by method and resource, for the benchmark; ``wire`` keeps
each request as received (request line, headers, body), for tests that look for a secret.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate

from tests.kube.kubelet import Kubelet
from tests.kube.routes import Route, route_of
from tests.kube.runtimes import Runtime
from tests.kube.secrets import stored
from tests.kube.store import AlreadyExists, Gone, Obj, Store, parse_selector

KUBE_VERSION = "1.31"
"""The Kubernetes version every Job manifest is validated against."""


class KubeApiServer:
    def __init__(self, runtime: Runtime, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.store = Store()
        self.kubelet = Kubelet(self.store, runtime)
        self.admission = self.kubelet.admission
        self.requests: Counter[str] = Counter()
        self.wire: list[str] = []  # every request as received: line, headers, body
        self.received: list[Obj] = []  # Job manifests as posted
        self.rejected: list[str] = []  # why each refused manifest was refused
        self._gone_next: list[str] = []  # "event" or "http", one per coming watch
        self.forbidden: set[str] = set()  # resources the worker's Role lacks: 403
        self.tokens: set[str] | None = None  # bearer tokens accepted (401 for others); any
        self._tls = tls
        self._unavailable_creates = 0
        self._connections: set[socket.socket] = set()
        self._watches: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server = self._listen(port)
        self.port = int(self._server.server_address[1])
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    # -- life --------------------------------------------------------------------------------

    def start(self) -> KubeApiServer:
        threading.Thread(target=self._server.serve_forever, name="kube-api", daemon=True).start()
        return self

    def stop(self) -> None:
        self._close_server()
        self.kubelet.stop_all()

    def write_kubeconfig(self, path: Path, token: str = "emulator-token") -> Path:
        path.write_text(kubeconfig(self.url, token))
        return path

    # -- faults ------------------------------------------------------------------------------

    def gone_next_watches(self, count: int = 1, *, http: bool = False) -> None:
        """The next ``count`` watch requests get 410 Gone: an ERROR event in the stream, as
        the API server sends for a compacted version, or (``http``) a 410 answer."""
        with self._lock:
            self._gone_next += ["http" if http else "event"] * count

    def refuse_next_creates(self, count: int = 1) -> None:
        """The next ``count`` Job creations are answered 503 (the server is overloaded)."""
        with self._lock:
            self._unavailable_creates += count

    def compact(self) -> None:
        """Forget the event history: resuming from any version seen so far is 410 Gone."""
        self.store.compact()

    def close_watches(self) -> int:
        """Break every open watch and log stream mid-stream; returns how many."""
        with self._lock:
            watches = list(self._watches)
        for sock in watches:
            _abort(sock)
        return len(watches)

    def restart(self, down_seconds: float) -> threading.Thread:
        """Go away (every connection cut, new ones refused) and come back on the same port."""
        self._close_server()

        def come_back() -> None:
            threading.Event().wait(down_seconds)  # noqa: TID251 - the outage's length
            self._server = self._listen(self.port)
            self.start()

        thread = threading.Thread(target=come_back, daemon=True)
        thread.start()
        return thread

    # -- internals ---------------------------------------------------------------------------

    def _listen(self, port: int) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        server.daemon_threads = True
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        return server

    def _close_server(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            _abort(sock)

    def track(self, sock: socket.socket, *, add: bool, watch: bool = False) -> None:
        with self._lock:
            target = self._watches if watch else self._connections
            (target.add if add else target.discard)(sock)

    def authenticated(self, authorization: str | None) -> bool:
        """Whether a request with this ``Authorization`` header passes (``tokens``)."""
        scheme, _, token = (authorization or "").partition(" ")
        return self.tokens is None or (scheme.lower() == "bearer" and token in self.tokens)

    def take_gone(self) -> str | None:
        with self._lock:
            return self._gone_next.pop(0) if self._gone_next else None

    def create_job(self, namespace: str, body: Obj) -> tuple[int, Obj]:
        with self._lock:
            if self._unavailable_creates:
                self._unavailable_creates -= 1
                return 503, status(503, "ServiceUnavailable", "the server is overloaded")
        self.received.append(body)
        body.setdefault("metadata", {}).setdefault("namespace", namespace)
        try:
            kubernetes_validate.validate(body, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            self.rejected.append(f"{path}: {exc.message}")
            return 422, status(422, "Invalid", f"Job is invalid: {path}: {exc.message}")
        body.setdefault("status", {})
        try:
            job = self.store.create("jobs", body)
        except AlreadyExists:
            name = body["metadata"].get("name")
            return 409, status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
        self.kubelet.job_created(job)
        return 201, job

    def create_secret(self, namespace: str, body: Obj) -> tuple[int, Obj]:
        body.setdefault("metadata", {}).setdefault("namespace", namespace)
        try:
            return 201, self.store.create("secrets", stored(body))
        except AlreadyExists:
            name = body["metadata"].get("name")
            return 409, status(409, "AlreadyExists", f'secrets "{name}" already exists')


def kubeconfig(url: str, token: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": url}}],
            "users": [{"name": "flowyard", "user": {"token": token}}],
            "contexts": [
                {"name": "emulator", "context": {"cluster": "emulator", "user": "flowyard"}}
            ],
            "current-context": "emulator",
        }
    )


def status(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _abort(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _handler(api: KubeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            api.track(self.connection, add=True)

        def finish(self) -> None:
            api.track(self.connection, add=False)
            api.track(self.connection, add=False, watch=True)
            try:
                super().finish()
            except OSError:
                pass

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            route = route_of(url.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            api.wire.append(f"{self.requestline}\n{self.headers}\n{raw.decode(errors='replace')}")
            body = json.loads(raw or b"{}") if length else {}
            api.requests[f"{method} {route.kind if route else 'unknown'}"] += 1
            if route is None:
                self._json(404, status(404, "NotFound", f"no route for {url.path}"))
                return
            try:
                self._dispatch(method, route, query, body)
            except (BrokenPipeError, ConnectionResetError, OSError):
                self.close_connection = True

        def _dispatch(self, method: str, route: Route, query: dict[str, str], body: Obj) -> None:
            kind = route.resource
            if not api.authenticated(self.headers.get("Authorization")):
                self._json(401, status(401, "Unauthorized", "Unauthorized"))
            elif kind in api.forbidden:
                who = 'User "system:serviceaccount:flowyard:flowyard-worker"'
                where = f'in the namespace "{route.namespace or "default"}"'
                message = f'{kind} is forbidden: {who} cannot list resource "{kind}" {where}'
                self._json(403, status(403, "Forbidden", message))
            elif method == "POST" and kind == "jobs" and route.name is None:
                self._json(*api.create_job(route.namespace or "default", body))
            elif method == "POST" and kind == "secrets" and route.name is None:
                self._json(*api.create_secret(route.namespace or "default", body))
            elif method == "DELETE" and kind == "jobs" and route.name:
                policy = query.get("propagationPolicy") or body.get("propagationPolicy") or "Orphan"
                job = api.kubelet.delete_job(route.namespace or "default", route.name, policy)
                self._found(job, kind, route.name)
            elif method == "GET" and route.log:
                self._logs(route, query)
            elif method == "GET" and route.name:
                obj = api.store.get(kind, route.namespace or "default", route.name)
                self._found(obj, kind, route.name)
            elif method == "GET" and query.get("watch") in ("true", "1"):
                self._watch(route, query)
            elif method == "GET":
                labels = parse_selector(query.get("labelSelector"))
                fields = parse_selector(query.get("fieldSelector"))
                items, version = api.store.list(kind, route.namespace, labels, fields)
                listing = {"kind": "List", "metadata": {"resourceVersion": str(version)}}
                self._json(200, {**listing, "items": items})
            else:
                self._json(405, status(405, "MethodNotAllowed", f"{method} {self.path}"))

        def _found(self, obj: Obj | None, kind: str, name: str) -> None:
            if obj is None:
                self._json(404, status(404, "NotFound", f'{kind} "{name}" not found'))
            else:
                self._json(200, obj)

        def _watch(self, route: Route, query: dict[str, str]) -> None:
            labels = parse_selector(query.get("labelSelector"))
            fields = parse_selector(query.get("fieldSelector"))
            deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
            gone = api.take_gone()
            if gone == "http":
                self._json(410, status(410, "Expired", "too old resource version"))
                return
            self._start_chunks()
            api.track(self.connection, add=True, watch=True)
            if gone == "event":
                self._event("ERROR", status(410, "Expired", "too old resource version"))
                self._end_chunks()
                return
            version_text = query.get("resourceVersion") or ""
            if version_text in ("", "0"):
                items, version = api.store.list(route.resource, route.namespace, labels, fields)
                for item in items:
                    self._event("ADDED", item)
            else:
                version = int(version_text)
            while time.monotonic() < deadline:
                try:
                    events, version = api.store.events_after(
                        version, route.resource, route.namespace, labels, fields
                    )
                except Gone:
                    self._event("ERROR", status(410, "Expired", "too old resource version"))
                    break
                for event, obj in events:
                    self._event(event, obj)
                api.store.wait(version, min(1.0, max(0.0, deadline - time.monotonic())))
            self._end_chunks()

        def _logs(self, route: Route, query: dict[str, str]) -> None:
            pod_log = api.kubelet.pod_log(route.namespace or "default", route.name or "")
            if pod_log is None:
                self._json(404, status(404, "NotFound", f'pods "{route.name}" not found'))
                return
            follow, stamps = query.get("follow") == "true", query.get("timestamps") == "true"
            self._start_chunks("text/plain")
            api.track(self.connection, add=True, watch=True)
            sent = 0
            while True:
                lines, done = pod_log.read(sent, timeout=1.0)
                for stamp, text in lines:
                    self._chunk(((f"{stamp} " if stamps else "") + text + "\n").encode())
                sent += len(lines)
                if done or not follow:
                    break
            self._end_chunks()

        def _json(self, code: int, document: Any) -> None:
            data = json.dumps(document).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _start_chunks(self, content_type: str = "application/json") -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

        def _event(self, kind: str, obj: Obj) -> None:
            self._chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _end_chunks(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet: the tests read the counters instead."""

    return Handler
