"""`hfo`, run as a real child process against the moto server (and, for `probe`, against the real
site processes: hfo-site health behind the drill's Funnel stand-in, on loopback). Bad arguments:
a clear message, exit 2, and no state change."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hfo_drill.aws_setup import create_standby_instance
from hfo_drill.moto_server import MotoServer
from hfo_watchdog import cli
from hfo_watchdog.core.model import (
    ControlState,
    Lease,
    LeaseSite,
    Mode,
    Phase,
    ProbeFailure,
    ProbeResult,
    Transition,
)
from hfo_watchdog.store import DynamoStateStore
from testsupport.net import free_port
from testsupport.watchdog import (
    SECRET_TEXT,
    TABLE,
    create_table,
    heartbeat,
    scan_all,
)

pytestmark = pytest.mark.moto
HFO = [sys.executable, "-m", "hfo_watchdog.cli"]


@pytest.fixture
def table(aws: MotoServer) -> Any:
    return create_table()


@pytest.fixture
def store(table: Any) -> DynamoStateStore:
    return DynamoStateStore(table, TABLE, writer="test")


def hfo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "AWS_MAX_ATTEMPTS": "1", **(env or {})}
    return subprocess.run([*HFO, *args], env=full_env, capture_output=True, text=True, timeout=60, check=False)


def seed(store: DynamoStateStore) -> None:
    now = time.time()
    state = ControlState(
        version=1,
        mode=Mode.AUTO,
        phase=Phase.ON_STANDBY,
        phase_since=now - 300,
        lease=Lease(LeaseSite.STANDBY, 4, now - 300),
        probe_fail_streak=7,
        last_probe=ProbeResult(ok=False, at=now - 20, failure=ProbeFailure.CONNECT_TIMEOUT, detail="no answer in 3s"),
        start_count=2,
        last_start_at=now - 300,
        open_alerts=frozenset({"standby_overtime"}),
        last_tick_at=now - 20,
        armed_at=now - 86400,
        prewarm_starts=(now - 400,),
        warm_until=now + 200,
        renewed_until=now + 60,
    )
    t = Transition(
        Phase.SUSPECT,
        Phase.FAILING_OVER,
        Lease(LeaseSite.PRIMARY, 3, now - 900),
        state.lease,
        ("primary down",),
        now - 300,
    )
    assert store.save(0, state, t)
    store.record_heartbeat(heartbeat("standby", now - 5, workload="running", epoch_seen=4), now - 5)


def test_status_shows_mode_lease_phase_signals_and_ec2(store: DynamoStateStore) -> None:
    seed(store)
    instance_id = create_standby_instance()
    result = hfo("--table", TABLE, "status", env={"HFO_INSTANCE_ID": instance_id})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "mode     auto" in out
    assert "phase    on_standby since" in out
    assert "lease    standby epoch 4" in out
    assert "probe    FAILED connect_timeout, no answer in 3s" in out
    assert "7 failed probes in a row" in out
    assert "primary  no heartbeat yet" in out
    assert "standby  last heartbeat" in out and "workload running, ready, epoch seen 4" in out
    assert f"ec2      {instance_id} stopped" in out
    assert "alerts   standby_overtime" in out
    assert "armed    " in out and "(24.0h ago)" in out
    assert "starts   2 by failovers" in out
    assert "prewarm  1 start(s) in the last hour; kept warm until" in out and "from now" in out
    assert "renewal  primary's lease renewed until" in out


def test_status_json_and_the_environment_for_the_table(store: DynamoStateStore) -> None:
    seed(store)
    result = hfo("status", "--json", env={"HFO_TABLE_NAME": TABLE})
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["lease"] == {"site": "standby", "epoch": 4} and doc["phase"] == "on_standby"
    assert doc["probe"]["failure"] == "connect_timeout" and doc["primary"] is None
    assert doc["standby"]["workload"] == "running" and doc["ec2"] is None and doc["initialised"] is True
    assert doc["armed_at"] and len(doc["prewarm_starts"]) == 1 and doc["warm_until"] and doc["renewed_until"]


def test_the_region_comes_from_aws_region_too_and_its_absence_is_a_clear_error(table: Any) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE")}
    base["AWS_CONFIG_FILE"] = os.devnull  # no profile region either
    full = {**base, "AWS_MAX_ATTEMPTS": "1", "AWS_REGION": "us-east-1"}
    result = subprocess.run([*HFO, "--table", TABLE, "status"], env=full, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    del full["AWS_REGION"]
    result = subprocess.run([*HFO, "--table", TABLE, "status"], env=full, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "no AWS region" in result.stderr and "Traceback" not in result.stderr


def test_status_of_a_fresh_table_says_so(table: Any) -> None:
    result = hfo("--table", TABLE, "status")
    assert result.returncode == 0
    assert "no state stored yet" in result.stdout and "lease    primary epoch 1" in result.stdout


def test_history_newest_first_with_reasons(store: DynamoStateStore) -> None:
    seed(store)
    assert cli.main(["--table", TABLE, "pause"], out=io.StringIO()) == 0
    result = hfo("--table", TABLE, "history")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "on_standby -> on_standby" in lines[0] and "by cli" in lines[0]
    assert lines[1] == "    - operator: mode auto -> paused"
    assert "suspect -> failing_over  lease primary#3 -> standby#4" in lines[2]
    assert lines[3] == "    - primary down"
    one = json.loads(hfo("--table", TABLE, "history", "--limit", "1", "--json").stdout)
    assert len(one) == 1 and one[0]["reasons"] == ["operator: mode auto -> paused"] and one[0]["by"] == "cli"


def test_pin_pause_resume_are_conditional_writes_with_history(store: DynamoStateStore) -> None:
    seed(store)
    steps = [
        (["pin", "primary"], Mode.PIN_PRIMARY),
        (["pin", "standby"], Mode.PIN_STANDBY),
        (["pause"], Mode.PAUSED),
        (["resume"], Mode.AUTO),
    ]
    version = 1
    for args, mode in steps:
        result = hfo("--table", TABLE, *args)
        assert result.returncode == 0, result.stderr
        assert f"mode is now {mode.value}" in result.stdout and "the next tick acts on it" in result.stdout
        version += 1
        state = store.load_control()
        assert state.mode == mode and state.version == version
        assert state.lease == Lease(LeaseSite.STANDBY, 4, state.lease.changed_at)  # the CLI never moves the lease
    again = hfo("--table", TABLE, "resume")
    assert again.returncode == 0 and "already auto; nothing changed" in again.stdout
    assert store.load_control().version == version
    reasons = [e.reasons[0] for e in store.history(10) if e.writer == "cli"]
    assert reasons == [
        "operator: mode paused -> auto",
        "operator: mode pin_standby -> paused",
        "operator: mode pin_primary -> pin_standby",
        "operator: mode auto -> pin_primary",
    ]


def test_drill_sets_an_end_time(store: DynamoStateStore) -> None:
    seed(store)
    before = time.time()
    result = hfo("--table", TABLE, "drill", "--minutes", "15")
    assert result.returncode == 0, result.stderr
    state = store.load_control()
    assert state.mode == Mode.DRILL and state.mode_until is not None
    assert before + 900 - 1 <= state.mode_until <= time.time() + 900 + 1
    assert "mode is now drill until" in result.stdout


BAD_ARGS = [
    (["--table", TABLE, "drill"], "the following arguments are required: --minutes"),
    (["--table", TABLE, "drill", "--minutes", "0"], "--minutes must be an integer from 1 to 1440, got 0"),
    (["--table", TABLE, "drill", "--minutes", "1441"], "--minutes must be an integer from 1 to 1440, got 1441"),
    (["--table", TABLE, "drill", "--minutes", "ten"], "--minutes must be an integer from 1 to 1440, got 'ten'"),
    (["--table", TABLE, "pin", "tertiary"], "invalid choice: 'tertiary'"),
    (["--table", TABLE, "pin"], "the following arguments are required: site"),
    (["--table", TABLE, "history", "--limit", "0"], "--limit must be an integer from 1 to 500, got 0"),
    (["--table", TABLE, "frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND"),
    (["--table", "no spaces allowed", "pause"], "--table must be a DynamoDB table name"),
    (["--table", TABLE, "--instance-id", "i-xyz", "status"], "--instance-id must be i- followed by 8 or 17 hex"),
    (["--table", TABLE, "probe", "http://127.0.0.1/healthz"], "URL: must be an https:// URL with a host"),
    (["--table", TABLE, "probe", "https://127.0.0.1/healthz", "--secret", "abc"], "unrecognized arguments"),
    (["--table", TABLE, "probe", "https://127.0.0.1/h", "--connect-timeout", "0"], "--connect-timeout must be"),
    (["--table", TABLE, "probe", "https://127.0.0.1/h", "--ca-bundle", "/nonexistent.pem"], "--ca-bundle"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ARGS, ids=[" ".join(a) or "(none)" for a, _ in BAD_ARGS])
def test_bad_arguments_exit_2_with_a_clear_message_and_change_nothing(
    store: DynamoStateStore, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(store)
    before = scan_all(store._client, TABLE)
    try:
        code = cli.main(args, out=io.StringIO())
    except SystemExit as exited:  # argparse's own refusals
        code = exited.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert scan_all(store._client, TABLE) == before


def test_bad_arguments_in_a_real_process(store: DynamoStateStore) -> None:
    seed(store)
    before = scan_all(store._client, TABLE)
    result = hfo("--table", TABLE, "drill", "--minutes", "-3")
    assert result.returncode == 2
    assert "hfo drill: error: argument --minutes: --minutes must be an integer from 1 to 1440" in result.stderr
    assert result.stdout == ""
    missing = hfo("status", env={"HFO_TABLE_NAME": ""})
    assert missing.returncode == 2 and "no state table: pass --table or set HFO_TABLE_NAME" in missing.stderr
    assert scan_all(store._client, TABLE) == before


def test_aws_problems_exit_1_with_the_reason(table: Any) -> None:
    gone = hfo("--table", "no-such-table", "status")
    assert gone.returncode == 1 and "ResourceNotFoundException" in gone.stderr and "Traceback" not in gone.stderr
    dead = hfo("--table", TABLE, "pause", env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"})
    assert dead.returncode == 1 and "hfo: error: DynamoDB" in dead.stderr and "Traceback" not in dead.stderr


def test_a_mode_change_that_keeps_losing_the_race_writes_nothing(store: DynamoStateStore) -> None:
    seed(store)

    class AlwaysBeaten(DynamoStateStore):
        """The real store; another writer bumps the version between every read and write."""

        def save(self, expected_version: int, state: ControlState, transition: Any, **kw: Any) -> bool:
            current = store.load_control()
            from dataclasses import replace

            assert store.save(current.version, replace(current, version=current.version + 1), None)
            return super().save(expected_version, state, transition, **kw)

    with pytest.raises(cli.CliError, match="kept changing"):
        cli.change_mode(AlwaysBeaten(store._client, TABLE, writer="cli"), Mode.PAUSED, None)
    assert store.load_control().mode == Mode.AUTO
    assert [e.writer for e in store.history(10)] == ["test"]


@pytest.fixture
def health_server(laptop: tuple[str, Path]) -> tuple[str, Path]:
    """The real laptop's health endpoint (through the Funnel stand-in) and its CA bundle."""
    return laptop


