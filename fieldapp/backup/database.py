"""A consistent copy of the database, and bringing one back.

- SQLite: the online backup API (``sqlite3.Connection.backup``), page by page while the app keeps
  writing; the copy is one consistent state.
- PostgreSQL: ``pg_dump --format=custom`` (one snapshot transaction) and ``pg_restore`` into an
  empty database. What happens between two backups is kept by WAL archiving (README: "Backup and
  restore"), not by this module.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


class DatabaseCopyError(RuntimeError):
    pass


def kind(database_url: str) -> str:
    backend = make_url(database_url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise DatabaseCopyError(f"backups know SQLite and PostgreSQL, not {backend}")
    return backend


def sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise DatabaseCopyError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _libpq(database_url: str) -> tuple[str, dict]:
    """The URL pg_dump and pg_restore understand (no SQLAlchemy driver name) without the password,
    and the environment that carries it: a password on a command line is readable by any local user."""
    url = make_url(database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DatabaseCopyError(f"{name} is not installed (Debian: postgresql-client)")
    return found


def dump(database_url: str, out: Path) -> None:
    """Write a consistent copy of the database to ``out``."""
    if kind(database_url) == "sqlite":
        source = sqlite3.connect(f"file:{sqlite_path(database_url)}?mode=ro", uri=True)
        target = sqlite3.connect(out)
        try:
            # All pages in one step: in WAL mode one read transaction does not block the writers,
            # while a step-by-step copy starts again whenever another connection writes in between.
            source.backup(target, pages=-1)
        finally:
            target.close()
            source.close()
        return
    url, env = _libpq(database_url)
    result = subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                             f"--file={out}", f"--dbname={url}"], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise DatabaseCopyError(f"pg_dump failed: {result.stderr.strip()[-500:]}")


def load(database_url: str, copy: Path) -> None:
    """Bring ``copy`` (made by :func:`dump`) into the database, which must be empty."""
    if kind(database_url) == "sqlite":
        source = sqlite3.connect(copy)
        target_path = sqlite_path(database_url)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(target_path)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        return
    # A fresh instance may hold the schema `init-db` made for this release (and no data: checked
    # before): it goes, whole, so that an older backup's schema is what migrations then bring up.
    from sqlalchemy import create_engine, text
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    url, env = _libpq(database_url)
    result = subprocess.run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                             "--single-transaction", f"--dbname={url}", str(copy)], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        raise DatabaseCopyError(f"pg_restore failed: {result.stderr.strip()[-500:]}")
