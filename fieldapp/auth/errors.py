"""Machine-readable error codes of the passkey ceremonies and the sentence a user reads for each."""
from flask_babel import lazy_gettext as _l

MESSAGES = {
    "bad_request": _l("The request was not understood. Reload the page and try again."),
    "bad_attachment": _l("Choose a passkey on this phone or a security key."),
    "malformed_credential": _l("The passkey answer was incomplete. Try again."),
    "challenge_invalid": _l("This sign-in attempt has expired or was already used. Try again."),
    "verification_failed": _l("The passkey could not be verified. Try again."),
    "unknown_credential": _l("This passkey is not registered or has been revoked. Ask your admin for a new enrolment code."),
    "user_disabled": _l("This account is disabled. Contact your admin."),
    "credential_exists": _l("This passkey is already registered."),
    "rate_limited": _l("Too many attempts. Wait a few minutes and try again."),
    "code_unknown": _l("This enrolment code is not valid. Check the link or ask your admin for a new code."),
    "code_used": _l("This enrolment code has already been used. Ask your admin for a new code."),
    "code_expired": _l("This enrolment code has expired (codes are valid for 24 hours). Ask your admin for a new code."),
    "code_user_disabled": _l("This account is disabled. Contact your admin."),
    "last_passkey": _l("This is your only passkey; revoking it would lock you out. Add another one first."),
    "not_found": _l("Not found."),
}


def message(code: str) -> str:
    return str(MESSAGES.get(code, MESSAGES["bad_request"]))
