"""The exec backend with a state directory (docs/site.md#exec-state): real child processes (the bot,
and the real ``hfo-site state restore`` / ``state sync`` the backend runs), a real moto S3 server,
and the agent's two state endpoints on loopback (testsupport.state_agent)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from hfo_drill.moto_server import MotoServer
from hfo_site.backends.base import WorkloadError
from hfo_site.backends.exec import ExecBackend, StateWiring
from hfo_site.config import ExecWorkload
from testsupport.state_agent import StandInStateAgent, standin_state_agent

pytestmark = [pytest.mark.moto, pytest.mark.network]

TOKEN = "state-token-" + uuid.uuid4().hex

# A bot that keeps a counter in its state directory: it reads it at start (logging what it found and
# whether the restore had run), adds one every 20 ms, and adds one last time on SIGTERM.
BOT = textwrap.dedent(
    """
    import os, signal, sys, time
    out = sys.argv[1]
    state = os.environ["HFO_STATE_DIR"]
    path = os.path.join(state, "counter")
    count = int(open(path).read()) if os.path.exists(path) else 0
    restored = os.path.exists(state + ".restored.json")
    def log(text):
        with open(out, "a") as f:
            f.write(text + "\\n")
    def save():
        with open(path + ".tmp", "w") as f:
            f.write(str(count))
        os.replace(path + ".tmp", path)
    def bye(*_):
        global count
        count += 1
        save()
        log(f"term {count}")
        sys.exit(0)
    signal.signal(signal.SIGTERM, bye)
    log(f"start {count} restored={restored}")
    while True:
        count += 1
        save()
        time.sleep(0.02)
    """
)


@pytest.fixture
def bucket(aws: MotoServer) -> str:
    name = f"hfo-state-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def agent(aws: MotoServer, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInStateAgent]:
    for name in [k for k in os.environ if k.startswith("AWS_")]:  # the children get no AWS setting
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with standin_state_agent(TOKEN, bucket, aws.endpoint, aws.region) as stand_in:
        yield stand_in


@pytest.fixture
def bot(tmp_path: Path) -> Path:
    path = tmp_path / "bot.py"
    path.write_text(BOT)
    return path


def _wiring(agent: StandInStateAgent, tmp_path: Path, interval: float = 3600.0) -> StateWiring:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    return StateWiring(agent.credentials_url, token, interval)


def _site(
    bot: Path, root: Path, wiring: StateWiring, grace: float = 5.0, backoff: tuple[float, float] = (1.0, 60.0)
) -> tuple[ExecBackend, Path, Path]:
    """One site's backend: workload bot-a with its state directory under ``root`` (the volume);
    ``backoff``: the restart backoff, first and longest."""
    root.mkdir(parents=True)
    out = root / "bot.log"
    workload = ExecWorkload("bot-a", (sys.executable, str(bot), str(out)), state_dir=root / "data")
    backend = ExecBackend([workload], grace_s=grace, backoff_s=backoff[0], backoff_max_s=backoff[1])
    backend.configure_state(wiring)
    return backend, out, root / "data"


def _lines(out: Path) -> list[str]:
    return out.read_text().splitlines() if out.exists() else []


async def _wait(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_counter_survives_a_planned_move_with_rpo_0(agent: StandInStateAgent, bot: Path, tmp_path: Path) -> None:
    """Restore before the bot starts, sync beside it, and on stop the bot first, then the sync's
    final upload: the next site's bot continues from exactly the last count, its SIGTERM one included,
    although the sync interval (1 h) never came."""
    wiring = _wiring(agent, tmp_path)
    laptop, laptop_out, laptop_dir = _site(bot, tmp_path / "laptop", wiring)
    ec2, ec2_out, _ = _site(bot, tmp_path / "ec2", wiring)

    async def main() -> None:
        agent.grant(1, "primary")
        await laptop.start()
        await _wait(lambda: len(_lines(laptop_out)) >= 1)
        assert _lines(laptop_out)[:1] == ["start 0 restored=True"]  # restored.json was there before it ran
        restored = json.loads((tmp_path / "laptop" / "data.restored.json").read_text())
        assert restored["epoch"] == 1
        syncs = laptop.sync_pids()
        assert set(syncs) == {"bot-a"} and syncs["bot-a"] is not None
        sync_pid = syncs["bot-a"]
        await _wait(lambda: (laptop_dir / "counter").exists() and int((laptop_dir / "counter").read_text()) > 20)
        agent.revoke()  # the lease moved to none: the cached credentials carry the final upload
        stopping = asyncio.create_task(laptop.stop())
        await _wait(lambda: laptop.pid is None, 5.0)
        assert (await laptop.observe()).state in ("stopping", "stopped")
        await stopping
        assert not _alive(sync_pid)
        assert laptop.sync_exit_of("bot-a") == 0
        assert (await laptop.observe()).state == "stopped"
        final = agent.events("final")
        assert [(e["epoch"], e["detail"]) for e in final] == [(1, "uploaded")]

        agent.grant(3, "standby")
        await ec2.start()
        await _wait(lambda: len(_lines(ec2_out)) >= 1)
        await ec2.stop()

    asyncio.run(main())
    last = int(_lines(laptop_out)[-1].split()[1])
    assert _lines(laptop_out)[-1] == f"term {last}"
    assert _lines(ec2_out)[0] == f"start {last} restored=True"  # RPO 0: not one count lost


def test_a_failed_restore_never_starts_the_bot(agent: StandInStateAgent, bot: Path, tmp_path: Path) -> None:
    """A restore under a fenced epoch exits 3: the start fails naming why, the bot and the sync never
    ran, the local directory is untouched; a later start under the current epoch works."""
    wiring = _wiring(agent, tmp_path)
    ec2, _, _ = _site(bot, tmp_path / "ec2", wiring)
    laptop, laptop_out, laptop_dir = _site(bot, tmp_path / "laptop", wiring)

    async def main() -> None:
        agent.grant(5, "standby")
        await ec2.start()
        await ec2.stop()
        laptop_dir.mkdir()
        (laptop_dir / "counter").write_text("999")  # the laptop's stale local state
        agent.grant(4, "primary")  # an older epoch than the stored manifest's
        with pytest.raises(WorkloadError) as info:
            await laptop.start()
        assert "exit 3 (fenced: a newer lease epoch holds the state)" in str(info.value)
        assert "bot-a" in str(info.value)
        assert laptop.pid is None and laptop.sync_pids() == {"bot-a": None} and laptop.spawns == 0
        assert (await laptop.observe()).state == "stopped"
        assert (laptop_dir / "counter").read_text() == "999"
        assert not laptop_out.exists()
        agent.grant(6, "primary")
        await laptop.start()
        await _wait(lambda: len(_lines(laptop_out)) >= 1)
        await laptop.stop()

    asyncio.run(main())
    assert _lines(laptop_out)[0].startswith("start ")
    assert _lines(laptop_out)[0] != "start 999 restored=True"  # the bucket's state won, not the local one


def test_a_crashing_bot_restarts_without_a_new_restore_and_the_sync_keeps_running(
    agent: StandInStateAgent, tmp_path: Path
) -> None:
    """The restore runs once per start of the workload, not per restart of a crashed command (that
    would roll its directory back to the last upload); the sync stays the same process throughout."""
    crash = tmp_path / "crash.py"
    crash.write_text("import os, sys\nopen(sys.argv[1], 'a').write(os.environ['HFO_STATE_DIR'] + '\\n')\nsys.exit(3)\n")
    wiring = _wiring(agent, tmp_path)
    root = tmp_path / "laptop"
    root.mkdir()
    out = root / "out"
    workload = ExecWorkload("bot-a", (sys.executable, str(crash), str(out)), state_dir=root / "data")
    backend = ExecBackend([workload], grace_s=2.0, backoff_s=0.05, backoff_max_s=0.1)
    backend.configure_state(wiring)

    async def main() -> None:
        agent.grant(1, "primary")
        await backend.start()
        sync_pid = backend.sync_pids()["bot-a"]
        await _wait(lambda: len(_lines(out)) >= 3)
        assert backend.sync_pids()["bot-a"] == sync_pid
        await backend.stop()

    asyncio.run(main())
    assert set(_lines(out)) == {str(root / "data")}  # the command learns its directory
    assert len(agent.events("restored")) == 1


def test_a_sync_that_dies_is_restarted_and_the_final_upload_still_holds_every_count(
    agent: StandInStateAgent, bot: Path, tmp_path: Path
) -> None:
    """A sync killed while the bot runs (an OOM kill) would leave the bot's writes unuploaded: the
    backend restarts it on the command's backoff, the bot runs on untouched, and the stop's final
    upload (by the new sync) carries the last count to the next site."""
    wiring = _wiring(agent, tmp_path)
    root = tmp_path / "laptop"
    laptop, laptop_out, _ = _site(bot, root, wiring, backoff=(0.1, 0.5))
    ec2, ec2_out, _ = _site(bot, tmp_path / "ec2", wiring)

    async def main() -> None:
        agent.grant(1, "primary")
        await laptop.start()
        await _wait(lambda: (root / "data" / "counter").exists())  # the bot runs and counts
        first = laptop.sync_pids()["bot-a"]
        bot_pid = laptop.pid
        assert first is not None and bot_pid is not None
        os.kill(first, signal.SIGKILL)
        await _wait(lambda: laptop.sync_pids()["bot-a"] not in (None, first), 40.0)
        second = laptop.sync_pids()["bot-a"]
        assert second is not None and _alive(second) and not _alive(first)
        assert laptop.pid == bot_pid  # the bot never noticed
        await laptop.stop()
        assert not _alive(second)
        assert laptop.sync_exit_of("bot-a") == 0
        assert [(e["epoch"], e["detail"]) for e in agent.events("final")] == [(1, "uploaded")]

        agent.grant(3, "standby")
        await ec2.start()
        await _wait(lambda: len(_lines(ec2_out)) >= 1)
        await ec2.stop()

    asyncio.run(main())
    assert len(agent.events("restored")) == 2  # the laptop's start and the standby's: none for the restart
    last = int(_lines(laptop_out)[-1].split()[1])
    assert _lines(laptop_out)[-1] == f"term {last}"
    assert _lines(ec2_out)[0] == f"start {last} restored=True"


def test_a_stop_while_the_dead_sync_waits_for_its_restart_still_makes_the_final_upload(
    agent: StandInStateAgent, bot: Path, tmp_path: Path
) -> None:
    """The sync died and its restart is still in its backoff (30 s) when the lease moves: the stop
    does not wait for the backoff, and starts a sync for the final upload once the bot is gone."""
    root = tmp_path / "laptop"
    laptop, out, _ = _site(bot, root, _wiring(agent, tmp_path), backoff=(30.0, 60.0))

    async def main() -> None:
        agent.grant(1, "primary")
        await laptop.start()
        await _wait(lambda: (root / "data" / "counter").exists())  # the bot runs and counts
        first = laptop.sync_pids()["bot-a"]
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await _wait(lambda: laptop.sync_pids()["bot-a"] is None and not _alive(first))
        started = time.monotonic()
        await laptop.stop()
        assert time.monotonic() - started < 25.0  # not the 30 s backoff
        assert laptop.sync_exit_of("bot-a") == 0

    asyncio.run(main())
    assert [(e["epoch"], e["detail"]) for e in agent.events("final")] == [(1, "uploaded")]
    last = int(_lines(out)[-1].split()[1])
    assert _lines(out)[-1] == f"term {last}"


def test_a_state_directory_without_state_credentials_refuses_to_start(bot: Path, tmp_path: Path) -> None:
    workload = ExecWorkload("bot-a", (sys.executable, str(bot), str(tmp_path / "out")), state_dir=tmp_path / "data")
    backend = ExecBackend([workload], grace_s=1.0)

    async def main() -> None:
        with pytest.raises(WorkloadError, match="serves no state credentials"):
            await backend.start()
        assert backend.spawns == 0

    asyncio.run(main())


def test_a_stop_right_after_the_start_still_makes_the_final_upload(
    agent: StandInStateAgent, bot: Path, tmp_path: Path
) -> None:
    """The start returns only once the sync has its SIGTERM handler: a stop that follows at once
    (a lease lost just after it was granted) gets the final upload, not a sync killed while starting."""
    wiring = _wiring(agent, tmp_path)
    laptop, _, _ = _site(bot, tmp_path / "laptop", wiring)

    async def main() -> None:
        agent.grant(1, "primary")
        await laptop.start()
        await laptop.stop()

    asyncio.run(main())
    assert laptop.sync_exit_of("bot-a") == 0
    assert [e["event"] for e in agent.events()] == ["restored", "final"]
