"""Fixtures for the sync API tests."""
from __future__ import annotations

import pytest

from tests.support.appfactory import make_app
from tests.support.flows import demo_sign_in, post_json, seed_user
from tests.support.soft_device import SoftDevice


@pytest.fixture
def sync_app(db_url, tmp_path):
    app = make_app(db_url, tmp_path / "var", demo=True)
    client = app.test_client()
    seeded = seed_user(app, "张伟", "C-1", "ZF1")
    demo_sign_in(client, seeded.user_id)
    catalogue = client.get("/api/v1/catalogue").get_json()  # publishes the built-in version
    device = SoftDevice(author=str(seeded.user_id), catalogue_version=catalogue["version"])
    registered = post_json(client, "/api/v1/devices", {"device_id": device.device_id,
                                                       "public_key": device.public_key_b64, "label": "测试手机"})
    assert registered.status_code == 201, registered.get_json()
    yield app, client, device, seeded
    app.extensions["fieldapp.engine"].dispose()


