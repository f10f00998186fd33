"""The recorded releases (releases.toml) and their files, read from git: tests start from data an
earlier release wrote, with that release's own code."""
from __future__ import annotations

import os
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Release:
    version: str
    commit: str
    phone_store_version: int
    payload_shape: int


def recorded() -> list[Release]:
    data = tomllib.loads((REPO_ROOT / "releases.toml").read_text(encoding="utf-8"))
    return [Release(r["version"], r["commit"], r["phone_store_version"], r["payload_shape"])
            for r in data["release"]]


class ReleaseUnavailable(RuntimeError):
    pass


def file_at(release: Release, path: str) -> bytes:
    """A file as the release shipped it; ReleaseUnavailable when the clone lacks that commit
    (a shallow clone): a test must then fail under CI, not skip."""
    try:
        return subprocess.run(["git", "show", f"{release.commit}:{path}"], cwd=REPO_ROOT, check=True,
                              capture_output=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}).stdout
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode(errors="replace").strip()
        if "exists on disk, but not in" in message or "does not exist in" in message:
            raise FileNotFoundError(path) from None
        raise ReleaseUnavailable(f"release {release.version} ({release.commit[:10]}) is not in this clone: "
                                 f"{message}") from None
