"""Short-lived links to an original's bytes, made for one user by an opening just registered.

The link is signed with the app's secret, names the user, the file and the register row, and
expires: a link copied elsewhere is useless to anyone else, and useless to its owner after
``LINK_TTL_S`` (long enough to watch and seek in a recording; opening again registers again).
"""
from __future__ import annotations

import uuid

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

LINK_TTL_S = 30 * 60
_SALT = "fieldapp.original-link"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=_SALT)


def issue(user_id: uuid.UUID, alg: str, digest: str, access_id) -> str:
    return _serializer().dumps({"u": str(user_id), "a": alg, "h": digest, "r": str(access_id)})


def valid(token: str, user_id: uuid.UUID, alg: str, digest: str) -> bool:
    try:
        claims = _serializer().loads(token, max_age=LINK_TTL_S)
    except BadData:
        return False
    return isinstance(claims, dict) and claims.get("u") == str(user_id) and claims.get("a") == alg \
        and claims.get("h") == digest
