"""What a segment's flags and a visit's footage state say to a person, in their language."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

FLAGS = {
    "unregistered_camera": _l("camera not registered"),
    "unit_mismatch": _l("station's unit code differs"),
    "zone_assumed": _l("time without UTC offset, read as Beijing time"),
    "duration_mismatch": _l("container duration differs from the station's"),
    "start_mismatch": _l("container start differs from the station's"),
    "truncated": _l("file cut short"),
    "unreadable": _l("container unreadable"),
    "no_preview": _l("no preview"),
}


def footage_flag(code: str) -> str:
    return str(FLAGS.get(code, code))
