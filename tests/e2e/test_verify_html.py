"""The evidence package's browser verifier (decision record 015), in Debian's Chromium with the
network off: verify.html opened from file://, the package folder picked with the folder picker. An
untouched package passes item by item; each tamper fails the right item or part with a reason naming
it; and on every package the page agrees with verify.py — the same verdicts, the same things named.
Its ports of the chain's Python encoding and of JCS are held byte for byte to the server's code."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fieldapp.records import chain
from fieldapp.sync.signing import NotCanonicalizable, canonical_bytes
from tests.e2e.conftest import wait_until
from tests.support import evidence_fixture as ef

pytestmark = pytest.mark.e2e

SECTIONS = ("manifest", "files", "chain", "checkpoints")


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    return ef.build(tmp_path_factory.mktemp("evidence") / "证据包")


@pytest.fixture(scope="module")
def offline(browser):
    """A context with no network: offline, and anything that is not a file:// URL aborted and kept."""
    context = browser.new_context(locale="zh-CN")
    context.set_default_timeout(15_000)
    context.set_offline(True)
    attempts: list[str] = []

    def refuse(route):
        attempts.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith("file:"), refuse)
    context.on("request", lambda request: None if request.url.startswith("file:") else attempts.append(request.url))
    yield context, attempts
    context.close()


@pytest.fixture(scope="module")
def verifier(offline, evidence):
    """One page of verify.html (opened from the untouched package), re-run on each picked folder."""
    context, attempts = offline
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto((evidence.root / "verify.html").as_uri())
    yield Verifier(page)
    assert not errors, errors
    assert not attempts, f"the page tried the network: {attempts}"


class Verifier:
    def __init__(self, page):
        self.page = page

    def _after(self, action) -> dict:
        """Do ``action`` (a pick), wait until the page has finished a run started by it, return its report."""
        before = int(self.page.evaluate("document.body.dataset.run"))
        action()
        wait_until(self.page, f"document.body.dataset.state === 'done' && Number(document.body.dataset.run) > {before}")
        return self.page.evaluate(
            "JSON.parse(JSON.stringify(globalThis.verifierReport, (k, v) => (k === 'info' ? undefined : v)))")

    def pick(self, folder: Path) -> dict:
        return self._after(lambda: self.page.get_by_test_id("folder-input").set_input_files(str(folder)))

    def pick_key(self, key: Path) -> dict:
        return self._after(lambda: self.page.get_by_test_id("key-input").set_input_files(str(key)))

    def verdict(self, testid: str) -> str:
        return self.page.get_by_test_id(testid).get_attribute("data-verdict")

    def text(self, testid: str) -> str:
        return self.page.get_by_test_id(testid).inner_text()


