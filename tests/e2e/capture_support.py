"""Helpers for capture-flow browser tests: JPEGs with EXIF, reading IndexedDB, drawing signatures."""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from PIL import Image

READ_STORE = """async (store) => {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open("fieldapp"); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  return new Promise((resolve, reject) => {
    const r = db.transaction(store).objectStore(store).getAll();
    r.onsuccess = () => resolve(r.result.map((row) => { const copy = { ...row }; delete copy.blob; delete copy.preview; return copy; }));
    r.onerror = () => reject(r.error);
  });
}"""

# The SHA-256 of the bytes actually stored, recomputed from the blob (not the stored hash field).
STORED_MEDIA_HASHES = """async () => {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open("fieldapp"); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  const rows = await new Promise((resolve, reject) => {
    const r = db.transaction("media").objectStore("media").getAll();
    r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  const out = [];
  for (const row of rows) {
    const digest = await crypto.subtle.digest("SHA-256", await row.blob.arrayBuffer());
    out.push({ key: row.hash, type: row.type, actual: Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("") });
  }
  return out;
}"""


def jpeg_with_exif(path: Path, *, seed: int, size=(1600, 1200), taken="2026:11:20 09:15:00",
                   lat=(36, 49, 30.5), lon=(118, 18, 15.25), noisy: bool = False) -> str:
    """A real JPEG with DateTimeOriginal and a GPS fix; returns its SHA-256.

    ``noisy`` fills it with random pixels, which compress as badly as a real photo (MBs, not KBs).
    """
    if noisy:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (40 + seed * 30 % 200, 90, 140))
        for x in range(0, size[0], 97):  # some structure so JPEG sizes differ
            image.paste((seed * 50 % 255, x % 255, 60), (x, 0, x + 20, size[1]))
    exif = Image.Exif()
    exif[0x010F] = "HUAWEI"
    exif[0x0110] = "TEST-PHONE"
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x9003] = taken
    exif_ifd[0x9011] = "+08:00"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", lat, "E", lon
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, exif=exif)
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def draw_signature(page, canvas_locator) -> None:
    canvas_locator.scroll_into_view_if_needed()
    box = canvas_locator.bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + w * 0.1, y + h * 0.6)
    page.mouse.down()
    for i in range(1, 12):
        page.mouse.move(x + w * (0.1 + 0.07 * i), y + h * (0.6 - 0.3 * ((i % 3) - 1)))
    page.mouse.up()


def sign_in_fresh_officer(page, authenticators, server, app, cert_no="37030300401", offline=True):
    """Enrol a new officer with a virtual platform authenticator; lands on the capture app, then (by
    default) loses signal, as at an inspection site, so that what is saved stays in the outbox."""
    from fieldapp.auth import enrollment
    from tests.support.flows import issue_code, seed_user

    authenticators.add("internal")
    seeded = seed_user(app, "张伟", cert_no, "ZF1")
    page.goto(enrollment.link(server.url, issue_code(app, seeded.user_id)))
    page.get_by_role("button", name="使用本机（指纹、面容或锁屏密码）").click()
    page.wait_for_url("**/")
    page.locator("body[data-capture-ready=true]").wait_for(state="attached")
    if offline:
        page.context.set_offline(True)


def start_visit(page, party="临淄区齐都镇鲜果超市", camera="DSJ-01") -> str:
    """Open a case and start an activity with one body camera; returns the activity's URL."""
    page.get_by_role("link", name="现场新建案件").click()
    page.get_by_label("执法类别").select_option("inspection")
    page.get_by_label("当事人", exact=True).fill(party)
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="开始现场执法活动").click()
    page.locator("input[name=camera_id]").fill(camera)
    page.get_by_role("button", name="开始现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()
    return page.url


def sign_in_with_new_passkey(context, page, server, app, cert_no="37030300301", *, name="张伟",
                             roles="officer", wait_offline_ready=True) -> None:
    """Enrol a passkey on a virtual platform authenticator (for a page not made by the fixtures,
    e.g. one of a persistent profile, or a second user), and wait until the app can run offline."""
    from fieldapp.auth import enrollment
    from tests.e2e.conftest import VirtualAuthenticators, wait_until
    from tests.support.flows import issue_code, seed_user

    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    VirtualAuthenticators(cdp).add("internal")
    seeded = seed_user(app, name, cert_no, "ZF1", roles=roles)
    page.goto(enrollment.link(server.url, issue_code(app, seeded.user_id)))
    page.get_by_role("button", name="使用本机（指纹、面容或锁屏密码）").click()
    page.wait_for_url("**/")
    if not wait_offline_ready:
        return
    page.locator("body[data-capture-ready=true]").wait_for(state="attached")
    wait_until(page, "navigator.serviceWorker.controller !== null")
    wait_until(page, "caches.open('pages-v1').then(c => c.match('/')).then(r => !!r)")


def answer_av(scope, choice: str = "body_camera", *, camera: str | None = None, reason: str = "") -> None:
    """Answer the audio/video question of a step or a 留置送达 (none is pre-selected): "clip",
    "body_camera" (the activity's first camera unless ``camera`` is given) or "not_recorded"."""
    scope.locator(f"input[name=av][value={choice}]").check()
    if choice == "body_camera" and camera is not None:
        scope.locator("select[name=av_camera_id]").select_option(camera)
    if choice == "not_recorded":
        scope.locator("input[name=av_reason]").fill(reason or "记录仪故障")


def add_step_with_photo(page, photo) -> None:
    """Add a step of the first type with one photo, wait for the photo's 已保存, answer that it was
    recorded on the activity's body camera, save the step."""
    page.get_by_role("link", name="添加环节").click()
    page.set_input_files("[data-testid=photo-input]", str(photo))
    page.get_by_test_id("photo-saved").wait_for()
    answer_av(page)
    page.get_by_role("button", name="保存环节").click()
