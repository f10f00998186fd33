"""Simplified Chinese first, English second: the locale comes from the user's switch, then the
browser's Accept-Language, then zh_CN."""
from __future__ import annotations

from flask import request
from flask_babel import Babel

LOCALES = ("zh_CN", "en")
LOCALE_COOKIE = "fieldapp_lang"

babel = Babel()


def select_locale() -> str:
    chosen = request.cookies.get(LOCALE_COOKIE)
    if chosen in LOCALES:
        return chosen
    # The first language the browser lists that we have; Chinese of any region reads zh_CN.
    for value, _quality in request.accept_languages:
        tag = value.lower().replace("_", "-")
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return "zh_CN"


def init_app(app) -> None:
    babel.init_app(app, locale_selector=select_locale)
