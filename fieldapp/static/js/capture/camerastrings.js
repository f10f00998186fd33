// The body-camera screens' strings (cameras.js, footage.js, views/cameras.js) come from the server's
// catalogue like every other (fieldapp/capture/strings.py); this fills their `{name}` placeholders.

import { t } from "../i18n.js";

export function tc(key, vars = {}) {
  return t(key).replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}
