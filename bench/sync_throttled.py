"""Benchmark: a morning's capture synced by the page's own engine over a slow link (2 Mbit/s, 300 ms).

What it measures
    An officer captures a realistic morning offline, in headless Debian Chromium at a phone
    viewport: a case, an activity, 40 steps through the UI, 12 of them with a 12-MP JPEG photo of
    3-4 MB (EXIF, structure and sensor-like noise) and one with an 8 MiB clip whose bytes start
    with a valid MP4 ``ftyp`` box.  Then the browser comes back online over an emulated link of
    2 Mbit/s both ways and 300 ms round trips (DevTools ``Network.emulateNetworkConditions``:
    ``uploadThroughput = downloadThroughput = 2e6 / 8`` bytes/s, ``latency`` 300) and the page's
    own sync engine (sync.js + uploader.js) brings everything to the server: the record push,
    ``/media/missing``, the 1280-px previews, then each original in chunks.

    The clock starts just before the DevTools command that brings the page online (and applies the
    throttling, in the same command); the ``online`` event starts the sync by itself (the bench
    calls ``window.fieldappSync.syncNow`` only if it has not).  The server's SQLite file is polled
    every 100 ms for the milestones:

    review_ready   every revision is in ``revisions`` and every photo has ``media.phone_preview_at``
                   (a lead can review the morning).  review_ready_ratio = that time ÷ (the bytes of
                   the push and preview request bodies ÷ bandwidth + 4 round trips of 300 ms).
    total          every original has ``media.original_at`` and the page's statusLog shows every
                   record 已同步 (the later of the two; the page's time is the ``at`` of the last
                   status change).  total_ratio = that time ÷ (all request body bytes sent in that
                   time ÷ bandwidth).

    Bytes are counted on the server: a WSGI middleware in front of the app (this script's, no app
    change) records each request's Content-Length, method, path, status and server-side start and
    end times; DevTools' postData is no use for blobs.  The request log also gives the link's idle
    time (no request in flight at the server) and where it was spent.

    Afterwards, on the same page and the same emulated link, the throttling itself is calibrated:
    the round trip of an empty request, 1 MB uploaded alone, and 2 x 1 MB uploaded at once.  If
    the pair takes about twice as long as one, the throughput is shared between concurrent requests
    (as on a real link), so the engine's sequential uploads are judged honestly; if not, a client
    uploading in parallel would beat the emulated link, which a real one would not allow.
    (Chromium adds the latency once per request, before the response; the server sees a request
    as soon as it is sent.)

    Setup (not measured, not throttled): a temporary SQLite database and media folder, the app
    served on localhost by the e2e tests' in-process server (tests.support.live_server: werkzeug,
    threaded), a persistent temporary browser profile (IndexedDB on disk, as on a phone), passkey
    enrolment with a virtual authenticator, then offline (DevTools) for the capture.  By default no
    CPU slowdown is applied to the renderer; ``--cpu-slowdown 4`` slows it during the sync as
    capture_latency.py does for a mid-range phone (the 1280-px previews are made at sync time, on
    the phone's CPU).

How to run (from the repo root; only localhost is used; the temporary folder is removed at the end)
    .venv/bin/python bench/sync_throttled.py [--steps 40] [--photos 12] [--video-mib 8]
                                             [--cpu-slowdown 1] [--timeline]

    About 58 MB of request bodies at 250 kB/s: the sync alone takes some 4.5 minutes; making the
    photos, the capture and the calibration add about 1.5 more.

How to read the output
    Progress lines while it runs, a summary (time, bytes, requests by kind, link idle time, the
    throttling calibration), then exactly one JSON line: {"total_ratio": ..., "review_ready_ratio":
    ..., then extra figures}.  Goal: both ratios <= 1.2.  The exit status is 0 whether or not a
    goal is met; it is not 0 only when the benchmark itself could not run.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from PIL import Image, ImageChops  # noqa: E402

from fieldapp import migrate  # noqa: E402
from tests.e2e.capture_support import (  # noqa: E402
    READ_STORE,
    jpeg_with_exif,
    sign_in_with_new_passkey,
    start_visit,
)
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, wait_until  # noqa: E402
from tests.support.appfactory import make_app  # noqa: E402
from tests.support.live_server import serve  # noqa: E402

BANDWIDTH_BITS = 2_000_000
BYTES_PER_S = BANDWIDTH_BITS / 8  # 250 000 B/s, both ways
LATENCY_MS = 300
REVIEW_ROUND_TRIPS = 4  # session probe, push, media/missing, previews
GOAL = 1.2
POLL_S = 0.1
PROGRESS_EVERY_S = 10.0
SYNC_TIMEOUT_S = 20 * 60
UI_TIMEOUT_MS = 30_000
PHOTO_SIZE = (4000, 3000)  # 12 MP
PHOTO_MIN_BYTES, PHOTO_MAX_BYTES = 3_000_000, 4_000_000
NOISE_SIGMA = 14
CALIBRATION_BYTES = 1_000_000
SINK = "/__bench/sink"

# ---- the server side: request bodies counted in front of the app --------------------------------


class BodyCounter:
    """WSGI middleware: logs every request (method, path, Content-Length, status, server-side start
    and end) and answers ``/__bench/sink`` itself (reads the whole body; for the calibration)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.log: list[dict] = []

    def __call__(self, environ, start_response):
        entry = {"start": time.time(), "end": None, "method": environ.get("REQUEST_METHOD", ""),
                 "path": environ.get("PATH_INFO", ""), "query": environ.get("QUERY_STRING", ""),
                 "bytes": int(environ.get("CONTENT_LENGTH") or 0), "status": None}
        with self.lock:
            self.log.append(entry)
        if entry["path"] == SINK:
            return self._sink(environ, start_response, entry)

        def recording_start_response(status, headers, exc_info=None):
            entry["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        return self._relay(self.app(environ, recording_start_response), entry)

    @staticmethod
    def _relay(body, entry):
        try:
            yield from body
        finally:
            if hasattr(body, "close"):
                body.close()
            entry["end"] = time.time()

    @staticmethod
    def _sink(environ, start_response, entry):
        left = entry["bytes"]
        stream = environ["wsgi.input"]
        while left > 0:
            data = stream.read(min(left, 65536))
            if not data:
                break
            left -= len(data)
        entry["status"] = 200
        entry["end"] = time.time()
        payload = json.dumps({"bytes": entry["bytes"] - left}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                                  ("Cache-Control", "no-store")])
        return [payload]

    def entries_since(self, index: int) -> list[dict]:
        with self.lock:
            return [dict(e) for e in self.log[index:]]

    def mark(self) -> int:
        with self.lock:
            return len(self.log)