def test_probe_a_healthy_url_with_the_secret_from_a_file(health_server: tuple[str, Path], tmp_path: Path) -> None:
    url, ca = health_server
    secret = tmp_path / "secret"
    secret.write_text(SECRET_TEXT + "\n")
    result = hfo("probe", url, "--ca-bundle", str(ca), "--secret-file", str(secret))
    assert result.returncode == 0, result.stderr
    assert "verdict  HEALTHY" in result.stdout and "class    -" in result.stdout and "http     200" in result.stdout
    assert SECRET_TEXT not in result.stdout + result.stderr


def test_probe_with_the_secret_from_the_environment_and_json(health_server: tuple[str, Path]) -> None:
    url, ca = health_server
    result = hfo("probe", url, "--ca-bundle", str(ca), "--json", env={"HFO_HMAC_SECRET": SECRET_TEXT})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["healthy"] is True
    named = hfo("probe", url, "--ca-bundle", str(ca), "--secret-env", "MY_SECRET", env={"MY_SECRET": SECRET_TEXT})
    assert named.returncode == 0, named.stderr


def test_probe_verdicts_carry_the_failure_class(health_server: tuple[str, Path]) -> None:
    url, ca = health_server
    wrong = hfo("probe", url, "--ca-bundle", str(ca), env={"HFO_HMAC_SECRET": "w" * 40})
    assert wrong.returncode == 3 and "verdict  UNHEALTHY" in wrong.stdout and "class    bad_signature" in wrong.stdout
    untrusted = hfo("probe", url, env={"HFO_HMAC_SECRET": SECRET_TEXT})
    assert untrusted.returncode == 3 and "class    tls" in untrusted.stdout
    refused = hfo("probe", f"https://127.0.0.1:{free_port()}/healthz", env={"HFO_HMAC_SECRET": SECRET_TEXT})
    assert refused.returncode == 3 and "class    connect_refused" in refused.stdout


