"""How the capture hooks find the rows a bulk statement wrote, without asking the database when the
statement says it."""
from __future__ import annotations

import uuid

from sqlalchemy import update

from fieldapp.models import Base
from fieldapp.records.capture import _single_key

records = Base.metadata.tables["records"]
media_refs = Base.metadata.tables["media_refs"]


def test_an_update_of_one_row_by_its_key_names_the_key():
    rid = uuid.uuid4()
    statement = update(records).where(records.c.id == rid).values(head_revision=2)
    assert _single_key(statement.whereclause, list(records.primary_key.columns)) == (rid,)


def test_anything_else_is_left_to_the_database():
    pk = list(records.primary_key.columns)
    assert _single_key(records.c.unit_id == uuid.uuid4(), pk) is None          # not the key
    assert _single_key(records.c.id != uuid.uuid4(), pk) is None               # not equality
    assert _single_key(records.c.id.in_([uuid.uuid4()]), pk) is None           # a list
    assert _single_key((records.c.id == uuid.uuid4()) & (records.c.head_revision == 1), pk) is None
    assert _single_key(None, pk) is None
    assert _single_key(media_refs.c.alg == "sha-256", list(media_refs.primary_key.columns)) is None
