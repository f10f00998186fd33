"""The service worker, served at /sw.js with the list of app-shell files it must precache.

The list and a version derived from the files' contents are prepended to service_worker/sw.js, so
any change to a shell file makes a new worker: the browser then installs it beside the old one,
and the page offers the update when no capture is in progress.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SW_SOURCE = PROJECT_ROOT / "service_worker" / "sw.js"
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

# What an officer needs to open the app with no network: every script and stylesheet (a module
# left out would break the app offline, so they are found, not listed) and the small icons.
# Pages are cached as they are visited.
SHELL_ICONS = ("icons/icon-192.png", "icons/maskable-192.png")


def shell_files() -> tuple[str, ...]:
    found = sorted(
        p.relative_to(STATIC_DIR).as_posix()
        for pattern in ("css/**/*.css", "js/**/*.js")
        for p in STATIC_DIR.glob(pattern)
    )
    return (*found, *SHELL_ICONS)


SHELL_URLS = ("/manifest.webmanifest",)


def precache_urls() -> list[str]:
    return [f"/static/{f}" for f in shell_files()] + list(SHELL_URLS)


@lru_cache(maxsize=1)
def service_worker_source() -> str:
    digest = hashlib.sha256()
    for name in shell_files():
        digest.update(name.encode())
        digest.update((STATIC_DIR / name).read_bytes())
    body = SW_SOURCE.read_text(encoding="utf-8")
    digest.update(body.encode())
    header = (
        f"const SHELL_VERSION = {json.dumps(digest.hexdigest()[:16])};\n"
        f"const PRECACHE_URLS = {json.dumps(precache_urls())};\n"
    )
    return header + body
