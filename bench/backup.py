"""Benchmark: off-site backup and restore (issue 19) — an incremental backup after new photos, and a
full restore of a fresh instance, verified.

What it seeds (through the app, so that the audit chain vouches for every row and ``verify`` holds)
    --units enforcement units (default 5), each with --officers-per-unit officers (default 2) and a
    lead, through fieldapp.accounts; one phone per officer (tests/support/soft_device.SoftDevice,
    an ECDSA P-256 key), registered through fieldapp.sync.devices. --media originals (default 20,000) of ~--media-kb
    KB each (default 100; random bytes, 80–120 % of that size: the store keys them by SHA-256), put
    in the media store with their ``media`` rows (ORM, in chunks of 1,000, each in a write
    transaction). Then --revisions signed revisions (default 100,000): cases opened on the phones,
    each with one activity and eight steps (10 revisions a case), the media shared out over the
    steps, pushed in batches of 100 through the push path in-process (``prepare`` +
    ``store_batch`` as the push view calls them, then the ``revisions_arrived`` event, so review,
    compliance and the register react as they do to a real push). Seeding is timed, and not part
    of any figure below.

What it measures
    full backup        ``run.backup`` to a folder destination (the database copy, every object).
    incremental_ratio  --new-photos more photos (default 1,000; distinct 800×600 JPEGs of ~100 KB)
                       through the real API with the Flask test client, as a phone sends them: new
                       cases of ten photos each (a case, its activity, a step naming each photo)
                       pushed 100 revisions a batch, then each original uploaded (begin, one
                       PUT, complete; the server makes its previews). "New bytes" is measured here,
                       not by the backup code: the sizes of the store objects (originals and
                       derivatives) that were not there before the photos. "Bytes copied" is the
                       growth of the destination's objects/ folder during the second backup.
                       incremental_ratio = copied ÷ new. Goal: ≤ 1.05.
    restore_s          A fresh instance (an empty, migrated database and an empty media folder, with
                       a copy of the source's audit key file, as an operator sets one up) is brought
                       up from the newest backup: wall time of ``run.restore`` + the media audit with
                       re-hashing (``media_audit.audit``) + ``verify`` (chain, checkpoints, every
                       covered row, every revision's device signature, every original re-hashed).
                       Making the empty instance (migrating its schema) is timed apart and not
                       included. Goal: < 600 s, with both reports ok.

How to run (from the repo root; SQLite in the work folder, or PostgreSQL as a throwaway cluster
on a Unix socket, see tests/support/postgres.py)
    nice .venv/bin/python bench/backup.py [--backend sqlite|postgresql] [--revisions 100000]
        [--media 20000] [--media-kb 100] [--new-photos 1000] [--work DIR] [--keep]
    quick: .venv/bin/python bench/backup.py --revisions 2000 --media 200 --new-photos 50
    The default sizes take ~20 minutes on 2 cores, nearly all of it seeding and uploading the new
    photos; they need ~7 GB of disk in the work folder (source store, destination, restored store).

The last line is one JSON object: incremental_ratio, restore_s, verify_ok, audit_ok and the figures
behind them (backend, counts, seconds of each phase, bytes).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from PIL import Image, ImageDraw  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from _harness import apply_env  # noqa: E402  (bench/ is on sys.path when a script there runs)
from fieldapp import db, events, migrate  # noqa: E402
from fieldapp.accounts import create_unit, create_user, parse_roles  # noqa: E402
from fieldapp.backup import run  # noqa: E402
from fieldapp.backup.destination import FolderDestination  # noqa: E402
from fieldapp.backup.media_audit import audit  # noqa: E402
from fieldapp.media.service import media_storage, stored_originals  # noqa: E402
from fieldapp.models import Device, Media, Revision, User, utcnow  # noqa: E402
from fieldapp.records import capture, service  # noqa: E402
from fieldapp.records.verification import verify  # noqa: E402
from fieldapp.rules import publication  # noqa: E402
from fieldapp.sync import devices as device_service  # noqa: E402
from fieldapp.sync.push import MAX_BATCH, Author, media_of, prepare, store_batch  # noqa: E402
from fieldapp.sync.signing import load_public_key  # noqa: E402
from tests.support.appfactory import make_app  # noqa: E402
from tests.support.flows import demo_sign_in  # noqa: E402
from tests.support.postgres import Cluster, PostgresUnavailable, start_cluster  # noqa: E402
from tests.support.soft_device import SoftDevice  # noqa: E402

GOAL_RATIO = 1.05
GOAL_RESTORE_S = 600.0
STEPS_PER_CASE = 8  # a case, its activity and 8 steps: 10 revisions
MEDIA_CHUNK = 1_000
PHOTO_SIZE = (800, 600)
PHOTOS_PER_CASE = 10  # the new photos: ten a visit, one step each
STEP_TYPES = ("on_site_check", "penalty_onsite_inspection", "evidence_collection", "service_document")
T0 = (datetime.now(UTC) - timedelta(days=30)).replace(microsecond=0)


def say(message: str) -> None:
    print(message, flush=True)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def folder_bytes(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path``, walked: what the destination holds, measured from outside."""
    files = size = 0
    for folder, _dirs, leaves in os.walk(path):
        for leaf in leaves:
            try:
                size += os.stat(os.path.join(folder, leaf)).st_size
                files += 1
            except FileNotFoundError:
                continue
    return files, size


