"""The release record agrees with the code: one version everywhere, newer than every recorded
release, and a phone store that only ever grows by steps."""
from __future__ import annotations

import re
import tomllib

from fieldapp.version import APP_VERSION
from tests.support.releases import REPO_ROOT, recorded


def _js_constant(path: str, name: str) -> str:
    text = (REPO_ROOT / path).read_text(encoding="utf-8")
    return re.search(rf"export const {name} = \"?([^\";]+)\"?;", text).group(1)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def test_one_version_everywhere():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == APP_VERSION
    assert _js_constant("fieldapp/static/js/capture/sync.js", "APP_VERSION") == APP_VERSION


def test_this_build_is_newer_than_every_recorded_release_and_its_store_only_grows():
    releases = recorded()
    assert releases, "releases.toml records at least the first release"
    versions = [_key(r.version) for r in releases]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert _key(APP_VERSION) > versions[-1], "bump the version after recording a release"
    store = (REPO_ROOT / "fieldapp/static/js/capture/store.js").read_text(encoding="utf-8")
    steps = len(re.findall(r"^  // \d+ \(", store, flags=re.M))
    assert steps >= max(r.phone_store_version for r in releases)
    assert all(len(r.commit) == 40 for r in releases)


def test_the_about_screen_and_the_leads_list_show_the_version(client):
    assert APP_VERSION in client.get("/help").get_data(as_text=True)