def kind_of(entry: dict) -> str:
    path, method = entry["path"], entry["method"]
    if path == SINK:
        return "bench"
    if path == "/api/v1/sync/push":
        return "push"
    if path == "/api/v1/media/previews":
        return "previews"
    if path == "/api/v1/media/missing":
        return "missing"
    if path.startswith("/api/v1/media/uploads/") and path.endswith("/complete"):
        return "complete"
    if path.startswith("/api/v1/media/uploads/") and method == "PUT":
        return "chunk"
    if path == "/api/v1/media/uploads" and method == "POST":
        return "begin"
    if path == "/api/v1/session":
        return "session"
    if path.startswith("/api/v1/sync/pull"):
        return "pull"
    return "other"


# ---- the morning's media ------------------------------------------------------------------------

def make_photos(folder: Path, count: int) -> list[Path]:
    """12-MP JPEGs with EXIF (the e2e helper's structure) and sensor-like noise, saved at the first
    quality that lands in 3-4 MB."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"IMG_2026112{i // 10}_{i:04d}.jpg"
        jpeg_with_exif(path, seed=i, size=PHOTO_SIZE, taken=f"2026:11:20 09:{10 + i * 3:02d}:00")
        with Image.open(path) as original:
            exif = original.info["exif"]
            base = original.convert("RGB")
        noise = Image.merge("RGB", [Image.effect_noise(PHOTO_SIZE, NOISE_SIGMA) for _ in range(3)])
        noisy = ImageChops.add(base, noise, scale=1.0, offset=-128)  # effect_noise is centred on 128
        data = b""
        for quality in (86, 83, 89, 80, 92, 76):
            buffer = io.BytesIO()
            noisy.save(buffer, "JPEG", quality=quality, exif=exif)
            data = buffer.getvalue()
            if PHOTO_MIN_BYTES <= len(data) <= PHOTO_MAX_BYTES:
                break
        path.write_bytes(data)
        paths.append(path)
    return paths


def make_video(path: Path, size: int) -> Path:
    """``size`` bytes that start like an MP4 file: an ``ftyp`` box (isom), then one ``mdat`` box
    holding random bytes (incompressible, like encoded video)."""
    ftyp = (32).to_bytes(4, "big") + b"ftyp" + b"isom" + (0x200).to_bytes(4, "big") + b"isomiso2avc1mp41"
    mdat_size = size - len(ftyp)
    header = mdat_size.to_bytes(4, "big") + b"mdat"
    path.write_bytes(ftyp + header + os.urandom(mdat_size - len(header)))
    return path


# ---- the page -----------------------------------------------------------------------------------

INSTALL_PROBE = """() => {
  window.__bench = { events: [], online: null };
  window.addEventListener("online", () => { window.__bench.online = Date.now(); });
  window.addEventListener("fieldapp:sync", (e) => {
    window.__bench.events.push({ t: Date.now(), phase: e.detail.phase, reason: e.detail.reason ?? null,
                                 remaining: e.detail.remaining ?? null, retryInMs: e.detail.retryInMs ?? null });
  });
  return true;
}"""

# Start the sync unless the online event already did (or a sync begun offline still runs: wait).
TRIGGER = """(sinceMs) => {
  const s = window.fieldappSync;
  const start = window.__bench.events.find((e) => e.phase === "start" && e.t >= sinceMs);
  if (start) return start.reason;
  if (!s.state.running) { s.syncNow("bench"); return "bench"; }
  return null;
}"""

# Per record, the latest status shown; the time of the last change to 已同步.
PAGE_STATE = """() => {
  const last = new Map();
  for (const e of window.fieldappSync.statusLog) last.set(e.record_id, e);
  const entries = Array.from(last.values());
  const synced = entries.filter((e) => e.status === "synced");
  return { seen: entries.length, synced: synced.length,
           problems: entries.filter((e) => e.status === "problem").map((e) => e.record_id),
           lastSyncedMs: synced.length ? Math.max(...synced.map((e) => Date.parse(e.at))) : null,
           running: window.fieldappSync.state.running,
           offlineEvents: window.__bench.events.filter((e) => e.phase === "offline").length };
}"""

CALIBRATE = """async ({ sink, bytes }) => {
  const post = async (n) => {
    const t = performance.now();
    const r = await fetch(sink + "?n=" + n, { method: "POST", cache: "no-store", body: new Blob([new Uint8Array(n)]) });
    await r.text();
    return performance.now() - t;
  };
  const rtts = [];
  for (let i = 0; i < 5; i++) rtts.push(await post(0));
  const single = await post(bytes);
  const t = performance.now();
  const each = await Promise.all([post(bytes), post(bytes)]);
  return { rtts, single, pair: performance.now() - t, each };
}"""


def emulate(cdp, *, offline: bool, throttled: bool) -> None:
    cdp.send("Network.emulateNetworkConditions", {
        "offline": offline,
        "latency": LATENCY_MS if throttled else 0,
        "downloadThroughput": BYTES_PER_S if throttled else -1,
        "uploadThroughput": BYTES_PER_S if throttled else -1,
    })


def step_count(page) -> int:
    return page.evaluate(
        "() => document.querySelectorAll('[data-testid=activity-items] [data-testid=item-step]').length")


def capture_morning(page, steps: int, attachments: dict[int, tuple[str, Path]]) -> None:
    for i in range(steps):
        page.get_by_role("link", name="添加环节").click()
        page.get_by_label("情况记录").fill(f"第 {i + 1} 个环节：现场检查，货架商品标签齐全，未发现过期食品。")
        if i in attachments:
            selector, path = attachments[i]
            page.set_input_files(selector, str(path))
            page.get_by_test_id("photo-saved").wait_for()
        page.get_by_role("button", name="保存环节").click()
        page.get_by_test_id("activity-items").wait_for()
        wait_until(page, f"document.querySelectorAll('[data-testid=activity-items] [data-testid=item-step]')"
                         f".length >= {i + 1}", timeout_s=UI_TIMEOUT_MS / 1000)
        if (i + 1) % 10 == 0 or i + 1 == steps:
            print(f"  {i + 1}/{steps} steps saved offline", flush=True)


def spread(count: int, over: int) -> list[int]:
    """``count`` step indexes spread evenly over ``over`` steps."""
    return [min(over - 1, int((k + 0.5) * over / count)) for k in range(count)] if count else []


# ---- the server's database ----------------------------------------------------------------------

class ServerDb:
    def __init__(self, db_path: Path, photo_hashes: list[str], all_hashes: list[str]):
        self.conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5, check_same_thread=False)
        self.photos, self.all = photo_hashes, all_hashes

    def state(self) -> dict:
        revisions = self.conn.execute("SELECT count(*) FROM revisions").fetchone()[0]
        marks = ",".join("?" * len(self.all))
        rows = self.conn.execute(
            f"SELECT hash, phone_preview_at IS NOT NULL, original_at IS NOT NULL FROM media "
            f"WHERE alg = 'sha-256' AND hash IN ({marks})", self.all).fetchall()
        self.conn.rollback()
        previews = {h for h, p, _ in rows if p}
        originals = {h for h, _, o in rows if o}
        return {"revisions": revisions, "previews": sum(h in previews for h in self.photos),
                "originals": len(originals)}

    def close(self) -> None:
        self.conn.close()


# ---- the run ------------------------------------------------------------------------------------

def wait_for_sync(page, server_db: ServerDb, counter: BodyCounter, mark: int, t0: float, expected: dict) -> dict:
    """Poll the server's database (and the page) until the morning is on the server."""
    t_review = t_originals = None
    next_progress = t0 + PROGRESS_EVERY_S
    page_state = None
    while True:
        now = time.time()
        db_state = server_db.state()
        if t_review is None and db_state["revisions"] >= expected["revisions"] \
                and db_state["previews"] >= expected["photos"]:
            t_review = now
            print(f"  {now - t0:6.1f} s  review-ready: {db_state['revisions']} revisions and "
                  f"{db_state['previews']} previews on the server", flush=True)
        if t_originals is None and db_state["originals"] >= expected["media"]:
            t_originals = now
            print(f"  {now - t0:6.1f} s  all {db_state['originals']} originals on the server", flush=True)
        page_state = page.evaluate(PAGE_STATE)
        if page_state["problems"]:
            raise SystemExit(f"records shown as problems: {page_state['problems']}")
        if t_review and t_originals and page_state["synced"] >= expected["records"]:
            break
        if now >= next_progress:
            sent = sum(e["bytes"] for e in counter.entries_since(mark))
            print(f"  {now - t0:6.1f} s  {sent / 1e6:5.1f} MB received; server: {db_state['revisions']}/"
                  f"{expected['revisions']} revisions, {db_state['previews']}/{expected['photos']} previews, "
                  f"{db_state['originals']}/{expected['media']} originals; page: {page_state['synced']}/"
                  f"{expected['records']} records 已同步", flush=True)
            next_progress += PROGRESS_EVERY_S
        if now - t0 > SYNC_TIMEOUT_S:
            raise SystemExit(f"not synced within {SYNC_TIMEOUT_S} s: server {db_state}, page {page_state}")
        time.sleep(max(0.0, POLL_S - (time.time() - now)))
    t_page = page_state["lastSyncedMs"] / 1000
    print(f"  {t_page - t0:6.1f} s  page: all {page_state['synced']} records 已同步", flush=True)
    return {"t_review": t_review, "t_originals": t_originals, "t_page": t_page,
            "offline_events": page_state["offlineEvents"]}


