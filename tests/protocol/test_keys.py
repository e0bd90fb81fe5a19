import json

import pytest
from hfo_protocol import Keyring

SECRET = "s" * 40


def test_plain_secret_is_default_key():
    ring = Keyring.from_secret_string(SECRET + "\n")
    assert ring.active_kid == "default"
    assert ring.active_key == SECRET.encode()


def test_json_secret_supports_rotation():
    ring = Keyring.from_secret_string(json.dumps({"active": "k2", "keys": {"k2": "a" * 32, "k1": "b" * 32}}))
    assert ring.active_kid == "k2"
    assert set(ring.keys) == {"k1", "k2"}


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        ("short", "at least 32"),
        ('{"active": "k9", "keys": {"k1": "' + "a" * 32 + '"}}', "not among the keys"),
        ('{"keys": 3}', "must be"),
        ("{not json", "does not parse"),
        ('{"active": "bad kid!", "keys": {"bad kid!": "' + "a" * 32 + '"}}', "must match"),
    ],
)
def test_bad_secret_is_refused_without_echoing_it(secret, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        Keyring.from_secret_string(secret)
    assert "a" * 32 not in str(info.value)


def test_repr_and_str_never_show_the_key():
    ring = Keyring.from_secret_string(SECRET)
    assert SECRET not in repr(ring)
    assert SECRET not in str(ring)
