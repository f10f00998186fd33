"""Chaos for media: the page's own sync engine uploads sixty-odd photos of 1–4 MB and a 30 MB clip
through a proxy that cuts about a fifth of the media requests (half the request body, or half the
response body) and duplicates a few, to two real app processes sharing one database and one media
store (a local folder, or S3 on a moto server), one of which is SIGKILLed and restarted midway.

Afterwards every original is on the server and re-hashes to its hash when read back from storage,
nothing was shown 已同步 before the server held all its originals, and no byte range was stored
twice: each upload's chunk records tile its file from byte 0, without overlap.

A second test cuts a 30 MB upload once, in the middle of a chunk at half the file, and measures what
the phone sends again: the upload resumes from at least 45 % — on the same instance, on the other
one, or on the other one after the first was killed.

The photos and the clip are attached through the step form's own file inputs, offline; the proxy's
chaos goes on before the browser comes back online.

Responses are cut in their body, not in their head: Chromium takes a head cut short as complete and
stores a Set-Cookie cut short in the middle of its value, with the default path of the request
(/api/v1/media, /api/v1/media/uploads/<id>). That broken cookie is sent before the good one on
every later media request, which the app then refuses (csrf_failed) for the rest of the browser
session — a problem of the session cookie being set on every answer, outside media sync.
"""
from __future__ import annotations

import hashlib
import io
import random
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from sqlalchemy import select

from fieldapp import db
from fieldapp.media.storage import LocalStorage, MediaStorage, S3Storage
from fieldapp.models import Media, MediaUpload, MediaUploadChunk
from tests.conftest import skip_or_fail
from tests.e2e.capture_support import (
    READ_STORE, add_step_with_photo, answer_av, jpeg_with_exif, sign_in_fresh_officer, start_visit,
)
from tests.e2e.conftest import wait_until
from tests.e2e.chaos_support import OUTBOX_COUNT, parse_js_time, start_behind_proxy
from tests.support.app_process import REPO_ROOT, AppProcess, free_port
from tests.support.appfactory import make_app
from tests.support.chaos_proxy import ChaosProxy

pytestmark = pytest.mark.e2e

SEED = 20261203
SECRET_KEY = "chaos-media-secret-shared-by-both-instances"
MiB = 1024 * 1024
CHUNK_BYTES = MiB              # what the server advertises (chunk_bytes)
MEDIA = "/api/v1/media/"       # every media request may meet a fault
UPLOADS = "/api/v1/media/uploads/"  # chunks (PUT …/<id>?offset=N) and completions: their bodies are counted

PHOTOS = 60
PHOTO_MIN_BYTES, PHOTO_MAX_BYTES = 1_000_000, 4_000_000
PHOTOS_PER_STEP = 10
VIDEO_BYTES = 30_000_000       # not a multiple of the chunk size: a cut at half lands inside a chunk
# ISO BMFF "ftyp" box (24 bytes: major brand isom, two compatible brands): sniffed as video/mp4.
FTYP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"

CUT_REQUEST_RATE, CUT_RESPONSE_RATE, DUPLICATE_RATE = 0.10, 0.10, 0.05  # of the media requests
CAPTURE_BUDGET_S = 60          # attaching the files offline (hash, preview, IndexedDB)
SYNC_BUDGET_S = 90             # the chaotic upload of everything
KILL_AT_FRACTION = 1 / 3       # of the bytes to upload, forwarded before the victim is killed
DOWN_FOR_S = 2.0
MIN_CUTS_EACH = 30             # about 500 media requests meet the deck: 10 % of each kind of cut
RESUME_CUT_AT = 0.50
RESUME_FROM_AT_LEAST = 0.45
RESUME_BUDGET_S = 45


# ---- files ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaFile:
    path: Path
    sha256: str
    size: int


