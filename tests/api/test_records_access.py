"""Art. 29 end to end on both databases: who may open originals, the approver each kind of
requester needs, grants that expire, views that show marked previews only, copies marked (and for
bodies outside, redacted) while the original never changes, and the register with its export, all
of it in the audit chain. Art. 31: a marked case is hidden from those who do not need it."""
from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from datetime import timedelta

import pytest
from PIL import Image, ImageStat

from fieldapp import db
from fieldapp.media.service import media_storage
from fieldapp.models import AccessGrant, AccessUse, AuditEvent, Case, OriginalAccess, utcnow
from fieldapp.records import marking
from tests.support.flows import post_form, push_results, sync_push
from tests.support.records_world import T0, build, iso, one, rows, select

URL = "/records/access"


@pytest.fixture
def world(db_url, tmp_path):
    w = build(db_url, tmp_path / "var")
    yield w
    w.app.extensions["fieldapp.engine"].dispose()


def register(world, *, requester=None, mode="view", purpose="case_review", subject=("case", None), note="",
             outside=("", ""), days=7):
    kind, subject_id = subject
    response = post_form(world.client("孙管理"), URL, {
        "subject_kind": kind, "subject_id": subject_id or world.case_id, "mode": mode, "purpose": purpose,
        "purpose_note": note, "requester_id": str(world.users[requester]) if requester else "",
        "outside_name": outside[0], "outside_org": outside[1], "days": str(days)})
    assert response.status_code == 303, response.get_data(as_text=True)[:400]
    match = re.search(r"/records/access/([0-9a-f-]{36})$", response.headers["Location"])
    return uuid.UUID(match[1]) if match else None


def grant(world, grant_id) -> AccessGrant:
    return one(world.app, select(AccessGrant).where(AccessGrant.id == grant_id))


def decide(world, who, grant_id, decision="approve", note=""):
    return post_form(world.client(who), f"{URL}/{grant_id}/decide", {"decision": decision, "note": note})


def original_url(world):
    return f"/review/media/sha-256/{world.digest}/original"


def test_the_collecting_units_lead_opens_an_original_in_one_tap_and_nobody_else_can(world):
    lead = world.client("李队长")
    opened = post_form(lead, original_url(world), {})
    assert opened.status_code == 303  # no reason to type: reviewing their own unit is the standing reason
    assert lead.get(opened.headers["Location"]).data == world.photo
    assert one(world.app, select(OriginalAccess.reason).where(OriginalAccess.hash == world.digest)) == "own_unit_review"
    for outsider in ("法规科", "分管局长", "局长"):  # they see the unit's records, but originals need a grant
        refused = post_form(world.client(outsider), original_url(world), {"reason": "执法监督"})
        assert refused.status_code == 403 and "needs-grant" in refused.get_data(as_text=True)
    assert len(rows(world.app, select(OriginalAccess))) == 1


@pytest.mark.parametrize("requester, purpose, approver, wrong_approver", [
    ("法规科", "case_review", "分管局长", "李队长"),          # art. 29 para. 2: the policy section
    ("他队员", "case_handling", "分管局长", "他队长"),        # another unit: the stricter reading
    ("张伟", "case_handling", "李队长", "分管局长"),          # the unit's own officer: its lead
])
def test_each_requester_kind_is_approved_by_the_leader_art_29_names(world, requester, purpose, approver, wrong_approver):
    grant_id = register(world, requester=requester, purpose=purpose)
    assert grant(world, grant_id).state == "pending"
    refused = decide(world, wrong_approver, grant_id)
    assert refused.status_code in (303, 403, 404)
    assert grant(world, grant_id).state == "pending"
    assert decide(world, "别的分管", grant_id).status_code in (303, 403, 404)  # oversees another unit: unseen
    assert grant(world, grant_id).state == "pending"
    decide(world, approver, grant_id)
    decided = grant(world, grant_id)
    assert decided.state == "approved" and decided.decided_by == world.users[approver]
    assert decided.valid_until > utcnow() + timedelta(days=6)


def test_a_body_outside_the_bureau_needs_the_bureau_head(world):
    grant_id = register(world, mode="copy", purpose="enforcement_handover", outside=("王警官", "临淄公安分局"))
    g = grant(world, grant_id)
    assert (g.requester_kind, g.approver_role, g.article) == ("outside_body", "bureau_head", "第二十九条第三款")
    for wrong in ("分管局长", "李队长"):
        decide(world, wrong, grant_id)
        assert grant(world, grant_id).state == "pending"
    decide(world, "局长", grant_id)
    assert grant(world, grant_id).state == "approved"


