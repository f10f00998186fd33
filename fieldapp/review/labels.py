"""Labels the review pages show, in the reader's language."""
from __future__ import annotations

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from ..media.pipeline import FLAG_MESSAGES

RECORD_TYPES = {
    "case": _l("Case"), "activity": _l("On-site activity"), "step": _l("Step"),
    "interruption": _l("Interruption of recording"), "service": _l("Service by leaving (留置送达)"),
}
EXTRA_FLAGS = {
    "pipeline_failed": ("服务器处理该文件时出错；原件已按原样保存并已核验。",
                        "The server failed to process this file; the original is stored as received and verified."),
}


REVIEW_ACTIONS = {
    "awaiting": _l("Awaiting review"), "approved": _l("Approved"), "returned": _l("Returned to the officer"),
    "reopened": _l("Re-opened by a new revision"),
}


def _zh() -> bool:
    return get_locale().language == "zh"


def review_action_label(action: str) -> str:
    return str(REVIEW_ACTIONS.get(action, action))


def step_label(step_type: str | None) -> str:
    st = _step_types().get(step_type)
    if st is None:
        return step_type or ""
    return st["label_zh"] if _zh() else st["label_en"]


def _step_types() -> dict[str, dict]:
    """The catalogue's step types, read once per request (a page labels a hundred findings)."""
    from flask import g

    from ..compliance.engine import catalogue_content

    if "step_types" not in g:
        g.step_types = {st["id"]: st for st in catalogue_content().get("step_types", [])}
    return g.step_types


def deadline_label(rule_id: str) -> str:
    from ..compliance import deadline_source

    return deadline_source.label(rule_id, zh=_zh())


def calendar_warning(code: str) -> str:
    from ..compliance import deadline_source

    return deadline_source.warning_text(code, zh=_zh())


DETAIL_KEYS = {
    "camera_id": _l("body camera"), "gap_seconds": _l("unexplained seconds"),
    "tolerance_seconds": _l("tolerance (s)"), "missing": _l("missing"), "officers": _l("officers"),
    "due_at": _l("due"), "late": _l("files late"), "stage": _l("stage"), "step_type": _l("step"),
    "av_article": _l("required by"), "resumed": _l("resumed"), "counted_from": _l("counted from"),
    "warnings": _l("calendar"),
}
DETAIL_VALUES = {
    "report_to_head": _l("report to the unit head"), "written_explanation": _l("written explanation"),
    "refusal_reason": _l("reason for refusal"), "date": _l("date"),
    "witnesses_or_photo": _l("witnesses, or a photo/video of the document left"),
    "party": _l("party"), "case_number": _l("case number"), "activity_end": _l("the end of the activity"),
}


def _detail_value(key: str, value) -> str:
    if isinstance(value, list):
        return "、".join(_detail_value(key, v) for v in value)
    if isinstance(value, bool):
        return str(_l("yes") if value else _l("no"))
    if key == "step_type":
        return step_label(value)
    if key == "warnings":
        return calendar_warning(value)
    if key == "due_at" and isinstance(value, str):
        return value[:16].replace("T", " ")
    return str(DETAIL_VALUES.get(value, value)) if isinstance(value, str) else str(value)


def finding_detail(detail: dict) -> list[str]:
    """A finding's detail as short phrases in the reader's language."""
    return [f"{DETAIL_KEYS.get(k, k)}: {_detail_value(k, v)}" for k, v in (detail or {}).items()
            if v not in (None, [], "")]


def record_type_label(record_type: str) -> str:
    return str(RECORD_TYPES.get(record_type, record_type))


def media_flag_label(code: str) -> str:
    zh, en = FLAG_MESSAGES.get(code) or EXTRA_FLAGS.get(code) or (code, code)
    return zh if _zh() else en


def init_app(app) -> None:
    # Globals, not a context processor: the pages' macros are imported, and imported macros see
    # the environment's globals only.
    from .roles import REVIEWERS

    app.jinja_env.globals.update(
        is_reviewer=lambda user: bool(user.roles & frozenset(REVIEWERS)), record_type_label=record_type_label,
        media_flag_label=media_flag_label, review_action_label=review_action_label, step_label=step_label,
        deadline_label=deadline_label, calendar_warning=calendar_warning, finding_detail=finding_detail)