def noise_jpeg(rng: random.Random, target_bytes: int) -> bytes:
    """A real JPEG of random pixels (which compress as badly as a photo's), of about target_bytes:
    at quality 95 without chroma subsampling noise costs about 2.4 bytes a pixel."""
    pixels = target_bytes / 2.4
    width = int((pixels * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, subsampling=0)
    return out.getvalue()


def _write(path: Path, data: bytes) -> MediaFile:
    path.write_bytes(data)
    return MediaFile(path, hashlib.sha256(data).hexdigest(), len(data))


@pytest.fixture(scope="session")
def media_files(tmp_path_factory) -> dict:
    """Sixty photos of 1 to 4 MB and a 30 MB clip, made once per session. The sizes spread over the
    whole range, more of them small than large (as a phone's are): 2 MB on average, 120 MB in all."""
    folder = tmp_path_factory.mktemp("chaos-media-files")
    rng = random.Random(SEED)
    photos = []
    low, high = PHOTO_MIN_BYTES * 1.05, PHOTO_MAX_BYTES * 0.95
    for i in range(PHOTOS):
        target = low + (high - low) * (i / (PHOTOS - 1)) ** 2
        data = noise_jpeg(rng, int(target))
        assert PHOTO_MIN_BYTES <= len(data) <= PHOTO_MAX_BYTES, (i, len(data))
        photos.append(_write(folder / f"photo-{i:02d}.jpg", data))
    video = _write(folder / "clip.mp4", FTYP + rng.randbytes(VIDEO_BYTES - len(FTYP)))
    return {"photos": photos, "video": video}


# ---- storage: a local folder, or S3 on a moto server in its own process ----------------------------


class MotoServer:
    """moto's S3 in server mode, in a process of its own (the test process already runs the proxy)."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        script = REPO_ROOT / ".venv" / "bin" / "moto_server"
        command = [str(script)] if script.exists() else ["moto_server"]
        self.log = open(log_path, "ab")
        try:
            self.process = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(self.port)],
                                            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        except OSError as exc:
            self.log.close()
            skip_or_fail(f"moto_server cannot start: {exc}")
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # answering at all is enough
            except (urllib.error.URLError, OSError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    skip_or_fail("moto_server did not start")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


def media_backend(request, backend: str, tmp_path: Path) -> tuple[dict, MediaStorage]:
    """The FIELDAPP_* settings both app processes share for media, and a storage to read back from."""
    if backend == "local":
        folder = tmp_path / "media"
        return {"media_backend": "local", "media_dir": str(folder)}, LocalStorage(folder)
    server = request.getfixturevalue("moto_server")
    bucket = f"chaos-{uuid.uuid4().hex[:12]}"
    settings = {"media_backend": "s3", "s3_bucket": bucket, "s3_endpoint": server.endpoint,
                "s3_region": "us-east-1", "s3_access_key": "fieldapp-test", "s3_secret_key": "fieldapp-test-secret"}
    storage = S3Storage(bucket, endpoint_url=server.endpoint, region="us-east-1", access_key="fieldapp-test",
                        secret_key="fieldapp-test-secret")
    storage.ensure_bucket()
    return settings, storage


# ---- the rig ---------------------------------------------------------------------------------------


@dataclass
class Rig:
    proxy: ChaosProxy
    apps: list[AppProcess]
    context: object
    page: object
    database_url: str
    storage: MediaStorage


def start_rig(request, browser, tmp_path: Path, database_url: str, backend: str, **proxy_options) -> Rig:
    """One officer, the proxy (chaos off), two app processes sharing the database and the media
    store, and a page signed in through the demo route with its device registered."""
    media_settings, storage = media_backend(request, backend, tmp_path)
    proxy = ChaosProxy(fault_prefix=MEDIA, count_prefix=UPLOADS, **proxy_options).start()
    request.addfinalizer(proxy.stop)
    apps, context, page = start_behind_proxy(request, browser, tmp_path, database_url, proxy,
                                             secret_key=SECRET_KEY, **media_settings)
    return Rig(proxy, apps, context, page, database_url, storage)


def attach_step(page, selector: str, files: list[MediaFile], timeout_s: float) -> None:
    """A step of the first type with these files, picked through the form's own file input."""
    page.get_by_role("link", name="添加环节").click()
    page.set_input_files(selector, [str(f.path) for f in files])
    wait_until(page, f"document.querySelectorAll('[data-testid=photo-saved]').length === {len(files)}", timeout_s)
    answer_av(page)
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()


# Run the page's sync engine until every media file is confirmed on the server, nothing is
# queued and every record is 已同步 (or the budget is spent). The engine backs off after each
# failure; calling it again at once only skips waiting for its timer. The loop runs in the page:
# a round trip through the DevTools protocol per attempt would add up over a hundred attempts.
SYNC_UNTIL_DONE = """async ({ budgetMs }) => {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open("fieldapp"); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  const all = (store) => new Promise((resolve, reject) => {
    const r = db.transaction(store).objectStore(store).getAll(); r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const synced = async () => {
    const [media, records, outbox] = [await all("media"), await all("records"), await all("outbox")];
    return outbox.length === 0 && media.every((m) => m.confirmed_at) && records.every((r) => r.status === "synced");
  };
  const end = Date.now() + budgetMs;
  let calls = 0;
  try {
    while (Date.now() < end) {
      if (!window.fieldappSync.state.running && await synced()) return { calls, done: true };
      if (window.fieldappSync.state.running) await new Promise((resolve) => setTimeout(resolve, 20));
      else { calls += 1; await window.fieldappSync.syncNow("chaos-test"); }
    }
    return { calls, done: false };
  } finally {
    db.close();
  }
}"""

CONFIRMED_COUNT = """async () => {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open("fieldapp"); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  return new Promise((resolve, reject) => {
    const r = db.transaction("media").objectStore("media").getAll();
    r.onsuccess = () => resolve(r.result.filter((m) => m.confirmed_at).length); r.onerror = () => reject(r.error);
  });
}"""


def sync_until_done(page, budget_s: float) -> tuple[int, float, bool]:
    """(syncNow calls, seconds taken, whether everything synced) of SYNC_UNTIL_DONE."""
    started = time.monotonic()
    result = page.evaluate(SYNC_UNTIL_DONE, {"budgetMs": int(budget_s * 1000)})
    return result["calls"], time.monotonic() - started, result["done"]


def final_sync(page, timeout_s: float) -> bool:
    """One successful run of the page's sync engine (not overlapping a run its own timer began)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.evaluate("async () => !window.fieldappSync.state.running"
                         " && await window.fieldappSync.syncNow('test-final')"):
            return True
        time.sleep(0.05)
    return False


@dataclass
class ServerState:
    media: dict        # hash -> (size, mime, original_at)
    uploads: dict      # upload id -> (hash, size, completed_at)
    chunks: dict       # upload id -> [(start, length)] by start


def read_server(rig: Rig, tmp_path: Path) -> ServerState:
    verify_app = make_app(rig.database_url, tmp_path / "verify-var")
    try:
        with verify_app.app_context():
            s = db.session()
            media = {m.hash: (m.size, m.mime, m.original_at) for m in s.execute(select(Media)).scalars()}
            uploads = {u.id: (u.hash, u.size, u.completed_at) for u in s.execute(select(MediaUpload)).scalars()}
            chunks: dict = {}
            for row in s.execute(select(MediaUploadChunk.upload_id, MediaUploadChunk.start, MediaUploadChunk.length)
                                 .order_by(MediaUploadChunk.upload_id, MediaUploadChunk.start, MediaUploadChunk.id)):
                chunks.setdefault(row.upload_id, []).append((row.start, row.length))
    finally:
        verify_app.extensions["fieldapp.engine"].dispose()
    return ServerState(media, uploads, chunks)


def overlaps_and_gaps(ranges: list[tuple[int, int]], size: int) -> tuple[list, list]:
    """Byte ranges stored twice, and holes, in an upload's chunk records (sorted by start)."""
    overlaps, gaps, end = [], [], 0
    for start, length in ranges:
        if start < end:
            overlaps.append((start, length, end))
        elif start > end:
            gaps.append((end, start))
        end = max(end, start + length)
    if end != size:
        gaps.append((end, size))
    return overlaps, gaps


def assert_originals_rehash(storage: MediaStorage, expected: dict[str, int]) -> None:
    """Every original, read back from storage, has its hash and its size."""
    for digest, size in expected.items():
        hasher, read = hashlib.sha256(), 0
        with storage.open("sha-256", digest) as stream:
            while block := stream.read(MiB):
                hasher.update(block)
                read += len(block)
        assert (hasher.hexdigest(), read) == (digest, size), f"stored original {digest} does not re-hash"


def server_errors(stats) -> dict:
    return {key: n for key, n in stats.statuses.items() if key[1] >= 500}


def assert_clean_logs(apps: list[AppProcess]) -> None:
    for app_process in apps:
        log = app_process.log_path.read_text(errors="replace")
        assert "Traceback" not in log and "[ERROR]" not in log, app_process.log_tail()


# ---- 1. everything through chaos, one instance killed midway ------------------------------------------


class Killer(threading.Thread):
    """Once the proxy has forwarded `threshold` bytes of chunks, SIGKILLs the victim (while a chunk
    is in flight to it, when one comes within a few seconds), waits, and restarts it."""

    def __init__(self, victim: AppProcess, victim_index: int, proxy: ChaosProxy, threshold: int):
        super().__init__(name="chaos-media-killer", daemon=True)
        self.victim, self.victim_index, self.proxy, self.threshold = victim, victim_index, proxy, threshold
        self.cancelled = threading.Event()
        self.mid_chunk = False
        self.killed_at = self.restarted_at = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while self.proxy.stats.body_forwarded < self.threshold:
                if self.cancelled.wait(0.02):
                    return
            until = time.monotonic() + 3
            while time.monotonic() < until and not self.cancelled.is_set():
                if self.proxy.in_flight(self.victim_index, UPLOADS):
                    self.mid_chunk = True
                    break
                time.sleep(0.002)
            self.victim.kill()
            self.killed_at = time.monotonic()
            if self.cancelled.wait(DOWN_FOR_S):
                return
            self.victim.restart()
            self.restarted_at = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            self.error = exc


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_media_survive_cuts_and_a_killed_instance_with_no_byte_range_stored_twice(
        backend, media_files, sqlite_url, browser, tmp_path, request):
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    rig = start_rig(request, browser, tmp_path, sqlite_url, backend, seed=SEED, cut_request_rate=CUT_REQUEST_RATE,
                    cut_response_rate=CUT_RESPONSE_RATE, duplicate_rate=DUPLICATE_RATE, cut_response_in="body")
    proxy, apps, context, page = rig.proxy, rig.apps, rig.context, rig.page
    timings["signed_in"] = time.monotonic() - t0

    photos, video = media_files["photos"], media_files["video"]
    files = {f.sha256: f for f in [*photos, video]}
    total_bytes = sum(f.size for f in files.values())
    context.set_offline(True)
    start_visit(page, party="临淄区齐都镇鲜果超市（媒体混沌测试）")
    capture_started = time.monotonic()
    for i in range(0, len(photos), PHOTOS_PER_STEP):
        attach_step(page, "[data-testid=photo-input]", photos[i:i + PHOTOS_PER_STEP], CAPTURE_BUDGET_S)
    attach_step(page, "[data-testid=clip-input]", [video], CAPTURE_BUDGET_S)
    timings["captured_offline"] = time.monotonic() - t0
    assert time.monotonic() - capture_started < CAPTURE_BUDGET_S
    on_phone = {m["hash"]: m for m in page.evaluate(READ_STORE, "media")}
    assert set(on_phone) == set(files) and len(files) == PHOTOS + 1
    assert on_phone[video.sha256]["type"] == "video/mp4"

    killer = Killer(apps[0], 0, proxy, threshold=int(total_bytes * KILL_AT_FRACTION))
    killer.start()
    request.addfinalizer(lambda: (killer.cancelled.set(), killer.join(40)))
    proxy.chaos = True
    context.set_offline(False)  # the page's 'online' handler starts a sync by itself
    calls, timings["sync"], _ = sync_until_done(page, SYNC_BUDGET_S)
    if killer.killed_at is None:
        killer.cancelled.set()  # never reached its threshold: the checks below say so
    killer.join(timeout=30)
    killer.cancelled.set()
    if killer.error:
        raise killer.error
    proxy.chaos = False
    confirmed = page.evaluate(CONFIRMED_COUNT)
    # One more run after the restart, so that the restarted process serves this page too.
    final_run = final_sync(page, 30)
    timings["total_before_checks"] = time.monotonic() - t0

    stats = proxy.stats
    puts = [e for e in stats.bodies if e.method == "PUT"]
    tag = f"[{request.node.callspec.id}]"
    print(f"\n{tag} {len(files)} files, {total_bytes / 1e6:.1f} MB; {confirmed} confirmed in the budget; "
          f"syncNow calls {calls}; timings {({k: round(v, 1) for k, v in timings.items()})}")
    print(f"{tag} proxy {stats.summary()}")
    print(f"{tag} chunk bodies: {len(puts)} PUTs, {stats.body_received / 1e6:.1f} MB from the phone, "
          f"{stats.body_forwarded / 1e6:.1f} MB forwarded, for {total_bytes / 1e6:.1f} MB of media")
    print(f"{tag} killed {'in the middle of a chunk to it' if killer.mid_chunk else 'between chunks'}, "
          f"down {DOWN_FOR_S} s; starts {[a.starts for a in apps]}, kills {[a.kills for a in apps]}")

    # The page finished: nothing left to send, every file confirmed, every record 已同步.
    assert confirmed == len(files), f"{confirmed} of {len(files)} files confirmed within {SYNC_BUDGET_S} s"
    assert final_run and sync_until_done(page, 10)[2]
    assert page.evaluate(OUTBOX_COUNT) == 0
    status_log = page.evaluate("window.fieldappSync.statusLog")
    assert not [e for e in status_log if e["status"] == "problem"]

    # The faults really happened, and the crash was a real one of a real process.
    assert stats.cut_request >= MIN_CUTS_EACH and stats.cut_response >= MIN_CUTS_EACH, stats.summary()
    assert sum(1 for e in puts if e.kind == "cut_request") >= 3, "no chunk was cut in the middle of its body"
    assert killer.killed_at is not None and killer.restarted_at is not None, "the instance was never killed"
    assert apps[0].kills == 1 and apps[0].starts == 2 and apps[0].running and apps[1].starts == 1
    assert any(t > killer.restarted_at and i == 0 and k != "upstream_failed" for t, i, _, k in stats.events), \
        "the restarted instance never served a request"
    assert not server_errors(stats), server_errors(stats)
    assert_clean_logs(apps)

    # The server: every file's original arrived, and re-hashes to its hash read back from storage.
    server = read_server(rig, tmp_path)
    assert set(server.media) == set(files)
    assert all(original_at is not None for _, _, original_at in server.media.values()), \
        [h for h, (_, _, at) in server.media.items() if at is None]
    assert {h: size for h, (size, _, _) in server.media.items()} == {h: f.size for h, f in files.items()}
    assert server.media[video.sha256][1] == "video/mp4"
    assert_originals_rehash(rig.storage, {h: f.size for h, f in files.items()})

    # No byte range stored twice: each upload's chunk records tile its file from byte 0.
    assert {h for h, _, _ in server.uploads.values()} == set(files)
    for upload_id, (digest, size, completed_at) in server.uploads.items():  # noqa: B007 - named for the message
        assert completed_at is not None, f"upload {upload_id} never completed"
        overlaps, gaps = overlaps_and_gaps(server.chunks.get(upload_id, []), size)
        assert not overlaps, f"upload {upload_id} ({size} B): byte ranges stored twice {overlaps}"
        assert not gaps, f"upload {upload_id} ({size} B): chunk records miss {gaps}"
    # What the phone sent for the chunks: the files once, plus at most a chunk per request that
    # was cut on its way or lost in the crash.
    lost = sum(1 for e in puts if e.kind == "cut_request") + stats.upstream_failed + 1
    assert total_bytes <= stats.body_received <= total_bytes + lost * CHUNK_BYTES, \
        (stats.body_received, total_bytes, lost)

    # Every 已同步 the page showed: the server held every original of that revision by then.
    revisions = {(r["record_id"], r["revision"]): r for r in page.evaluate(READ_STORE, "revisions")}
    shown = [e for e in status_log if e["status"] == "synced"]
    with_media = [e for e in shown if revisions[(e["record_id"], e["revision"])]["media"]]
    assert len({e["record_id"] for e in with_media}) == PHOTOS // PHOTOS_PER_STEP + 1
    early = []
    for entry in with_media:
        shown_at = parse_js_time(entry["at"])
        for m in revisions[(entry["record_id"], entry["revision"])]["media"]:
            stored_at = server.media[m["hash"]][2]
            if stored_at is None or stored_at > shown_at + timedelta(milliseconds=1):
                early.append((entry, m["hash"][:12], stored_at and stored_at.isoformat()))
    assert not early, f"shown 已同步 before the server held its originals: {early[:5]}"
    print(f"{tag} {len(shown)} 已同步 shown, {len(with_media)} with media, all in time; "
          f"total {time.monotonic() - t0:.1f} s")


# ---- 2. a 30 MB clip cut at half resumes from there ---------------------------------------------------


def chunk_offset(event) -> int:
    return int(parse_qs(urlsplit(event.target).query)["offset"][0])


@pytest.mark.parametrize("backend,resume_on", [
    ("local", "same"), ("local", "other"), ("local", "other-after-kill"), ("s3", "other"),
    ("s3", "other-after-kill"),
])
def test_a_cut_30_mb_upload_resumes_from_where_it_was_cut(backend, resume_on, media_files, sqlite_url, browser,
                                                          tmp_path, request):
    t0 = time.monotonic()
    rig = start_rig(request, browser, tmp_path, sqlite_url, backend)
    proxy, (first, second), context, page = rig.proxy, rig.apps, rig.context, rig.page
    video = media_files["video"]
    context.set_offline(True)
    start_visit(page, party="临淄区齐都镇鲜果超市（续传测试）")
    attach_step(page, "[data-testid=clip-input]", [video], 30)

    proxy.backends = [first.address]  # every chunk to the first instance until the cut
    killing: list[threading.Thread] = []

    def after_cut() -> None:  # in the proxy's loop, before the phone learns of the cut
        if resume_on == "other":
            proxy.backends = [second.address]
        elif resume_on == "other-after-kill":
            proxy.backends = [first.address, second.address]  # the first refuses once killed: failover
            killing.append(threading.Thread(target=first.kill, name="kill-first"))
            killing[0].start()

    proxy.cut_once_after(int(video.size * RESUME_CUT_AT), then=after_cut)
    context.set_offline(False)
    calls, took, done = sync_until_done(page, RESUME_BUDGET_S)
    for thread in killing:
        thread.join(10)
    stats = proxy.stats
    puts = [e for e in stats.bodies if e.method == "PUT"]
    tag = f"[{request.node.callspec.id}]"
    print(f"\n{tag} upload {took:.1f} s, syncNow calls {calls}; proxy {stats.summary()}")
    print(f"{tag} PUTs {[(chunk_offset(e), e.received, e.forwarded, e.kind, e.backends) for e in puts]}")
    assert done, f"the clip did not sync within {RESUME_BUDGET_S} s"
    assert stats.byte_cuts == 1 and not stats.callback_errors, stats.summary()

    [cut_index] = [i for i, e in enumerate(puts) if e.kind == "byte_cut"]
    cut, after = puts[cut_index], puts[cut_index + 1:]
    cut_at = int(video.size * RESUME_CUT_AT)
    assert sum(e.forwarded for e in puts[:cut_index + 1]) == cut_at  # cut inside a chunk, at half the file
    assert chunk_offset(cut) < cut_at < chunk_offset(cut) + cut.received
    assert after, "nothing was sent after the cut"
    resumed_from = chunk_offset(after[0])
    assert resumed_from >= RESUME_FROM_AT_LEAST * video.size, \
        f"resumed from {resumed_from} of {video.size} ({resumed_from / video.size:.1%})"
    # What the phone sent in all: the file once, plus what the cut lost (at most one chunk).
    assert stats.body_received <= video.size * 1.05 + CHUNK_BYTES, stats.body_received
    assert stats.body_received - video.size <= CHUNK_BYTES
    if resume_on == "same":
        assert {b for e in puts for b in e.backends} == {first.address}
    else:
        assert all(e.backends == (second.address,) for e in after), [e.backends for e in after]
        assert first.kills == (1 if resume_on == "other-after-kill" else 0)

    server = read_server(rig, tmp_path)
    assert server.media[video.sha256][2] is not None and server.media[video.sha256][1] == "video/mp4"
    [(upload_id, (_, size, completed_at))] = server.uploads.items()
    assert size == video.size and completed_at is not None
    overlaps, gaps = overlaps_and_gaps(server.chunks[upload_id], size)
    assert not overlaps and not gaps, (overlaps, gaps, server.chunks[upload_id])
    assert_originals_rehash(rig.storage, {video.sha256: video.size})
    assert not server_errors(stats), server_errors(stats)
    print(f"{tag} resumed from {resumed_from} ({resumed_from / video.size:.1%}); phone sent "
          f"{stats.body_received} B for {video.size} B (+{stats.body_received - video.size} B); "
          f"total {time.monotonic() - t0:.1f} s")


# ---- 3. a refused CSRF token is not a refusal of the file --------------------------------------------


def test_a_chunk_refused_for_its_csrf_token_is_sent_again_not_marked_refused(live, context, page, authenticators,
                                                                            tmp_path):
    """A 400 csrf_failed (the token expired, or the session cookie was mangled on the way) says
    nothing about the file: the upload fails like a network error and the next attempt, with a
    fresh token, sends it; the file is never set aside as refused by the server."""
    server, app = live
    sign_in_fresh_officer(page, authenticators, server, app)  # offline from here
    start_visit(page)
    photo = tmp_path / "photo.jpg"
    digest = jpeg_with_exif(photo, seed=5, size=(1600, 1200), noisy=True)
    add_step_with_photo(page, photo)
    page.get_by_test_id("activity-items").wait_for()
    refused: list[str] = []

    def first_chunk_refused(route) -> None:
        if route.request.method == "PUT" and not refused:
            refused.append(route.request.url)
            route.fulfill(status=400, content_type="application/json",
                          body='{"error": "csrf_failed", "message": "The page expired; reload and try again"}')
        else:
            route.continue_()

    page.route("**/api/v1/media/uploads/**", first_chunk_refused)
    context.set_offline(False)
    _, _, done = sync_until_done(page, 30)
    media = {m["hash"]: m for m in page.evaluate(READ_STORE, "media")}
    assert refused, "no chunk was refused"
    assert not media[digest].get("refused"), f"the file was set aside: {media[digest].get('refused')}"
    assert done and media[digest].get("confirmed_at")
