"""Rules: the district regulation on recording the whole enforcement process, held as data.

The catalogue (``catalogue.toml``) is the single source the server checks records against and the
phone builds its capture screens from; ``catalogue.py`` loads and validates it.
"""
from fieldapp.rules.catalogue import (
    SEVERITIES,
    CaseFlag,
    Catalogue,
    CatalogueError,
    FindingRule,
    Kind,
    Reason,
    Relation,
    Stage,
    StepType,
    load_builtin,
    parse,
    parse_step_type,
)

__all__ = [
    "SEVERITIES", "CaseFlag", "Catalogue", "CatalogueError", "FindingRule", "Kind", "Reason",
    "Relation", "Stage", "StepType", "load_builtin", "parse", "parse_step_type",
]
