"""A bureau for the records-management tests (arts. 26, 29, 31): an enforcement unit that collected
a photo on a case, another enforcement unit, the policy section and the leadership, with every role
art. 29 names, each signed in on their own client."""
from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from PIL import Image
from sqlalchemy import select

from fieldapp import db
from fieldapp.accounts import create_unit, create_user, parse_roles, update_user
from fieldapp.models import Unit, User
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, post_json, push_results, sync_push
from tests.support.soft_device import SoftDevice

T0 = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
PEOPLE = (  # name, cert, unit code, roles
    ("张伟", "37030300001", "ZF1", "officer"),
    ("李队长", "37030300009", "ZF1", "lead"),
    ("孙管理", "37030300008", "ZF1", "records_admin"),
    ("他队长", "37030300098", "ZF2", "lead"),
    ("他队员", "37030300097", "ZF2", "officer"),
    ("法规科", "37030300070", "FG", "supervisor"),
    ("分管局长", "37030300060", "LD", "division_head"),
    ("局长", "37030300050", "LD", "bureau_head"),
    ("别的分管", "37030300061", "LD", "division_head"),
)
UNITS = (("ZF1", "一中队", None), ("ZF2", "二中队", None), ("FG", "政策法规科", "policy"), ("LD", "局领导", "leadership"))


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def detailed_jpeg(seed: int = 1, size=(320, 240)) -> bytes:
    """A photo with fine detail everywhere, so a blurred rectangle shows in its pixels."""
    import random
    rng = random.Random(seed)
    picture = Image.new("RGB", size)
    picture.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size[0] * size[1])])
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=95)
    return out.getvalue()


@dataclass
class World:
    app: object
    users: dict[str, uuid.UUID]
    units: dict[str, uuid.UUID]
    clients: dict[str, object] = field(default_factory=dict)
    case_id: str = ""
    activity_id: str = ""
    photo: bytes = b""
    digest: str = ""
    device: SoftDevice | None = None

    def client(self, name: str):
        return self.clients[name]

    def push_photo(self, data: bytes, *, case_id: str | None = None, activity_id: str | None = None) -> str:
        """The officer's phone sends a step with this photo, then its original."""
        digest = hashlib.sha256(data).hexdigest()
        phone = self.clients["张伟"]
        step = self.device.revision(parent_id=activity_id or self.activity_id, payload={
            "activity_id": activity_id or self.activity_id, "case_id": case_id or self.case_id,
            "step_type": "penalty_onsite_inspection", "at": iso(T0 + timedelta(minutes=5)), "av_recorded": True},
            media=[{"alg": "sha-256", "hash": digest, "size": len(data), "type": "image/jpeg"}])
        push_results(sync_push(phone, self.device.batch(step)))
        return self.upload(data)

    def upload(self, data: bytes) -> str:
        """The phone's upload of an original its records name."""
        digest = hashlib.sha256(data).hexdigest()
        phone = self.clients["张伟"]
        begun = post_json(phone, "/api/v1/media/uploads", {"alg": "sha-256", "hash": digest, "size": len(data),
                                                           "type": "image/jpeg"}).get_json()
        if begun.get("status") != "stored":
            phone.put(f"/api/v1/media/uploads/{begun['upload_id']}?offset=0", data=data,
                      headers={"X-CSRFToken": phone.get("/api/v1/session").get_json()["csrf_token"],
                               "Content-Type": "application/octet-stream"})
            assert post_json(phone, f"/api/v1/media/uploads/{begun['upload_id']}/complete").status_code == 200
        return digest

    def new_case(self) -> tuple[str, str]:
        case_id, activity_id = str(uuid.uuid4()), str(uuid.uuid4())
        case = self.device.revision(case_id, record_type="case", payload={
            "kind": "penalty", "party_name": "临淄区齐都镇鲜果超市", "flags": []})
        activity = self.device.revision(activity_id, record_type="activity", parent_id=case_id, payload={
            "case_id": case_id, "arrived_at": iso(T0), "departed_at": iso(T0 + timedelta(hours=1)),
            "officers": [{"name": "张伟", "cert_no": "37030300001", "cert_shown": True}],
            "continuous_required": False, "place": {"source": "typed", "text": "齐都镇"}})
        push_results(sync_push(self.clients["张伟"], self.device.batch(case, activity)))
        return case_id, activity_id


def build(db_url, var_dir, **overrides) -> World:
    return populate(make_app(db_url, var_dir, demo=True, **overrides))


def populate(app) -> World:
    """The bureau in ``app`` (made by ``make_app``, or served by a live server for the browser)."""
    users, units = {}, {}
    with app.app_context(), db.transaction():
        for code, name, kind in UNITS:
            units[code] = create_unit(code, name, kind).id
        for name, cert, code, roles in PEOPLE:
            unit = db.session().get(Unit, units[code])
            users[name] = create_user(name, cert, unit, parse_roles(roles)).id
        update_user(db.session().get(User, users["分管局长"]), overseen_units=[db.session().get(Unit, units["ZF1"])])
        update_user(db.session().get(User, users["别的分管"]), overseen_units=[db.session().get(Unit, units["ZF2"])])
    world = World(app, users, units)
    for name in users:
        world.clients[name] = app.test_client()
        demo_sign_in(world.clients[name], users[name])
    phone = world.clients["张伟"]
    version = phone.get("/api/v1/catalogue").get_json()["version"]
    world.device = SoftDevice(author=str(users["张伟"]), catalogue_version=version)
    assert post_json(phone, "/api/v1/devices", {"device_id": world.device.device_id,
                                                "public_key": world.device.public_key_b64}).status_code == 201
    world.case_id, world.activity_id = world.new_case()
    world.photo = detailed_jpeg()
    world.digest = world.push_photo(world.photo)
    return world


def uid(world: World, name: str) -> uuid.UUID:
    return world.users[name]


def one(app, stmt):
    with app.app_context():
        value = db.session().execute(stmt).scalar_one_or_none()
        db.session().commit()
        return value


def rows(app, stmt) -> list:
    with app.app_context():
        found = list(db.session().execute(stmt).scalars())
        db.session().commit()
        return found


__all__ = ["World", "build", "populate", "detailed_jpeg", "iso", "one", "rows", "select", "T0", "uid"]