def test_a_purpose_the_paragraph_does_not_admit_is_refused_with_a_reason(world):
    response = post_form(world.client("孙管理"), URL, {
        "subject_kind": "case", "subject_id": world.case_id, "mode": "view", "purpose": "case_handling",
        "requester_id": str(world.users["法规科"]), "days": "7"})
    assert response.status_code == 303
    page = world.client("孙管理").get(response.headers["Location"]).get_data(as_text=True)
    assert "不能以“办案需要”为由调阅" in page
    assert rows(world.app, select(AccessGrant)) == []


def test_only_the_collecting_units_records_administrator_registers(world):
    assert post_form(world.client("李队长"), URL, {"subject_kind": "case", "subject_id": world.case_id}).status_code == 403


def test_a_view_grant_shows_a_marked_preview_never_the_original_and_expires(world):
    grant_id = register(world, requester="法规科")
    viewer = world.client("法规科")
    view_url = f"{URL}/{grant_id}/view/sha-256/{world.digest}"
    assert viewer.get(view_url).status_code == 403  # not approved yet
    decide(world, "分管局长", grant_id)
    mine = viewer.get("/records/mine").get_data(as_text=True)
    assert f'href="{URL}/{grant_id}"' in mine and 'data-state="approved"' in mine
    assert 'data-testid="my-grant"' not in world.client("他队员").get("/records/mine").get_data(as_text=True)
    page = viewer.get(f"{URL}/{grant_id}").get_data(as_text=True)
    assert world.digest in page
    shown = viewer.get(view_url)
    assert shown.status_code == 200 and shown.mimetype == "image/jpeg"
    assert shown.data != world.photo
    number = grant(world, grant_id).number
    assert number in marking.read_mark(shown.data) and "法规科" in marking.read_mark(shown.data)
    assert post_form(viewer, original_url(world), {"reason": number}).status_code == 403  # never the original
    uses = rows(world.app, select(AccessUse).where(AccessUse.grant_id == grant_id))
    assert [(u.action, u.by_id) for u in uses] == [("view", world.users["法规科"])]
    # someone else signed in cannot use it
    assert world.client("他队员").get(view_url).status_code == 404
    with world.app.app_context(), db.transaction() as s:
        s.get(AccessGrant, grant_id).valid_until = utcnow() - timedelta(seconds=1)
    assert viewer.get(view_url).status_code == 403
    assert 'data-state="expired"' in viewer.get(f"{URL}/{grant_id}").get_data(as_text=True)


def _blur_ratio(original: bytes, copy: bytes, box) -> float:
    a, b = Image.open(io.BytesIO(original)).convert("L").crop(box), Image.open(io.BytesIO(copy)).convert("L").crop(box)
    return ImageStat.Stat(b).stddev[0] / ImageStat.Stat(a).stddev[0]


def test_a_copy_for_a_body_outside_is_marked_and_redacted_the_original_never_changes(world):
    grant_id = register(world, mode="copy", purpose="enforcement_handover", outside=("王警官", "临淄公安分局"))
    decide(world, "局长", grant_id)
    admin = world.client("孙管理")
    copy_url = f"{URL}/{grant_id}/copy/sha-256/{world.digest}"
    area = {"x": 0.5, "y": 0.5, "w": 0.25, "h": 0.25}
    no_reason = post_form(admin, copy_url, {"redactions": json.dumps([area])})
    assert no_reason.status_code == 303 and rows(world.app, select(AccessUse)) == []
    made = post_form(admin, copy_url, {"redactions": json.dumps([area]), "redaction_reason": "旁人面部"})
    assert made.status_code == 200 and "attachment" in made.headers["Content-Disposition"]
    assert grant(world, grant_id).number in marking.read_mark(made.data)
    assert "临淄公安分局 王警官" in marking.read_mark(made.data)  # made by the administrator, for the recipient
    assert _blur_ratio(world.photo, made.data, (170, 130, 230, 170)) < 0.35  # inside the rectangle
    with world.app.app_context():
        stored = media_storage().open("sha-256", world.digest).read()
    assert hashlib.sha256(stored).hexdigest() == world.digest  # the original is untouched
    use = rows(world.app, select(AccessUse))[0]
    assert use.action == "copy" and use.copy_sha256 == hashlib.sha256(made.data).hexdigest()
    assert use.redactions == [area] and use.redaction_reason == "旁人面部"
    # requesters cannot make copies themselves; a view grant makes none
    assert post_form(world.client("法规科"), copy_url, {}).status_code == 403


