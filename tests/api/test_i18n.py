"""Chinese first, English on request: Accept-Language, the visible switch, complete catalogues."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from babel.messages.pofile import read_po

from tests.support.flows import post_form

ROOT = Path(__file__).resolve().parents[2]
ZH_BUTTON = "使用通行密钥登录"
EN_BUTTON = "Sign in with passkey"

def signin_page(client, **headers) -> str:
    response = client.get("/auth/signin", headers=headers)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def assert_chinese(page: str) -> None:
    assert '<html lang="zh-CN">' in page
    assert ZH_BUTTON in page and EN_BUTTON not in page


def assert_english(page: str) -> None:
    assert '<html lang="en">' in page
    assert EN_BUTTON in page and ZH_BUTTON not in page


def test_without_accept_language_the_page_is_chinese(client):
    assert_chinese(signin_page(client))


def test_an_english_browser_gets_english(client):
    assert_english(signin_page(client, **{"Accept-Language": "en-US,en;q=0.9"}))


def test_chinese_of_another_region_still_reads_simplified_chinese(client):
    assert_chinese(signin_page(client, **{"Accept-Language": "zh-TW"}))
    assert_chinese(signin_page(client, **{"Accept-Language": "zh-HK,en;q=0.5"}))


def test_the_language_switch_sticks_and_switches_back(client):
    switched = post_form(client, "/lang", {"locale": "en", "next": "/auth/signin"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/auth/signin"
    assert any(h.startswith("fieldapp_lang=en") for h in switched.headers.getlist("Set-Cookie"))
    assert_english(signin_page(client))
    # The user's choice outranks the browser's language.
    assert_english(signin_page(client, **{"Accept-Language": "zh-CN"}))

    back = post_form(client, "/lang", {"locale": "zh_CN", "next": "/auth/signin"})
    assert back.status_code == 302
    assert_chinese(signin_page(client))
    assert_chinese(signin_page(client, **{"Accept-Language": "en-US,en;q=0.9"}))


def test_the_language_switch_does_not_redirect_off_site(client):
    for target in ("//evil.example/", "https://evil.example/"):
        response = post_form(client, "/lang", {"locale": "en", "next": target})
        assert response.status_code == 302 and response.headers["Location"] == "/", target


def test_an_unknown_locale_is_ignored(client):
    response = post_form(client, "/lang", {"locale": "fr", "next": "/auth/signin"})
    assert response.status_code == 302
    assert not any(h.startswith("fieldapp_lang=") for h in response.headers.getlist("Set-Cookie"))
    assert_chinese(signin_page(client))


def test_every_message_is_translated_and_compiled(tmp_path):
    spec = importlib.util.spec_from_file_location("fieldapp_i18n_script", ROOT / "scripts" / "i18n.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    # extract() writes the template it reads; keep the repository's messages.pot untouched.
    script.POT = tmp_path / "messages.pot"
    assert script.problems() == []
    assert script.POT.exists() and "Sign in with passkey" in script.POT.read_text(encoding="utf-8")


def test_the_english_catalogue_is_english():
    """scripts/i18n.py keeps en complete with msgstr = msgid; problems() only checks it is non-empty."""
    with (ROOT / "fieldapp" / "translations" / "en" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="en")
    wrong = [m.id for m in catalog if m.id and m.string != m.id]
    assert wrong == []
