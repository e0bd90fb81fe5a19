import pytest
from hfo_protocol import Keyring, SignatureError, sign, verify

RING = Keyring(active_kid="k1", keys={"k1": b"k" * 32})


def test_round_trip_returns_the_key_id():
    header = sign(RING, "heartbeat", b"body")
    assert header.startswith("v1;kid=k1;sig=")
    assert verify(RING, header, "heartbeat", b"body") == "k1"


def test_purpose_separates_message_kinds():
    header = sign(RING, "health", b"nonce", b"body")
    with pytest.raises(SignatureError) as info:
        verify(RING, header, "lease", b"nonce", b"body")
    assert info.value.code == "mismatch"


def test_part_boundaries_are_bound():
    # Moving bytes from one part to the next must not keep the signature valid.
    header = sign(RING, "health", b"ab", b"c")
    with pytest.raises(SignatureError):
        verify(RING, header, "health", b"a", b"bc")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v2;kid=k1;sig=abc", "malformed"),
        ("v1;kid=zz;sig=" + "A" * 43, "unknown_key"),
        ("v1;kid=k1;sig=" + "A" * 43, "mismatch"),
    ],
)
def test_bad_headers_are_classified(header, code):
    with pytest.raises(SignatureError) as info:
        verify(RING, header, "heartbeat", b"body")
    assert info.value.code == code


def test_rotation_previous_key_still_verifies():
    old = Keyring(active_kid="k1", keys={"k1": b"1" * 32})
    new = Keyring(active_kid="k2", keys={"k2": b"2" * 32, "k1": b"1" * 32})
    assert verify(new, sign(old, "lease", b"x"), "lease", b"x") == "k1"
    with pytest.raises(SignatureError):
        verify(old, sign(new, "lease", b"x"), "lease", b"x")