def test_internal_copies_are_marked_but_not_redacted(world):
    grant_id = register(world, requester="法规科", mode="copy", purpose="reconsideration_litigation")
    decide(world, "分管局长", grant_id)
    copy_url = f"{URL}/{grant_id}/copy/sha-256/{world.digest}"
    refused = post_form(world.client("孙管理"), copy_url, {"redactions": json.dumps([{"x": 0, "y": 0, "w": .5, "h": .5}]),
                                                          "redaction_reason": "x"})
    assert refused.status_code == 303 and rows(world.app, select(AccessUse)) == []
    made = post_form(world.client("孙管理"), copy_url, {})
    assert made.status_code == 200
    assert grant(world, grant_id).number in marking.read_mark(made.data) and "孙管理" in marking.read_mark(made.data)


def test_the_register_lists_every_step_filters_exports_and_is_in_the_chain(world):
    post_form(world.client("李队长"), original_url(world), {})
    view_id = register(world, requester="法规科", note="年度评查")
    decide(world, "分管局长", view_id)
    world.client("法规科").get(f"{URL}/{view_id}/view/sha-256/{world.digest}")
    refused_id = register(world, requester="他队员", purpose="case_handling")
    decide(world, "分管局长", refused_id, "refuse", note="与本案无关")
    page = world.client("法规科").get(URL).get_data(as_text=True)
    assert page.count('data-testid="register-row"') == 4  # two requests, one view, one original opened
    assert "分管局长" in page and "年度评查" in page and "本单位审查（常设事由）" in page
    views_only = world.client("分管局长").get(f"{URL}?action=view").get_data(as_text=True)
    assert views_only.count('data-testid="register-row"') == 1
    by_person = world.client("分管局长").get(f"{URL}?person=他队员").get_data(as_text=True)
    assert by_person.count('data-testid="register-row"') == 1 and "不批准" in by_person
    exported = world.client("分管局长").get(f"{URL}?format=csv")
    text = exported.data.decode("utf-8-sig")
    assert exported.mimetype == "text/csv" and len(text.strip().splitlines()) == 5
    assert grant(world, view_id).number in text and "调阅人" in text.splitlines()[0]
    # the other unit's lead sees none of this unit's register
    assert 'data-testid="register-row"' not in world.client("他队长").get(URL).get_data(as_text=True)
    with world.app.app_context():
        events = list(db.session().execute(select(AuditEvent).where(AuditEvent.tbl.in_(("access_grants", "access_uses")))).scalars())
        ops = [op for e in events for _key, _hash, op in e.detail["rows"]]
    assert ops.count("insert") >= 3 and "update" in ops  # registered, decided, used: each an event


def test_a_secret_case_is_hidden_from_those_who_do_not_need_it(world):
    lead = world.client("李队长")
    post_form(lead, f"/records/cases/{world.case_id}/marks", {"confidentiality": "trade_secret"})
    case_url = f"/review/cases/{world.case_id}"
    assert lead.get(case_url).status_code == 200
    assert world.client("孙管理").get(case_url).status_code == 200
    for outsider in ("法规科", "分管局长", "局长"):
        assert world.client(outsider).get(case_url).status_code == 404
        assert world.case_id not in world.client(outsider).get("/review/cases").get_data(as_text=True)
        assert world.client(outsider).get(f"/review/media/sha-256/{world.digest}/thumb").status_code == 404
    grant_id = register(world, requester="法规科")
    register_page = world.client("局长").get(URL).get_data(as_text=True)
    assert "鲜果超市" not in register_page and "涉密案件" in register_page  # not even named in the register
    decide(world, "分管局长", grant_id)
    assert world.client("法规科").get(case_url).status_code == 200  # an approved grant opens it


def test_identity_and_phone_numbers_are_masked_for_those_who_do_not_need_them(world):
    with world.app.app_context(), db.transaction() as s:
        s.get(Case, uuid.UUID(world.case_id)).party_id_number = "370305199001011234"
    stop = world.device.revision(str(uuid.uuid4()), record_type="interruption", parent_id=world.activity_id, payload={
        "activity_id": world.activity_id, "camera_id": "DSJ-01", "stopped_at": iso(T0 + timedelta(minutes=10)),
        "reason": "battery", "resumed_at": iso(T0 + timedelta(minutes=12)),
        "explanation": "电量耗尽，已电话报告队长 13812345678", "cannot_continue": False})
    push_results(sync_push(world.client("张伟"), world.device.batch(stop)))
    lead_page = world.client("李队长").get(f"/review/cases/{world.case_id}").get_data(as_text=True)
    assert "370305199001011234" in lead_page and "13812345678" in lead_page
    page = world.client("法规科").get(f"/review/cases/{world.case_id}").get_data(as_text=True)
    assert "370305199001011234" not in page and "370305********1234" in page
    assert "13812345678" not in page and "138****5678" in page
