"""Prove SoftAuthenticator's output is accepted (and tampering rejected) by py_webauthn itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
import webauthn
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from tests.support.soft_authenticator import (
    CredentialExcluded,
    NoCredential,
    SoftAuthenticator,
    b64url_decode,
    b64url_encode,
)

RP_ID = "localhost"
ORIGIN = "http://localhost:5000"
USER_ID = b"user-1234-handle"


def _reg_options(user_id: bytes = USER_ID, exclude: list[bytes] | None = None) -> Any:
    return webauthn.generate_registration_options(
        rp_id=RP_ID,
        rp_name="x",
        user_id=user_id,
        user_name="u",
        exclude_credentials=[PublicKeyCredentialDescriptor(id=i) for i in exclude or []],
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
    )


def _auth_options(allow: list[bytes] | None = None) -> Any:
    return webauthn.generate_authentication_options(
        rp_id=RP_ID,
        allow_credentials=[PublicKeyCredentialDescriptor(id=i) for i in allow or []],
        user_verification=UserVerificationRequirement.REQUIRED,
    )


def _as_json(opts: Any) -> dict[str, Any]:
    return json.loads(webauthn.options_to_json(opts))


def _register(auth: SoftAuthenticator, user_id: bytes = USER_ID) -> Any:
    opts = _reg_options(user_id)
    resp = auth.create(_as_json(opts), ORIGIN)
    return webauthn.verify_registration_response(
        credential=json.dumps(resp),
        expected_challenge=opts.challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        require_user_verification=True,
    )


def _verify_auth(
    resp: dict[str, Any], opts: Any, reg: Any, sign_count: int = 0, origin: str = ORIGIN
) -> Any:
    return webauthn.verify_authentication_response(
        credential=json.dumps(resp),
        expected_challenge=opts.challenge,
        expected_rp_id=RP_ID,
        expected_origin=origin,
        credential_public_key=reg.credential_public_key,
        credential_current_sign_count=sign_count,
        require_user_verification=True,
    )


def test_b64url_round_trip_without_padding() -> None:
    for data in (b"", b"\x00", b"\xfb\xff", bytes(range(33))):
        enc = b64url_encode(data)
        assert "=" not in enc and "+" not in enc and "/" not in enc
        assert b64url_decode(enc) == data


def test_registration_verifies_with_py_webauthn() -> None:
    auth = SoftAuthenticator()
    opts = _reg_options()
    resp = auth.create(_as_json(opts), ORIGIN)

    assert resp["type"] == "public-key"
    assert resp["id"] == resp["rawId"]
    assert resp["authenticatorAttachment"] == "platform"
    assert resp["clientExtensionResults"] == {}
    assert resp["response"]["transports"] == ["internal"]

    reg = webauthn.verify_registration_response(
        credential=json.dumps(resp),
        expected_challenge=opts.challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        require_user_verification=True,
    )
    assert reg.credential_id == b64url_decode(resp["id"])
    assert reg.fmt == "none"
    assert reg.sign_count == 0
    assert reg.user_verified is True
    assert reg.credential_device_type == CredentialDeviceType.SINGLE_DEVICE
    assert reg.credential_backed_up is False

    stored = auth.credential(reg.credential_id)
    assert stored.rp_id == RP_ID
    assert stored.user_handle == USER_ID
    assert stored.public_key_cose == reg.credential_public_key


def test_assertion_verifies_and_counter_increases() -> None:
    auth = SoftAuthenticator()
    reg = _register(auth)

    opts = _auth_options()
    resp = auth.get(_as_json(opts), ORIGIN)
    assert b64url_decode(resp["response"]["userHandle"]) == USER_ID
    assert b64url_decode(resp["rawId"]) == reg.credential_id
    first = _verify_auth(resp, opts, reg, sign_count=0)
    assert first.credential_id == reg.credential_id
    assert first.user_verified is True
    assert first.new_sign_count == 1

    opts2 = _auth_options()
    second = _verify_auth(auth.get(_as_json(opts2), ORIGIN), opts2, reg, first.new_sign_count)
    assert second.new_sign_count > first.new_sign_count


def test_counterless_mode_stays_at_zero() -> None:
    auth = SoftAuthenticator(counter=False)
    reg = _register(auth)
    for _ in range(2):
        opts = _auth_options()
        assert _verify_auth(auth.get(_as_json(opts), ORIGIN), opts, reg).new_sign_count == 0


def test_wrong_origin_is_rejected() -> None:
    auth = SoftAuthenticator()
    opts = _reg_options()
    bad = auth.create(_as_json(opts), "http://evil.example")
    with pytest.raises(InvalidRegistrationResponse):
        webauthn.verify_registration_response(
            credential=json.dumps(bad),
            expected_challenge=opts.challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
        )

    reg = _register(auth)
    aopts = _auth_options()
    resp = auth.get(_as_json(aopts), "http://evil.example", credential_id=reg.credential_id)
    with pytest.raises(InvalidAuthenticationResponse):
        _verify_auth(resp, aopts, reg)


def test_wrong_challenge_is_rejected() -> None:
    auth = SoftAuthenticator()
    reg = _register(auth)
    resp = auth.get(_as_json(_auth_options()), ORIGIN)
    with pytest.raises(InvalidAuthenticationResponse):
        _verify_auth(resp, _auth_options(), reg)


def test_missing_user_verification_is_rejected() -> None:
    auth = SoftAuthenticator()
    reg = _register(auth)
    auth.user_verified = False

    opts = _auth_options()
    with pytest.raises(InvalidAuthenticationResponse):
        _verify_auth(auth.get(_as_json(opts), ORIGIN), opts, reg)

    ropts = _reg_options(b"other-user")
    with pytest.raises(InvalidRegistrationResponse):
        webauthn.verify_registration_response(
            credential=json.dumps(auth.create(_as_json(ropts), ORIGIN)),
            expected_challenge=ropts.challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            require_user_verification=True,
        )


def test_exclude_credentials_raises() -> None:
    auth = SoftAuthenticator()
    reg = _register(auth)
    with pytest.raises(CredentialExcluded):
        auth.create(_as_json(_reg_options(exclude=[reg.credential_id])), ORIGIN)
    # An unrelated excluded id does not block creation.
    auth.create(_as_json(_reg_options(b"someone-else", exclude=[b"\x01" * 32])), ORIGIN)


def test_credential_selection() -> None:
    auth = SoftAuthenticator()
    alice = _register(auth, b"alice")
    bob = _register(auth, b"bob")

    # Discoverable: first held credential unless one is picked.
    resp = auth.get(_as_json(_auth_options()), ORIGIN)
    assert b64url_decode(resp["rawId"]) == alice.credential_id
    opts = _auth_options()
    resp = auth.get(_as_json(opts), ORIGIN, credential_id=bob.credential_id)
    assert b64url_decode(resp["response"]["userHandle"]) == b"bob"
    _verify_auth(resp, opts, bob)

    # allowCredentials: first allowed credential we actually hold.
    opts = _auth_options(allow=[b"\x02" * 32, bob.credential_id, alice.credential_id])
    resp = auth.get(_as_json(opts), ORIGIN)
    assert b64url_decode(resp["rawId"]) == bob.credential_id
    _verify_auth(resp, opts, bob, sign_count=1)

    with pytest.raises(NoCredential):
        auth.get(_as_json(_auth_options(allow=[b"\x02" * 32])), ORIGIN)
    with pytest.raises(NoCredential):
        auth.get(_as_json(_auth_options()), ORIGIN, rp_id="example.com")

    auth.remove(bob.credential_id)
    with pytest.raises(KeyError):
        auth.credential(bob.credential_id)
    with pytest.raises(NoCredential):
        auth.get(_as_json(_auth_options(allow=[bob.credential_id])), ORIGIN)


def test_same_user_reregistration_replaces_resident_credential() -> None:
    auth = SoftAuthenticator()
    old = _register(auth)
    new = _register(auth)
    assert [c.credential_id for c in auth.credentials] == [new.credential_id]
    with pytest.raises(KeyError):
        auth.credential(old.credential_id)