def calibrate(page) -> dict:
    result = page.evaluate(CALIBRATE, {"sink": SINK, "bytes": CALIBRATION_BYTES})
    rtt = statistics.median(result["rtts"])
    ideal = CALIBRATION_BYTES / BYTES_PER_S * 1000
    return {"rtt_ms": round(rtt, 1), "single_ms": round(result["single"], 1), "pair_ms": round(result["pair"], 1),
            "single_kbps": round(CALIBRATION_BYTES / ((result["single"] - rtt) / 1000) / 1000, 1),
            # shared: two at once take about two ideal transfers; per request: about one
            "shared": result["pair"] - rtt > 1.5 * ideal}


def run(args, workdir: Path) -> dict:
    from playwright.sync_api import sync_playwright

    print(f"making {args.photos} 12-MP photos and a {args.video_mib} MiB clip ...", flush=True)
    photos = make_photos(workdir / "media", args.photos)
    video = make_video(workdir / "media" / "VID_20261120_0930.mp4", args.video_mib * 1024 * 1024) \
        if args.video_mib else None
    sizes = [p.stat().st_size for p in photos]
    if sizes:
        print(f"  photos {min(sizes) / 1e6:.2f}-{max(sizes) / 1e6:.2f} MB, {sum(sizes) / 1e6:.1f} MB in all", flush=True)
    photo_steps = spread(len(photos), args.steps)
    attachments: dict[int, tuple[str, Path]] = {i: ("[data-testid=photo-input]", p) for i, p in zip(photo_steps, photos, strict=True)}
    if video is not None:
        free = [i for i in range(args.steps) if i not in attachments]
        attachments[min(free, key=lambda i: abs(i - args.steps // 2))] = ("[data-testid=clip-input]", video)

    db_path = workdir / "fieldapp.sqlite3"
    migrate.upgrade(f"sqlite:///{db_path}")
    counters: list[BodyCounter] = []

    def factory(origin):
        app = make_app(f"sqlite:///{db_path}", workdir / "var", origin=origin)
        counter = BodyCounter(app.wsgi_app)
        app.wsgi_app = counter
        counters.append(counter)
        return app

    server, app = serve(factory)
    counter = counters[0]
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(workdir / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, **PHONE)
            try:
                context.set_default_timeout(UI_TIMEOUT_MS)
                page = context.pages[0] if context.pages else context.new_page()
                print("signing in (online, unthrottled) ...", flush=True)
                sign_in_with_new_passkey(context, page, server, app)
                wait_until(page, "window.fieldappSync && !window.fieldappSync.state.running", 30)
                # One DevTools session switches the link: Playwright's set_offline(False) would also
                # reset the throttling (latency 0, throughput -1), so it is not used.
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                emulate(cdp, offline=True, throttled=False)
                wait_until(page, "navigator.onLine === false")
                print(f"offline: a case, an activity, {args.steps} steps ({len(photos)} with a photo"
                      f"{', one with the clip' if video else ''}) ...", flush=True)
                start_visit(page)
                capture_morning(page, args.steps, attachments)

                records = page.evaluate(READ_STORE, "records")
                revisions = page.evaluate(READ_STORE, "revisions")
                media = page.evaluate(READ_STORE, "media")
                outbox = page.evaluate(READ_STORE, "outbox")
                photo_hashes = [m["hash"] for m in media if m["type"].startswith("image/")]
                all_hashes = [m["hash"] for m in media]
                expected = {"records": len(records), "revisions": len(revisions), "photos": len(photo_hashes),
                            "media": len(all_hashes)}
                if len(outbox) != len(revisions) or len(all_hashes) != len(attachments):
                    raise SystemExit(f"unexpected local state: {len(outbox)} queued of {len(revisions)} revisions, "
                                     f"{len(all_hashes)} media for {len(attachments)} attachments")
                media_bytes = sum(m["size"] for m in media)
                print(f"  on the phone: {expected['records']} records, {expected['revisions']} revisions queued, "
                      f"{len(all_hashes)} media ({media_bytes / 1e6:.1f} MB)", flush=True)

                page.evaluate(INSTALL_PROBE)
                wait_until(page, "!window.fieldappSync.state.running", 30)
                server_db = ServerDb(db_path, photo_hashes, all_hashes)
                mark = counter.mark()
                if args.cpu_slowdown > 1:
                    cdp.send("Emulation.setCPUThrottlingRate", {"rate": args.cpu_slowdown})
                print(f"online at {BANDWIDTH_BITS / 1e6:g} Mbit/s, {LATENCY_MS} ms"
                      f"{f', CPU slowed {args.cpu_slowdown:g}x' if args.cpu_slowdown > 1 else ''}: syncing ...", flush=True)
                t0 = time.time()
                emulate(cdp, offline=False, throttled=True)
                started_by = None
                while started_by is None:
                    started_by = page.evaluate(TRIGGER, t0 * 1000 - 5)
                    if started_by is None:
                        time.sleep(0.02)
                try:
                    milestones = wait_for_sync(page, server_db, counter, mark, t0, expected)
                finally:
                    server_db.close()
                    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
                log = counter.entries_since(mark)

                print("calibrating the emulated link (same page, same conditions) ...", flush=True)
                wait_until(page, "!window.fieldappSync.state.running", 60)
                page.evaluate("() => { window.fieldappSync.state.paused = true; }")  # no retry during it
                throttle = calibrate(page)
                emulate(cdp, offline=False, throttled=False)
            finally:
                context.close()
    finally:
        server.stop()
        app.extensions["fieldapp.engine"].dispose()
    return {"t0": t0, "milestones": milestones, "log": log, "expected": expected, "started_by": started_by,
            "photo_bytes": sizes, "video_bytes": video.stat().st_size if video else 0, "media_bytes": media_bytes,
            "throttle": throttle}


# ---- the figures --------------------------------------------------------------------------------

def idle_gaps(log: list[dict], t0: float, t_end: float) -> list[tuple[float, float, str, str]]:
    """Stretches of [t0, t_end] with no request in flight at the server: (start, length, before, after)."""
    spans = sorted((e["start"], e["end"] or t_end, e) for e in log if e["start"] < t_end)
    gaps = []
    cursor, before = t0, "go online"
    for start, end, entry in spans:
        if start > cursor:
            gaps.append((cursor - t0, start - cursor, before, f"{entry['method']} {short(entry)}"))
        if end > cursor:
            cursor, before = end, f"{entry['method']} {short(entry)}"
    if t_end > cursor:
        gaps.append((cursor - t0, t_end - cursor, before, "end"))
    return gaps


def short(entry: dict) -> str:
    path = entry["path"]
    if path.startswith("/api/v1/media/uploads/"):
        rest = path[len("/api/v1/media/uploads/"):]
        path = "/api/v1/media/uploads/…" + (rest[36:] if len(rest) > 36 else "")
    return path


def summarise(result: dict) -> dict:
    t0, m, log = result["t0"], result["milestones"], result["log"]
    t_total = max(m["t_originals"], m["t_page"])
    total_s = t_total - t0
    review_s = m["t_review"] - t0
    sync_log = [e for e in log if kind_of(e) != "bench" and e["start"] <= t_total]
    total_bytes = sum(e["bytes"] for e in sync_log)
    review_log = [e for e in sync_log if e["start"] <= m["t_review"] and kind_of(e) in ("push", "previews")]
    review_bytes = sum(e["bytes"] for e in review_log)
    total_ideal = total_bytes / BYTES_PER_S
    review_ideal = review_bytes / BYTES_PER_S + REVIEW_ROUND_TRIPS * LATENCY_MS / 1000
    kinds: dict[str, dict] = {}
    for e in sync_log:
        k = kinds.setdefault(kind_of(e), {"requests": 0, "bytes": 0, "server_s": 0.0, "statuses": {}})
        k["requests"] += 1
        k["bytes"] += e["bytes"]
        k["server_s"] += (e["end"] or t_total) - e["start"]
        k["statuses"][e["status"]] = k["statuses"].get(e["status"], 0) + 1
    ends = sorted(e["end"] for e in sync_log if e["end"])

    def server_time(polled: float) -> float:
        """The end of the last request the server finished before the poll saw the milestone."""
        done = [t for t in ends if t <= polled]
        return done[-1] if done else polled

    gaps = idle_gaps(sync_log, t0, t_total)
    review_gaps = idle_gaps([e for e in sync_log if e["start"] <= m["t_review"]], t0, m["t_review"])
    return {"total_s": total_s, "review_s": review_s, "total_bytes": total_bytes, "review_bytes": review_bytes,
            "total_ideal_s": total_ideal, "review_ideal_s": review_ideal,
            "total_ratio": total_s / total_ideal, "review_ratio": review_s / review_ideal,
            "review_server_s": server_time(m["t_review"]) - t0, "originals_server_s": server_time(m["t_originals"]) - t0,
            "kinds": kinds, "gaps": gaps, "review_gaps": review_gaps, "requests": len(sync_log)}


def verdict(value: float) -> str:
    return "met" if value <= GOAL else "MISSED"


def report(args, result: dict, s: dict) -> None:
    m, t0, th = result["milestones"], result["t0"], result["throttle"]
    photos = result["photo_bytes"]
    print()
    print(f"media sync over an emulated {BANDWIDTH_BITS / 1e6:g} Mbit/s link with {LATENCY_MS} ms round trips "
          f"(headless Chromium, {PHONE['viewport']['width']}x{PHONE['viewport']['height']} phone viewport, "
          f"CPU {'slowed %gx' % args.cpu_slowdown if args.cpu_slowdown > 1 else 'not slowed'})")
    print(f"  captured offline: {result['expected']['records']} records ({result['expected']['revisions']} revisions), "
          f"{len(photos)} photos ({min(photos) / 1e6:.2f}-{max(photos) / 1e6:.2f} MB), "
          f"{'one clip of %.1f MB' % (result['video_bytes'] / 1e6) if result['video_bytes'] else 'no clip'}; "
          f"sync started by: {result['started_by']}")
    print(f"  review-ready {s['review_s']:7.1f} s   bodies {s['review_bytes'] / 1e6:6.2f} MB (push + previews) -> "
          f"ideal {s['review_ideal_s']:.1f} s (incl. {REVIEW_ROUND_TRIPS} x {LATENCY_MS} ms)   "
          f"ratio {s['review_ratio']:.3f}  goal <= {GOAL}: {verdict(s['review_ratio'])}")
    print(f"  total        {s['total_s']:7.1f} s   bodies {s['total_bytes'] / 1e6:6.2f} MB (all requests) -> "
          f"ideal {s['total_ideal_s']:.1f} s   ratio {s['total_ratio']:.3f}  goal <= {GOAL}: {verdict(s['total_ratio'])}")
    print(f"  (polled every {POLL_S * 1000:.0f} ms; the server finished the request that made the morning "
          f"review-ready at {s['review_server_s']:.2f} s and the last original at {s['originals_server_s']:.1f} s)")
    print(f"  (all originals in the server's DB at {m['t_originals'] - t0:.1f} s; last record 已同步 on the page at "
          f"{m['t_page'] - t0:.1f} s; sync attempts that failed and backed off: {m['offline_events']})")
    print(f"  requests: {s['requests']} in all; by kind (count, body bytes, time at the server, statuses):")
    for kind, k in sorted(s["kinds"].items(), key=lambda kv: -kv[1]["bytes"]):
        print(f"    {kind:<9} {k['requests']:4d}  {k['bytes'] / 1e6:8.3f} MB  {k['server_s']:7.1f} s  {k['statuses']}")
    chunk_bytes = s["kinds"].get("chunk", {}).get("bytes", 0)
    print(f"  original bytes sent {chunk_bytes / 1e6:.3f} MB for {result['media_bytes'] / 1e6:.3f} MB of originals "
          f"(re-sent: {(chunk_bytes - result['media_bytes']) / 1e6:.3f} MB)")
    idle = sum(g[1] for g in s["gaps"])
    print(f"  link idle (no request in flight at the server): {idle:.1f} s of {s['total_s']:.1f} s, in {len(s['gaps'])} "
          f"gaps ({s['requests']} requests x {LATENCY_MS} ms = {s['requests'] * LATENCY_MS / 1000:.1f} s of latency); "
          f"before review-ready: {sum(g[1] for g in s['review_gaps']):.1f} s")
    for at, length, before, after in sorted(s["gaps"], key=lambda g: -g[1])[:8]:
        print(f"    {length * 1000:7.0f} ms at {at:6.1f} s   after {before}  ->  {after}")
    if args.timeline:
        print("  request log (server side: start, duration, body bytes, status):")
        for e in result["log"]:
            if kind_of(e) != "bench":
                print(f"    {e['start'] - t0:7.2f} s {((e['end'] or e['start']) - e['start']) * 1000:7.0f} ms  "
                      f"{e['method']:<4} {short(e)}{'?' + e['query'] if e['query'] else ''}  {e['bytes']} B  {e['status']}")
    print(f"  throttling: empty request {th['rtt_ms']:.0f} ms; {CALIBRATION_BYTES / 1e6:g} MB alone {th['single_ms']:.0f} ms "
          f"({th['single_kbps']:.0f} kB/s after the round trip); 2 x {CALIBRATION_BYTES / 1e6:g} MB at once "
          f"{th['pair_ms']:.0f} ms -> throughput {'shared between' if th['shared'] else 'NOT shared between (per request)'} "
          f"concurrent requests")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="steps captured offline (default 40)")
    parser.add_argument("--photos", type=int, default=12, help="12-MP photos, one per step (default 12)")
    parser.add_argument("--video-mib", type=int, default=8, help="size of the one clip in MiB, 0 for none (default 8)")
    parser.add_argument("--cpu-slowdown", type=float, default=1,
                        help="slow the renderer's CPU during the sync (4 = a mid-range phone, as in "
                             "capture_latency.py; default 1: not slowed)")
    parser.add_argument("--timeline", action="store_true", help="also print every request of the sync")
    args = parser.parse_args()
    if args.cpu_slowdown < 1:
        parser.error("--cpu-slowdown must be >= 1")
    if args.video_mib < 0 or not 1 <= args.photos <= args.steps - (1 if args.video_mib else 0):
        parser.error("need 1 <= --photos <= --steps (one step fewer with a clip), --video-mib >= 0")

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="fieldapp-sync-bench-"))
    try:
        result = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    s = summarise(result)
    report(args, result, s)
    th = result["throttle"]
    print(json.dumps({
        "total_ratio": round(s["total_ratio"], 3), "review_ready_ratio": round(s["review_ratio"], 3),
        "total_s": round(s["total_s"], 1), "review_ready_s": round(s["review_s"], 1),
        "total_bytes": s["total_bytes"], "review_bytes": s["review_bytes"], "requests": s["requests"],
        "review_ready_s_at_server": round(s["review_server_s"], 2), "originals_s_at_server": round(s["originals_server_s"], 1),
        "link_idle_s": round(sum(g[1] for g in s["gaps"]), 1), "rtt_ms": th["rtt_ms"],
        "throughput_shared": th["shared"], "single_upload_kBps": th["single_kbps"], "cpu_slowdown": args.cpu_slowdown,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
