"""Environment settings of the bot: clear errors that name the variable, and a token that never prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from hfo_bot.config import ConfigError, Secret, load, read_token

BASE = {"HFO_SITE": "standby", "POD_NAME": "bot-0"}


def test_defaults_fit_the_kubernetes_manifests() -> None:
    config = load(dict(BASE))
    assert config.site == "standby"
    assert (config.health_host, config.health_port) == ("0.0.0.0", 8080)  # noqa: S104 - the pod listens on all interfaces
    assert str(config.token_file) == "/var/run/secrets/hfo-bot/token"
    assert str(config.state_dir) == "/var/lib/hfo-bot"
    assert config.stop_timeout_s == 10
    assert config.sync_commands is True


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"HFO_SITE": ""}, r"HFO_SITE='' is not a site \(allowed: primary, standby\)"),
        ({"HFO_SITE": "laptop"}, r"HFO_SITE='laptop' is not a site"),
        ({"HFO_BOT_HEALTH_PORT": "70000"}, r"HFO_BOT_HEALTH_PORT=70000 is out of range \(allowed: 0-65535\)"),
        ({"HFO_BOT_HEALTH_PORT": "http"}, r"HFO_BOT_HEALTH_PORT='http' is not a number"),
        ({"HFO_BOT_HEALTH_HOST": "localhost"}, r"HFO_BOT_HEALTH_HOST='localhost' is not an IP address"),
        ({"HFO_BOT_STOP_TIMEOUT_S": "0"}, r"HFO_BOT_STOP_TIMEOUT_S=0 is out of range \(allowed: 0.1-300\)"),
        ({"HFO_BOT_SYNC_COMMANDS": "maybe"}, r"HFO_BOT_SYNC_COMMANDS='maybe' is not a boolean"),
        ({"SHARD_COUNT": "2", "SHARDS_PER_POD": "1", "POD_NAME": "bot-5"}, r"ordinal 5 has no shards"),
    ],
)
def test_bad_values_stop_the_start_with_the_variable_named(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load({**BASE, **extra})


def test_pod_name_falls_back_to_hostname() -> None:
    config = load({"HFO_SITE": "primary", "HOSTNAME": "bot-1", "SHARD_COUNT": "2", "SHARDS_PER_POD": "1"})
    assert (config.pod_name, config.shards.shard_ids) == ("bot-1", (1,))


def test_token_is_read_stripped_and_never_printed(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  MTIz.secret-token-value \n")
    token = read_token(path)
    assert token.reveal() == "MTIz.secret-token-value"
    assert "secret-token-value" not in repr(token)
    assert "secret-token-value" not in str(token)
    assert "secret-token-value" not in f"{token!r} {token}"


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "does not exist"), ("", "is empty"), ("  \n", "is empty"), ("tok1 tok2", "more than one word")],
)
def test_token_file_problems_name_the_file_not_its_content(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        read_token(path)
    assert str(path) in str(info.value)
    assert "tok1" not in str(info.value)


def test_secret_repr_is_fixed() -> None:
    assert repr(Secret("x" * 40)) == "Secret('***')"
