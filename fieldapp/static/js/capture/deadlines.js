// Which of a case's running deadlines to warn of, worked out on the phone from the cases of the
// last pull, so the warnings hold offline. The server sends each open case's running (not yet met)
// deadlines: due_at, and warn_from — when the warning starts, counted back in working days on the
// server's calendar (the phone has no calendar and needs none). Older servers and caches send no
// `deadlines`: that is no deadlines. Pure functions: no storage, no page.

const DAY_MS = 24 * 60 * 60 * 1000;
// The deadlines' days are days in Asia/Shanghai, whatever zone the phone is set to. China has had
// no daylight saving time since 1991: the offset is fixed.
const SHANGHAI_OFFSET_MS = 8 * 60 * 60 * 1000;
const ORDER = { overdue: 0, due_today: 1, due_soon: 2, later: 3 };

// Times are ISO 8601 in UTC; one written without a zone is taken as UTC too (never as the phone's
// local time). NaN when absent or unreadable.
function instant(value) {
  if (value instanceof Date) return value.getTime();
  if (typeof value === "number") return value;
  if (typeof value !== "string" || !value) return NaN;
  const zoned = /(?:Z|[+-]\d\d(?::?\d\d)?)$/i.test(value) || !value.includes("T");
  return Date.parse(zoned ? value : `${value}Z`);
}

const shanghaiDay = (ms) => Math.floor((ms + SHANGHAI_OFFSET_MS) / DAY_MS);

// The day a deadline falls on. A deadline counted in days ends at 24:00 of its last day, which the
// server writes as 00:00 of the next (rules/deadlines.py): that instant belongs to the day before.
const dueDay = (dueMs) => shanghaiDay(dueMs - 1);

export function deadlinesOf(serverCase) {
  return Array.isArray(serverCase?.deadlines) ? serverCase.deadlines.filter((d) => d && typeof d === "object") : [];
}

// "overdue" once now is past due_at; "due_today" when due_at falls on today's date in Shanghai;
// "due_soon" from warn_from on; "later" before that (and for a deadline whose time is unreadable).
export function deadlineStatus(deadline, now = new Date()) {
  const nowMs = instant(now);
  const dueMs = instant(deadline?.due_at);
  if (Number.isNaN(dueMs) || Number.isNaN(nowMs)) return "later";
  if (nowMs > dueMs) return "overdue";
  if (dueDay(dueMs) <= shanghaiDay(nowMs)) return "due_today";
  const warnMs = instant(deadline.warn_from);
  if (!Number.isNaN(warnMs) && nowMs >= warnMs) return "due_soon";
  return "later";
}

// Soonest due first; a deadline whose time is unreadable last.
function bySoonest(a, b) {
  const [x, y] = [instant(a.deadline.due_at), instant(b.deadline.due_at)].map((ms) => (Number.isNaN(ms) ? Infinity : ms));
  return x < y ? -1 : x > y ? 1 : 0;
}

const byUrgency = (a, b) => ORDER[a.status] - ORDER[b.status] || bySoonest(a, b);

// One case's running deadlines with their status, soonest first (the case screen shows them all).
export function caseDeadlines(serverCase, now = new Date()) {
  return deadlinesOf(serverCase).map((deadline) => ({ deadline, status: deadlineStatus(deadline, now) }))
    .sort(bySoonest);
}

// Every deadline of these cases that warns (not "later"): overdue first, then by due time.
export function dueSoon(cases, now = new Date()) {
  const out = [];
  for (const c of Array.isArray(cases) ? cases : []) {
    for (const deadline of deadlinesOf(c)) {
      const status = deadlineStatus(deadline, now);
      if (status !== "later") out.push({ case: c, deadline, status });
    }
  }
  return out.sort(byUrgency);
}
