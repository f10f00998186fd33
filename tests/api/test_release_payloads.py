"""Old phones are welcome: revisions exactly as each recorded release's phone made and signed them
(captured from that release's own code into tests/fixtures/releases/<version>/) are accepted by
today's server, judged under the catalogue version they name, once, and answered duplicate after."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.accounts import create_unit, parse_roles
from fieldapp.models import Revision, User
from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, post_json, sync_push
from tests.support.releases import recorded

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "releases"


def _first_release_of_each_payload_shape() -> list[str]:
    """Releases that send the same payload shape send the same revisions (their record code is the
    same); the capture from the first release of each shape stands for all of them."""
    firsts: dict[int, str] = {}
    for release in recorded():
        firsts.setdefault(release.payload_shape, release.version)
    return list(firsts.values())


@pytest.mark.parametrize("version", _first_release_of_each_payload_shape())
def test_each_recorded_release_s_revisions_are_accepted(db_url, tmp_path, version):
    sent = json.loads((FIXTURES / version / "revisions.json").read_text(encoding="utf-8"))
    app = make_app(db_url, tmp_path / "var", demo=True)
    with app.app_context(), db.transaction():
        unit = create_unit("ZF1", "综合行政执法大队一中队")
        # The officer the release's phone signed for: the same id, as on the server it talked to.
        officer = User(id=uuid.UUID(sent["user_id"]), name="张伟", cert_no="37030300501", unit=unit,
                       webauthn_handle=b"\x01" * 32)
        officer.set_roles(parse_roles("officer"))
        db.session().add(officer)
    phone = app.test_client()
    demo_sign_in(phone, sent["user_id"])
    phone.get("/api/v1/catalogue")  # publishes the built-in catalogue, as init-db does
    registered = post_json(phone, "/api/v1/devices", {"device_id": str(uuid.UUID(sent["device_id"])),
                                                      "public_key": sent["public_key"], "label": version})
    assert registered.status_code == 201, registered.get_json()
    batch = {"device_id": str(uuid.UUID(sent["device_id"])), "items": sent["revisions"],
             "heartbeat": {"app_version": version}}
    first = sync_push(phone, batch).get_json()["results"]
    assert [r["status"] for r in first] == ["created"] * len(sent["revisions"]), first
    again = sync_push(phone, batch).get_json()["results"]
    assert [r["status"] for r in again] == ["duplicate"] * len(sent["revisions"])
    with app.app_context():
        stored = db.session().execute(select(Revision.catalogue_version)).scalars().all()
    assert stored == [sent["catalogue_version"]] * len(sent["revisions"])
    app.extensions["fieldapp.engine"].dispose()
