"""A throwaway PostgreSQL cluster for the test session, started with the installed initdb/pg_ctl.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster runs as the `postgres`
system user through runuser. One cluster per session; each test gets its own database cloned from
a migrated template (CREATE DATABASE … TEMPLATE is a file copy, far faster than migrating again).
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresUnavailable("initdb not found (install Debian's postgresql package)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    base: Path
    bin_dir: Path
    port: int
    as_user: str | None

    @property
    def socket_dir(self) -> str:
        return str(self.base)

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@/{dbname}?host={self.socket_dir}&port={self.port}"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        data = self.base / "data"
        r = self._run(str(self.bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        if r.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {r.stderr.strip()[-500:]}")
        options = (f"-p {self.port} -k {self.base} -c listen_addresses='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        r = self._run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-l", str(self.base / "log"),
                      "-w", "-t", "60", "start", "-o", options)
        if r.returncode != 0:
            log = (self.base / "log").read_text(errors="replace")[-800:] if (self.base / "log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {r.stderr.strip()[-300:]} {log}")

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(host=self.socket_dir, port=self.port, user="postgres", dbname=dbname,
                             autocommit=True) as conn:
            conn.execute(sql)


def start_cluster() -> Cluster:
    bin_dir = _bin_dir()
    base = Path(tempfile.mkdtemp(prefix="fieldapp-pg-"))
    as_user = None
    if os.geteuid() == 0:
        as_user = "postgres"
        try:
            shutil.chown(base, user="postgres")
        except (LookupError, PermissionError) as exc:
            raise PostgresUnavailable(f"running as root but no usable postgres user: {exc}") from exc
        os.chmod(base, 0o755)
    cluster = Cluster(base=base, bin_dir=bin_dir, port=_free_port(), as_user=as_user)
    cluster.start()
    return cluster
