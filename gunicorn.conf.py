"""gunicorn's settings for fieldapp: read by every ``gunicorn wsgi:app`` started in this folder
(gunicorn reads ``./gunicorn.conf.py`` by default; ``-c gunicorn.conf.py`` says so explicitly).
Bind address, workers and timeouts stay on the command line (README "Deploying").

What it does: Prometheus's multiprocess mode (fieldapp/ops/metrics.py). Each worker counts
requests, pushes and uploads into files in ``PROMETHEUS_MULTIPROC_DIR``; a scrape of any worker
sums all of them.

- ``PROMETHEUS_MULTIPROC_DIR`` set (e.g. systemd's ``RuntimeDirectory=fieldapp-metrics`` and
  ``Environment=PROMETHEUS_MULTIPROC_DIR=/run/fieldapp-metrics``): used as given, one folder per
  gunicorn master. Its ``*.db`` files are removed when the master starts — counters begin at zero
  with the new master, as Prometheus expects of a restart — except when a live master owns them
  (``kill -USR2``, gunicorn's binary upgrade: the new master continues the old one's counts).
- Not set: a fresh folder ``fieldapp-prometheus-*`` in the temporary directory, removed when the
  master exits. Such folders of masters that died without exiting are removed by the next start.

The variable is set here, in the master, before the app is imported anywhere: prometheus_client
chooses between in-memory and file-backed values when it is first imported.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
import time

_ENV = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "fieldapp-prometheus-"
_OWNER = "master.pid"  # in the folder: the master that uses it
_ORPHAN_AFTER_S = 3600  # a folder of ours that no master claimed this long ago is left over

if not os.environ.get(_ENV):  # a reload (HUP) reads this file again: keep the folder already chosen
    os.environ[_ENV] = tempfile.mkdtemp(prefix=_PREFIX)
os.makedirs(os.environ[_ENV], exist_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _owner(folder: str) -> int | None:
    try:
        with open(os.path.join(folder, _OWNER)) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def _remove_orphans(own: str) -> None:
    for folder in glob.glob(os.path.join(tempfile.gettempdir(), _PREFIX + "*")):
        if os.path.realpath(folder) == os.path.realpath(own):
            continue
        owner = _owner(folder)
        with contextlib.suppress(OSError):
            if (owner is not None and not _alive(owner)) or (
                    owner is None and time.time() - os.path.getmtime(folder) > _ORPHAN_AFTER_S):
                shutil.rmtree(folder, ignore_errors=True)


def on_starting(server) -> None:
    folder = os.environ[_ENV]
    os.makedirs(folder, exist_ok=True)
    previous = _owner(folder)
    if previous is None or previous == os.getpid() or not _alive(previous):
        for path in glob.glob(os.path.join(folder, "*.db")):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
    with open(os.path.join(folder, _OWNER), "w") as fh:
        fh.write(str(os.getpid()))
    _remove_orphans(folder)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    folder = os.environ.get(_ENV, "")
    ours = (os.path.basename(folder.rstrip(os.sep)).startswith(_PREFIX)
            and os.path.dirname(os.path.realpath(folder)) == os.path.realpath(tempfile.gettempdir()))
    if ours and _owner(folder) == os.getpid():  # after USR2 the new master owns it
        shutil.rmtree(folder, ignore_errors=True)
