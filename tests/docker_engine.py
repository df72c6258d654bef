"""A real Docker engine for the tests, and the local image flows run in.

No registry is reachable from our machines, so the image is built locally: a Debian root
file system from ``debootstrap`` imported as ``local/debian-py:bookworm``, then the
repository's ``Dockerfile`` built FROM it (``--network host`` so pip reaches the index).

The engine's data root lives in a cache folder (``FLOWYARD_TEST_DOCKER_DIR``, default
``~/.cache/flowyard/docker``), never in git, so the base image and the dependency layer are
built once per machine; only the layer with our source is rebuilt when it changes. One test
session at a time uses that folder (a file lock); the engine is stopped when it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = "local/debian-py:bookworm"
TEST_IMAGE = "flowyard-test:latest"
DEBIAN_PACKAGES = "python3,python3-venv,ca-certificates"


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "flowyard" / "docker"
    return Path(os.environ.get("FLOWYARD_TEST_DOCKER_DIR", default))


def dockerd_available() -> bool:
    return shutil.which("dockerd") is not None


class DockerEngine:
    """A private ``dockerd`` (no bridge, no iptables) on a unix socket in ``folder``."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or cache_dir()
        self.socket = self.folder / "docker.sock"
        self.url = f"unix://{self.socket}"
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    def start(self, timeout: float = 60.0, lock_timeout: float = 600.0) -> DockerEngine:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._take_lock(lock_timeout)
        if self.answers():  # left by a session that was killed: ours to use
            return self
        self.socket.unlink(missing_ok=True)
        log = open(self.folder / "dockerd.log", "ab")  # noqa: SIM115 - owned by the child
        self._process = subprocess.Popen(
            [
                "dockerd",
                f"--data-root={self.folder / 'root'}",
                f"--exec-root={self.folder / 'exec'}",
                f"--pidfile={self.folder / 'dockerd.pid'}",
                f"--host={self.url}",
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dockerd did not start:\n{self._log_tail()}")
            _pause(0.1)
        return self

    def answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            with contextlib.closing(self.client(timeout=2)) as client:
                client.ping()
            return True
        except Exception:
            return False

    def client(self, timeout: float = 120) -> Any:
        import docker

        return docker.DockerClient(base_url=self.url, timeout=timeout)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- images ------------------------------------------------------------------------------

    def ensure_base_image(self) -> None:
        """``local/debian-py:bookworm`` from a debootstrap root file system (~40 s, once)."""
        import docker.errors

        with contextlib.closing(self.client()) as client:
            try:
                client.images.get(BASE_IMAGE)
                return
            except docker.errors.ImageNotFound:
                pass
            with tempfile.TemporaryDirectory(dir=self.folder) as work:
                rootfs, archive = Path(work) / "rootfs", Path(work) / "rootfs.tar"
                _debootstrap(rootfs, self.folder / "debootstrap.log")
                with tarfile.open(archive, "w") as tar:
                    tar.add(rootfs, arcname=".")
                repository, tag = BASE_IMAGE.split(":")
                client.api.import_image(src=str(archive), repository=repository, tag=tag)

    def build_test_image(self) -> str:
        """The repository's Dockerfile built FROM the local base image, as ``TEST_IMAGE``.

        The build context is a copy of what the image needs plus this machine's CA bundle
        (``build-ca.pem``), so that pip inside the build trusts what pip here trusts.
        """
        import docker.errors

        with tempfile.TemporaryDirectory(dir=self.folder) as context:
            _build_context(Path(context))
            with contextlib.closing(self.client(timeout=900)) as client:
                try:
                    client.images.build(
                        path=context,
                        tag=TEST_IMAGE,
                        buildargs={"BASE": BASE_IMAGE},
                        network_mode="host",
                        rm=True,
                    )
                except docker.errors.BuildError as exc:
                    steps = [c.get("stream") or c.get("error") or "" for c in exc.build_log]
                    raise RuntimeError("image build failed:\n" + "".join(steps)[-3000:]) from exc
        return TEST_IMAGE

    def build_image(
        self, dockerfile_dir: Path, tag: str, buildargs: dict[str, str] | None = None
    ) -> str:
        """Build the Dockerfile in ``dockerfile_dir`` as ``tag`` (host network, layer cache).

        The context is a copy of the folder plus this machine's CA bundle as ``build-ca.pem``
        (a Dockerfile may ``COPY build-ca.pe[m]`` to trust what pip or apt here trusts).
        """
        import docker.errors

        with tempfile.TemporaryDirectory(dir=self.folder) as work:
            context = Path(work) / "context"
            shutil.copytree(dockerfile_dir, context)
            bundle = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE")
            system = Path("/etc/ssl/certs/ca-certificates.crt")
            if bundle or system.exists():
                shutil.copy2(bundle or system, context / "build-ca.pem")
            with contextlib.closing(self.client(timeout=900)) as client:
                try:
                    client.images.build(
                        path=str(context),
                        tag=tag,
                        buildargs=buildargs or {},
                        network_mode="host",
                        rm=True,
                    )
                except docker.errors.BuildError as exc:
                    steps = [c.get("stream") or c.get("error") or "" for c in exc.build_log]
                    raise RuntimeError(
                        f"building {tag} failed:\n" + "".join(steps)[-3000:]
                    ) from exc
        return tag

    # -- internals ---------------------------------------------------------------------------

    def _take_lock(self, timeout: float) -> None:
        lock = open(self.folder / "lock", "w")  # noqa: SIM115 - held until stop()
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock = lock
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.close()
                    raise RuntimeError(f"another test session holds {self.folder}/lock") from None
                _pause(0.5)

    def _log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            text = (self.folder / "dockerd.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""


def _pause(seconds: float) -> None:
    threading.Event().wait(seconds)  # noqa: TID251 - between tries of a lock


def _build_context(context: Path) -> None:
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, context / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", context / "src", ignore=ignore)
    bundle = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE")
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle or system.exists():
        shutil.copy2(bundle or system, context / "build-ca.pem")


def _debootstrap(rootfs: Path, log: Path) -> None:
    mirror = _debian_mirror()
    command = ["debootstrap", "--variant=minbase", f"--include={DEBIAN_PACKAGES}"]
    with open(log, "wb") as out:
        done = subprocess.run(
            [*command, "bookworm", str(rootfs), mirror], stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
        raise RuntimeError(f"debootstrap failed:\n{tail}")


def _debian_mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


if __name__ == "__main__":  # warm the cache: python -m tests.docker_engine
    engine = DockerEngine().start()
    try:
        started = time.monotonic()
        engine.ensure_base_image()
        print(f"base image ready in {time.monotonic() - started:.1f}s")
        started = time.monotonic()
        engine.build_test_image()
        print(f"test image built in {time.monotonic() - started:.1f}s")
    finally:
        engine.stop()
