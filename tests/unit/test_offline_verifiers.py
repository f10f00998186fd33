"""The evidence package's Python verifier (decision record 015): `verify.py` runs isolated from the
project (stdlib + cryptography + the two helper copies), passes an untouched package and names
every tamper — a changed byte of an original, a changed manifest hash, a changed revision, a changed
chain event, a removed or added file, a broken checkpoint signature, a key other than the published
one. The browser verifier is held to the same package in tests/e2e/test_verify_html.py."""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fieldapp.records.chain import event_bytes, link
from tests.support import evidence_fixture as ef

REPO = Path(__file__).resolve().parents[2]
VERIFY = REPO / "fieldapp/documents/offline/verify.py"


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    return ef.build(tmp_path_factory.mktemp("evidence") / "证据包")


@pytest.fixture
def pkg(evidence, tmp_path):
    return evidence.copy(tmp_path / "副本")


def run(folder: Path, *extra: str) -> subprocess.CompletedProcess:
    # -I: no PYTHONPATH, no user site, no script folder or cwd on sys.path — only what the script
    # brings (the fieldapp_*.py copies next to it) and the interpreter's own packages.
    return subprocess.run([sys.executable, "-I", str(folder / "verify.py"), str(folder), *extra],
                          cwd=folder.parent, capture_output=True, text=True, encoding="utf-8", timeout=60)


def report(folder: Path, *extra: str, code: int = 1) -> dict:
    out = run(folder, "--json", *extra)
    assert out.returncode == code, out.stdout + out.stderr
    return json.loads(out.stdout)


def item(rep: dict, number: int) -> dict:
    return next(i for i in rep["items"] if i["item"] == number)


def named(reasons: list[dict], what: str, *words: str) -> bool:
    return any(r["what"] == what and all(w in r["problem"] for w in words) for r in reasons)


def passing(rep: dict) -> list[int]:
    return [i["item"] for i in rep["items"] if i["ok"]]


def test_the_verifier_needs_nothing_of_the_project():
    tree = ast.parse(VERIFY.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) == {"cryptography", "fieldapp_chain", "fieldapp_signing"}
    assert not (VERIFY.parent / "__init__.py").exists()


def test_an_untouched_package_passes(evidence, pkg, tmp_path):
    shipped = run(pkg)
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert "通过" in shipped.stdout and "PASSED" in shipped.stdout and "不通过" not in shipped.stdout
    assert "the checkpoint key came with the package" in shipped.stdout
    for number in (1, 2, 3):
        assert f"项目 {number} / item {number}" in shipped.stdout
    (tmp_path / "published.pem").write_bytes(evidence.published_pem())
    rep = report(pkg, "--public-key", str(tmp_path / "published.pem"), code=0)
    assert rep["ok"] and not rep["warnings"] and passing(rep) == [1, 2, 3]
    assert rep["files_checked"] == len(evidence.manifest["files"]) and rep["events"] == 5
    assert "body-camera footage" in item(rep, 3)["notes"][0]
    assert not (pkg / "__pycache__").exists()


def test_a_changed_byte_of_an_original_is_named(evidence, pkg):
    photo = evidence.item(1)["original"]
    ef.flip_byte(pkg, photo)
    out = run(pkg)
    assert out.returncode == 1 and "不通过" in out.stdout and "FAILED" in out.stdout
    assert f"{photo}: SHA-256 与清单不符" in out.stdout
    rep = report(pkg)
    reasons = item(rep, 1)["reasons"]
    assert named(reasons, photo, "SHA-256 与清单不符") and named(reasons, photo, "SM3 与清单不符")
    # Even with the manifest rewritten to match, the phone's signature names the old bytes.
    assert named(reasons, photo, "签名的修订未列出该原件的 SHA-256")
    assert passing(rep) == [2, 3] and named(rep["files"]["faults"], photo, "SHA-256")


def test_a_changed_manifest_hash_is_named(evidence, pkg):
    video = evidence.item(2)["original"]
    ef.change_listed_hash(pkg, video, "sha256")
    rep = report(pkg)
    assert named(item(rep, 2)["reasons"], video, "SHA-256 与清单不符")
    assert not named(item(rep, 2)["reasons"], video, "签名的修订")   # the bytes are still what the phone signed
    assert passing(rep) == [1, 3]
    ef.change_listed_hash(pkg, evidence.item(3)["original"], "sm3")
    assert named(item(report(pkg), 3)["reasons"], evidence.item(3)["original"], "SM3 与清单不符")


def test_a_changed_revision_is_named_even_with_a_matching_manifest(evidence, pkg):
    revision = evidence.item(1)["record"]["path"]
    ef.change_revision_payload(pkg, revision)
    rep = report(pkg)
    assert named(item(rep, 1)["reasons"], revision, "设备签名不成立")
    assert named(item(rep, 1)["reasons"], revision, "SHA-256 与清单不符")
    # Whoever changed it also rewrites the manifest: the signature still gives it away.
    manifest = ef.read_manifest(pkg)
    entry = next(f for f in manifest["files"] if f["path"] == revision)
    entry.update(ef.digests((pkg / revision).read_bytes()))
    ef.write_manifest(pkg, manifest)
    rep = report(pkg)
    assert [r["what"] for r in item(rep, 1)["reasons"]] == [revision]
    assert "the device signature does not hold" in item(rep, 1)["reasons"][0]["problem"]
    assert passing(rep) == [2, 3] and rep["files"]["ok"]