def test_probe_needs_a_secret_and_never_takes_it_from_argv(health_server: tuple[str, Path]) -> None:
    url, _ca = health_server
    none = hfo("probe", url, env={"HFO_HMAC_SECRET": ""})
    assert none.returncode == 2 and "no shared secret: set HFO_HMAC_SECRET or pass --secret-file" in none.stderr
    short = hfo("probe", url, env={"HFO_HMAC_SECRET": "short"})
    assert short.returncode == 2 and "shared secret: keyring: key 'default' is 5 bytes" in short.stderr
    assert "short" not in short.stderr.replace("shared secret", "")
    missing = hfo("probe", url, "--secret-file", "/nonexistent/secret")
    assert missing.returncode == 2 and "--secret-file: cannot read '/nonexistent/secret'" in missing.stderr


def test_the_installed_hfo_command(table: Any) -> None:
    script = Path(sys.executable).parent / "hfo"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    for command in ("status", "history", "pin", "pause", "resume", "drill", "probe"):
        assert command in result.stdout


def test_probe_ca_bundle_help_says_it_replaces_the_default_trust_store() -> None:
    """Issue 10: the help called the bundle 'extra' while requests verifies against it alone."""
    script = Path(sys.executable).parent / "hfo"
    result = subprocess.run([str(script), "probe", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "instead of the default trust store" in text and "extra" not in text
