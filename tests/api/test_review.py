"""The lead's side on both databases: findings with their articles after a push, the review queue,
return with a comment that reaches the officer's phone by pull, the answer as a new revision that
re-opens review, approval, archive blocked by findings and then allowed, the frozen archived case,
pending syncs from heartbeats, assignments by pull, case import, interruption reports, and the
register of originals opened. Other units see none of it."""
from __future__ import annotations

import hashlib
import io
import re
import uuid
from urllib.parse import quote
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.models import Case, Finding, Media, OriginalAccess, RecordReview, ReviewEvent
from tests.support.appfactory import make_app
from tests.support.flows import csrf_token, demo_sign_in, post_form, post_json, push_results, seed_user, sync_push
from tests.support.soft_device import SoftDevice
from tests.support.pulling import pull_all

T0 = datetime.now(UTC) - timedelta(hours=3)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture
def unit(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", demo=True)
    officer = seed_user(app, "张伟", "37030300001", "ZF1")
    officer2 = seed_user(app, "赵敏", "37030300002", "ZF1")
    lead = seed_user(app, "李队长", "37030300009", "ZF1", roles="lead")
    stranger = seed_user(app, "外单位负责人", "37030300099", "ZF2", roles="lead")
    phone = app.test_client()
    demo_sign_in(phone, officer.user_id)
    catalogue = phone.get("/api/v1/catalogue").get_json()
    device = SoftDevice(author=str(officer.user_id), catalogue_version=catalogue["version"])
    assert post_json(phone, "/api/v1/devices", {"device_id": device.device_id, "public_key": device.public_key_b64,
                                                "label": "测试手机"}).status_code == 201
    lead_client = app.test_client()
    demo_sign_in(lead_client, lead.user_id)
    other = app.test_client()
    demo_sign_in(other, stranger.user_id)
    yield app, phone, device, lead_client, other, officer, officer2
    app.extensions["fieldapp.engine"].dispose()


def visit(device: SoftDevice, *, av_reason=None, explanation=None):
    """A case, an activity with two officers, a step that needed AV recorded without it, and an
    interruption resumed without explanation (continuous recording required)."""
    case_id, activity_id, step_id, stop_id = (str(uuid.uuid4()) for _ in range(4))
    case = device.revision(case_id, record_type="case", payload={
        "kind": "penalty", "party_name": "临淄区齐都镇鲜果超市", "flags": []})
    activity = device.revision(activity_id, record_type="activity", parent_id=case_id, payload={
        "case_id": case_id, "arrived_at": iso(T0), "departed_at": iso(T0 + timedelta(hours=1)),
        "officers": [{"name": "张伟", "cert_no": "37030300001", "cert_shown": True},
                     {"name": "赵敏", "cert_no": "37030300002", "cert_shown": True}],
        "continuous_required": True, "place": {"source": "typed", "text": "齐都镇"},
        "cameras": [{"camera_id": "DSJ-01", "started_at": iso(T0)}]})
    step = device.revision(step_id, parent_id=activity_id, payload={
        "activity_id": activity_id, "case_id": case_id, "step_type": "penalty_onsite_inspection",
        "at": iso(T0 + timedelta(minutes=5)), "av_recorded": False, "av_reason": av_reason,
        "documents": ["现场笔录"]})
    stop = device.revision(stop_id, record_type="interruption", parent_id=activity_id, payload={
        "activity_id": activity_id, "camera_id": "DSJ-01", "stopped_at": iso(T0 + timedelta(minutes=10)),
        "resumed_at": iso(T0 + timedelta(minutes=20)), "explanation": explanation, "cannot_continue": False})
    return case_id, activity_id, (case, activity, step, stop)


def open_findings(app, case_id) -> set[str]:
    with app.app_context():
        return {f.rule_id for f in db.session().execute(select(Finding).where(
            Finding.case_id == uuid.UUID(case_id), Finding.resolved_at.is_(None))).scalars()}


def test_findings_queue_return_answer_approve_archive(unit):
    app, phone, device, lead, other, officer, _ = unit
    case_id, activity_id, items = visit(device)
    assert all(r["status"] == "created" for r in push_results(sync_push(phone, device.batch(*items))))

    assert {"av_missing", "continuous_gap", "interruption_unexplained"} <= open_findings(app, case_id)
    page = lead.get(f"/review/cases/{case_id}").get_data(as_text=True)
    # Every finding names its article, in Chinese on a Chinese page.
    shown = re.sub(r"<script.*?</script>", "", page, flags=re.S)  # not the phone's string table
    assert "第十二条、第十九条、第二十二条、第二十四条" in page and "第九条" in page and "art." not in shown
    assert lead.get("/review/findings").get_data(as_text=True).count('data-testid="finding"') >= 3
    assert "临淄区齐都镇鲜果超市" in lead.get("/review/queue").get_data(as_text=True)
    assert other.get(f"/review/cases/{case_id}").status_code == 404  # another unit's lead
    assert "临淄区齐都镇鲜果超市" not in other.get("/review/queue").get_data(as_text=True)

    # Archive is refused while findings block it.
    post_form(lead, f"/review/cases/{case_id}/archive")
    with app.app_context():
        assert db.session().get(Case, uuid.UUID(case_id)).archived_at is None

    # Return with a comment: the officer's phone gets it by pull.
    assert post_form(lead, f"/review/activities/{activity_id}/decision",
                     {"action": "returned", "comment": ""}).status_code == 302  # refused: a return needs a comment
    post_form(lead, f"/review/activities/{activity_id}/decision", {"action": "returned", "comment": "请补充未录像原因"})
    pulled = pull_all(phone)
    returned = [c for c in pulled["comments"] if c["record_id"] == activity_id]
    assert returned[-1]["action"] == "returned" and returned[-1]["comment"] == "请补充未录像原因"

    # The officer answers with new revisions: the step gets its reason, the interruption its explanation.
    fixed_stop = device.revision(items[3]["record_id"], 2, {**items[3]["payload"], "explanation": "更换电池"},
                                 record_type="interruption", parent_id=activity_id, reason="答复审核意见")
    fixed_step = device.revision(items[2]["record_id"], 2, {**items[2]["payload"], "av_reason": "执法记录仪故障"},
                                 parent_id=activity_id, reason="答复审核意见")
    assert [r["status"] for r in push_results(sync_push(phone, device.batch(fixed_step, fixed_stop)))] == ["created"] * 2
    assert not {"continuous_gap", "interruption_unexplained"} & open_findings(app, case_id)
    # A reason does not excuse a step that had to be recorded: it stays until a lead accepts it as an exception.
    assert "av_missing" in open_findings(app, case_id)
    with app.app_context():
        assert db.session().get(RecordReview, uuid.UUID(activity_id)).state == "awaiting"  # re-opened by the answer

    # Approval is deliberate: without the confirmation it is refused.
    post_form(lead, f"/review/activities/{activity_id}/decision", {"action": "approved"})
    with app.app_context():
        assert db.session().get(RecordReview, uuid.UUID(activity_id)).state == "awaiting"
    post_form(lead, f"/review/activities/{activity_id}/decision", {"action": "approved", "confirm": "yes"})
    with app.app_context():
        av = db.session().execute(select(Finding).where(Finding.case_id == uuid.UUID(case_id),
                                                        Finding.rule_id == "av_missing")).scalar_one()
    post_form(lead, f"/review/cases/{case_id}/findings/{av.id}/exception", {"reason": "记录仪故障属实，已报修"})
    ended = (T0 + timedelta(hours=2)).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")
    # Archiving means done: with nothing recorded to end the act, the lead must say when and why.
    blocking = {h.rule_id for h in _blockers(app, case_id)}
    assert blocking == {"act_end_unknown"}, blocking
    post_form(lead, f"/review/cases/{case_id}/act-ended", {"ended_at": ended})  # refused: no reason
    assert {h.rule_id for h in _blockers(app, case_id)} == {"act_end_unknown"}
    post_form(lead, f"/review/cases/{case_id}/act-ended", {"ended_at": ended, "reason": "当场检查结束，无需后续处理"})
    post_form(lead, f"/review/cases/{case_id}/archive")
    with app.app_context():
        case_row = db.session().get(Case, uuid.UUID(case_id))
        assert case_row.archived_at is not None and case_row.status == "archived"
        history = [e.action for e in db.session().execute(select(ReviewEvent).where(
            ReviewEvent.record_id == uuid.UUID(activity_id)).order_by(ReviewEvent.id)).scalars()]
    assert history == ["returned", "reopened", "approved"]

    # Frozen: a later change needs a reason.
    late = device.revision(items[2]["record_id"], 3, {**fixed_step["payload"], "notes": "补记"}, parent_id=activity_id)
    assert push_results(sync_push(phone, device.batch(late)))[0]["error"] == "archived_case_needs_reason"
    late = device.revision(items[2]["record_id"], 3, {**fixed_step["payload"], "notes": "补记"}, parent_id=activity_id,
                           reason="归档后补记现场笔录编号")
    assert push_results(sync_push(phone, device.batch(late)))[0]["status"] == "created"


def _blockers(app, case_id):
    from fieldapp.review.cases import archive_blockers
    with app.app_context():
        return archive_blockers(uuid.UUID(case_id))


def test_a_change_after_approval_reopens_review(unit):
    app, phone, device, lead, *_ = unit
    case_id, activity_id, items = visit(device, av_reason="当事人拒绝", explanation="更换电池")
    push_results(sync_push(phone, device.batch(*items)))
    post_form(lead, f"/review/activities/{activity_id}/decision", {"action": "approved", "confirm": "yes"})
    changed = device.revision(items[2]["record_id"], 2, {**items[2]["payload"], "notes": "补充"}, parent_id=activity_id)
    push_results(sync_push(phone, device.batch(changed)))
    with app.app_context():
        assert db.session().get(RecordReview, uuid.UUID(activity_id)).state == "awaiting"
    assert "临淄区齐都镇鲜果超市" in lead.get("/review/queue").get_data(as_text=True)


def test_pending_syncs_sorted_past_deadline_first_and_isolated(unit):
    app, phone, device, lead, other, officer, officer2 = unit
    now = datetime.now(UTC)
    heartbeat = {"unsynced_items": 3, "bytes_pending": 5_000_000, "oldest_unsynced_at": iso(now - timedelta(hours=2))}
    assert post_json(phone, f"/api/v1/devices/{device.device_id}/heartbeat", heartbeat).status_code == 200
    phone2 = app.test_client()
    demo_sign_in(phone2, officer2.user_id)
    device2 = SoftDevice(author=str(officer2.user_id), catalogue_version=device.catalogue_version)
    post_json(phone2, "/api/v1/devices", {"device_id": device2.device_id, "public_key": device2.public_key_b64})
    post_json(phone2, f"/api/v1/devices/{device2.device_id}/heartbeat",
              {"unsynced_items": 1, "bytes_pending": 10, "oldest_unsynced_at": iso(now - timedelta(hours=30))})
    page = lead.get("/review/").get_data(as_text=True)
    assert page.index("赵敏") < page.index("张伟")  # 30 hours old: past art. 25's 24 hours, first
    assert 'data-testid="past-deadline"' in page
    assert "张伟" not in other.get("/review/").get_data(as_text=True)


def test_assignments_reach_the_phone_and_a_case_list_imports_all_or_nothing(unit):
    app, phone, device, lead, *_ = unit
    cursor = pull_all(phone)["cursor"]
    good = "kind,party_name,party_credit_code,officers\ninspection,淄博某超市,,37030300001\ninspection,淄博某药店,,\n"
    bad = "kind,party_name,officers\ninspection,甲,\nnonsense,乙,\ninspection,丙,99999\n"
    token = csrf_token(lead)
    assert lead.post("/review/cases/import", data={"csrf_token": token}).status_code == 302  # no file: told so
    lead.post("/review/cases/import", data={"csrf_token": token, "file": (io.BytesIO(bad.encode()), "draw.csv")})
    with app.app_context():
        assert not db.session().execute(select(Case).where(Case.party_name.in_(["甲", "乙", "丙"]))).first()
    lead.post("/review/cases/import", data={"csrf_token": token, "file": (io.BytesIO(good.encode()), "draw.csv")})
    pulled = pull_all(phone, cursor)
    by_name = {c["party_name"]: c for c in pulled["cases"]}
    assert by_name["淄博某超市"]["assigned_to_me"] is True and by_name["淄博某药店"]["assigned_to_me"] is False
    assert by_name["淄博某超市"]["id"] in pulled["assignments"]


def test_cannot_continue_reports_are_acknowledged_and_track_the_written_explanation(unit):
    app, phone, device, lead, *_ = unit
    case_id, activity_id, items = visit(device, av_reason="x", explanation="y")
    stop_id = str(uuid.uuid4())
    cannot = device.revision(stop_id, record_type="interruption", parent_id=activity_id, payload={
        "activity_id": activity_id, "camera_id": "DSJ-01", "stopped_at": iso(T0 + timedelta(minutes=30)),
        "resumed_at": None, "cannot_continue": True, "reported_to": "李队长", "written_explanation": None})
    push_results(sync_push(phone, device.batch(*items, cannot)))
    page = lead.get("/review/reports").get_data(as_text=True)
    assert 'data-testid="explanation-due"' in page and "cannot_continue_unreported" in open_findings(app, case_id)
    post_form(lead, f"/review/reports/{stop_id}/acknowledge")
    explained = device.revision(stop_id, 2, {**cannot["payload"], "written_explanation": "记录仪摔坏"},
                                record_type="interruption", parent_id=activity_id)
    push_results(sync_push(phone, device.batch(explained)))
    page = lead.get("/review/reports").get_data(as_text=True)
    assert 'data-testid="explanation-in"' in page and 'data-testid="explanation-due"' not in page
    assert "cannot_continue_unreported" not in open_findings(app, case_id)


def test_another_units_officer_cannot_attach_records_to_a_case_or_claim_its_photos(unit, db_url, tmp_path):
    app, phone, device, lead, other, *_ = unit
    case_id, activity_id, items = visit(device, av_reason="x", explanation="y")
    data = b"\xff\xd8\xff\xe0" + b"JFIF" + bytes(3000) + b"\xff\xd9"
    digest = hashlib.sha256(data).hexdigest()
    photo = {"alg": "sha-256", "hash": digest, "size": len(data), "type": "image/jpeg"}
    photo_step = device.revision(parent_id=activity_id, payload={"activity_id": activity_id, "case_id": case_id,
                                                                 "step_type": "penalty_onsite_inspection"}, media=[photo])
    push_results(sync_push(phone, device.batch(*items, photo_step)))
    post_form(lead, f"/review/activities/{activity_id}/decision", {"action": "approved", "confirm": "yes"})

    outsider_user = seed_user(app, "外单位执法员", "37030300098", "ZF2")
    outsider = app.test_client()
    demo_sign_in(outsider, outsider_user.user_id)
    foreign = SoftDevice(author=str(outsider_user.user_id), catalogue_version=device.catalogue_version)
    post_json(outsider, "/api/v1/devices", {"device_id": foreign.device_id, "public_key": foreign.public_key_b64})
    intruding_activity = foreign.revision(record_type="activity", parent_id=case_id, payload={"case_id": case_id})
    intruding_step = foreign.revision(parent_id=activity_id, payload={"activity_id": activity_id, "case_id": None})
    claim = foreign.revision(payload={"step_type": "penalty_onsite_inspection"}, media=[photo])
    results = push_results(sync_push(outsider, foreign.batch(intruding_activity, intruding_step, claim)))
    assert [r.get("error") for r in results] == ["bad_parent", "bad_parent", None]  # the case is a ZF1 record too
    with app.app_context():
        assert db.session().get(RecordReview, uuid.UUID(activity_id)).state == "approved"  # untouched
    # Naming the hash gives the other unit's lead nothing, and its officer cannot plant a preview.
    assert other.get(f"/review/media/sha-256/{digest}/preview").status_code == 404
    answer = outsider.post("/api/v1/media/previews", data={f"sha-256:{digest}": (io.BytesIO(b"x"), "p.jpg")},
                           headers={"X-CSRFToken": csrf_token(outsider)}).get_json()
    assert answer["results"][0]["status"] == "rejected"
    # A date the calendar cannot hold is a clear refusal, not a server error.
    assert post_form(lead, f"/review/cases/{case_id}/act-ended", {"ended_at": "0001-01-01T00:00"}).status_code == 302


def test_opening_an_original_is_logged_with_who_which_when_and_why(unit):
    app, phone, device, lead, other, *_ = unit
    data = b"\xff\xd8\xff\xe0" + b"JFIF" + bytes(2000) + b"\xff\xd9"
    digest = hashlib.sha256(data).hexdigest()
    case_id, activity_id, items = visit(device, av_reason="x", explanation="y")
    photo_step = device.revision(parent_id=activity_id, payload={"activity_id": activity_id, "case_id": case_id,
                                                                 "step_type": "penalty_onsite_inspection"},
                                 media=[{"alg": "sha-256", "hash": digest, "size": len(data), "type": "image/jpeg"}])
    push_results(sync_push(phone, device.batch(*items, photo_step)))
    begun = post_json(phone, "/api/v1/media/uploads", {"alg": "sha-256", "hash": digest, "size": len(data),
                                                       "type": "image/jpeg"}).get_json()
    phone.put(f"/api/v1/media/uploads/{begun['upload_id']}?offset=0", data=data,
              headers={"X-CSRFToken": phone.get("/api/v1/session").get_json()["csrf_token"],
                       "Content-Type": "application/octet-stream"})
    assert post_json(phone, f"/api/v1/media/uploads/{begun['upload_id']}/complete").status_code == 200
    page = lead.get(f"/review/cases/{case_id}").get_data(as_text=True)
    assert 'data-testid="media-flag"' in page and "原件已按原样保存" in page  # flagged, in Chinese
    original = f"/review/media/sha-256/{digest}/original"
    assert other.get(original).status_code == 404
    assert post_form(other, original, {"reason": "x"}).status_code == 404
    # A GET (a link on any site, which the SameSite=Lax cookie follows) registers nothing and
    # sends no bytes; neither does a POST without the CSRF token, or a forged reason in the query.
    assert lead.get(original + "?reason=forged").data != data
    assert lead.post(original, data={"reason": "forged"}).status_code == 400
    with app.app_context():
        assert db.session().execute(select(OriginalAccess)).first() is None
    opened = post_form(lead, original, {})
    assert opened.status_code == 303
    link = opened.headers["Location"]
    response = lead.get(link)
    assert response.status_code == 200 and response.data == data
    # Named case–record–time–hash with the right extension; the register keeps the whole hash.
    disposition = response.headers["Content-Disposition"]
    with app.app_context():
        taken = db.session().get(Media, ("sha-256", digest))
        when = (taken.taken_at or taken.original_at).replace(tzinfo=UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    stamp = when.strftime("%Y%m%d-%H%M")
    assert disposition.startswith(f'attachment; filename="{case_id[:8]}-step-{stamp}-{digest[:8]}.jpg"; ')
    assert disposition.endswith("filename*=UTF-8''" + quote(f"临淄区齐都镇鲜果超市-{case_id[:8]}-执法环节-{stamp}-{digest[:8]}.jpg",
                                                            safe=""))
    # A <video> seeks with byte ranges through the same link, without registering again.
    part = lead.get(link, headers={"Range": "bytes=4-11"})
    assert part.status_code == 206 and part.data == data[4:12]
    assert part.headers["Content-Range"] == f"bytes 4-11/{len(data)}"
    assert lead.get(link, headers={"Range": "bytes=-2"}).data == data[-2:]
    assert lead.get(link, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    # Malformed ranges are ignored (the whole file), never a server error.
    for malformed in ("bytes=5-3", "bytes=" + "9" * 5000 + "-", "bytes=0-1,4-5", "items=0-1"):
        whole = lead.get(link, headers={"Range": malformed})
        assert (whole.status_code, whole.data) == (200, data), malformed
    # The link is this reviewer's alone, for this file alone, and tampering breaks it.
    assert other.get(link).status_code == 404
    assert lead.get(link[:-3] + "abc").status_code == 404
    from fieldapp.review import original_links
    original_links.LINK_TTL_S, ttl = -1, original_links.LINK_TTL_S
    try:
        assert lead.get(link).status_code == 404  # expired
    finally:
        original_links.LINK_TTL_S = ttl
    with app.app_context():
        rows = db.session().execute(select(OriginalAccess)).scalars().all()
    assert [(r.hash, r.reason) for r in rows] == [(digest, "own_unit_review")]


# ── what the lead reads: the answer, what blocks archiving, whose signature, Beijing time ──────────

def test_the_lead_sees_the_answer_what_changed_what_blocks_and_whose_signature(db_url, tmp_path):
    from tests.api.test_latin_words import T0 as scene_t0, build_scene, visible_text

    scene = build_scene(db_url, tmp_path / "var")
    try:
        page = scene.lead.get(f"/review/cases/{scene.case_id}").get_data(as_text=True)
        # The officer's answer and each changed field, before and after, beside the return's comment.
        assert "已补充未录像原因，中断系更换电池" in page and "请补充未录像原因和中断说明" in page
        assert page.count('data-testid="answer-change"') == 2
        assert '<td class="before">—</td><td class="after">执法记录仪故障</td>' in page
        assert "answered" not in page and "执法人员已答复退回意见" in page
        # Signatures of a 留置送达 say whose they are.
        assert "见证人刘某签名" in page and "执法人员张伟签名" in page and "留置文书照片" in page
        # Times: Beijing time in one format, no UTC string; the phone's clock only where it was off.
        shown = visible_text(page)
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d", shown) and "Z " not in shown
        assert scene_t0.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M") in page
        assert 'data-testid="device-time"' not in page
        # Return and approve are separate forms; approval needs its box ticked.
        assert 'data-testid="return-form"' in page and 'name="confirm" value="yes" required' in page
        # Archiving refused: said in Chinese, each blocker listed with a link to its record.
        refused = post_form(scene.lead, f"/review/cases/{scene.case_id}/archive")
        assert refused.headers["Location"].endswith("#archive-blockers")
        page = scene.lead.get(f"/review/cases/{scene.case_id}").get_data(as_text=True)
        listed = page.count('data-testid="archive-blocker"')
        assert listed >= 2 and f"未能归档：还有 {listed} 个问题须先解决" in page
        assert (f'data-rule="service_by_leaving_incomplete"><a href="#r-{scene.service_id}">留置送达' in page
                and f'id="r-{scene.service_id}"' in page)
        assert 'data-rule="media_unlabelled"><a href="#case-header">音像记录未标明案号' in page
    finally:
        scene.app.extensions["fieldapp.engine"].dispose()


def test_the_phones_clock_shows_only_where_it_was_off(unit):
    app, phone, device, lead, *_ = unit
    case_id, activity_id, items = visit(device, av_reason="x", explanation="y")
    push_results(sync_push(phone, device.batch(*items)))
    ahead = iso(datetime.now(UTC) + timedelta(hours=2))
    skewed = device.revision(items[2]["record_id"], 2, {**items[2]["payload"], "notes": "补记"}, parent_id=activity_id,
                             device_time=ahead)
    push_results(sync_push(phone, device.batch(skewed, sent_at=ahead)))
    page = lead.get(f"/review/cases/{case_id}").get_data(as_text=True)
    assert page.count('data-testid="device-time"') == 1  # the step sent from a clock two hours fast


def test_pending_figures_come_from_what_the_server_holds(unit):
    """A push carries a heartbeat counted before it left the phone, and originals upload after it:
    once everything arrived, the phone shows nothing pending. A lead's desk browser that never
    captured is not listed."""
    app, phone, device, lead, other, officer, _ = unit
    data = b"\xff\xd8\xff\xe0" + b"JFIF" + bytes(4000) + b"\xff\xd9"
    digest = hashlib.sha256(data).hexdigest()
    case_id, activity_id, items = visit(device, av_reason="x", explanation="y")
    photo_step = device.revision(parent_id=activity_id, payload={"activity_id": activity_id, "case_id": case_id,
                                                                 "step_type": "penalty_onsite_inspection"},
                                 media=[{"alg": "sha-256", "hash": digest, "size": len(data), "type": "image/jpeg"}])
    heartbeat = {"unsynced_items": 6, "bytes_pending": len(data), "oldest_unsynced_at": iso(T0)}
    push_results(sync_push(phone, device.batch(*items, photo_step, heartbeat=heartbeat)))
    desk = SoftDevice(author="x", catalogue_version=device.catalogue_version)
    lead.post("/api/v1/devices", json={"device_id": desk.device_id, "public_key": desk.public_key_b64},
              headers={"X-CSRFToken": csrf_token(lead), "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"})
    page = lead.get("/review/").get_data(as_text=True)
    assert page.count('data-testid="pending-row"') == 1  # the officer's phone only
    assert "未同步项: 1" in page and 'data-testid="originals-missing"' in page  # the photo's original

    begun = post_json(phone, "/api/v1/media/uploads", {"alg": "sha-256", "hash": digest, "size": len(data),
                                                       "type": "image/jpeg"}).get_json()
    phone.put(f"/api/v1/media/uploads/{begun['upload_id']}?offset=0", data=data,
              headers={"X-CSRFToken": csrf_token(phone), "Content-Type": "application/octet-stream"})
    assert post_json(phone, f"/api/v1/media/uploads/{begun['upload_id']}/complete").status_code == 200
    page = lead.get("/review/").get_data(as_text=True)
    shown = re.sub(r"<script.*?</script>", "", page, flags=re.S)  # not the phone's string table
    assert "未同步项: 0" in shown and " MB" not in shown and 'data-testid="all-arrived"' in shown
    # The same answer whichever way the originals are found: from what was stored since a recent
    # heartbeat, or from the phone's own revisions for a phone silent for long (pending.RECENTLY_HEARD).
    from fieldapp.review import pending
    with app.app_context():
        stored_at = db.session().get(Media, ("sha-256", digest)).original_at
        phone_id = uuid.UUID(device.device_id)
        before, after = stored_at - timedelta(minutes=1), stored_at + timedelta(minutes=1)
        much_later = uuid.uuid4()  # a phone heard from days after, which makes this one silent
        for heard in ({phone_id: before}, {phone_id: before, much_later: before + timedelta(days=8)}):
            assert pending._stored_after(heard) == [(phone_id, digest, len(data))], heard
        for heard in ({phone_id: after}, {phone_id: after, much_later: after + timedelta(days=8)}):
            assert pending._stored_after(heard) == [], heard


def test_phones_are_named_by_model_and_owner(unit):
    app, phone, device, lead, *_ = unit
    ua = ("Mozilla/5.0 (Linux; Android 14; BRA-AL00 Build/HUAWEIBRA-AL00; wv) AppleWebKit/537.36 "
          "(KHTML, like Gecko) Version/4.0 Chrome/120.0.0.0 Mobile Safari/537.36")
    second = SoftDevice(author=device.author, catalogue_version=device.catalogue_version)
    phone.post("/api/v1/devices", json={"device_id": second.device_id, "public_key": second.public_key_b64},
               headers={"X-CSRFToken": csrf_token(phone), "User-Agent": ua})
    post_json(phone, f"/api/v1/devices/{second.device_id}/heartbeat", {"unsynced_items": 2, "bytes_pending": 10})
    page = lead.get("/review/").get_data(as_text=True)
    assert '<span translate="no" data-testid="device-name">华为 Mate 60 · Android 14</span> · 张伟' in page
    assert "Mozilla" not in page


# ── the case's circumstances (art. 9) and the party's identity number; withdrawn records (art. 30) ──

def id_number(body: str = "37030319800101123", *, good: bool = True) -> str:
    from fieldapp.rules.id_card import CHECKS, compute_check

    check = compute_check(body)
    return body + (check if good else next(c for c in CHECKS if c != check and c.isdigit()))


def created_case(app, response) -> Case:
    assert response.status_code == 302 and "/review/cases/" in response.headers["Location"]
    with app.app_context():
        return db.session().get(Case, uuid.UUID(response.headers["Location"].rsplit("/", 1)[1]))


def test_the_case_form_sets_the_flags_and_the_partys_identity_number(unit):
    app, phone, device, lead, *_ = unit
    form = lead.get("/review/cases").get_data(as_text=True)
    with app.app_context():
        from fieldapp.compliance import engine
        flags = [f["id"] for f in engine.catalogue_content()["case_flags"]]
    assert "serious" in flags and sorted(re.findall(r'name="flags" value="(\w+)"', form)) == sorted(flags)
    assert 'name="party_id_number"' in form

    made = post_form(lead, "/review/cases", {"kind": "penalty", "party_name": "王某", "flags": ["life_health", "serious"],
                                             "party_id_number": id_number()})
    case = created_case(app, made)
    assert case.flags == ["life_health", "serious"] and case.party_id_number == id_number()
    page = lead.get(f"/review/cases/{case.id}").get_data(as_text=True)
    assert page.count('data-testid="case-flag"') == 2 and "行政处罚法第五十七条" in page
    assert id_number() in page and 'data-testid="id-number-warning"' not in page

    # An unknown flag is refused, naming it; nothing is created.
    refused = post_form(lead, "/review/cases", {"kind": "penalty", "party_name": "李某", "flags": ["life_health", "nonsense"]},
                        follow_redirects=True)
    assert "nonsense" in refused.get_data(as_text=True) and 'flash-error' in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session().execute(select(Case).where(Case.party_name == "李某")).first() is None

    # A number failing its check digit warns, and the case is created with it as written.
    bad = id_number(good=False)
    made = post_form(lead, "/review/cases", {"kind": "inspection", "party_name": "赵某", "party_id_number": bad})
    case = created_case(app, made)
    assert case.party_id_number == bad and case.flags == []
    page = lead.get(f"/review/cases/{case.id}").get_data(as_text=True)
    assert 'class="flash flash-warning"' in page and "校验位不符" in page  # the flash, then the case page's tag
    assert 'data-testid="id-number-warning"' in page


def test_a_case_list_imports_flags_and_identity_numbers(unit):
    app, phone, device, lead, *_ = unit
    token = csrf_token(lead)

    def upload(text: str):
        return lead.post("/review/cases/import", data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "a.csv")},
                         follow_redirects=True).get_data(as_text=True)

    page = upload("kind,party_name,flags,party_id_number\n"
                  "penalty,甲某,life_health；obstruction,\n"
                  "penalty,乙某,serious,nonsense\n"  # too short: a warning, the case is imported
                  "penalty,丙某,life_health;unknown_flag,\n")
    assert "unknown_flag" in page and "第 4 行" in page
    with app.app_context():
        assert not db.session().execute(select(Case).where(Case.party_name.in_(["甲某", "乙某", "丙某"]))).first()

    page = upload("kind,party_name,flags,party_id_number\n"
                  f"penalty,甲某,life_health；obstruction,{id_number()}\n"
                  f"inspection,乙某,,{id_number(good=False)}\n")
    assert 'class="flash flash-warning"' in page and "第 3 行" in page and "校验位不符" in page
    with app.app_context():
        made = {c.party_name: c for c in db.session().execute(select(Case).where(
            Case.party_name.in_(["甲某", "乙某"]))).scalars()}
    assert made["甲某"].flags == ["life_health", "obstruction"] and made["甲某"].party_id_number == id_number()
    assert made["乙某"].flags == [] and made["乙某"].party_id_number == id_number(good=False)


def test_withdrawn_records_stay_on_the_timeline_struck_through_with_who_and_why(unit):
    app, phone, device, lead, *_ = unit
    case_id, activity_id, items = visit(device, av_reason="x", explanation="y")
    spare_id = str(uuid.uuid4())
    spare = device.revision(spare_id, record_type="activity", parent_id=case_id, payload={
        "case_id": case_id, "arrived_at": iso(T0 + timedelta(hours=2)), "officers": [], "place": {"text": "误开"}})
    push_results(sync_push(phone, device.batch(*items, spare)))
    step = items[2]
    gone = device.revision(step["record_id"], 2, {**step["payload"], "withdrawn": True, "withdrawn_reason": "重复记录，误存"},
                           parent_id=activity_id, reason="重复记录，误存")
    gone_activity = device.revision(spare_id, 2, {**spare["payload"], "withdrawn": True, "withdrawn_reason": "误开的活动"},
                                    record_type="activity", parent_id=case_id, reason="误开的活动")
    assert [r["status"] for r in push_results(sync_push(phone, device.batch(gone, gone_activity)))] == ["created"] * 2

    page = lead.get(f"/review/cases/{case_id}").get_data(as_text=True)
    item = re.search(rf'<li id="r-{step["record_id"]}"[^>]*>(.*?)</li>', page, re.S)
    assert item and 'data-withdrawn="yes"' in item.group(0)
    assert re.search(r'<del class="withdrawn-content"><strong>[^<]+</strong>', item.group(1))  # struck, in place
    note = re.search(r'data-testid="withdrawn-note">(.*?)</span></span>', item.group(1), re.S).group(1)
    assert "张伟" in note and "重复记录，误存" in note
    # The withdrawn activity too: its block struck through, who and why beside it.
    block = re.search(rf'<section class="card activity withdrawn" id="a-{spare_id}".*?</section>', page, re.S)
    assert block and "<del>" in block.group(0) and "误开的活动" in block.group(0) and "张伟" in block.group(0)
    # The English page says it in words.
    english = lead.get(f"/review/cases/{case_id}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Withdrawn by 张伟" in english and "Reason for withdrawal" in english


def test_a_running_deadline_reaches_the_phone_with_when_to_warn(unit):
    """A step that starts a clock (行政强制法 art. 25: 扣押 inside the penalty case) puts the case back
    in the phone's feed with its running deadlines and when to start warning; once met, it is gone."""
    app, phone, device, lead, *_ = unit
    case_id, activity_id, items = visit(device, av_reason="当事人拒绝", explanation="更换电池")
    push_results(sync_push(phone, device.batch(*items)))
    cursor = pull_all(phone)["cursor"]
    seize_id = str(uuid.uuid4())
    seize = device.revision(seize_id, parent_id=activity_id, payload={
        "activity_id": activity_id, "case_id": case_id, "step_type": "coercion_seal_seize", "measure": "seize",
        "at": iso(T0 + timedelta(minutes=30)), "av": "body_camera", "av_camera_id": "DSJ-01", "documents": []})
    assert push_results(sync_push(phone, device.batch(seize)))[0]["status"] == "created"
    again = pull_all(phone, cursor)
    [case] = [c for c in again["cases"] if c["id"] == case_id]  # the feed carries the case again
    [term] = [d for d in case["deadlines"] if d["rule_id"] == "seizure_term"]
    assert term["label_zh"] == "查封、扣押期限" and term["key"] == f"seizure_term:{seize_id}"
    due, warn = datetime.fromisoformat(term["due_at"]), datetime.fromisoformat(term["warn_from"])
    # Counted in whole days of Linzi from the day after the seizure: due 30 to 31 days after it,
    # whatever the hour (a seizure just after local midnight is due almost 31 days later).
    # The warning starts 2 working days before the due day: further back over a holiday (New Year,
    # the Spring Festival week), never less than a day.
    seized_at = T0 + timedelta(minutes=30)
    assert timedelta(days=30) < due - seized_at <= timedelta(days=31) and timedelta(days=1) < due - warn < timedelta(days=12)
    assert term in next(c for c in phone.get("/api/v1/cases").get_json()["cases"] if c["id"] == case_id)["deadlines"]
    lift = device.revision(str(uuid.uuid4()), parent_id=activity_id, payload={
        "activity_id": activity_id, "case_id": case_id, "step_type": "coercion_lift",
        "at": iso(T0 + timedelta(hours=1)), "av": "body_camera", "av_camera_id": "DSJ-01", "documents": []})
    push_results(sync_push(phone, device.batch(lift)))
    [case] = [c for c in pull_all(phone, again["cursor"])["cases"] if c["id"] == case_id]
    assert not [d for d in case["deadlines"] if d["rule_id"] == "seizure_term"]  # met: no longer running


def test_the_lead_sees_which_deadlines_are_due_soon_due_today_or_overdue(unit):
    app, phone, device, lead, *_ = unit
    case_id, activity_id, items = visit(device, av_reason="当事人拒绝", explanation="更换电池")
    preserve = device.revision(str(uuid.uuid4()), parent_id=activity_id, payload={
        "activity_id": activity_id, "case_id": case_id, "step_type": "penalty_evidence_preservation",
        "at": iso(T0), "av": "body_camera", "av_camera_id": "DSJ-01", "documents": []})
    push_results(sync_push(phone, device.batch(*items, preserve)))
    from fieldapp.models import CaseDeadline
    from fieldapp.review.labels import deadline_status
    with app.test_request_context():
        row = db.session().execute(select(CaseDeadline).where(
            CaseDeadline.rule_id == "evidence_preservation_decision")).scalar_one()
        due = row.due_at  # 7 working days on: neither soon nor overdue today
        assert deadline_status(row, T0) is None
        assert deadline_status(row, due - timedelta(hours=1)) == "due_today"
        from fieldapp.compliance.deadline_source import warn_from
        start = warn_from(due)  # two working days before its day (the default)
        assert deadline_status(row, start - timedelta(minutes=1)) is None
        assert deadline_status(row, start + timedelta(minutes=1)) == "due_soon"
        assert deadline_status(row, due + timedelta(seconds=1)) == "overdue"
    page = lead.get(f"/review/cases/{case_id}").get_data(as_text=True)
    assert 'data-status="overdue"' not in page  # nothing has run out yet


def test_a_penalty_case_opened_on_the_spot_from_an_inspection_names_it(unit):
    """Issue: 先行登记保存 from an inspection is taken by opening the penalty case on the spot and
    linking the two; a link to another unit's case is dropped."""
    app, phone, device, lead, other, officer, _ = unit
    from fieldapp.models import User
    from fieldapp.review import cases as case_service
    with app.app_context(), db.transaction():
        unit_id = db.session().get(User, officer.user_id).unit_id
        inspection = case_service.create_case(unit_id, officer.user_id, kind="inspection", party_name="齐都镇某超市")
        inspection_id = str(inspection.id)
    opened = device.revision(str(uuid.uuid4()), record_type="case", payload={
        "kind": "penalty", "party_name": "齐都镇某超市", "credit_code": None, "address": None, "case_number": None,
        "flags": [], "linked_case_id": inspection_id, "party_id_number": "11010519491231002X"})
    foreign = device.revision(str(uuid.uuid4()), record_type="case", payload={
        "kind": "penalty", "party_name": "别处", "flags": [], "linked_case_id": str(uuid.uuid4())})
    assert [r["status"] for r in push_results(sync_push(phone, device.batch(opened, foreign)))] == ["created"] * 2
    with app.app_context():
        assert str(db.session().get(Case, uuid.UUID(opened["record_id"])).linked_case_id) == inspection_id
        assert db.session().get(Case, uuid.UUID(opened["record_id"])).party_id_number == "11010519491231002X"
        assert db.session().get(Case, uuid.UUID(foreign["record_id"])).linked_case_id is None
    penalty_page = lead.get(f"/review/cases/{opened['record_id']}").get_data(as_text=True)
    assert 'data-testid="linked-case"' in penalty_page and "由行政检查转立案" in penalty_page
    assert f"/review/cases/{inspection_id}" in penalty_page
    inspection_page = lead.get(f"/review/cases/{inspection_id}").get_data(as_text=True)
    assert "由本次检查转立案的处罚案件" in inspection_page and f"/review/cases/{opened['record_id']}" in inspection_page
    [pulled] = [c for c in pull_all(phone)["cases"] if c["id"] == opened["record_id"]]
    assert pulled["linked_case_id"] == inspection_id
