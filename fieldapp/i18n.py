"""Simplified Chinese first, English second: the locale comes from the user's switch, then the
browser's Accept-Language, then zh_CN."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

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


# ── times as people read them ────────────────────────────────────────────────────────────────────
# Times are stored in UTC (and phones write ISO strings with "Z"); every time a page shows goes
# through ``local_time``, the ``local`` template filter, so that all read as Beijing time in one
# format and a UTC string never stands beside a local one.

SHANGHAI = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M"


def parse_when(value) -> datetime | None:
    """A datetime, or an ISO 8601 string as phones send it; naive values are UTC."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str) and value.strip():
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def local_time(value, fmt: str = TIME_FORMAT) -> str:
    """Beijing time in the one display format; "" for nothing, the text itself if it is no time."""
    when = parse_when(value)
    if when is None:
        return "" if value in (None, "") else str(value)
    return when.astimezone(SHANGHAI).strftime(fmt)
