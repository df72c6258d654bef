"""A throw-away PostgreSQL server for tests: initdb in a temp dir, on a loopback port.

Needs Debian's ``postgresql`` package (``.ci/run`` installs it). As root, the server runs
as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from flowyard.cli.processes import free_port
from tests.waiting import wait_until


def find_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="flowyard-pg-"))
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def start(self, timeout: float = 30.0) -> PostgresServer:
        data = self.dir / "data"
        self._run(
            find_bin("initdb") or "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        options = f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c fsync=off"
        self._run(
            find_bin("pg_ctl") or "pg_ctl",
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "start",
        )
        import psycopg2

        def answers() -> bool:
            try:
                psycopg2.connect(
                    host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
                ).close()
                return True
            except psycopg2.OperationalError:
                return False

        wait_until(answers, timeout=timeout, interval=0.05, message="PostgreSQL never answered")
        return self

    def stop(self) -> None:
        try:
            self._run(
                find_bin("pg_ctl") or "pg_ctl",
                "-D",
                str(self.dir / "data"),
                "-m",
                "immediate",
                "stop",
            )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def fresh_database(postgres_server: PostgresServer, name: str) -> str:
    """The URL of an empty database ``name`` on the test cluster (dropped first if there)."""
    import psycopg2

    admin = psycopg2.connect(
        host="127.0.0.1", port=postgres_server.port, user="postgres", dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    admin.close()
    return postgres_server.url.rsplit("/", 1)[0] + "/" + name
