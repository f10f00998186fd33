"""The chain export is checkable by anyone holding it: `verify_chain.py` runs offline, isolated from
the project (stdlib + cryptography only), passes an untouched export and fails — naming the fault —
an edited event, a deleted and re-linked stretch, a foreign signature, or the wrong trusted key."""
from __future__ import annotations

import ast
import base64
import json
import shutil
import subprocess
import sys
from datetime import datetime
from importlib import resources
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fieldapp import db
from fieldapp.records import checkpoints as cp
from fieldapp.records import keys, service
from fieldapp.records.chain import event_bytes, link
from fieldapp.records.export import write_chain_export
from tests.support import audit_world
from tests.support.appfactory import make_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def exported(request, tmp_path_factory):
    """One populated world per backend, exported once; tests tamper with copies."""
    from tests.conftest import _fresh_database
    tmp = tmp_path_factory.mktemp("audit-export")
    url = _fresh_database(request.param, request, tmp)
    app = make_app(url, tmp / "var")
    audit_world.build(app)
    with app.app_context():
        pem = keys.public_pem(service.public_key())
        summary = write_chain_export(db.session(), tmp / "export", pem)
        db.session().rollback()
    (tmp / "published.pem").write_text(pem)
    yield app, tmp / "export", summary, tmp / "published.pem"
    app.extensions["fieldapp.engine"].dispose()


@pytest.fixture
def copy(exported, tmp_path):
    _, folder, _, _ = exported
    return Path(shutil.copytree(folder, tmp_path / "copy"))


def run(folder: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    # -I: no PYTHONPATH, no user site, no script folder or cwd on sys.path — only what the script
    # brings (fieldapp_chain.py) and the interpreter's own packages (cryptography).
    return subprocess.run([sys.executable, "-I", str(folder / "verify_chain.py"), str(folder), *extra],
                          cwd=cwd, capture_output=True, text=True, encoding="utf-8", timeout=60)


def read_events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines()]


