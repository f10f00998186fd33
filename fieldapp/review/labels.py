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


def record_type_label(record_type: str) -> str:
    return str(RECORD_TYPES.get(record_type, record_type))


def media_flag_label(code: str) -> str:
    zh, en = FLAG_MESSAGES.get(code) or EXTRA_FLAGS.get(code) or (code, code)
    return zh if get_locale().language == "zh" else en


def init_app(app) -> None:
    @app.context_processor
    def review_labels():
        return {"record_type_label": record_type_label, "media_flag_label": media_flag_label}