def store_listing(app) -> dict[str, int]:
    with app.app_context():
        return {o.key: o.size for o in media_storage().objects()}


# ---- the bureau ---------------------------------------------------------------------------------

@dataclass
class Officer:
    id: uuid.UUID
    name: str
    cert_no: str
    device: SoftDevice


def seed_people(app, units: int, per_unit: int) -> list[Officer]:
    """Units, their officers and leads (fieldapp.accounts), and one registered phone per officer."""
    out = []
    with app.app_context():
        with db.transaction():
            version = publication.ensure_published().version
            roles, people = parse_roles("officer"), []
            for u in range(units):
                unit = create_unit(f"ZF{u + 1:02d}", f"临淄区市场监管执法{u + 1}队")
                for _ in range(per_unit):
                    name, cert = f"执法人员{len(people) + 1:03d}", f"3703030{len(people) + 1:05d}"
                    people.append((create_user(name, cert, unit, roles).id, name, cert))
                create_user(f"负责人{u + 1:02d}", f"3703039{u + 1:05d}", unit, parse_roles("lead"))
        for officer_id, name, cert in people:
            device = SoftDevice(author=str(officer_id), catalogue_version=version)
            with capture.acting_as(f"user:{officer_id}"), db.transaction() as s:
                device_service.register(s.get(User, officer_id), device.device_id, device.public_key_b64,
                                        label="执法记录手机", user_agent="Mozilla/5.0 (Linux; Android 14) FieldApp")
            out.append(Officer(officer_id, name, cert, device))
    return out


# ---- media: originals and their rows --------------------------------------------------------------

def seed_media(app, count: int, kb: int, seed: int, officer: uuid.UUID) -> tuple[list[tuple[str, int]], int]:
    """``count`` originals of random bytes (kb ±20 %) in the store, each with its ``media`` row.
    Returns [(sha-256 hex, size)] in order, and the bytes written."""
    import hashlib

    rng = random.Random(seed)
    out: list[tuple[str, int]] = []
    total = 0
    low, high = int(kb * 1024 * 0.8), int(kb * 1024 * 1.2)
    with app.app_context():
        store = media_storage()
        staging = store.staging_dir()
        for start in range(0, count, MEDIA_CHUNK):
            rows = []
            for _ in range(min(MEDIA_CHUNK, count - start)):
                data = rng.randbytes(rng.randint(low, high))
                digest = hashlib.sha256(data).hexdigest()
                staged = Path(staging) / f"bench-{digest}"
                staged.write_bytes(data)
                store.adopt_staged_original("sha-256", digest, staged)
                out.append((digest, len(data)))
                total += len(data)
                rows.append(Media(alg="sha-256", hash=digest, size=len(data), declared_type="image/jpeg",
                                  mime="image/jpeg", kind="image", original_at=utcnow(), previews=[], flags=[]))
            with capture.acting_as(f"user:{officer}"), db.write_transaction() as s:
                s.add_all(rows)
    return out, total