def write_events(folder: Path, events: list[dict]) -> None:
    (folder / "events.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events), encoding="utf-8")


def test_the_export_holds_the_chain_and_the_servers_rules(exported, tmp_path):
    app, folder, summary, _ = exported
    events = read_events(folder)
    assert summary["events"] == len(events) == summary["head_seq"] > 0
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert summary["head_hash"] == events[-1]["hash"] and summary["checkpoints"] == 1
    assert list(events[0]) == ["seq", "id", "at", "actor", "action", "tbl", "row_key", "row_hash", "detail",
                               "prev_hash", "hash"]
    package = resources.files("fieldapp.records")
    assert (folder / "fieldapp_chain.py").read_bytes() == (package / "chain.py").read_bytes()
    assert (folder / "verify_chain.py").read_bytes() == (package / "offline" / "verify_chain.py").read_bytes()
    readme = (folder / "README.txt").read_text(encoding="utf-8")
    assert readme.index("核验") < readme.index("To verify") and "python3 verify_chain.py ." in readme
    checkpoint = json.loads((folder / "checkpoints.json").read_text())[0]
    assert checkpoint["seq"] == summary["head_seq"] and checkpoint["tsa_token"] is None
    with app.app_context():
        s = db.session()
        # Paging is invisible in the result: tiny pages give the same file.
        write_chain_export(s, tmp_path / "paged", "pem", page=7)
        assert (tmp_path / "paged" / "events.jsonl").read_bytes() == (folder / "events.jsonl").read_bytes()
        # A prefix stops at up_to_seq, with only the checkpoints it reaches.
        prefix = write_chain_export(s, tmp_path / "prefix", "pem", up_to_seq=3)
        assert (prefix["events"], prefix["head_seq"], prefix["checkpoints"]) == (3, 3, 0)
        with pytest.raises(ValueError, match="not empty"):
            write_chain_export(s, folder, "pem")
        s.rollback()


def test_the_verifier_needs_nothing_of_the_project():
    tree = ast.parse((REPO / "fieldapp/records/offline/verify_chain.py").read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) == {"cryptography", "fieldapp_chain"}
    assert not (REPO / "fieldapp/records/offline/__init__.py").exists()


def test_an_untouched_export_passes(copy, exported, tmp_path):
    published = exported[3]
    shipped = run(copy, tmp_path)
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert "通过" in shipped.stdout and "PASSED" in shipped.stdout and "不通过" not in shipped.stdout
    assert "the key came with the export" in shipped.stdout
    pinned = run(copy, tmp_path, "--public-key", str(published))
    assert pinned.returncode == 0 and "WARNING" not in pinned.stdout, pinned.stdout + pinned.stderr
    assert not (copy / "__pycache__").exists()


def test_a_changed_actor_is_named(copy, tmp_path):
    events = read_events(copy)
    target = events[len(events) // 2]
    target["actor"] = "user:someone-else"
    write_events(copy, events)
    out = run(copy, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "不通过" in out.stdout and "FAILED" in out.stdout
    assert f"seq {target['seq']}, event {target['id']}: its content no longer matches its hash" in out.stdout


def test_a_deleted_and_relinked_stretch_fails_at_the_checkpoint(copy, tmp_path):
    events = read_events(copy)
    gone = len(events) // 2
    del events[gone]
    prev = events[gone - 1]["hash"]
    for e in events[gone:]:
        # Re-link as an intruder without the key would: every later event renumbered and re-hashed
        # with the real chain rules, so the chain itself is consistent again.
        e["seq"] -= 1
        e["prev_hash"] = prev
        e["hash"] = prev = link(prev, event_bytes(e["seq"], e["id"], datetime.fromisoformat(e["at"]), e["actor"],
                                                  e["action"], e["tbl"], e["row_key"], e["row_hash"], e["detail"]))
    write_events(copy, events)
    out = run(copy, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "链 / chain (" not in out.stdout  # no chain fault: only the signature gives it away
    assert "检查点 / checkpoints (1):" in out.stdout and "events were removed" in out.stdout


def test_a_checkpoint_signed_by_another_key_fails(copy, tmp_path):
    other = Ed25519PrivateKey.generate()
    path = copy / "checkpoints.json"
    entries = json.loads(path.read_text())
    c = entries[0]
    kid = keys.key_id(other.public_key())
    statement = cp.statement(c["seq"], c["head_hash"], datetime.fromisoformat(c["at"]), kid)
    c.update(key_id=kid, statement=statement.decode(), signature=base64.b64encode(other.sign(statement)).decode())
    path.write_text(json.dumps(entries))
    out = run(copy, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"checkpoint {c['id']} (seq {c['seq']}): signed with a key other than the trusted one" in out.stdout


def test_another_trusted_key_fails(copy, tmp_path):
    other = tmp_path / "other.pem"
    other.write_text(keys.public_pem(Ed25519PrivateKey.generate().public_key()))
    out = run(copy, tmp_path, "--public-key", str(other))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "signed with a key other than the trusted one" in out.stdout
    assert "differs from the trusted key" in out.stdout


def test_a_missing_events_file_is_unusable_input(copy, tmp_path):
    (copy / "events.jsonl").unlink()
    out = run(copy, tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "events.jsonl" in out.stderr and "Traceback" not in out.stderr


def test_the_export_command_writes_a_folder_the_offline_verifier_passes_and_is_itself_an_event(tmp_path, request):
    from fieldapp.models import AuditEvent
    from sqlalchemy import select
    from tests.conftest import _fresh_database
    from tests.support.flows import run_cli

    app = make_app(_fresh_database("sqlite", request, tmp_path), tmp_path / "var")
    audit_world.build(app)
    out = tmp_path / "chain-export"
    result = run_cli(app, "audit-export", str(out))
    assert result.exit_code == 0, result.output
    checked = subprocess.run([sys.executable, "-I", str(out / "verify_chain.py"), str(out)], capture_output=True,
                             text=True, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with app.app_context():
        exports = db.session().execute(select(AuditEvent).where(AuditEvent.action == "export")).scalars().all()
    assert [e.row_key for e in exports] == ["audit-chain"]
    assert run_cli(app, "audit-export", str(out)).exit_code != 0  # a folder already used is refused
    app.extensions["fieldapp.engine"].dispose()
