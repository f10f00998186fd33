"""Every table is either covered by the audit chain or exempt with a reason (art. 30)."""
from __future__ import annotations

from fieldapp.models import Base
from fieldapp.records.coverage import COVERED, EXEMPT


def test_every_mapped_table_is_covered_or_exempt_with_a_reason():
    mapped = set(Base.metadata.tables)
    undecided = mapped - COVERED - set(EXEMPT)
    assert not undecided, f"decide whether the audit chain covers these tables: {sorted(undecided)}"


def test_no_table_is_both_covered_and_exempt_and_every_listed_table_exists():
    assert not COVERED & set(EXEMPT)
    assert (COVERED | set(EXEMPT)) <= set(Base.metadata.tables), "a listed table no longer exists"


def test_each_exemption_says_why():
    for table, reason in EXEMPT.items():
        assert len(reason.split()) >= 6, f"{table}: say why the chain may leave it out"


def test_the_migrations_baseline_covered_every_table_covered_when_the_chain_began():
    from importlib import import_module
    baseline = import_module("fieldapp.migrations.versions.0015_audit_chain").COVERED_AT_START
    assert set(baseline) <= COVERED
