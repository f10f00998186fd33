"""Chinese screens are in Chinese: every page of the lead and the officer's server-rendered pages,
rendered in zh_CN with a realistic visit (steps, an interruption, a 留置送达 with witnesses and
signatures, photos, findings, a return and the officer's answer), holds no Latin-letter word
outside a short allow-list of units, formats and product names.

What a user typed is data, not the page's language: the test data is typed in Chinese, codes carry
digits (ZF1, DSJ-01), and proper names the page shows as such (a phone's model) sit in elements
marked ``translate="no"``. The language switch, marked ``lang="en"``, is meant to read "English".
"""
from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from tests.support.appfactory import make_app
from tests.support.flows import csrf_token, demo_sign_in, post_form, post_json, push_results, seed_user, sync_push
from tests.support.soft_device import SoftDevice

# Units, formats and product names a Chinese official writes in Latin letters too.
ALLOWED = frozenset({"MB", "KB", "GB", "GPS", "EXIF", "SHA", "JPEG", "PNG", "CSV", "UTF", "QR", "USB", "NFC",
                     "FIDO", "Chrome", "Edge", "Safari", "m", "s"})
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; ALN-AL00 Build/HUAWEIALN-AL00; wv) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36")
T0 = datetime.now(UTC) - timedelta(hours=5)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def jpeg(n: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + b"JFIF" + bytes([n]) * 1500 + b"\xff\xd9"


class _Text(HTMLParser):
    """The text a reader sees or hears: text nodes and alt/title/aria-label/placeholder, without
    scripts, styles, and elements marked translate="no" or in another language."""
    VOID = {"br", "img", "input", "meta", "link", "hr", "source"}

    def __init__(self):
        super().__init__()
        self.stack: list[bool] = []  # per open element: is it skipped?
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        skipped = (bool(self.stack and self.stack[-1]) or tag in ("script", "style") or a.get("translate") == "no"
                   or (a.get("lang") or "zh").startswith("en"))
        if not skipped:
            self.parts += [a[k] for k in ("alt", "title", "aria-label", "placeholder") if a.get(k)]
            if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
                self.parts.append(a["value"])
        if tag not in self.VOID:
            self.stack.append(skipped)

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]):
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def latin_words(html: str) -> set[str]:
    """Latin-letter words: tokens with a letter and no digit (a token with digits is a code or a
    number: ZF1, SHA-256, 3.9), not in the allow-list."""
    words = set()
    for token in re.findall(r"[A-Za-z0-9][A-Za-z0-9_.\-=/+]*", visible_text(html)):
        if re.search(r"[A-Za-z]", token) and not re.search(r"\d", token):
            words.update(w for w in re.findall(r"[A-Za-z]+", token) if w not in ALLOWED)
    return words


@dataclass
class Scene:
    app: object
    phone: object
    device: SoftDevice
    lead: object
    officer_id: uuid.UUID
    case_id: str
    activity_id: str
    step_id: str
    stop_id: str
    service_id: str
    photo: str
    signatures: dict
    items: dict