def test_a_changed_chain_event_is_named(evidence, pkg):
    ef.change_event(pkg, 5, actor="user:someone-else")
    rep = report(pkg)
    assert named(rep["chain"]["faults"], "seq 5, event 1005", "内容与其哈希不符", "the event was changed")
    assert [f["what"] for f in rep["chain"]["faults"]] == ["seq 5, event 1005"]   # named once, where it is
    assert named(item(rep, 1)["reasons"], "seq 5", "所引链事件有问题")   # item 1 names that event
    assert all(named(i["reasons"], "chain", "审计链或检查点不通过") for i in rep["items"])
    assert passing(rep) == []


def test_a_relinked_chain_still_fails_at_the_signed_head(evidence, pkg):
    events = ef.read_events(pkg)
    del events[2]   # drop seq 6 and re-link what follows, as someone without the key would
    prev = events[1]["hash"]
    for e in events[2:]:
        e["seq"] -= 1
        e["prev_hash"] = prev
        body = event_bytes(e["seq"], e["id"], datetime.fromisoformat(e["at"]), e["actor"], e["action"], e["tbl"],
                           e["row_key"], e["row_hash"], e["detail"])
        e["hash"] = prev = link(prev, body)
    ef.write_events(pkg, events)
    rep = report(pkg)
    assert not rep["chain"]["faults"]
    assert named(rep["checkpoints"]["faults"], "checkpoint B (seq 8)", "链未到达位置 8")
    assert passing(rep) == [] and named(item(rep, 2)["reasons"], "chain", "审计链或检查点不通过")


def test_a_stretch_from_the_chains_start_needs_no_checkpoint_a(evidence, pkg):
    ef.start_from_genesis(pkg, evidence)
    rep = report(pkg, code=0)
    assert rep["events"] == 8 and passing(rep) == [1, 2, 3]
    manifest = ef.read_manifest(pkg)
    manifest["chain"]["from_seq"] = 3
    ef.write_manifest(pkg, manifest)
    assert named(report(pkg)["checkpoints"]["faults"], "checkpoint A", "from_seq")


@pytest.mark.parametrize("which", ["preview", "device_key"])
def test_a_removed_file_is_named(evidence, pkg, which):
    path = evidence.item(2)["preview"] if which == "preview" else evidence.item(1)["maker"]["device_key"]
    ef.remove_file(pkg, path)
    rep = report(pkg)
    assert named(rep["files"]["faults"], path, "缺少文件", "missing file")
    number = 2 if which == "preview" else 1
    assert named(item(rep, number)["reasons"], path, "缺少文件")
    assert passing(rep) == [n for n in (1, 2, 3) if n != number]


def test_an_added_file_is_named(pkg):
    ef.add_file(pkg, "originals/004-补充照片.jpg", b"\xff\xd8\xff\xe0 not listed")
    ef.add_file(pkg, "revisions/.DS_Store")
    out = run(pkg)
    assert out.returncode == 1
    assert "originals/004-补充照片.jpg: 多出的文件：清单中没有列出 / added file: not listed in the manifest" in out.stdout
    rep = report(pkg)
    assert {f["what"] for f in rep["files"]["faults"]} == {"originals/004-补充照片.jpg", "revisions/.DS_Store"}
    assert passing(rep) == [1, 2, 3] and not rep["ok"]   # the package fails; no item lost anything


@pytest.mark.parametrize("index, label", [(0, "A (seq 3)"), (1, "B (seq 8)")])
def test_a_broken_checkpoint_signature_is_named(pkg, index, label):
    ef.break_checkpoint_signature(pkg, index)
    rep = report(pkg)
    assert named(rep["checkpoints"]["faults"], f"checkpoint {label}", "签名与声明不符", "the checkpoint was altered")
    assert passing(rep) == []


def test_a_key_other_than_the_published_one_fails(pkg, tmp_path):
    other = tmp_path / "other.pem"
    other.write_bytes(ef.public_pem(Ed25519PrivateKey.generate()))
    rep = report(pkg, "--public-key", str(other))
    faults = rep["checkpoints"]["faults"]
    assert named(faults, "chain/public_key.pem", "随包服务器公钥与公布的公钥不同")
    assert named(faults, "checkpoint A (seq 3)", "不是用公布的公钥签署的")
    assert named(faults, "checkpoint B (seq 8)", "not signed with the published key")
    assert passing(rep) == []


def test_unusable_input_exits_2(pkg, tmp_path):
    bad_key = tmp_path / "bad.pem"
    bad_key.write_text("not a key")
    out = run(pkg, "--public-key", str(bad_key))
    assert out.returncode == 2 and "cannot read the public key" in out.stderr
    (pkg / "manifest.json").unlink()
    out = run(pkg)
    assert out.returncode == 2 and "manifest.json" in out.stderr and not out.stdout


def test_sm3_falls_back_to_cryptography_and_says_when_it_cannot(monkeypatch):
    spec = importlib.util.spec_from_file_location("evidence_verify", VERIFY)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "evidence_verify", module)
    spec.loader.exec_module(module)
    crypto = module.load_crypto()
    new = hashlib.new

    def no_sm3(name, *args, **kwargs):
        if name == "sm3":
            raise ValueError("unsupported hash type sm3")
        return new(name, *args, **kwargs)

    monkeypatch.setattr(module.hashlib, "new", no_sm3)
    make, source = module.sm3_factory(crypto)
    h = make()
    h.update(b"abc")
    assert source == "cryptography"
    assert h.hexdigest() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"   # GB/T 32905 A.1

    class NoSM3:
        def __getattr__(self, name):
            if name == "SM3":
                raise AttributeError(name)
            return getattr(crypto.hashes, name)

    with pytest.raises(module.Unusable, match="SM3"):
        module.sm3_factory(crypto._replace(hashes=NoSM3()))
