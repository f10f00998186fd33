"""The evidence package end to end (art. 27): built under a copy grant by the records
administrator, offered only when whole, verified offline by verify.py — untouched it passes, and
each way it can be tampered with is named. Both databases."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from fieldapp.models import AuditEvent, EvidencePackage, EvidenceUse, RetentionState
from tests.support.flows import post_form
from tests.support.records_world import build, one, rows, select


@pytest.fixture
def world(db_url, tmp_path):
    w = build(db_url, tmp_path / "var")
    yield w
    w.app.extensions["fieldapp.engine"].dispose()


def copy_grant(world) -> str:
    made = post_form(world.client("孙管理"), "/records/access", {
        "subject_kind": "case", "subject_id": world.case_id, "mode": "copy", "purpose": "reconsideration_litigation",
        "requester_id": str(world.users["法规科"]), "days": "7"})
    grant_id = made.headers["Location"].rsplit("/", 1)[1]
    post_form(world.client("分管局长"), f"/records/access/{grant_id}/decide", {"decision": "approve"})
    return grant_id


def build_package(world, grant_id, **extra):
    form = {"item": f"sha-256:{world.digest}", f"proves-{world.digest}": "证明当事人经营场所存放过期食品",
            f"transcript-{world.digest}": "执法人员：请出示营业执照。当事人：在柜台里。", "method": "按哈希原样复制",
            "place": "临淄区市场监督管理局", "process": "在局机关由管理员提取", **extra}
    return post_form(world.client("孙管理"), f"/records/access/{grant_id}/package", form)


def unpack(world, package: EvidencePackage, target: Path) -> Path:
    got = world.client("孙管理").get(f"/records/packages/{package.id}/files/{package.zip_name}")
    assert got.status_code == 200
    with zipfile.ZipFile(io.BytesIO(got.data)) as zf:
        zf.extractall(target)
    (root,) = [p for p in target.iterdir() if p.is_dir()]
    return root


def verify(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "verify.py", "."], cwd=folder, capture_output=True, text=True, timeout=120)


def test_a_package_is_built_under_a_copy_grant_and_passes_its_own_verifier(world, tmp_path):
    grant_id = copy_grant(world)
    made = build_package(world, grant_id)
    assert made.status_code == 303
    package = one(world.app, select(EvidencePackage))
    assert package.state == "ready", package.error
    page = world.client("孙管理").get(made.headers["Location"]).get_data(as_text=True)
    assert package.zip_name in page and package.discs and package.discs[0]["name"].endswith(".iso")
    root = unpack(world, package, tmp_path / "unzipped")
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    (item,) = manifest["items"]
    original = root / item["original"]
    assert original.read_bytes() == world.photo  # byte for byte
    assert item["proves"] == "证明当事人经营场所存放过期食品" and item["record"]["revision"] >= 1
    assert item["sm3_source"] == "ingest"  # SM3 taken as the original was stored, and checked on extraction
    import hashlib
    (listed,) = [f for f in manifest["files"] if f["path"] == item["original"]]
    assert listed["sm3"] == hashlib.new("sm3", world.photo).hexdigest()
    assert {f["role"] for f in manifest["files"]} >= {"original", "revision", "device_key", "chain_events",
                                                       "chain_checkpoints", "server_key", "explanation",
                                                       "extraction_record"}
    assert manifest["grant"]["number"].startswith("FZ-")
    events = {e["seq"]: e for e in map(json.loads, (root / "chain" / "events.jsonl").read_text("utf-8").splitlines())}
    about = {events[seq]["tbl"] for seq in item["chain"]}
    assert {"media", "media_refs", "revisions", "records"} <= about  # the capture and its signed revision
    assert max(item["chain"]) <= manifest["chain"]["to_seq"]
    result = verify(root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "通过" in result.stdout
    # used as evidence (art. 26 (一)): kept for ever from now on
    assert rows(world.app, select(EvidenceUse.ref)) == [str(package.id)]
    assert one(world.app, select(RetentionState.klass).where(RetentionState.hash == world.digest)) == "permanent"


TAMPERS = {
    "an original's byte": lambda root, m: _flip(root / m["items"][0]["original"]),
    "a manifest hash": lambda root, m: _rewrite_manifest(root, m, lambda mm: mm["files"][0].update(sha256="0" * 64)),
    "a revision's payload": lambda root, m: _edit_json(root / m["items"][0]["record"]["path"],
                                                      lambda r: r["envelope"]["payload"].update(notes="改过")),
    "a chain event": lambda root, m: _edit_first_event(root / "chain" / "events.jsonl"),
    "a file removed": lambda root, m: (root / m["items"][0]["original"]).unlink(),
    "a file added": lambda root, m: (root / "originals" / "999-extra.jpg").write_bytes(b"\xff\xd8 extra"),
}


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _rewrite_manifest(root, manifest, change) -> None:
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _edit_first_event(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    event = json.loads(lines[0])
    event["actor"] = event["actor"] + "x"
    lines[0] = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_each_tamper_is_named_by_verify_py(world, tmp_path):
    build_package(world, copy_grant(world))
    package = one(world.app, select(EvidencePackage))
    for name, tamper in TAMPERS.items():
        root = unpack(world, package, tmp_path / re.sub(r"\W+", "-", name))
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        tamper(root, manifest)
        result = verify(root)
        assert result.returncode == 1, (name, result.stdout[-2000:])
        assert "不通过" in result.stdout, name


def test_no_package_without_an_active_copy_grant_and_none_offered_half_made(world, monkeypatch):
    view_made = post_form(world.client("孙管理"), "/records/access", {
        "subject_kind": "case", "subject_id": world.case_id, "mode": "view", "purpose": "case_review",
        "requester_id": str(world.users["法规科"]), "days": "7"})
    view_id = view_made.headers["Location"].rsplit("/", 1)[1]
    post_form(world.client("分管局长"), f"/records/access/{view_id}/decide", {"decision": "approve"})
    refused = build_package(world, view_id)
    assert refused.status_code == 303 and rows(world.app, select(EvidencePackage)) == []
    logged = rows(world.app, select(AuditEvent.row_key).where(AuditEvent.action == "export_refused"))
    assert logged == [f"grant:{view_id}"]
    stranger = str(uuid.uuid4())
    assert build_package(world, stranger).status_code == 404
    assert rows(world.app, select(AuditEvent.row_key).where(AuditEvent.action == "export_refused"))[-1] == f"grant:{stranger}"
    grant_id = copy_grant(world)
    from fieldapp.documents import disc

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(disc, "write_discs", broken)
    build_package(world, grant_id)
    package = one(world.app, select(EvidencePackage))
    assert package.state == "failed" and "disk full" in package.error
    assert world.client("孙管理").get(f"/records/packages/{package.id}/files/{package.zip_name}").status_code == 404
    leftovers = [p.name for p in (Path(world.app.config["FIELDAPP_SETTINGS"].var_dir) / "packages").rglob("*")
                 if p.is_file()]
    assert leftovers == []


def test_three_hundred_photos_without_exif_and_a_withdrawn_record_make_one_package_that_verifies(sqlite_url, tmp_path):
    """The bad input the field brings: 300 photos with no EXIF, in one case, one of their records
    withdrawn — the package holds all of them, says which record is withdrawn, and verifies."""
    from PIL import Image

    world = build(sqlite_url, tmp_path / "var")
    try:
        from tests.support.flows import push_results, sync_push
        digests = [world.digest]
        for n in range(298):
            out = io.BytesIO()
            Image.new("RGB", (16, 16), (n % 256, (n * 7) % 256, (n * 13) % 256)).save(out, "JPEG")  # no EXIF
            digests.append(world.push_photo(out.getvalue()))
        # One more, on a step the officer then withdraws (with a reason, art. 30): still in the package.
        out = io.BytesIO()
        Image.new("RGB", (16, 16), (1, 2, 3)).save(out, "JPEG")
        last = out.getvalue()
        step_id = str(uuid.uuid4())
        payload = {"activity_id": world.activity_id, "case_id": world.case_id,
                   "step_type": "penalty_onsite_inspection", "at": "2026-11-27T01:00:00Z", "av_recorded": True}
        import hashlib
        digest = hashlib.sha256(last).hexdigest()
        first = world.device.revision(step_id, parent_id=world.activity_id, payload=payload,
                                      media=[{"alg": "sha-256", "hash": digest, "size": len(last), "type": "image/jpeg"}])
        gone = world.device.revision(step_id, revision=2, parent_id=world.activity_id, reason="录入错误",
                                     payload={**payload, "withdrawn": True})
        push_results(sync_push(world.client("张伟"), world.device.batch(first, gone)))
        assert world.upload(last) == digest
        digests.append(digest)
        grant_id = copy_grant(world)
        form = {"item": [f"sha-256:{d}" for d in digests]}
        made = post_form(world.client("孙管理"), f"/records/access/{grant_id}/package", form)
        assert made.status_code == 303
        package = one(world.app, select(EvidencePackage))
        assert package.state == "ready", package.error
        root = unpack(world, package, tmp_path / "unzipped")
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        assert len(manifest["items"]) == 300
        assert sum(1 for i in manifest["items"] if i["captured_at"]["device"]) == 300  # the phone's time, no EXIF
        (gone_item,) = [i for i in manifest["items"] if i["record"]["id"] == step_id]
        assert gone_item["record"]["withdrawn"] is True  # shown as withdrawn, never dropped
        result = verify(root)
        assert result.returncode == 0, result.stdout[-3000:]
    finally:
        world.app.extensions["fieldapp.engine"].dispose()


def test_a_large_package_is_built_beside_the_request_and_a_dead_builder_is_caught_up(world, monkeypatch):
    from fieldapp.documents import package as packages
    grant_id = copy_grant(world)
    monkeypatch.setattr(packages, "INLINE_BYTES", 0)  # every package counts as large
    threads = []
    real = packages.build_in_background
    monkeypatch.setattr(packages, "build_in_background", lambda app, pid: threads.append(real(app, pid)))
    made = build_package(world, grant_id)
    assert made.status_code == 303
    threads[0].join(60)
    package = one(world.app, select(EvidencePackage))
    assert package.state == "ready", package.error
    page = world.client("孙管理").get(made.headers["Location"]).get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page and package.zip_name in page
    # a builder that died: queued ones are built by the command, stale ones failed
    monkeypatch.setattr(packages, "build_in_background", lambda app, pid: None)
    build_package(world, grant_id)
    queued = one(world.app, select(EvidencePackage).where(EvidencePackage.state == "queued"))
    assert 'http-equiv="refresh"' in world.client("孙管理").get(f"/records/packages/{queued.id}").get_data(as_text=True)
    from tests.support.flows import run_cli
    result = run_cli(world.app, "evidence-packages", "--json")
    assert json.loads(result.output.strip().splitlines()[-1]) == {"built": 1, "failed": 0, "interrupted": 0}
    assert one(world.app, select(EvidencePackage.state).where(EvidencePackage.id == queued.id)) == "ready"