# ---- revisions through the push path --------------------------------------------------------------

def case_items(officer: Officer, number: int, steps: int, media: list[list[dict]]) -> list[dict]:
    """A case opened on the phone, its activity and ``steps`` steps (``media[i]``: step i's files)."""
    device = officer.device
    case_id, activity_id = str(uuid.uuid4()), str(uuid.uuid4())
    at = T0 + timedelta(minutes=number * 3)
    items = [
        device.revision(case_id, record_type="case", device_time=iso(at), payload={
            "kind": "penalty", "party_name": f"临淄区齐都镇商户{number + 1:05d}", "flags": []}),
        device.revision(activity_id, record_type="activity", parent_id=case_id, device_time=iso(at), payload={
            "case_id": case_id, "arrived_at": iso(at), "departed_at": iso(at + timedelta(hours=1)),
            "officers": [{"name": officer.name, "cert_no": officer.cert_no, "cert_shown": True}],
            "continuous_required": False, "place": {"source": "typed", "text": f"齐都镇{number % 300 + 1}号"}}),
    ]
    for i in range(steps):
        step_at = at + timedelta(minutes=5 + i)
        items.append(device.revision(parent_id=activity_id, device_time=iso(step_at), media=media[i], payload={
            "activity_id": activity_id, "case_id": case_id, "step_type": STEP_TYPES[i % len(STEP_TYPES)],
            "at": iso(step_at), "av_recorded": True, "notes": f"现场检查第 {i + 1} 项"}))
    return items


def push_in_process(app, officer: Officer, items: list[dict], skew_threshold: int) -> int:
    """One push batch as the push view stores it (fieldapp/sync/views.py push()); returns the
    number of revisions created. Must run inside an app context."""
    s = db.session()
    device = s.get(Device, uuid.UUID(officer.device.device_id))
    user = s.get(User, officer.id)
    author = Author(user.id, user.unit_id, frozenset())
    device_id, public_key = device.id, load_public_key(device.public_key)
    s.commit()
    prepared = [prepare(item, str(device_id), public_key) for item in items]
    with capture.acting_as(f"user:{officer.id}"), db.write_transaction():
        known_media = {digest for _alg, digest in stored_originals(media_of(prepared))}
        results = store_batch(prepared, author, device_id, 0, skew_threshold, known_media)
    bad = [r.to_json() for r in results if r.status != "created"]
    if bad:
        raise SystemExit(f"push refused items: {bad[:3]}")
    created = [uuid.UUID(r.record_id) for r in results]
    events.publish(events.revisions_arrived, record_ids=created)
    return len(created)


