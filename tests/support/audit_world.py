"""A database with at least one row in every table the audit chain covers, each made through the
app's session (so its event is recorded as in production), for tests that tamper with them."""
from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, date, datetime, timedelta

from fieldapp import db, models as m
from fieldapp.records import service
from fieldapp.records.coverage import COVERED

T = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build(app) -> dict:
    """Make the rows, seal the chain and sign a checkpoint; return what a test may need."""
    photo = os.urandom(2048)
    digest = hashlib.sha256(photo).hexdigest()
    with app.app_context():
        from fieldapp.media.service import media_storage
        store = media_storage()
        staged = store.staging_dir() / f"world-{uuid.uuid4().hex}"
        staged.write_bytes(photo)
        store.adopt_staged_original("sha-256", digest, staged)
        with db.transaction() as s:
            unit = m.Unit(id=uuid.uuid4(), code=f"W{uuid.uuid4().hex[:6]}", name="世界测试所")
            user = m.User(id=uuid.uuid4(), name="张伟", cert_no=f"C{uuid.uuid4().hex[:10]}", unit_id=unit.id,
                          webauthn_handle=os.urandom(32))
            s.add_all([unit, user])
            s.flush()
            s.add_all([
                m.UserRole(user_id=user.id, role="officer"),
                m.DivisionOversight(user_id=user.id, unit_id=unit.id),
                m.Passkey(user_id=user.id, credential_id=os.urandom(32), public_key=os.urandom(77), label="手机"),
                m.UserSession(user_id=user.id, token_hash=sha(f"session{uuid.uuid4()}")),
                m.UserUnitHistory(user_id=user.id, unit_id=unit.id, from_at=T),
            ])
            enrollment = m.Enrollment(id=uuid.uuid4(), user_id=user.id, code_hash=sha(f"code{uuid.uuid4()}"),
                                      expires_at=T + timedelta(days=1))
            s.add(enrollment)
            s.flush()
            s.add(m.EnrollmentEvent(enrollment_id=enrollment.id, outcome="opened"))
            catalogue = max(s.query(m.CatalogueVersion.version).all() or [(0,)])[0] + 1
            s.add(m.CatalogueVersion(version=catalogue, content={"version": catalogue, "steps": []}))
            s.add(m.CalendarYear(year=2999))
            s.add(m.CalendarDay(day=date(2999, 1, 4), is_working_day=True))
            case = m.Case(id=uuid.uuid4(), unit_id=unit.id, kind="penalty", party_name="临淄区齐都镇鲜果超市")
            device = m.Device(id=uuid.uuid4(), user_id=user.id, public_key=os.urandom(91))
            s.add_all([case, device])
            s.flush()
            s.add(m.UnitStepType(unit_id=unit.id, step_id=f"local_{uuid.uuid4().hex[:8]}", definition={"id": "x"},
                                 introduced_in=catalogue))
            activity = m.SyncedRecord(id=uuid.uuid4(), record_type="activity", author_id=user.id, unit_id=unit.id,
                                      head_revision=1)
            s.add(activity)
            s.flush()
            s.add(m.Revision(record_id=activity.id, revision=1, record_type="activity", catalogue_version=catalogue,
                             author_id=user.id, device_id=device.id, device_time="2026-11-02T09:00:00+08:00",
                             payload={"case_id": str(case.id)}, content_hash=sha("rev"), signature=os.urandom(64)))
            s.add(m.Media(alg="sha-256", hash=digest, size=len(photo), mime="image/jpeg", kind="photo",
                          original_at=T, previews=[], flags=[]))
            s.flush()
            s.add(m.MediaRef(record_id=activity.id, revision=1, alg="sha-256", hash=digest, unit_id=unit.id,
                             author_id=user.id))
            s.add_all([
                m.CaseAssignment(case_id=case.id, user_id=user.id, assigned_by=user.id),
                m.CaseStage(case_id=case.id, stage="filed", done_by=user.id),
                m.CaseDeadline(case_id=case.id, unit_id=unit.id, key="filing", rule_id="filing", due_at=T),
                m.RecordReview(record_id=activity.id, unit_id=unit.id, author_id=user.id, state="awaiting"),
                m.ReviewEvent(record_id=activity.id, unit_id=unit.id, action="approved"),
                m.InterruptionReport(record_id=activity.id, unit_id=unit.id, author_id=user.id),
                m.OriginalAccess(user_id=user.id, alg="sha-256", hash=digest, reason="案件审核"),
            ])
            finding = m.Finding(id=uuid.uuid4(), case_id=case.id, unit_id=unit.id, rule_id="r", key="r:1",
                                severity="blocking", article="第九条")
            camera = m.Camera(id=uuid.uuid4(), serial=f"DSJ-{uuid.uuid4().hex[:6]}", unit_id=unit.id, label="1号")
            station = m.Station(id=uuid.uuid4(), name="采集站", unit_id=unit.id, token_hash=sha(f"st{uuid.uuid4()}"))
            segment = m.FootageSegment(id=uuid.uuid4(), alg="sha-256", hash=sha(f"seg{uuid.uuid4()}"), sm3="0" * 64,
                                       size=1, unit_id=unit.id, camera_serial="DSJ-1", file_name="a.mp4",
                                       started_at=T, ended_at=T + timedelta(minutes=5), source="station")
            s.add_all([finding, camera, station, segment])
            s.flush()
            s.add_all([
                m.FindingException(finding_id=finding.id, case_id=case.id, unit_id=unit.id, key="r:1",
                                   fingerprint=sha("f"), reason="设备故障，已书面说明", by_id=user.id),
                m.CameraHandout(camera_id=camera.id, user_id=user.id, taken_at=T),
                m.FootageLink(segment_id=segment.id, activity_id=activity.id, basis="handout"),
            ])
            grant = m.AccessGrant(id=uuid.uuid4(), number=f"DY-2999-{uuid.uuid4().hex[:4]}", unit_id=unit.id,
                                  subject_kind="case", subject_id=str(case.id), subject_label="案件", mode="view",
                                  purpose="case_review", requester_kind="own_unit", requester_id=user.id,
                                  requester_name="张伟", requester_org="世界测试所", approver_role="lead",
                                  article="第二十九条第一款", days=7, registered_by=user.id)
            s.add(grant)
            s.flush()
            s.add_all([
                m.AccessUse(grant_id=grant.id, action="view", by_id=user.id, alg="sha-256", hash=digest),
                m.RetentionHold(kind="case", case_id=case.id, unit_id=unit.id, reason="复议中", placed_by=user.id),
                m.EvidenceUse(alg="sha-256", hash=digest, source="lead"),
                m.RetentionState(alg="sha-256", hash=sha(f"kept{uuid.uuid4()}"), unit_id=unit.id, klass="six_months",
                                 captured_at=T, keep_until=T + timedelta(days=182)),
                m.Disposal(alg="sha-256", hash=sha(f"gone{uuid.uuid4()}"), unit_id=unit.id, klass="six_months",
                           keep_until=T, records_admin_id=user.id),
                m.EvidencePackage(case_id=case.id, unit_id=unit.id, grant_id=grant.id, built_by=user.id,
                                  items=[{"alg": "sha-256", "hash": digest, "proves": "现场情况"}]),
                paper := m.PaperDocument(id=uuid.uuid4(), kind="photo_sheet", record_id=activity.id, unit_id=unit.id,
                                         sources=[[str(activity.id), 1, sha("rev")]], digest=sha("doc"),
                                         made_by=user.id),
            ])
            s.flush()
            s.add(m.PaperScan(document_id=paper.id, hash=sha(f"scan{uuid.uuid4()}"), sm3="0" * 64, size=1,
                              content_type="application/pdf", uploaded_by=user.id))
            s.add_all([m.ServerEpoch(backup_id=f"b-{uuid.uuid4().hex[:8]}", backup_taken_at=T, chain_seq=1),
                       m.BackupRun(id=f"b-{uuid.uuid4().hex[:8]}", destination="/mnt/offsite", chain_seq=1)])
        populated = {name for name in COVERED
                     if db.session().execute(m.Base.metadata.tables[name].select().limit(1)).first()}
        db.session().commit()
        service.checkpoint_now("on demand")
    return {"populated": populated, "media_hash": digest}
