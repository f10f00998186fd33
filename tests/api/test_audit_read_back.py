"""The audit chain reads back, at every commit, the rows the transaction wrote: by their keys, through
an index. A lookup by the leading key column alone read the whole media table at every upload (every
row's alg is "sha-256"), seconds per upload once the bureau has a million photos."""
from __future__ import annotations

from sqlalchemy import create_engine

from fieldapp.models import Media, RetentionState
from fieldapp.records.capture import _read_back_statement


def query_plan(sqlite_url: str, table) -> str:
    columns = tuple(c.name for c in table.primary_key.columns)
    statement, _width, _names = _read_back_statement(table, columns, "sqlite")
    values = {f"wanted{i}": (["sha-256"] if name == "alg" else ["a" * 64, "b" * 64]) for i, name in enumerate(columns)}
    engine = create_engine(sqlite_url)
    try:
        compiled = statement.compile(dialect=engine.dialect)
        expanded = compiled.construct_expanded_state(values)
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + expanded.statement,
                                              tuple(expanded.parameters[n] for n in expanded.positiontup)).all()
        return " | ".join(str(row[-1]) for row in rows)
    finally:
        engine.dispose()


def test_rows_keyed_by_alg_and_hash_are_read_back_through_the_whole_key(sqlite_url):
    for table in (Media.__table__, RetentionState.__table__):
        assert [c.name for c in table.primary_key.columns] == ["alg", "hash"]
        found = query_plan(sqlite_url, table)
        assert "SEARCH" in found and "hash=?" in found, (table.name, found)
