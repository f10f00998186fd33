"""A collection station pushing footage over the API with its own token, on both databases.

An admin issues the token (shown once); the station uploads files in resumable chunks exactly as
phones do, then registers them with their manifest rows; every answer matches the documented
schema, and every documented answer is given. A user's session is not a station, a station's
token is not a user, and a revoked token is refused at once.
"""
from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from fieldapp import db
from fieldapp.models import FootageSegment, MediaUpload, Station, Unit
from tests.api.test_openapi import STATION, Conformance, api_app, documented_statuses
from tests.support.flows import demo_sign_in, post_form, seed_user
from tests.support.videos import make_video

API = "/api/v1"
T0 = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def issue(admin, unit_id, name: str) -> str:
    page = post_form(admin, "/footage/stations", {"unit_id": str(unit_id), "name": name, "part_of_storage": "on"})
    assert page.status_code == 201
    return re.search(r"fst_[A-Za-z0-9_-]+", page.get_data(as_text=True)).group(0)


def test_a_station_uploads_and_registers_footage_with_its_own_token(db_url, tmp_path):
    app = api_app(db_url, tmp_path / "var")
    seen = Conformance()
    check = seen.check
    try:
        officer = seed_user(app, "张伟", "37030300001", "ZF1")
        seed_user(app, "他人", "37030300099", "ZF2")
        admin_seed = seed_user(app, "管理员", "A-1", "ZF1", roles="admin")
        admin, officer_client = app.test_client(), app.test_client()
        demo_sign_in(admin, admin_seed.user_id)
        demo_sign_in(officer_client, officer.user_id)
        with app.app_context():
            units = {u.code: u.id for u in db.session().execute(select(Unit)).scalars()}
        assert post_form(admin, "/footage/cameras", {"serial": "DSJ001", "unit_id": str(units["ZF1"])}).status_code == 303
        assert post_form(admin, "/footage/cameras", {"serial": "DSJ900", "unit_id": str(units["ZF2"])}).status_code == 303
        token = issue(admin, units["ZF1"], "一号采集站")
        station = app.test_client()
        auth = {"Authorization": f"Bearer {token}"}
        clip = make_video(tmp_path / "a.mp4", 3, start=T0).read_bytes()
        uploads, upload, complete = f"{API}/station/uploads", f"{API}/station/uploads/{{upload_id}}", \
            f"{API}/station/uploads/{{upload_id}}/complete"
        segments = f"{API}/station/segments"
        declaration = {"alg": "sha-256", "hash": sha(clip), "size": len(clip), "type": "video/mp4"}

        def put(upload_id, offset, data, headers=auth):
            return station.put(f"{uploads}/{upload_id}?offset={offset}", data=data,
                               content_type="application/octet-stream", headers=headers)

        def done(upload_id, headers=auth):
            return station.post(f"{uploads}/{upload_id}/complete", headers=headers)

        # Begin; refusals of the declaration; no token, a wrong one, a user's session.
        upload_id = check(station.post(uploads, json=declaration, headers=auth), "POST", uploads, 201)["upload_id"]
        assert check(station.post(uploads, json={**declaration, "size": 0}, headers=auth), "POST", uploads,
                     422)["error"] == "empty"
        assert check(station.post(uploads, json={**declaration, "hash": "X"}, headers=auth), "POST", uploads,
                     400)["error"] == "bad_hash"
        check(station.post(uploads, json={**declaration, "size": 2**62}, headers=auth), "POST", uploads, 413)
        assert check(station.post(uploads, json=declaration), "POST", uploads, 401)["error"] == "station_unauthenticated"
        check(station.post(uploads, json=declaration, headers={"Authorization": "Bearer fst_nope"}), "POST", uploads, 401)
        assert officer_client.post(uploads, json=declaration).status_code == 401  # a session is not a station
        assert station.get(f"{API}/cases", headers=auth).status_code == 401  # a station is not a user

        # Chunks, offsets, completion: the phone's protocol.
        assert check(put(upload_id, 0, clip[:1000]), "PUT", upload, 200)["offset"] == 1000
        assert check(put(upload_id, 5, clip[5:10]), "PUT", upload, 409)["offset"] == 1000
        assert check(put(upload_id, "x", b"1"), "PUT", upload, 400)["error"] == "bad_offset"
        assert check(put(upload_id, 1000, b""), "PUT", upload, 411)["error"] == "length_required"
        assert check(put(upload_id, 1000, clip[1000:] + b"!"), "PUT", upload, 413)["error"] == "past_declared_size"
        assert check(put(uuid.uuid4(), 0, b"1"), "PUT", upload, 404)["error"] == "unknown_upload"
        check(put(upload_id, 1000, b"1", headers={}), "PUT", upload, 401)
        assert check(station.get(f"{uploads}/{upload_id}", headers=auth), "GET", upload, 200)["offset"] == 1000
        check(station.get(f"{uploads}/{uuid.uuid4()}", headers=auth), "GET", upload, 404)
        check(station.get(f"{uploads}/{upload_id}"), "GET", upload, 401)
        assert check(done(upload_id), "POST", complete, 409)["error"] == "upload_incomplete"
        check(put(upload_id, 1000, clip[1000:]), "PUT", upload, 200)
        check(done(upload_id, headers={}), "POST", complete, 401)
        check(done(uuid.uuid4()), "POST", complete, 404)
        assert check(done(upload_id), "POST", complete, 200)["media"]["kind"] == "video"
        assert check(station.post(uploads, json=declaration, headers=auth), "POST", uploads, 200)["status"] == "stored"
        page = b"<html><body><script>alert(1)</script></body></html>"
        html_id = check(station.post(uploads, json={**declaration, "hash": sha(page), "size": len(page)}, headers=auth),
                        "POST", uploads, 201)["upload_id"]
        assert check(put(html_id, 0, page), "PUT", upload, 415)["error"] == "html"
        other = make_video(tmp_path / "b.mp4", 2, start=T0).read_bytes()
        bad_id = check(station.post(uploads, json={**declaration, "hash": sha(other), "size": len(other)},
                                    headers=auth), "POST", uploads, 201)["upload_id"]
        damaged = bytearray(other)
        damaged[-10] ^= 1
        put(bad_id, 0, bytes(damaged))
        assert check(done(bad_id), "POST", complete, 422)["error"] == "hash_mismatch"
        # A head recorded by a host that died before recording it: start again (the phones' case).
        again = make_video(tmp_path / "c.mp4", 2, start=T0 + timedelta(seconds=30)).read_bytes()
        again_id = check(station.post(uploads, json={**declaration, "hash": sha(again), "size": len(again)},
                                      headers=auth), "POST", uploads, 201)["upload_id"]
        put(again_id, 0, again)
        with app.app_context(), db.transaction():
            db.session().get(MediaUpload, uuid.UUID(again_id)).head = None
        assert check(done(again_id), "POST", complete, 409)["error"] == "restart_upload"
        # The head recorded is markup (a host's record disagrees with the bytes): refused at completion.
        marked = make_video(tmp_path / "e.mp4", 1, start=T0).read_bytes()
        marked_id = check(station.post(uploads, json={**declaration, "hash": sha(marked), "size": len(marked)},
                                       headers=auth), "POST", uploads, 201)["upload_id"]
        put(marked_id, 0, marked)
        with app.app_context(), db.transaction():
            db.session().get(MediaUpload, uuid.UUID(marked_id)).head = (page * (len(marked) // len(page) + 1))[:len(marked)]
        assert check(done(marked_id), "POST", complete, 415)["error"] == "html"
        restarted = check(station.post(uploads, json={**declaration, "hash": sha(again), "size": len(again)},
                                       headers=auth), "POST", uploads, 201)
        assert restarted["upload_id"] == again_id and restarted["offset"] == 0

        # Registering: the row of the uploaded file; one never uploaded; a camera of another unit.
        theirs = make_video(tmp_path / "d.mp4", 2, start=T0 + timedelta(minutes=5)).read_bytes()
        theirs_id = check(station.post(uploads, json={**declaration, "hash": sha(theirs), "size": len(theirs)},
                                       headers=auth), "POST", uploads, 201)["upload_id"]
        put(theirs_id, 0, theirs)
        check(done(theirs_id), "POST", complete, 200)
        row = {"file_name": "a.mp4", "camera_serial": "DSJ001", "officer_no": "37030300001", "unit_code": "ZF1",
               "started_at": iso(T0), "ended_at": iso(T0 + timedelta(seconds=3)),
               "collected_at": iso(T0 + timedelta(hours=1)), "md5": hashlib.md5(clip).hexdigest(),
               "sm3": hashlib.new("sm3", clip).hexdigest(), "important": True, "sha256": sha(clip)}
        report = check(station.post(segments, json={"files": [row, {**row, "file_name": "never.mp4",
                                                                     "sha256": "ab" * 32, "md5": "", "sm3": ""},
                                                               {**row, "file_name": "theirs.mp4", "camera_serial": "DSJ900", "sha256": sha(theirs),
                                                                "md5": "", "sm3": ""}]},
                                    headers=auth), "POST", segments, 200)
        outcomes = {ln["file_name"]: (ln["outcome"], ln["code"]) for ln in report["lines"]}
        assert outcomes == {"a.mp4": ("stored", "stored"), "never.mp4": ("skipped", "original_not_uploaded"),
                            "theirs.mp4": ("skipped", "camera_of_other_unit")}
        again_report = check(station.post(segments, json={"files": [row]}, headers=auth), "POST", segments, 200)
        assert again_report["stored"] == 0 and again_report["unchanged"] == 1
        wrong_md5 = check(station.post(segments, json={"files": [{**row, "md5": "0" * 32}]}, headers=auth),
                          "POST", segments, 200)
        assert wrong_md5["lines"][0]["code"] in ("hash_mismatch", "already_ingested")
        assert check(station.post(segments, json={"files": []}, headers=auth), "POST", segments,
                     400)["error"] == "bad_request"
        check(station.post(segments, json={"files": [row]}), "POST", segments, 401)
        with app.app_context():
            [segment] = db.session().execute(select(FootageSegment)).scalars().all()
            station_row = db.session().execute(select(Station)).scalar_one()
        assert segment.source == "station" and segment.station_id == station_row.id and segment.important
        assert segment.unit_id == units["ZF1"] and station_row.last_used_at is not None

        # Revoked: refused from the next request on.
        assert post_form(admin, f"/footage/stations/{station_row.id}/revoke").status_code == 303
        assert station.get(f"{uploads}/{upload_id}", headers=auth).status_code == 401

        assert set(documented_statuses(STATION)) - seen.seen == set()
    finally:
        app.extensions["fieldapp.engine"].dispose()