def build_scene(db_url, var_dir, *, answer: bool = True) -> Scene:
    """A penalty visit as it arrives from a phone: an inspection step not recorded on video, a
    resumed interruption never explained, a service by leaving with a witness who signed, photos;
    then the lead returns it and the officer answers."""
    app = make_app(db_url, var_dir, demo=True)
    officer = seed_user(app, "张伟", "37030300001", "ZF1")
    seed_user(app, "赵敏", "37030300002", "ZF1")
    lead_user = seed_user(app, "李队长", "37030300009", "ZF1", roles="lead,officer")
    phone = app.test_client()
    demo_sign_in(phone, officer.user_id)
    version = phone.get("/api/v1/catalogue").get_json()["version"]
    device = SoftDevice(author=str(officer.user_id), catalogue_version=version)
    assert phone.post("/api/v1/devices", json={"device_id": device.device_id, "public_key": device.public_key_b64,
                                               "label": PHONE_UA[:100]},
                      headers={"X-CSRFToken": csrf_token(phone), "User-Agent": PHONE_UA}).status_code == 201
    lead = app.test_client()
    demo_sign_in(lead, lead_user.user_id)
    # The lead's own desk browser registers too (the app shell does so on any page) but captures nothing.
    desk = SoftDevice(author=str(lead_user.user_id), catalogue_version=version)
    lead.post("/api/v1/devices", json={"device_id": desk.device_id, "public_key": desk.public_key_b64, "label": "x"},
              headers={"X-CSRFToken": csrf_token(lead), "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"})

    case_id, activity_id, step_id, stop_id, service_id = (str(uuid.uuid4()) for _ in range(5))
    photos = [jpeg(1), jpeg(2)]
    sig_witness, sig_officer = jpeg(3), jpeg(4)
    ref = lambda data: {"alg": "sha-256", "hash": hashlib.sha256(data).hexdigest(), "size": len(data),  # noqa: E731
                        "type": "image/jpeg"}
    items = {
        "case": device.revision(case_id, record_type="case", payload={
            "kind": "penalty", "party_name": "临淄区齐都镇鲜果超市", "flags": []}),
        "activity": device.revision(activity_id, record_type="activity", parent_id=case_id, payload={
            "case_id": case_id, "arrived_at": iso(T0), "departed_at": iso(T0 + timedelta(hours=1)),
            "officers": [{"name": "张伟", "cert_no": "37030300001", "cert_shown": True},
                         {"name": "赵敏", "cert_no": "37030300002", "cert_shown": True}],
            "continuous_required": True, "place": {"source": "typed", "text": "齐都镇"},
            "cameras": [{"camera_id": "DSJ-01", "started_at": iso(T0)}]}),
        "step": device.revision(step_id, parent_id=activity_id, payload={
            "activity_id": activity_id, "case_id": case_id, "step_type": "penalty_onsite_inspection",
            "at": iso(T0 + timedelta(minutes=5)), "av_recorded": False, "av_reason": None,
            "documents": ["现场笔录"]}, media=[ref(photos[0])]),
        "stop": device.revision(stop_id, record_type="interruption", parent_id=activity_id, payload={
            "activity_id": activity_id, "camera_id": "DSJ-01", "stopped_at": iso(T0 + timedelta(minutes=10)),
            "resumed_at": iso(T0 + timedelta(minutes=20)), "reason": "battery", "explanation": None,
            "cannot_continue": False}, reason="resumed"),
        "service": device.revision(service_id, record_type="service", parent_id=activity_id, payload={
            "activity_id": activity_id, "case_id": case_id, "document": "行政处罚决定书",
            "recipient": {"name": "王某", "relation": "self"}, "place": "超市收银台", "refusal": "拒绝签收",
            "at": iso(T0 + timedelta(minutes=40)),
            "witnesses": [{"name": "刘某", "org": "齐都镇居委会", "role": "工作人员",
                           "signature": ref(sig_witness)["hash"], "refused_to_sign": False}],
            "officers": [{"name": "张伟", "cert_no": "37030300001", "signature": ref(sig_officer)["hash"]}],
            "media": [ref(photos[1])["hash"]]},
            media=[ref(photos[1]), ref(sig_witness), ref(sig_officer)]),
    }
    assert all(r["status"] == "created" for r in push_results(sync_push(phone, device.batch(*items.values()))))
    token = phone.get("/api/v1/session").get_json()["csrf_token"]
    for data in (photos[0], sig_witness, sig_officer):  # the service's photo of the document stays pending
        begun = post_json(phone, "/api/v1/media/uploads", ref(data)).get_json()
        phone.put(f"/api/v1/media/uploads/{begun['upload_id']}?offset=0", data=data,
                  headers={"X-CSRFToken": token, "Content-Type": "application/octet-stream"})
        assert post_json(phone, f"/api/v1/media/uploads/{begun['upload_id']}/complete").status_code == 200
    post_form(lead, f"/review/activities/{activity_id}/decision", {"action": "returned", "comment": "请补充未录像原因和中断说明"})
    if answer:
        reason = "答复审核意见: 已补充未录像原因，中断系更换电池"
        fixed_step = device.revision(step_id, 2, {**items["step"]["payload"], "av_reason": "执法记录仪故障"},
                                     parent_id=activity_id, reason=reason, media=[ref(photos[0])])
        fixed_stop = device.revision(stop_id, 2, {**items["stop"]["payload"], "explanation": "更换电池"},
                                     record_type="interruption", parent_id=activity_id, reason=reason)
        events = phone.get("/api/v1/sync/pull?cursor=0").get_json()["comments"]
        answered = device.revision(activity_id, 2, {**items["activity"]["payload"], "review_answers": [
            {"review_id": events[-1]["id"] if events else None, "answer": "已补充未录像原因，中断系更换电池"}]},
            record_type="activity", parent_id=case_id, reason=reason)
        # The push carries the phone's heartbeat, counted before it left: these three revisions and
        # the service's photo, whose original never uploads.
        assert all(r["status"] == "created" for r in push_results(sync_push(phone, device.batch(
            fixed_step, fixed_stop, answered,
            heartbeat={"unsynced_items": 4, "bytes_pending": 3_900_000, "oldest_unsynced_at": iso(T0)}))))
    sigs = {ref(sig_witness)["hash"]: "刘某", ref(sig_officer)["hash"]: "张伟"}
    return Scene(app, phone, device, lead, officer.user_id, case_id, activity_id, step_id, stop_id, service_id,
                 ref(photos[0])["hash"], sigs, items)