def python_report(folder: Path, *extra: str) -> dict:
    out = subprocess.run([sys.executable, "-I", str(folder / "verify.py"), str(folder), "--json", *extra],
                         capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert out.returncode in (0, 1), out.stdout + out.stderr
    return json.loads(out.stdout)


def named(report: dict) -> dict:
    """What each part and item names as wrong, and each item's verdict: what both verifiers must agree on."""
    out = {key: sorted({f["what"] for f in report[key]["faults"]}) for key in SECTIONS}
    for item in report["items"]:
        out[f"item {item['item']}"] = (item["ok"], sorted({r["what"] for r in item["reasons"]}))
    out["ok"] = report["ok"]
    return out


def agree(page_report: dict, folder: Path, *extra: str) -> None:
    assert named(page_report) == named(python_report(folder, *extra))


def test_an_untouched_package_passes_offline(verifier, evidence):
    report = verifier.pick(evidence.root)
    assert verifier.verdict("verdict-overall") == "pass", report
    assert "通过" in verifier.text("verdict-overall") and "不通过" not in verifier.text("verdict-overall")
    for number in (1, 2, 3):
        assert verifier.verdict(f"verdict-item-{number}") == "pass"
        assert verifier.text(f"verdict-item-{number}").startswith("通过")
    for key in SECTIONS:
        assert verifier.verdict(f"verdict-{key}") == "pass"
    assert report["files_checked"] == len(evidence.manifest["files"]) and report["events"] == 5
    assert verifier.page.get_by_test_id("progress").get_attribute("value") == "1000"
    # SHA-256 and SM3 as Python computes them, for every file.
    listed = {f["path"]: (f["sha256"], f["sm3"]) for f in evidence.manifest["files"]}
    assert {f["path"]: (f["sha256"], f["sm3"]) for f in report["file_list"]} == listed
    agree(report, evidence.root)


def _photo_byte(pkg, evidence):
    ef.flip_byte(pkg, evidence.item(1)["original"])
    return "item-1", evidence.item(1)["original"], "SHA-256 与清单不符"


def _revision_payload(pkg, evidence):
    ef.change_revision_payload(pkg, evidence.item(1)["record"]["path"])
    return "item-1", evidence.item(1)["record"]["path"], "设备签名不成立"


def _chain_event(pkg, evidence):
    ef.change_event(pkg, 6, detail={"rows": []})
    return "chain", "seq 6, event 1006", "内容与其哈希不符"


def _removed_file(pkg, evidence):
    ef.remove_file(pkg, evidence.item(2)["preview"])
    return "item-2", evidence.item(2)["preview"], "缺少文件"


def _added_file(pkg, evidence):
    ef.add_file(pkg, "previews/004-补充-预览.jpg")
    return "files", "previews/004-补充-预览.jpg", "多出的文件"


def _checkpoint_signature(pkg, evidence):
    ef.break_checkpoint_signature(pkg, 1)
    return "checkpoints", "checkpoint B (seq 8)", "签名与声明不符"


@pytest.mark.parametrize("tamper", [_photo_byte, _revision_payload, _chain_event, _removed_file, _added_file,
                                    _checkpoint_signature], ids=lambda f: f.__name__.strip("_"))
def test_each_tamper_is_named_and_both_verifiers_agree(verifier, evidence, tmp_path, tamper):
    pkg = evidence.copy(tmp_path / "副本")
    part, what, words = tamper(pkg, evidence)
    report = verifier.pick(pkg)
    assert verifier.verdict("verdict-overall") == "fail"
    assert verifier.text("verdict-overall").startswith("结论 / result: 不通过")
    assert verifier.verdict(f"verdict-{part}") == "fail"
    reasons = verifier.text(f"reasons-{part}")
    assert any(what in line and words in line for line in reasons.splitlines()), reasons
    if part == "chain":
        # Item 2 names that event; every item fails with the chain.
        assert "seq 6" in verifier.text("reasons-item-2")
        assert all(verifier.verdict(f"verdict-item-{n}") == "fail" for n in (1, 2, 3))
    if part == "files":
        assert all(verifier.verdict(f"verdict-item-{n}") == "pass" for n in (1, 2, 3))
    agree(report, pkg)


def test_a_stretch_from_the_chains_start_passes(verifier, evidence, tmp_path):
    pkg = evidence.copy(tmp_path / "副本")
    ef.start_from_genesis(pkg, evidence)
    report = verifier.pick(pkg)
    assert verifier.verdict("verdict-overall") == "pass" and report["events"] == 8
    agree(report, pkg)


def test_a_key_other_than_the_published_one_fails(verifier, evidence, tmp_path):
    pkg = evidence.copy(tmp_path / "副本")
    verifier.pick(pkg)
    other = tmp_path / "另一把公钥.pem"
    other.write_bytes(ef.public_pem(Ed25519PrivateKey.generate()))
    report = verifier.pick_key(other)
    assert verifier.verdict("verdict-overall") == "fail" and verifier.verdict("verdict-checkpoints") == "fail"
    assert "随包服务器公钥与公布的公钥不同" in verifier.text("reasons-checkpoints")
    assert "不是用公布的公钥签署的" in verifier.text("reasons-checkpoints")
    agree(report, pkg, "--public-key", str(other))
    published = tmp_path / "公布的公钥.pem"
    published.write_bytes(evidence.published_pem())
    report = verifier.pick_key(published)
    assert verifier.verdict("verdict-overall") == "pass" and not report["warnings"]
    agree(report, pkg, "--public-key", str(published))


NO_ED25519 = """(() => {
  const importKey = crypto.subtle.importKey.bind(crypto.subtle);
  crypto.subtle.importKey = (format, data, algorithm, ...rest) =>
    (algorithm && (algorithm.name || algorithm)) === "Ed25519"
      ? Promise.reject(new DOMException("Unrecognized name", "NotSupportedError"))
      : importKey(format, data, algorithm, ...rest);
})();"""


def test_a_browser_without_ed25519_says_not_checkable_instead_of_passing(offline, evidence, tmp_path):
    context, _ = offline
    page = context.new_page()
    page.add_init_script(NO_ED25519)
    page.goto((evidence.root / "verify.html").as_uri())
    older = Verifier(page)
    report = older.pick(evidence.root)
    assert older.verdict("verdict-overall") == "unchecked" and not report["ok"]
    assert older.text("verdict-overall").startswith("结论 / result: 无法核验")
    assert older.verdict("verdict-checkpoints") == "unchecked"
    assert "不支持 Ed25519" in older.text("reasons-checkpoints")
    assert all(older.verdict(f"verdict-item-{n}") == "unchecked" for n in (1, 2, 3))
    # What can be checked still is: a changed original fails outright.
    pkg = evidence.copy(tmp_path / "副本")
    ef.flip_byte(pkg, evidence.item(2)["original"])
    older.pick(pkg)
    assert older.verdict("verdict-overall") == "fail" and older.verdict("verdict-item-2") == "fail"
    assert older.verdict("verdict-item-1") == "unchecked"
    page.close()


EVENT_DETAILS = [
    None,
    {"rows": [{"key": "cases:7", "hash": "b" * 64, "op": "insert"}], "n": 1},
    # Python sorts keys by code point, JCS by UTF-16 unit: U+1F600 after U+FB33 here.
    {"\U0001F600": 1, "\ufb33": 2, "é": "x\u2028\x7f\x00\"\\/\n", "": [], "a": {"z": None, "b": [True, False]}},
    {"f": [0.1, 1e-05, 0.0001, 1e16, 1e15, 1.5e300, 5e-324, -0.0, 1 / 3, 1e22, 9.999e15, -1.25e-07, 2.5],
     "big": 2**70 + 3, "neg": -12},
    "a stored text detail, hashed as it stands",
]
TIMES = ["2026-01-01T00:00:00.123456+00:00", "2026-01-01T08:00:00.5+08:00", "2026-03-01 00:30:00Z", "2026-01-01",
         "2024-02-29T23:59:59.9999999-05:30", "0001-01-01T00:00:00+00:00", "2026-01-01T00:00:00+08:00:30.5"]


def test_the_chain_and_jcs_ports_match_the_servers_bytes(verifier):
    lines, expected = [], []
    for i, at in enumerate(TIMES):
        detail = EVENT_DETAILS[i % len(EVENT_DETAILS)]
        fields = dict(seq=i + 1, id=77 + i, actor="user:张伟", action="change", tbl="cases", row_key="k\t1",
                      row_hash=None if i % 2 else "a" * 64)
        lines.append(json.dumps({**fields, "at": at, "detail": detail, "prev_hash": "0" * 64, "hash": "0" * 64},
                                ensure_ascii=False))
        expected.append(chain.event_bytes(fields["seq"], fields["id"], datetime.fromisoformat(at), fields["actor"],
                                          fields["action"], fields["tbl"], fields["row_key"], fields["row_hash"],
                                          detail).decode())
    got = verifier.page.evaluate(
        "lines => lines.map(l => new TextDecoder().decode(fieldappVerify.parseEvent(l).body))", lines)
    assert got == expected

    values = ['{"b":[1,{"d":"五","c":-3}],"a":"甲","\\ud83d\\ude00":1,"\\ufb33":2}', '{"n":9007199254740991}',
              '{"n":9007199254740992}', '{"f":1.0}', '{"f":1e2}', '"\\u2028\\u0000"', '[null,true,false,-0]']
    got = verifier.page.evaluate("""values => values.map(v => {
        try { return fieldappVerify.canonicalize(fieldappVerify.signedValue(fieldappVerify.parseJSON(v))); }
        catch (e) { return null; } })""", values)
    for text, js in zip(values, got, strict=True):
        try:
            python = canonical_bytes(json.loads(text)).decode()
        except NotCanonicalizable:
            python = None
        assert js == python, text
