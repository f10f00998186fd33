"""Screenshots of every officer screen (360×640) and every lead screen (360×640 and 1280×800).

    .venv/bin/python scripts/screenshots.py [OUT_DIR]      # default docs/screenshots/

Starts the app on a temporary SQLite database with the demo units, users and cases, signs in
through the demo sign-in (no passkey needed), captures a visit on the phone — a step with photos,
an interruption, 留置送达 in its five steps — lets it sync, then walks the lead's pages. One more
step is saved offline so the outbox has something to name. PNGs at device scale 1, to keep the
files small enough to commit. Needs Debian's chromium and fonts-noto-cjk (scripts/test installs
both); without the font, Chinese renders as boxes.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.capture_support import draw_signature, jpeg_with_exif  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.appfactory import make_app  # noqa: E402
from tests.support.flows import run_cli  # noqa: E402
from tests.support.live_server import serve  # noqa: E402

PHONE = {"viewport": {"width": 360, "height": 640}, "device_scale_factor": 1, "is_mobile": True,
         "has_touch": True, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}
DESK = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1, "locale": "zh-CN",
        "timezone_id": "Asia/Shanghai"}
PARTY = "临淄区齐都镇鲜果超市"  # a demo case of kind inspection (fieldapp/cli.py DEMO_CASES)


def check_fonts() -> None:
    listed = subprocess.run(["fc-list"], capture_output=True, text=True).stdout
    if "Noto Sans CJK" not in listed:
        sys.exit("fonts-noto-cjk is missing: Chinese would render as boxes (apt-get install fonts-noto-cjk)")


class Shooter:
    def __init__(self, out: Path):
        self.out = out
        self.files: list[Path] = []

    def __call__(self, page, name: str, full_page: bool = False) -> None:
        page.wait_for_timeout(150)  # let the last redraw and the status line settle
        path = self.out / f"{name}.png"
        # A 256-colour palette keeps a screenshot of flat UI at a fraction of the size, still sharp.
        image = Image.open(io.BytesIO(page.screenshot(full_page=full_page, animations="disabled")))
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        self.files.append(path)
        print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def demo_sign_in(page, base: str, name: str) -> None:
    page.goto(base + "/auth/demo")
    page.get_by_role("button", name=name).first.click()
    page.wait_for_url(base + "/")


def wait_ready(page) -> None:
    page.locator("body[data-capture-ready=true]").wait_for(state="attached")


def wait_synced(page, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while page.locator("#sync-status[data-state=synced]").count() == 0:
        if time.monotonic() > deadline:
            raise SystemExit("the phone did not finish syncing")
        if page.locator("#sync-now:not([hidden])").count():
            page.locator("#sync-now").click()
        page.wait_for_timeout(500)


def officer_screens(browser, base: str, shot: Shooter, photos: list[Path]) -> None:
    context = browser.new_context(**PHONE)
    context.set_default_timeout(20_000)
    page = context.new_page()
    demo_sign_in(page, base, "张伟")
    wait_ready(page)
    shot(page, "officer-01-cases")

    page.get_by_role("link", name="现场新建案件").click()
    page.get_by_label("当事人", exact=True).fill("临淄区某五金店")
    page.get_by_label("统一社会信用代码").fill("91110000600001760P")
    shot(page, "officer-02-new-case")

    page.goto(base + "/#/")
    page.get_by_test_id("case-link").filter(has_text=PARTY).click()
    page.get_by_role("link", name="开始现场执法活动").wait_for()
    shot(page, "officer-03-case")

    page.get_by_role("link", name="开始现场执法活动").click()
    # Officers are ticked from the unit's list (张伟, signed in, is ticked already).
    page.locator("[data-testid=officer-choice][data-cert-no='37030319002'] input[name=officer_pick]").check()
    page.locator("input[name=camera_id]").fill("DSJ-01")
    page.locator("input[name=place_text]").fill("桓公路 18 号店内")
    shot(page, "officer-04-new-activity")
    page.get_by_role("button", name="开始现场执法活动").click()
    page.get_by_test_id("recording-log").wait_for()
    activity_url = page.url

    page.get_by_role("link", name="添加环节").click()
    page.get_by_label("情况记录").fill("货架商品标签齐全，进货台账完整")
    page.set_input_files("[data-testid=photo-input]", [str(p) for p in photos])
    page.get_by_test_id("photo-saved").nth(len(photos) - 1).wait_for()
    page.locator("input[name=av][value=body_camera]").check()
    shot(page, "officer-05-step")
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()

    page.get_by_role("link", name="记录中断").click()
    page.get_by_label("原因").select_option("battery")
    page.locator("textarea[name=note]").fill("电池耗尽")
    shot(page, "officer-06-interruption")
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="恢复记录").click()
    page.get_by_label("恢复记录时的说明").fill("更换电池后继续录制")
    shot(page, "officer-07-resume")
    page.get_by_role("button", name="保存").click()
    page.get_by_test_id("recording-log").wait_for()

    # 留置送达, one step per screen.
    page.get_by_role("link", name="留置送达").click()
    page.locator("input[name=doc_name]").fill("行政处罚决定书")
    page.locator("input[name=doc_number]").fill("临市监罚〔2026〕18号")
    page.get_by_label("受送达人", exact=True).fill("王某")
    shot(page, "officer-08-service-1-document")
    page.get_by_role("button", name="下一步").click()
    page.get_by_label("拒收的言语").fill("不签，拿走")
    page.get_by_label("拒收的行为").fill("将文书推回，拒绝接收")
    shot(page, "officer-08-service-2-refusal")
    page.get_by_role("button", name="下一步").click()
    witness = page.get_by_test_id("witness")
    witness.nth(0).locator("input[name=witness_name]").fill("赵大妈")
    witness.nth(0).locator("input[name=witness_org]").fill("齐都镇某社区居委会")
    witness.nth(0).locator("select[name=witness_org_kind]").select_option("grassroots")
    witness.nth(0).locator("input[value=signed]").check()
    draw_signature(page, witness.nth(0).locator("canvas"))
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "officer-08-service-3-witnesses")
    page.get_by_role("button", name="添加见证人").click()
    witness.nth(1).locator("input[name=witness_name]").fill("孙某")
    witness.nth(1).locator("select[name=witness_org_kind]").select_option("other")
    witness.nth(1).locator("input[value=refused]").check()
    witness.nth(1).locator("input[name=witness_refused_reason]").fill("怕得罪老板")
    page.get_by_role("button", name="下一步").click()
    page.set_input_files("[data-testid=photo-input]", str(photos[0]))
    page.get_by_test_id("photo-saved").wait_for()
    page.locator("input[name=av][value=body_camera]").check()
    shot(page, "officer-08-service-4-photos")
    page.get_by_role("button", name="下一步").click()
    for i in range(page.get_by_test_id("officer-signature").count()):
        draw_signature(page, page.get_by_test_id("officer-signature").nth(i).locator("canvas"))
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "officer-08-service-5-signatures")
    page.get_by_role("button", name="保存留置送达记录").click()
    page.get_by_test_id("activity-items").wait_for()

    wait_synced(page)
    page.goto(activity_url)
    page.get_by_test_id("activity-items").wait_for()
    shot(page, "officer-09-activity")
    service = page.get_by_test_id("item-service")
    service.get_by_test_id("open-item").click()
    service.get_by_test_id("saved-item-view").wait_for()
    service.get_by_test_id("open-item").evaluate("el => { el.scrollIntoView({ block: 'start' }); window.scrollBy(0, -70); }")
    shot(page, "officer-10-saved-item")

    # Offline now, as at a site with no signal: what is saved waits in the outbox.
    context.set_offline(True)
    page.get_by_role("link", name="添加环节").click()
    page.get_by_label("情况记录").fill("抽取样品两份")
    page.locator("input[name=av][value=body_camera]").check()
    page.get_by_role("button", name="保存环节").click()
    page.get_by_test_id("activity-items").wait_for()
    page.goto(base + "/#/outbox")
    page.get_by_test_id("outbox-item").first.wait_for()
    shot(page, "officer-11-outbox")
    context.set_offline(False)
    page.goto(base + "/help")
    shot(page, "officer-12-help")
    context.close()


def lead_screens(browser, base: str, shot: Shooter, size: str, options: dict) -> None:
    context = browser.new_context(**options)
    context.set_default_timeout(20_000)
    page = context.new_page()
    demo_sign_in(page, base, "王强")
    pages = [("pending", "/review/"), ("queue", "/review/queue"), ("cases", "/review/cases"),
             ("findings", "/review/findings"), ("deadlines", "/review/deadlines"),
             ("reports", "/review/reports"), ("records", "/review/records")]
    for name, path in pages:
        page.goto(base + path)
        shot(page, f"lead-{size}-{name}")
    # One case's timeline, and one record as the lead reviews it.
    page.goto(base + "/review/cases")
    case_link = page.locator("a[href*='/review/cases/']").filter(has_text=PARTY).first
    if case_link.count():
        case_link.click()
        case_url = page.url
        shot(page, f"lead-{size}-case-timeline")
        # Archiving: a page of its own where there is one, else the case's archive section.
        if context.request.get(base + "/review/archive").ok:
            page.goto(base + "/review/archive")
        else:
            page.goto(case_url + "#archive-blockers")
        shot(page, f"lead-{size}-archive")
    page.goto(base + "/review/records")
    links = page.locator("a[href*='/review/records/']")
    record_link = links.filter(has_text="现场执法活动").first if links.filter(has_text="现场执法活动").count() else links.first
    if record_link.count():
        record_link.click()
        shot(page, f"lead-{size}-record")
    context.close()


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    check_fonts()
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="fieldapp-shots-"))
    database = f"sqlite:///{tmp / 'fieldapp.sqlite3'}"
    server, app = serve(lambda origin: make_app(database, tmp / "var", origin=origin, demo=True))
    try:
        for command in ("init-db", "seed-demo"):
            result = run_cli(app, command)
            if result.exit_code:
                raise SystemExit(f"{command} failed: {result.output}")
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*.png"):
            old.unlink()
        photos = [tmp / f"photo{i}.jpg" for i in range(2)]
        for i, photo in enumerate(photos):
            jpeg_with_exif(photo, seed=i + 1, size=(800, 600))
        shot = Shooter(out)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                officer_screens(browser, server.url, shot, photos)
                lead_screens(browser, server.url, shot, "phone", PHONE)
                lead_screens(browser, server.url, shot, "desk", DESK)
            finally:
                browser.close()
        total = sum(f.stat().st_size for f in shot.files)
        print(f"{len(shot.files)} screenshots, {total / 1024:.0f} KB, in {time.monotonic() - started:.0f} s")
    finally:
        server.stop()
        app.extensions["fieldapp.engine"].dispose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
