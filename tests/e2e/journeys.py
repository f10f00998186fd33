"""What the officer-to-lead journeys in the browser share: a penalty case assigned to the signed-in
officer and cached on the phone with the unit's two enrolled officers, syncing until the outbox is
empty, the lead's own browser signed in with a passkey, and the rules of the findings a page lists."""
from __future__ import annotations

from sqlalchemy import select

from fieldapp import db
from fieldapp.auth import enrollment
from fieldapp.models import User
from fieldapp.review import cases
from tests.e2e.capture_support import sign_in_fresh_officer
from tests.e2e.conftest import PHONE, VirtualAuthenticators, wait_until
from tests.support.flows import issue_code, seed_user

PARTY = "临淄区齐都镇鲜果超市"
OFFICER_CERT = "37030300401"  # 张伟, as sign_in_fresh_officer enrols him

# The phone holds the assigned case and the unit's two enrolled officers (fetched while online).
CACHED = """async (caseId) => {
  const store = await import('/static/js/capture/store.js');
  const [cases, officers] = await Promise.all([store.getMeta('server_cases', []), store.getMeta('officers', [])]);
  return cases.some((c) => c.id === caseId && c.assigned_to_me) && officers.length === 2;
}"""

# One sync attempt (or the one already under way), then: is the outbox empty? Polled until it is,
# so a save made while an earlier attempt ran is pushed by the next.
SYNCED = """async () => {
  await window.fieldappSync.syncNow('test');
  const db = await new Promise((resolve) => { const r = indexedDB.open('fieldapp'); r.onsuccess = () => resolve(r.result); });
  return new Promise((resolve) => { const r = db.transaction('outbox').objectStore('outbox').count(); r.onsuccess = () => resolve(r.result === 0); });
}"""


def assigned_penalty_case(app, lead_id, officer_cert: str, case_number: str) -> str:
    """What the lead's desk does before the visit: a penalty case of the unit, assigned to the officer."""
    with app.app_context():
        with db.transaction() as s:
            officer = s.execute(select(User).where(User.cert_no == officer_cert)).scalar_one()
            case = cases.create_case(officer.unit_id, lead_id, kind="penalty", party_name=PARTY,
                                     case_number=case_number)
            cases.assign(case, officer, lead_id)
            return str(case.id)


def officer_with_case(page, authenticators, server, app, case_number: str):
    """张伟 signed in on the phone, a second enrolled officer of the unit, the lead, and a penalty
    case assigned to 张伟 cached on the phone. Returns (lead, case id)."""
    seed_user(app, "李娜", "37030300302", "ZF1")
    lead = seed_user(app, "李队长", "37030300409", "ZF1", roles="lead")
    sign_in_fresh_officer(page, authenticators, server, app, offline=False)
    case_id = assigned_penalty_case(app, lead.user_id, OFFICER_CERT, case_number)
    page.evaluate("window.fieldappSync.pullNow('test')")
    wait_until(page, CACHED, arg=case_id)
    return lead, case_id


def lead_sign_in(browser, server, app, lead, **context_options):
    """The lead's own browser: a passkey on a virtual platform authenticator. Returns (context, page)."""
    lead_context = browser.new_context(**{**PHONE, **context_options})
    lead_context.set_default_timeout(15_000)
    desk = lead_context.new_page()
    cdp = lead_context.new_cdp_session(desk)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    VirtualAuthenticators(cdp).add("internal")
    desk.goto(enrollment.link(server.url, issue_code(app, lead.user_id)))
    desk.get_by_role("button", name="使用本机（指纹、面容或锁屏密码）").click()
    desk.wait_for_url("**/")
    return lead_context, desk


def rules_of(findings) -> list[str]:
    return sorted(findings.evaluate_all("items => items.map(i => i.dataset.rule)"))
