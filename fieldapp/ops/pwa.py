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

# What an officer needs to open the app with no network. Pages are cached as they are visited.
SHELL_FILES = (
    "css/app.css",
    "js/app.js",
    "js/i18n.js",
    "js/webauthn.js",
    "js/signin.js",
    "icons/icon-192.png",
    "icons/maskable-192.png",
)
SHELL_URLS = ("/manifest.webmanifest",)


def precache_urls() -> list[str]:
    return [f"/static/{f}" for f in SHELL_FILES] + list(SHELL_URLS)


@lru_cache(maxsize=1)
def service_worker_source() -> str:
    digest = hashlib.sha256()
    for name in SHELL_FILES:
        digest.update(name.encode())
        digest.update((STATIC_DIR / name).read_bytes())
    body = SW_SOURCE.read_text(encoding="utf-8")
    digest.update(body.encode())
    header = (
        f"const SHELL_VERSION = {json.dumps(digest.hexdigest()[:16])};\n"
        f"const PRECACHE_URLS = {json.dumps(precache_urls())};\n"
    )
    return header + body
