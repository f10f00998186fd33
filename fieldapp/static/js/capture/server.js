// What the phone fetches while online and keeps for offline work: the rules catalogue (every
// version it has seen), the unit's open cases, its enrolled officers (see officers.js) and its body
// cameras (see cameras.js). Failures are normal: the cached copy stays.

import { getMeta, putMeta } from "./store.js";
import { storeOfficers } from "./officers.js";
import { storeCameras } from "./cameras.js";

async function fetchJSON(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

export async function refreshFromServer() {
  const results = await Promise.allSettled([fetchJSON("/api/v1/catalogue"), fetchJSON("/api/v1/cases"),
                                            fetchJSON("/api/v1/officers"), fetchJSON("/api/v1/cameras")]);
  const [catalogue, cases, officers, cameras] = results;
  if (catalogue.status === "fulfilled") {
    const versions = await getMeta("catalogues", {});
    versions[catalogue.value.version] = catalogue.value;
    await putMeta("catalogues", versions);
    await putMeta("catalogue_version", catalogue.value.version);
  }
  if (cases.status === "fulfilled") {
    await putMeta("server_cases", cases.value.cases);
    await putMeta("server_cases_at", new Date().toISOString());
  }
  if (officers.status === "fulfilled") await storeOfficers(officers.value.officers);
  if (cameras.status === "fulfilled" && Array.isArray(cameras.value.cameras)) await storeCameras(cameras.value.cameras);
  return results.every((r) => r.status === "fulfilled");
}

export async function currentCatalogue() {
  const version = await getMeta("catalogue_version");
  const versions = await getMeta("catalogues", {});
  return version ? versions[version] : null;
}

export async function serverCases() {
  return getMeta("server_cases", []);
}
