"""An admin imports a broken phone's export file: signatures verified, idempotent with sync."""
from __future__ import annotations

import io
import json

from sqlalchemy import func, select

from fieldapp import db
from fieldapp.models import Revision
from tests.support.flows import demo_sign_in, post_form, push_results as results, run_cli, seed_user, sync_push as push
from tests.support.soft_device import SoftDevice


def export_file(tmp_path, revisions) -> str:
    path = tmp_path / "export.json"
    data = {"format": "fieldapp-unsynced-export", "format_version": 1, "exported_at": "2026-11-27T02:00:00Z",
            "revisions": [{"key": f"{r['record_id']}:{r['revision']}", **r} for r in revisions], "media": []}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def stored(app) -> int:
    with app.app_context():
        return db.session().execute(select(func.count()).select_from(Revision)).scalar_one()


def test_import_is_verified_and_idempotent_with_normal_sync(sync_app, tmp_path):
    app, client, device, _ = sync_app
    first = device.revision(payload={"notes": "手机摔坏前的记录"})
    second = device.revision(record_id=first["record_id"], revision=2, payload={"notes": "补充"})
    tampered = device.revision(payload={"notes": "原文"})
    tampered["payload"] = {"notes": "篡改"}
    stranger = SoftDevice(author=device.author, catalogue_version=device.catalogue_version).revision()
    path = export_file(tmp_path, [second, first, tampered, stranger])  # order on disk does not matter

    result = run_cli(app, "import-export", path)
    assert result.exit_code == 0, result.output
    assert "created 2" in result.output and "rejected 2" in result.output
    assert "bad_signature" in result.output and "not registered" in result.output
    again = run_cli(app, "import-export", path)
    assert "duplicate 2" in again.output and stored(app) == 2
    # The phone comes back to life and syncs the same revisions: nothing is stored twice.
    assert [r["status"] for r in results(push(client, device.batch(first, second)))] == ["duplicate", "duplicate"]
    assert stored(app) == 2


def test_a_file_that_is_not_an_export_is_refused_clearly(sync_app, tmp_path):
    app, *_ = sync_app
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}', encoding="utf-8")
    result = run_cli(app, "import-export", str(bad))
    assert result.exit_code != 0 and "not a fieldapp export" in result.output


def test_admin_imports_through_the_devices_page(sync_app, tmp_path):
    app, client, device, _ = sync_app
    admin = seed_user(app, "管理员", "ADMIN-9", "ZF1", "admin")
    admin_client = app.test_client()
    demo_sign_in(admin_client, admin.user_id)
    path = export_file(tmp_path, [device.revision()])
    with open(path, "rb") as fh:
        page = post_form(admin_client, "/admin/import", {"file": (io.BytesIO(fh.read()), "export.json")},
                         content_type="multipart/form-data", follow_redirects=True)
    assert page.status_code == 200 and "已导入" in page.get_data(as_text=True)
    assert stored(app) == 1
    listing = admin_client.get("/admin/devices").get_data(as_text=True)
    assert "测试手机" in listing
