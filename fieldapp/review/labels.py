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
    from ..compliance.engine import _catalogue_content

    for st in _catalogue_content().get("step_types", []):
        if st["id"] == step_type:
            return st["label_zh"] if _zh() else st["label_en"]
    return step_type or ""


def deadline_label(rule_id: str) -> str:
    from ..compliance import deadline_source

    return deadline_source.label(rule_id, zh=_zh())


def calendar_warning(code: str) -> str:
    from ..compliance import deadline_source

    return deadline_source.warning_text(code, zh=_zh())


def record_type_label(record_type: str) -> str:
    return str(RECORD_TYPES.get(record_type, record_type))


def media_flag_label(code: str) -> str:
    zh, en = FLAG_MESSAGES.get(code) or EXTRA_FLAGS.get(code) or (code, code)
    return zh if _zh() else en


def init_app(app) -> None:
    @app.context_processor
    def review_labels():
        from .roles import REVIEWERS

        return {"is_reviewer": lambda user: bool(user.roles & frozenset(REVIEWERS)), "record_type_label": record_type_label, "media_flag_label": media_flag_label,
                "review_action_label": review_action_label, "step_label": step_label,
                "deadline_label": deadline_label, "calendar_warning": calendar_warning}
