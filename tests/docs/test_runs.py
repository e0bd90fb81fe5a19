"""The blocks marked `<!-- run: moto -->` run as written, in page order in one bash session (as a
reader pastes them into one shell), against an emulated deployment named like Terraform's, with the
variables of docs/runbook.md#before-you-start. Then the test checks that they did what the page
says: the mode changes land in the history in order, and the keyring rotation produces keyrings
that verify across stages and publishes them to the watchdog."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from hfo_protocol.errors import SignatureError
from hfo_protocol.keys import Keyring
from hfo_protocol.signing import sign, verify
from testsupport.docs import DOC_VARIABLES, all_blocks, blocks, commands, logical_lines, variables_set
from testsupport.tools import REPO_ROOT, which

RUN_PAGES = sorted({b.path for b in all_blocks() if b.marker is not None and b.marker.kind == "run"})


def run_page(page: str, env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    parts = ["set -euo pipefail"]
    for b in blocks(REPO_ROOT / page):
        if b.marker is not None and b.marker.kind == "run":
            parts.append(f"echo '>>> {b.where}' >&2")
            parts.append(b.text)
    proc = subprocess.run(
        [which("bash"), "-c", "\n".join(parts)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, (
        f"the run blocks of {page} failed (exit {proc.returncode}); the last block started is the last "
        f"'>>>' line:\n{proc.stderr[-3000:]}\n{proc.stdout[-1500:]}"
    )
    return proc


def test_the_fixture_provides_exactly_the_documented_variables() -> None:
    """The runbook's setup block sets exactly the variables the `deployment` fixture provides."""
    setup = next(b for b in blocks(REPO_ROOT / "docs/runbook.md") if "terraform output" in b.text)
    assert variables_set(setup) == set(DOC_VARIABLES)


def test_every_page_with_run_blocks_is_run_here() -> None:
    """Each page's run blocks are run by one of the tests below; a new page needs its own test."""
    assert set(RUN_PAGES) == {"docs/runbook.md", "docs/security.md"}


def _expected_modes(page: str) -> list[str]:
    """The mode after each mode-changing `hfo` command of the page's run blocks, in order."""
    modes = []
    for b in blocks(REPO_ROOT / page):
        if b.marker is None or b.marker.kind != "run":
            continue
        for cmd in commands(b):
            if cmd.program != "hfo":
                continue
            verb = cmd.argv[1]
            if verb == "pin":
                modes.append(f"pin_{cmd.argv[2]}")
            elif verb in ("pause", "resume", "drill"):
                modes.append({"pause": "paused", "resume": "auto", "drill": "drill"}[verb])
    return modes


@pytest.mark.moto
@pytest.mark.slow
def test_runbook_blocks_change_the_mode_as_documented(deployment, tmp_path) -> None:
    proc = run_page("docs/runbook.md", deployment.env, tmp_path)
    expected = _expected_modes("docs/runbook.md")
    assert len(expected) >= 5 and {"drill", "pin_standby", "pin_primary", "paused", "auto"} <= set(expected)

    from hfo_watchdog.store import DynamoStateStore

    store = DynamoStateStore(deployment.session().client("dynamodb"), deployment.table, writer="test")
    history = list(reversed(store.history(50)))
    changes = [re.match(r"operator: mode (\w+) -> (\w+)", e.reasons[0]) for e in history]
    assert all(changes), [e.reasons for e in history]
    assert [m.group(2) for m in changes if m] == expected
    assert all(e.writer == "cli" for e in history)
    state = store.load_control()
    assert state.mode.value == expected[-1]
    # `hfo status --json | jq -r '.lease.site, .phase, ...'` printed the lease and the phase
    assert re.search(r"^primary\nhealthy$", proc.stdout, re.M), proc.stdout[-800:]


def _keyring(path: Path) -> Keyring:
    return Keyring.from_secret_string(path.read_text(encoding="utf-8"))


def _verifies(verifier: Keyring, signer: Keyring) -> bool:
    header = sign(signer, "heartbeat", b"body")
    try:
        verify(verifier, header, "heartbeat", b"body")
    except SignatureError:
        return False
    return True


@pytest.mark.moto
@pytest.mark.slow
def test_keyring_rotation_blocks_rotate_without_a_gap(deployment, tmp_path) -> None:
    run_page("docs/security.md", deployment.env, tmp_path)
    k0, k1, k2, k3 = (
        _keyring(tmp_path / name) for name in ("keyring-0.txt", "keyring-1.json", "keyring-2.json", "keyring-3.json")
    )
    assert k0.keys == {"default": deployment.hmac_value.encode()}
    new = next(kid for kid in k1.keys if kid != "default")
    assert re.fullmatch(r"k\d{8}", new) and len(k1.keys[new]) >= 32
    assert (k1.active_kid, set(k1.keys)) == ("default", {"default", new})
    assert (k2.active_kid, k2.keys) == (new, k1.keys)
    assert (k3.active_kid, set(k3.keys)) == (new, {new})
    # every stage verifies what the stage before it signs, and the next one's signatures too
    for verifier, signers in ((k1, (k0, k2)), (k2, (k1, k3)), (k3, (k2,))):
        assert all(_verifies(verifier, s) for s in signers)
    assert not _verifies(k3, k0), "stage 3 must drop the old key"

    # published to the watchdog: the stored secret is stage 1, and both functions were updated
    session = deployment.session()
    ssm = session.client("ssm")
    stored = ssm.get_parameter(Name=deployment.hmac_secret, WithDecryption=True)["Parameter"]["Value"]
    assert json.loads(stored) == json.loads((tmp_path / "keyring-1.json").read_text())
    for fn in deployment.functions:
        conf = session.client("lambda").get_function_configuration(FunctionName=fn)
        assert conf["Description"].startswith("hybrid-failover watchdog: keyring reloaded ")


def test_the_sealed_keyring_edit_matches_the_manifest(tmp_path) -> None:
    """The `sed` that puts a sealed keyring into k8s/base/secrets/sealedsecret-site.yaml matches the
    file's real layout and changes that one value only (kubeseal itself cannot run here: its output
    is stood in by a base64 string, which is what it prints)."""
    block = next(b for b in blocks(REPO_ROOT / "docs/security.md") if "sealedsecret-site.yaml" in b.text)
    sed_line = next(line for line in logical_lines(block) if line.startswith("test -n"))
    manifest = REPO_ROOT / "k8s/base/secrets/sealedsecret-site.yaml"
    target = tmp_path / "k8s/base/secrets/sealedsecret-site.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(manifest.read_text())
    sealed = "AgB" + "x1Y/+" * 40 + "=="
    env = {"SEALED": sealed, "PATH": "/usr/bin:/bin"}
    subprocess.run([which("bash"), "-c", sed_line], cwd=tmp_path, env=env, check=True, timeout=10)
    before, after = manifest.read_text().splitlines(), target.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("    hmac-keyring: REPLACE-WITH-kubeseal-OUTPUT", f"    hmac-keyring: {sealed}")]
