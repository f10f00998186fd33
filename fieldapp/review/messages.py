"""What a refused action tells the lead, in the lead's language, by the refusal's code. The
services raise codes (cases.CaseError, workflow.ReviewError, exceptions.ExceptionRefused); the words
live here, once."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

MESSAGES = {
    # cases
    "bad_kind": _l("Choose the kind of case."),
    "party_required": _l("The party's name is required."),
    "bad_credit_code": _l("A unified social credit code has 18 digits or capital letters."),
    "unknown_officer": _l("No active officer of this unit has certificate %(cert)s."),
    "too_many_rows": _l("At most %(limit)s cases per file."),
    "bad_header": _l("The first line must name the columns, at least kind and party_name."),
    "not_in_unit": _l("Only active officers of the case's unit can be assigned."),
    "not_an_officer": _l("%(name)s is not an officer."),
    "archived": _l("The case is archived; it can no longer change here."),
    "bad_stage": _l("Unknown stage."),
    "future": _l("The act cannot end in the future."),
    "act_end_reason_needed": _l("Say why the end of the act is entered by hand."),
    "unknown_flag": _l("Unknown circumstance of the case: %(flag)s."),
    "bad_id_number": _l("A citizen identity number has at most %(limit)s characters."),
    "blocked": _l("Not archived: %(count)s problems must be resolved first. They are listed under “What blocks archiving”."),
    # review
    "bad_action": _l("Approve or return."),
    "comment_required": _l("Say what the officer should do."),
    "comment_too_long": _l("At most 2000 characters."),
    "not_found": _l("No such activity."),
    "changed": _l("The activity changed since the page was opened; look at it again."),
    "not_confirmed": _l("Tick the box to confirm that you approve."),
    # exceptions (compliance.exceptions.ExceptionRefused)
    "reason_needed": _l("Give the reason for accepting the finding as an exception."),
    "reason_too_long": _l("The reason is too long: at most 2000 characters."),
    "not_allowed": _l("This finding cannot be accepted as an exception: the rule does not allow it."),
    "resolved": _l("The finding is no longer open: there is nothing to accept."),
    "finding_changed": _l("The finding changed since the page was opened; look at it again before accepting it."),
}


def message_for(exc) -> str:
    """The refusal in words; a code without words falls back to the service's own message."""
    template = MESSAGES.get(getattr(exc, "code", ""))
    if template is None:
        return getattr(exc, "message", str(exc))
    extra = {k: v for k, v in (getattr(exc, "extra", None) or {}).items() if isinstance(v, (str, int))}
    return str(template) % extra if extra else str(template).replace("%%", "%")
