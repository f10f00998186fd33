"""Published catalogue versions: the built-in catalogue plus the step types units added.

Every version ever published stays in the database, whole, so a record made with version N (the
phone may be offline for days) is still read and checked with version N. Publishing is append-only:
a unit's new step type makes version max+1; the built-in catalogue changing (a new TOML version in a
release) does too, on the next start.
"""
from __future__ import annotations

import uuid

from sqlalchemy import func, select

from .. import db
from ..models import CatalogueVersion, UnitStepType, Unit
from .catalogue import Catalogue, CatalogueError, load_builtin, parse_step_type


def _unit_step_types() -> list:
    rows = db.session().execute(
        select(UnitStepType, Unit.code).join(Unit, UnitStepType.unit_id == Unit.id).order_by(UnitStepType.created_at)
    ).all()
    return [parse_step_type(step.definition, unit_code=code) for step, code in rows]


def _compose(version: int) -> dict:
    catalogue: Catalogue = load_builtin().with_extra_step_types(_unit_step_types())
    content = catalogue.to_json()
    content["builtin_version"] = content.get("version")
    content["version"] = version
    return content


def latest() -> CatalogueVersion | None:
    return db.session().execute(
        select(CatalogueVersion).order_by(CatalogueVersion.version.desc()).limit(1)
    ).scalar_one_or_none()


def get_version(version: int) -> CatalogueVersion | None:
    return db.session().get(CatalogueVersion, version)


def _next_version() -> int:
    return (db.session().execute(select(func.max(CatalogueVersion.version))).scalar_one() or 0) + 1


def ensure_published() -> CatalogueVersion:
    """The current version, publishing the built-in catalogue first if it is new. Caller commits."""
    current = latest()
    builtin_version = load_builtin().version
    if current is not None and current.content.get("builtin_version") == builtin_version:
        return current
    version = _next_version()
    row = CatalogueVersion(version=version, content=_compose(version),
                           note=f"built-in catalogue version {builtin_version}")
    db.session().add(row)
    db.session().flush()
    return row


def add_unit_step_type(unit: Unit, definition: dict, by: uuid.UUID | None) -> CatalogueVersion:
    """Validate a unit's step type, store it and publish a new version. Caller commits.

    Raises CatalogueError with a readable message for bad input (unknown kind, duplicate id …).
    """
    ensure_published()
    step = parse_step_type(definition, unit_code=unit.code)  # validates fields and citations
    load_builtin().with_extra_step_types(_unit_step_types() + [step])  # validates id uniqueness
    version = _next_version()
    db.session().add(CatalogueVersion(version=version, content={}, published_by=by,
                                      note=f"{unit.code}: {step.id}"))
    db.session().flush()
    db.session().add(UnitStepType(unit_id=unit.id, step_id=step.id, definition=definition,
                                  introduced_in=version, created_by=by))
    db.session().flush()
    row = get_version(version)
    row.content = _compose(version)
    db.session().flush()
    return row


__all__ = ["CatalogueError", "add_unit_step_type", "ensure_published", "get_version", "latest"]
