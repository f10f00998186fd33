"""Who reviews: leads decide for their unit; the others read (the policy section supervises
compliance, arts. 5 and 32; the bureau's leaders and the records administrator see what they
oversee)."""
from ..models import Role

DECIDERS = (Role.LEAD,)
REVIEWERS = (Role.LEAD, Role.SUPERVISOR, Role.DIVISION_HEAD, Role.BUREAU_HEAD, Role.RECORDS_ADMIN)
