"""Tampering behind the app's back: `verify` names every row edited, inserted or deleted directly in
any covered table, every changed stored file, every altered event, and a chain cut and re-linked by
someone without the server key (art. 30)."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Boolean, Date, DateTime, Integer, LargeBinary, BigInteger, String, Text, JSON, Uuid, select, text, update
from sqlalchemy.orm import Session

from fieldapp.models import AuditCheckpoint, AuditEvent, Base
from fieldapp.records import service
from fieldapp.records.chain import event_bytes, link
from fieldapp.records.coverage import COVERED
from fieldapp.records.rowhash import row_key
from fieldapp.records.verification import verify
from tests.support import audit_world
from tests.support.appfactory import make_app

TABLES = sorted(COVERED)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    from tests.conftest import _fresh_database
    tmp = tmp_path_factory.mktemp("audit-world")
    url = _fresh_database(request.param, request, tmp)
    app = make_app(url, tmp / "var")
    built = audit_world.build(app)
    yield app, built
    app.extensions["fieldapp.engine"].dispose()


def report_under(app, tamper, media=False):
    """Tamper in a transaction, verify what it left, roll it all back (the world is shared)."""
    engine = app.extensions["fieldapp.engine"]
    with app.app_context(), engine.connect() as conn:
        trans = conn.begin()
        try:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET LOCAL session_replication_role = replica"))  # as an intruder would
            else:
                conn.execute(text("PRAGMA defer_foreign_keys = ON"))
            detail = tamper(conn)
            with Session(bind=conn) as s:
                from fieldapp.media.service import media_storage
                report = verify(s, trusted_public=service.public_key(), store=media_storage() if media else None,
                                check_media_files=media, revisions=False)
            return report, detail
        finally:
            trans.rollback()


def names(report, part="row"):
    return [(f.what, f.problem.split(":")[0]) for f in report.faults if f.part == part]


def test_the_untouched_world_verifies_and_has_a_row_in_every_covered_table(world):
    app, built = world
    assert built["populated"] == COVERED, f"no row made in {sorted(COVERED - built['populated'])}"
    report, _ = report_under(app, lambda conn: None, media=True)
    assert report.ok, report.faults
    assert report.sealed > 0 and report.pending == 0 and report.checkpoints == 1 and report.media_checked == 1


def _first_row(conn, table):
    return conn.execute(select(table).limit(1)).mappings().first()


def _key(table, row):
    return row_key([row[c.name] for c in table.primary_key.columns])


def _changed(column, value):
    t = column.type
    if value is None:
        return None
    if isinstance(t, Boolean):
        return not value
    if isinstance(t, (Integer, BigInteger)):
        return value + 1000
    if isinstance(t, Uuid):
        return uuid.uuid4()
    if isinstance(t, DateTime):
        return value + timedelta(seconds=7)
    if isinstance(t, Date):
        return value + timedelta(days=365 * 300)
    if isinstance(t, LargeBinary):
        return bytes(b ^ 0xFF for b in value) or b"\x01"
    if isinstance(t, JSON):
        return {"tampered": True} if value != {"tampered": True} else {"x": 1}
    if isinstance(t, (String, Text)):
        limit = getattr(t, "length", None) or 10_000
        changed = ("改" + value)[:limit]
        return changed if changed != value else value[:-1] + "改"
    return None


@pytest.mark.parametrize("name", TABLES)
def test_an_edited_row_is_named(world, name):
    app, _ = world
    table = Base.metadata.tables[name]

    def edit(conn):
        row = _first_row(conn, table)
        column = next(c for c in table.columns if c.name == _editable_column_with_value(table, row))
        where = [c == row[c.name] for c in table.primary_key.columns]
        changed = {**row, column.name: _changed(column, row[column.name])}
        conn.execute(update(table).where(*where).values({column.name: changed[column.name]}))
        return _key(table, row), _key(table, changed)

    report, (key, new_key) = report_under(app, edit)
    if key == new_key:
        assert names(report) == [(f"{name} {key}", "edited")]
    else:  # every column is part of the key (a role, an oversight): the old row is gone, a new one appeared
        assert sorted(names(report)) == sorted([(f"{name} {key}", "deleted"), (f"{name} {new_key}", "inserted")])


def _editable_column_with_value(table, row):
    # Plain columns first; a link table has only keys and references, and a reference can be bent too
    # (the intruder disabled the foreign-key checks).
    pk = set(table.primary_key.columns)
    candidates = sorted((c for c in table.columns if c.name != "txid"),
                        key=lambda c: (c in pk, bool(c.foreign_keys)))
    for column in candidates:
        if row[column.name] is not None and _changed(column, row[column.name]) is not None:
            return column.name
    raise AssertionError(f"{table.name}: no column with a value to edit")


@pytest.mark.parametrize("name", TABLES)
def test_a_deleted_row_is_named(world, name):
    app, _ = world
    table = Base.metadata.tables[name]

    def delete(conn):
        row = _first_row(conn, table)
        conn.execute(table.delete().where(*[c == row[c.name] for c in table.primary_key.columns]))
        return _key(table, row)

    report, key = report_under(app, delete)
    assert (f"{name} {key}", "deleted") in names(report)
    assert all(what.split(" ")[0] != name or problem == "deleted" for what, problem in names(report))


@pytest.mark.parametrize("name", TABLES)
def test_an_inserted_row_is_named(world, name):
    app, _ = world
    table = Base.metadata.tables[name]

    def insert(conn):
        row = dict(_first_row(conn, table))
        fresh = {c for c in table.columns if (c.primary_key and not c.foreign_keys) or c.unique}
        fresh |= {c for u in table.constraints if u.__class__.__name__ == "UniqueConstraint"
                  for c in u.columns if not c.foreign_keys}
        fresh |= {c for index in table.indexes if index.unique for c in index.columns if not c.foreign_keys}
        if all(c.foreign_keys for c in table.primary_key.columns):  # a link table: a new pair
            fresh.add(list(table.primary_key.columns)[-1])
        for column in fresh:
            row[column.name] = _changed(column, row[column.name])
        row.pop("txid", None)
        conn.execute(table.insert().values(row))
        return _key(table, row)

    report, key = report_under(app, insert)
    assert names(report) == [(f"{name} {key}", "inserted")]


def test_changed_bytes_of_a_stored_file_are_named(world):
    app, built = world
    with app.app_context():
        from fieldapp.media.service import media_storage
        from fieldapp.media.storage.base import original_key
        path = media_storage()._path(original_key("sha-256", built["media_hash"]))
    original = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        report, _ = report_under(app, lambda conn: None, media=True)
    finally:
        path.write_bytes(original)
    assert names(report, "media") == [(f"sha-256:{built['media_hash']}", "the stored bytes no longer have this hash")]


def _events(conn):
    t = AuditEvent.__table__
    return conn.execute(select(t).where(t.c.seq.is_not(None)).order_by(t.c.seq)).mappings().all()


def test_an_altered_event_is_named(world):
    app, _ = world

    def alter(conn):
        victim = _events(conn)[3]
        conn.execute(update(AuditEvent.__table__).where(AuditEvent.__table__.c.id == victim["id"])
                     .values(actor="user:someone-else"))
        return victim

    report, victim = report_under(app, alter)
    assert (f"event {victim['id']} (seq {victim['seq']})", "its content no longer matches its hash") in \
        names(report, "chain")


def test_a_chain_cut_and_relinked_without_the_key_is_caught_by_its_checkpoint(world):
    """The intruder deletes an event and re-links every later one so that each hash is right again:
    the chain holds together, but it no longer reaches the head the checkpoint signed."""
    app, _ = world

    def cut_and_relink(conn):
        t = AuditEvent.__table__
        events = _events(conn)
        cut = events[2]
        conn.execute(t.delete().where(t.c.id == cut["id"]))
        prev = events[1]["hash"]
        for e in events[3:]:
            seq = e["seq"] - 1
            digest = link(prev, event_bytes(seq, e["id"], e["at"], e["actor"], e["action"], e["tbl"], e["row_key"],
                                            e["row_hash"], e["detail"]))
            conn.execute(update(t).where(t.c.id == e["id"]).values(seq=-seq))  # dodge the unique seq on the way
            conn.execute(update(t).where(t.c.id == e["id"]).values(seq=seq, prev_hash=prev, hash=digest))
            prev = digest
        return cut

    report, cut = report_under(app, cut_and_relink)
    assert not names(report, "chain"), "the re-linked chain is consistent in itself"
    problems = names(report, "checkpoint")
    assert len(problems) == 1 and problems[0][1].startswith("the chain no longer reaches position")
    # ...and the row the cut event spoke of is now unrecorded or stale where it matters
    assert report.faults


def test_a_forged_checkpoint_fails_its_signature(world):
    app, _ = world

    def forge(conn):
        t = AuditCheckpoint.__table__
        row = conn.execute(select(t)).mappings().first()
        statement = json.loads(row["statement"])
        statement["head"] = "0" * 64
        conn.execute(update(t).where(t.c.id == row["id"]).values(statement=json.dumps(statement).encode(),
                                                                  head_hash="0" * 64))

    report, _ = report_under(app, forge)
    assert [p for _, p in names(report, "checkpoint")] == ["the signature does not match the statement"]


def test_a_checkpoint_signed_with_another_key_is_refused(world):
    app, _ = world
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fieldapp.records import checkpoints, keys

    def resign(conn):
        t = AuditCheckpoint.__table__
        row = conn.execute(select(t)).mappings().first()
        other = Ed25519PrivateKey.generate()
        raw = checkpoints.statement(row["seq"], row["head_hash"], row["at"], keys.key_id(other.public_key()))
        conn.execute(update(t).where(t.c.id == row["id"]).values(statement=raw, signature=other.sign(raw)))

    report, _ = report_under(app, resign)
    assert [p for _, p in names(report, "checkpoint")] == ["signed with a key other than the trusted one"]


def test_an_unsealed_tail_is_pending_not_a_fault(world):
    app, _ = world

    def append(conn):
        conn.execute(AuditEvent.__table__.insert().values(at=datetime.now().astimezone(), actor="system",
                                                          action="preview", tbl="", row_key="x"))

    report, _ = report_under(app, append)
    assert report.ok and report.pending == 1