def seed_revisions(app, officers: list[Officer], revisions: int, media: list[tuple[str, int]]) -> int:
    cases = max(1, revisions // (2 + STEPS_PER_CASE))
    steps_total = max(0, revisions - 2 * cases)
    per_case = [steps_total // cases + (1 if c < steps_total % cases else 0) for c in range(cases)]
    step_index, stored = 0, 0
    started = time.perf_counter()
    pending: dict[int, list[dict]] = {n: [] for n in range(len(officers))}
    with app.app_context():
        threshold = app.config["FIELDAPP_SETTINGS"].clock_skew_seconds
        for c in range(cases):
            step_media = []
            for _ in range(per_case[c]):
                lo, hi = step_index * len(media) // max(steps_total, 1), (step_index + 1) * len(media) // max(steps_total, 1)
                step_media.append([{"alg": "sha-256", "hash": d, "size": n, "type": "image/jpeg"} for d, n in media[lo:hi]])
                step_index += 1
            who = c % len(officers)
            pending[who].extend(case_items(officers[who], c, per_case[c], step_media))
            while len(pending[who]) >= MAX_BATCH:
                stored += push_in_process(app, officers[who], pending[who][:MAX_BATCH], threshold)
                del pending[who][:MAX_BATCH]
                if stored % 10_000 < MAX_BATCH:
                    rate = stored / (time.perf_counter() - started)
                    say(f"    {stored:>9,} revisions pushed ({rate:,.0f}/s)")
        for who, items in pending.items():
            for start in range(0, len(items), MAX_BATCH):
                stored += push_in_process(app, officers[who], items[start:start + MAX_BATCH], threshold)
    return stored


# ---- new photos through the API --------------------------------------------------------------------

class PhotoMaker:
    """Distinct 800×600 JPEGs of ~100 KB: a shared texture cropped differently, shapes, a gradient."""

    def __init__(self, seed: int):
        width, height = PHOTO_SIZE
        self.rng = random.Random(seed)
        self.texture = Image.effect_noise((width // 2 + 64, height // 2 + 64), 60).resize(
            (width + 128, height + 128), Image.Resampling.BICUBIC)
        self.gradient = Image.linear_gradient("L").resize(PHOTO_SIZE)
        self.grain = [Image.effect_noise(PHOTO_SIZE, 12) for _ in range(4)]

    def make(self, n: int) -> bytes:
        rng, (width, height) = self.rng, PHOTO_SIZE
        dx, dy = rng.randrange(128), rng.randrange(128)
        texture = self.texture.crop((dx, dy, dx + width, dy + height))
        im = Image.merge("RGB", (texture, self.gradient, Image.new("L", PHOTO_SIZE, rng.randrange(256))))
        draw = ImageDraw.Draw(im)
        for _ in range(12):  # shop fronts, signs, shelves
            x, y = rng.randrange(width), rng.randrange(height)
            draw.rectangle((x, y, x + rng.randrange(40, 200), y + rng.randrange(20, 120)),
                           fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)),
                           outline=(255, 255, 255), width=2)
        draw.text((10, 10), f"IMG_{n:05d}", fill=(255, 255, 255))
        im = Image.blend(im, Image.merge("RGB", (self.grain[n % len(self.grain)],) * 3), 0.12)
        out = io.BytesIO()
        im.save(out, "JPEG", quality=72)
        return out.getvalue()


def add_photos(app, officer: Officer, count: int, seed: int) -> dict:
    """``count`` photos as a phone sends them: visits of PHOTOS_PER_CASE photos each (a case, its
    activity and a step naming each photo; pushed 100 revisions a batch), then each
    original through the resumable upload API (begin, PUT, complete). Outside any app context: the
    test client pushes its own, with its own session."""
    import hashlib

    maker = PhotoMaker(seed)
    t0 = time.perf_counter()
    photos = [maker.make(n) for n in range(count)]
    make_s = time.perf_counter() - t0
    client = app.test_client()
    demo_sign_in(client, officer.id)
    csrf = client.get("/api/v1/session").get_json()["csrf_token"]
    headers = {"X-CSRFToken": csrf}

    def push(items: list[dict]) -> None:
        response = client.post("/api/v1/sync/push", json=officer.device.batch(*items), headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"push answered {response.status_code}: {response.get_data(as_text=True)[:300]}")
        bad = [r for r in response.get_json()["results"] if r["status"] != "created"]
        if bad:
            raise SystemExit(f"push refused items: {bad[:3]}")

    t0 = time.perf_counter()
    device = officer.device
    digests = [hashlib.sha256(p).hexdigest() for p in photos]
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    items: list[dict] = []
    for first in range(0, count, PHOTOS_PER_CASE):  # visits of the day, a few photos each
        case_id, activity_id = str(uuid.uuid4()), str(uuid.uuid4())
        visit_at = at + timedelta(minutes=first)
        items += [device.revision(case_id, record_type="case", payload={
                      "kind": "inspection", "party_name": f"临淄区齐都镇鲜果超市{first // PHOTOS_PER_CASE + 1}号",
                      "flags": []}),
                  device.revision(activity_id, record_type="activity", parent_id=case_id, payload={
                      "case_id": case_id, "arrived_at": iso(visit_at), "departed_at": iso(visit_at + timedelta(hours=1)),
                      "officers": [{"name": officer.name, "cert_no": officer.cert_no, "cert_shown": True}],
                      "continuous_required": False, "place": {"source": "typed", "text": "齐都镇"}})]
        for n in range(first, min(first + PHOTOS_PER_CASE, count)):
            items.append(device.revision(
                parent_id=activity_id,
                media=[{"alg": "sha-256", "hash": digests[n], "size": len(photos[n]), "type": "image/jpeg"}],
                payload={"activity_id": activity_id, "case_id": case_id, "step_type": "evidence_collection",
                         "at": iso(visit_at + timedelta(seconds=n)), "av_recorded": True,
                         "notes": f"现场照片第 {n - first + 1} 张"}))
    for start in range(0, len(items), MAX_BATCH):
        push(items[start:start + MAX_BATCH])
    push_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    uploaded = 0
    for digest, data in zip(digests, photos, strict=True):
        begun = client.post("/api/v1/media/uploads", json={"alg": "sha-256", "hash": digest, "size": len(data),
                                                           "type": "image/jpeg"}, headers=headers)
        body = begun.get_json() or {}
        if begun.status_code not in (200, 201) or body.get("status") not in ("uploading", "stored"):
            raise SystemExit(f"upload begin answered {begun.status_code}: {body}")
        if body["status"] == "stored":
            continue
        put = client.put(f"/api/v1/media/uploads/{body['upload_id']}?offset=0", data=data,
                         headers={**headers, "Content-Type": "application/octet-stream"})
        if put.status_code != 200:
            raise SystemExit(f"upload PUT answered {put.status_code}: {put.get_data(as_text=True)[:300]}")
        done = client.post(f"/api/v1/media/uploads/{body['upload_id']}/complete", json={}, headers=headers)
        if done.status_code != 200:
            raise SystemExit(f"upload complete answered {done.status_code}: {done.get_data(as_text=True)[:300]}")
        uploaded += 1
        if uploaded % 250 == 0:
            say(f"    {uploaded:>9,} photos uploaded ({uploaded / (time.perf_counter() - t0):,.1f}/s)")
    upload_s = time.perf_counter() - t0
    return {"make_s": make_s, "push_s": push_s, "upload_s": upload_s, "photo_bytes": sum(map(len, photos)),
            "digests": digests}


# ---- databases ------------------------------------------------------------------------------------

@contextmanager
def databases(backend: str, work: Path) -> Iterator[tuple[str, str]]:
    """(source URL, restored URL): two files, or two databases in a throwaway cluster."""
    if backend == "sqlite":
        (work / "source-db").mkdir()
        (work / "restored-db").mkdir()
        yield f"sqlite:///{work / 'source-db' / 'fieldapp.sqlite3'}", f"sqlite:///{work / 'restored-db' / 'fieldapp.sqlite3'}"
        return
    cluster: Cluster = start_cluster()
    try:
        cluster.execute("CREATE DATABASE fieldapp_bench_source")
        cluster.execute("CREATE DATABASE fieldapp_bench_restored")
        yield cluster.url("fieldapp_bench_source"), cluster.url("fieldapp_bench_restored")
    finally:
        cluster.stop()


def counts(app) -> dict[str, int]:
    with app.app_context():
        s = db.session()
        out = {"revisions": s.execute(select(func.count()).select_from(Revision)).scalar_one(),
               "media_stored": s.execute(select(func.count()).select_from(Media)
                                         .where(Media.original_at.is_not(None))).scalar_one()}
        s.commit()
    return out


def take_backup(app, dest: FolderDestination, url: str, work: Path) -> tuple[run.BackupResult, float]:
    with app.app_context():
        t0 = time.perf_counter()
        result = run.backup(dest, database_url=url, store=media_storage(), work_dir=work)
        return result, time.perf_counter() - t0


# ---- the benchmark ----------------------------------------------------------------------------------

def benchmark(args: argparse.Namespace, work: Path) -> dict:
    out: dict = {"backend": args.backend}
    with databases(args.backend, work) as (source_url, restored_url):
        # -- the source instance, seeded
        t0 = time.perf_counter()
        migrate.upgrade(source_url)
        source_var = work / "source-var"
        source_var.mkdir()
        app = make_app(source_url, source_var, demo=True, rate_limit_enabled=False)
        say(f"backup benchmark, {args.backend}; work folder {work}")
        say(f"  schema            {time.perf_counter() - t0:.1f} s (alembic upgrade head)")
        try:
            t0 = time.perf_counter()
            officers = seed_people(app, args.units, args.officers_per_unit)
            people_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            media, media_bytes = seed_media(app, args.media, args.media_kb, args.seed, officers[0].id)
            media_s = time.perf_counter() - t0
            say(f"  seed media        {len(media):,} originals, {media_bytes / 1e6:,.0f} MB in {media_s:.1f} s")
            t0 = time.perf_counter()
            pushed = seed_revisions(app, officers, args.revisions, media)
            revisions_s = time.perf_counter() - t0
            seeded = counts(app)
            say(f"  seed revisions    {pushed:,} pushed in {revisions_s:.1f} s ({pushed / revisions_s:,.0f}/s); "
                f"database holds {seeded['revisions']:,} revisions, {seeded['media_stored']:,} stored media")
            out.update(units=args.units, officers=len(officers), seed_people_s=round(people_s, 1), seed_media_s=round(media_s, 1),
                       seed_revisions_s=round(revisions_s, 1), media_seeded=len(media), media_seeded_bytes=media_bytes)

            # -- the first, full backup
            dest_root = work / "offsite"
            dest = FolderDestination(dest_root)
            full, full_s = take_backup(app, dest, source_url, work)
            files, held = folder_bytes(dest_root / "objects")
            say(f"  full backup       {full_s:.1f} s: database {full.database_bytes / 1e6:,.1f} MB, "
                f"{full.objects_copied:,} of {full.objects_total:,} objects, {full.bytes_copied / 1e6:,.1f} MB copied; "
                f"chain at {full.chain_seq}")
            out.update(full_backup_s=round(full_s, 1), full_objects=full.objects_total,
                       full_bytes_copied=full.bytes_copied, full_database_bytes=full.database_bytes)

            # -- new photos through the API, then the incremental backup
            before = store_listing(app)
            photos = add_photos(app, officers[0], args.new_photos, args.seed + 1)
            after = store_listing(app)
            new_objects = {k: n for k, n in after.items() if k not in before}
            new_bytes = sum(new_objects.values())
            originals_new = sum(1 for k in new_objects if k.startswith("originals/"))
            say(f"  new photos        {args.new_photos:,} JPEGs ({photos['photo_bytes'] / 1e6:,.1f} MB) made in "
                f"{photos['make_s']:.1f} s; steps pushed in {photos['push_s']:.1f} s; uploaded in "
                f"{photos['upload_s']:.1f} s ({args.new_photos / max(photos['upload_s'], 1e-9):,.0f}/s); "
                f"{len(new_objects):,} new store objects ({originals_new:,} originals), {new_bytes:,} bytes")
            if originals_new != args.new_photos:
                raise SystemExit(f"expected {args.new_photos} new originals in the store, found {originals_new}")
            second, incremental_s = take_backup(app, dest, source_url, work)
            files_after, held_after = folder_bytes(dest_root / "objects")
            copied = held_after - held
            ratio = copied / new_bytes if new_bytes else None
            verdict = "met" if ratio is not None and ratio <= GOAL_RATIO else "MISSED"
            say(f"  incremental       {incremental_s:.1f} s: destination objects/ grew by {files_after - files:,} files, "
                f"{copied:,} bytes; new bytes {new_bytes:,}; ratio {ratio:.4f}   goal ≤ {GOAL_RATIO}: {verdict}")
            say(f"                    (the backup itself says: {second.objects_copied:,} of {second.objects_total:,} "
                f"objects, {second.bytes_copied:,} bytes copied, new_bytes {second.new_bytes:,}; "
                f"database {second.database_bytes / 1e6:,.1f} MB)")
            out.update(new_photos=args.new_photos, photos_upload_s=round(photos["upload_s"], 1),
                       photos_push_s=round(photos["push_s"], 1), new_objects=len(new_objects),
                       new_bytes=new_bytes, bytes_copied=copied, incremental_ratio=round(ratio, 4) if ratio else None,
                       incremental_backup_s=round(incremental_s, 1), incremental_objects_copied=second.objects_copied,
                       backup_reported_bytes_copied=second.bytes_copied, database_bytes=second.database_bytes,
                       objects_total=second.objects_total, chain_seq=second.chain_seq)
            source_counts = counts(app)
            key_file = app.config["FIELDAPP_SETTINGS"].audit_key_file
        finally:
            app.extensions["fieldapp.engine"].dispose()

        # -- a fresh instance: empty database, empty media folder, the audit key copied over
        t0 = time.perf_counter()
        restored_var = work / "restored-var"
        restored_var.mkdir()
        shutil.copy2(key_file, restored_var / key_file.name)
        migrate.upgrade(restored_url)
        target = make_app(restored_url, restored_var, rate_limit_enabled=False)
        prepare_s = time.perf_counter() - t0
        try:
            target_key = target.config["FIELDAPP_SETTINGS"].audit_key_file
            if target_key != restored_var / key_file.name:
                shutil.copy2(key_file, target_key)
            say(f"  fresh instance    {prepare_s:.1f} s (empty schema; not part of restore_s)")

            with target.app_context():
                store = media_storage()
                t0 = time.perf_counter()
                restored = run.restore(dest, database_url=restored_url, store=store, public_key=service.public_key(),
                                       restored_by="bench/backup.py", work_dir=work)
                restore_only_s = time.perf_counter() - t0
                say(f"  restore           {restore_only_s:.1f} s: backup {restored.backup_id} (signature "
                    f"{restored.signature}), {restored.objects_restored:,} objects, "
                    f"{restored.bytes_restored / 1e6:,.1f} MB restored")
                t0 = time.perf_counter()
                audited = audit(store, db.session(), rehash=True)
                db.session().commit()
                audit_s = time.perf_counter() - t0
                say(f"  media audit       {audit_s:.1f} s: ok {audited.ok}; {audited.originals_listed:,} originals, "
                    f"{audited.derivatives_listed:,} derivatives listed, {audited.originals_hashed:,} re-hashed "
                    f"({audited.bytes_read / 1e6:,.1f} MB); missing {audited.missing.total}, corrupt "
                    f"{audited.corrupt.total}, missing derivatives {audited.missing_derivatives.total}, orphans "
                    f"{audited.orphans.total}")
                t0 = time.perf_counter()
                report = verify(db.session(), trusted_public=service.public_key(), store=store, media_sample=None)
                db.session().commit()
                verify_s = time.perf_counter() - t0
                say(f"  verify            {verify_s:.1f} s: ok {report.ok}; {report.sealed:,} sealed events "
                    f"({report.pending:,} pending), {report.checkpoints} checkpoints, {report.rows:,} rows, "
                    f"{report.revisions:,} revision signatures, {report.media_checked:,} originals re-hashed")
                for fault in report.faults[:10]:
                    say(f"                    fault: {fault.part} {fault.what}: {fault.problem}")
            restore_s = restore_only_s + audit_s + verify_s
            restored_counts = counts(target)
            same = restored_counts == source_counts
            verdict = "met" if restore_s < GOAL_RESTORE_S and report.ok and audited.ok else "MISSED"
            say(f"  restore_s         {restore_s:.1f} s (restore {restore_only_s:.1f} + audit {audit_s:.1f} + "
                f"verify {verify_s:.1f})   goal < {GOAL_RESTORE_S:.0f} s, both ok: {verdict}")
            say(f"  restored counts   {restored_counts} vs source {source_counts}: "
                f"{'the same' if same else 'DIFFERENT'}")
            out.update(restore_s=round(restore_s, 1), restore_only_s=round(restore_only_s, 1), audit_s=round(audit_s, 1),
                       verify_s=round(verify_s, 1), verify_ok=report.ok, audit_ok=audited.ok,
                       verify_faults=len(report.faults), objects_restored=restored.objects_restored,
                       bytes_restored=restored.bytes_restored, manifest_signature=restored.signature,
                       fresh_instance_s=round(prepare_s, 1), revisions=restored_counts["revisions"],
                       media_stored=restored_counts["media_stored"], counts_match=same,
                       sealed_events=report.sealed, rows_checked=report.rows)
        finally:
            target.extensions["fieldapp.engine"].dispose()
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--revisions", type=int, default=100_000, help="signed revisions to seed (default 100,000)")
    parser.add_argument("--media", type=int, default=20_000, help="media originals to seed (default 20,000)")
    parser.add_argument("--media-kb", type=int, default=100, help="their mean size in KB (default 100)")
    parser.add_argument("--new-photos", type=int, default=1_000,
                        help="photos added through the API before the incremental backup (default 1,000)")
    parser.add_argument("--units", type=int, default=5, help="enforcement units (default 5)")
    parser.add_argument("--officers-per-unit", type=int, default=2,
                        help="officers of each unit, one phone each, pushing the cases in turn (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data (default 1)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the databases, media stores and destination (default: a temporary folder); "
                             "a new subfolder is made in it")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if (args.revisions < 10 or min(args.units, args.officers_per_unit, args.new_photos, args.media_kb) < 1
            or args.media < 0):
        parser.error("--revisions must be at least 10; --units, --officers-per-unit, --new-photos and --media-kb "
                     "at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    apply_env({})  # no inherited FIELDAPP_ setting may point the app elsewhere
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fieldapp-bench-backup-", dir=args.work))
    began = time.perf_counter()
    try:
        out = benchmark(args, work)
    except PostgresUnavailable as exc:
        say(f"{args.backend}: skipped, PostgreSQL is not available: {exc}")
        out = {"backend": args.backend, "incremental_ratio": None, "restore_s": None, "verify_ok": None,
               "audit_ok": None, "skipped": str(exc)[:200]}
    finally:
        if args.keep:
            say(f"  kept              {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    out["run_s"] = round(time.perf_counter() - began, 1)
    head = {key: out.pop(key, None) for key in ("incremental_ratio", "restore_s", "verify_ok", "audit_ok")}
    print(json.dumps({**head, **out}))
    met = (head["incremental_ratio"] is not None and head["incremental_ratio"] <= GOAL_RATIO
           and head["restore_s"] is not None and head["restore_s"] < GOAL_RESTORE_S
           and head["verify_ok"] is True and head["audit_ok"] is True)
    return 0 if met else 1

if __name__ == "__main__":
    sys.exit(main())
