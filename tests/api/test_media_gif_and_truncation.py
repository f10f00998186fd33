"""Through the phone's API, on SQLite and PostgreSQL and on both media stores: a GIF (a screen
recording, an animated capture) is evidence like any photo, previewed by its first frame; a JPEG
whose header claims more than its data holds is stored as received, flagged, and not previewed."""
from __future__ import annotations

import pytest

from fieldapp.media.storage import MediaNotFound
from tests.api.test_media_api import (  # noqa: F401 - media_app, officer, storage_settings: fixtures
    ALG,
    decoded,
    key,
    media_app,
    noise_jpeg,
    officer,
    sha,
    storage_settings,
)
from tests.unit.test_media_pipeline import animated_gif, claiming

RED, GREEN, BLUE = (200, 30, 30), (30, 200, 30), (30, 30, 200)


def test_an_animated_gif_is_stored_byte_for_byte_and_previewed_by_its_first_frame(officer):  # noqa: F811
    gif = animated_gif([RED, GREEN, BLUE, RED, GREEN, BLUE], size=(480, 360))
    created = officer.push(officer.step_with(gif, kind="image/gif"))[0]
    assert created["status"] == "created" and created["missing_media"] == [sha(gif)]

    media = officer.upload(gif, chunk=len(gif) // 2 + 1, kind="image/gif")
    assert media == {**media, "mime": "image/gif", "kind": "image", "original_stored": True,
                     "width": 480, "height": 360, "frames": 6, "flags": ["animated"],
                     "previews": ["preview", "thumb"]}
    assert officer.stored_bytes(gif) == gif
    assert officer.missing(gif) == {"missing": [], "previews_missing": []}
    preview = decoded(officer.storage().get_derivative(ALG, sha(gif), "preview"))
    assert preview.size == (480, 360)
    assert preview.convert("RGB").getpixel((240, 180)) == pytest.approx(RED, abs=8)
    thumb = decoded(officer.storage().get_derivative(ALG, sha(gif), "thumb"))
    assert thumb.size == (320, 240)


def test_a_still_gif_is_an_image_with_nothing_to_flag(officer):  # noqa: F811
    gif = animated_gif([GREEN], size=(200, 100))
    media = officer.upload(gif, kind="image/gif")
    assert (media["mime"], media["kind"], media["frames"], media["flags"], media["previews"]) == (
        "image/gif", "image", 1, [], ["preview", "thumb"])
    assert officer.stored_bytes(gif) == gif


def test_a_jpeg_claiming_more_than_its_data_is_stored_flagged_and_not_previewed(officer):  # noqa: F811
    photo = noise_jpeg(640, 480, seed=11)
    edited = claiming(photo, 20000, 10000)
    officer.push(officer.step_with(edited))

    media = officer.upload(edited)
    assert media == {**media, "mime": "image/jpeg", "original_stored": True, "width": 20000, "height": 10000,
                     "flags": ["dimensions_mismatch"], "previews": []}
    assert officer.stored_bytes(edited) == edited
    for name in ("preview", "thumb"):
        with pytest.raises(MediaNotFound):
            officer.storage().get_derivative(ALG, sha(edited), name)
    # Nothing is missing: the original is there, and it is what a lead opens.
    assert officer.missing(edited) == {"missing": [], "previews_missing": []}
    assert officer.missing(photo) == {"missing": [key(photo)], "previews_missing": [key(photo)]}
