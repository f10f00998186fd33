"""A real app server process for tests: gunicorn (one gthread worker) started from the repo root,
configured only through FIELDAPP_* environment variables, which a test can crash with SIGKILL and
start again on the same port.

The process runs in its own session (process group), so ``kill()`` takes down gunicorn's master
*and* its worker at once, as a crashed host would: killing only the master would leave the worker
serving on the inherited socket. Its output goes to a log file, kept for diagnostics.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Several gunicorn masters run on this machine at once; gunicorn 27's control socket has one
# default path per user, which the second master would fail to bind (and log as an error).
NO_CONTROL_SOCKET = ["--no-control-socket"]


def gunicorn_command() -> list[str]:
    script = Path(sys.executable).parent / "gunicorn"
    if script.exists():
        return [str(script), *NO_CONTROL_SOCKET]
    venv_script = REPO_ROOT / ".venv" / "bin" / "gunicorn"
    if venv_script.exists():
        return [str(venv_script), *NO_CONTROL_SOCKET]
    return [sys.executable, "-m", "gunicorn", *NO_CONTROL_SOCKET]


def app_env(*, database_url: str, var_dir: Path, secret_key: str, origin: str, **extra: str) -> dict[str, str]:
    """The environment of an app process: ours without any inherited FIELDAPP_* variable, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDAPP_")}
    env.update({
        "FIELDAPP_DATABASE_URL": database_url,
        "FIELDAPP_VAR_DIR": str(var_dir),
        "FIELDAPP_SECRET_KEY": secret_key,
        "FIELDAPP_ORIGINS": origin,
        "FIELDAPP_RP_ID": "localhost",
        "FIELDAPP_COOKIE_SECURE": "0",
        "FIELDAPP_DEMO": "1",
        "FIELDAPP_LOG_REQUESTS": "0",
        "FIELDAPP_RATE_LIMIT": "0",
        "FIELDAPP_SQLITE_STRICT_WRITES": "1",
    })
    env.update({f"FIELDAPP_{k.upper()}": str(v) for k, v in extra.items()})
    return env


class AppProcess:
    """``gunicorn --workers 1 --worker-class gthread --threads 4 --bind 127.0.0.1:PORT wsgi:app``."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None, threads: int = 4,
                 cwd: Path = REPO_ROOT):
        self.env = env
        self.cwd = cwd  # another tree (an earlier release's) runs its own code
        self.port = port or free_port()
        self.log_path = Path(log_path)
        self.threads = threads
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> AppProcess:
        if self.running:
            raise RuntimeError("already running")
        command = [*gunicorn_command(), "--workers", "1", "--worker-class", "gthread", "--threads", str(self.threads),
                   "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "5", "wsgi:app"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start #{self.starts + 1} at {time.strftime('%H:%M:%S')}: {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(command, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer /healthz within {STARTUP_TIMEOUT_S} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """A real crash: SIGKILL to gunicorn's master and worker at once, no shutdown of any kind."""
        if not self.running:
            raise RuntimeError("not running")
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)
        self._wait_until_port_refuses()
        self.kills += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== SIGKILL at {time.strftime('%H:%M:%S')}\n".encode())

    def _wait_until_port_refuses(self, timeout_s: float = 5.0) -> None:
        # The worker (a child the master no longer reaps) may take a moment to die and drop the
        # listening socket; a crash is only complete once connections are refused.
        import socket

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.05)

    def restart(self) -> AppProcess:
        """Start again on the same port (after kill() or stop())."""
        if self.running:
            self.stop()
        return self.start()

    def stop(self) -> None:
        """Graceful stop (SIGTERM to the group), SIGKILL if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except ProcessLookupError:
            self.process.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