def test_chinese_pages_have_no_latin_words(sqlite_url, tmp_path):
    scene = build_scene(sqlite_url, tmp_path / "var")
    lead, phone = scene.lead, scene.phone
    try:
        pages = {path: lead.get(path) for path in (
            "/review/", "/review/queue", "/review/cases", f"/review/cases/{scene.case_id}", "/review/findings",
            "/review/findings?severity=error", "/review/deadlines", "/review/reports", "/review/records",
            f"/review/records/{scene.activity_id}", f"/review/records/{scene.service_id}",
            f"/review/media/sha-256/{scene.photo}/original", "/records/access", "/records/retention",
            "/records/mine")}
        # An archive refused for what blocks it: the message and the page it lands on.
        refused = post_form(lead, f"/review/cases/{scene.case_id}/archive", follow_redirects=True)
        pages["archive refused"] = refused
        for path in ("/", "/help", "/units", "/auth/demo"):
            pages[f"officer {path}"] = phone.get(path)
        pages["demo, signed out"] = scene.app.test_client().get("/auth/demo")
        found = {}
        for name, response in pages.items():
            assert response.status_code == 200, (name, response.status_code)
            words = latin_words(response.get_data(as_text=True))
            if words:
                found[name] = sorted(words)
        assert not found, found
    finally:
        scene.app.extensions["fieldapp.engine"].dispose()


def test_the_phones_string_table_in_chinese_has_no_latin_words(sqlite_url, tmp_path):
    """The capture screens take their words from this table (served in the page): it is checked
    the same way. Citations the phone shows beside them come from the catalogue."""
    app = make_app(sqlite_url, tmp_path / "var")
    try:
        with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
            from fieldapp.capture.strings import capture_strings

            # {n}, {count}: placeholders the phone fills with numbers, not words on the screen.
            found = {key: sorted(words) for key, text in capture_strings().items()
                     if (words := latin_words(f"<p>{re.sub(r'[{][a-z_]+[}]', '', text)}</p>"))}
        assert not found, found
    finally:
        app.extensions["fieldapp.engine"].dispose()
