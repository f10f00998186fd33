"""What the server benchmarks share: a clean FIELDAPP_ environment, the schema, gunicorn as a real
process on loopback (started, health-checked, stopped), and percentiles."""
from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10


def venv_bin(name: str) -> str:
    """A console script of the virtualenv this script runs in (``.venv/bin/<name>``)."""
    for folder in (Path(sys.executable).parent, REPO_ROOT / ".venv" / "bin"):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"cannot find {name!r}; run with .venv/bin/python")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def apply_env(settings: dict[str, str]) -> dict[str, str]:
    """Make ``settings`` the only FIELDAPP_ variables of this process; return the full environment.

    Inherited FIELDAPP_ variables (a DATABASE_URL pointing elsewhere, say) must not leak into the
    benchmark, neither in-process (seeding) nor in the subprocesses (init-db, gunicorn).
    """
    for key in [k for k in os.environ if k.startswith("FIELDAPP_")]:
        del os.environ[key]
    os.environ.update(settings)
    return dict(os.environ)


def init_db(env: dict[str, str]) -> None:
    subprocess.run([venv_bin("flask"), "--app", "fieldapp", "init-db"], cwd=REPO_ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)


@contextmanager
def gunicorn(env: dict[str, str], port: int, log_path: Path, *, workers: int = 2,
             threads: int = 8) -> Iterator[tuple[str, int]]:
    """Run gunicorn (gthread workers) for the duration of the block; yield its URL and master pid."""
    command = [venv_bin("gunicorn"), "--no-control-socket", "--workers", str(workers), "--worker-class", "gthread",
               "--threads", str(threads), "--bind", f"{HOST}:{port}", "wsgi:app"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    base_url = f"http://{HOST}:{port}"
    try:
        wait_until_healthy(base_url, process, log_path)
        yield base_url, process.pid
    finally:
        stop(process)


def wait_until_healthy(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer /healthz within {STARTUP_TIMEOUT_S} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def percentile_ms(sorted_seconds: list[float], pct: float) -> float | None:
    """Nearest-rank percentile, in milliseconds rounded to 0.1."""
    if not sorted_seconds:
        return None
    index = max(0, math.ceil(pct / 100 * len(sorted_seconds)) - 1)
    return round(sorted_seconds[index] * 1000, 1)


def log_count(log_path: Path, phrase: str) -> int:
    try:
        return log_path.read_text(errors="replace").count(phrase)
    except FileNotFoundError:
        return 0
