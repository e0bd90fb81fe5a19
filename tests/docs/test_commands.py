"""Every shell command in README.md and docs/*.md either runs here, is checked by the real tool it
calls, or is marked as needing what only a real deployment has (and says what).

- `hfo ...`: the CLI's own argument parser accepts it; the runbook's blocks run against moto.
- `hfo-site ...`: the real entry point accepts the words (with --help, so nothing starts).
- `make X`: `make -n X` knows the target.
- `kubectl kustomize DIR [| grep ...]`: runs, and the grep finds something.
- `aws ...`: the AWS CLI parses it and botocore validates its parameters (stopped before sending).
- every block is valid bash (`bash -n`).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterable

import pytest
from testsupport.docs import (
    AWSCLI_PYTHON,
    MARKER_KINDS,
    STATICALLY_CHECKED,
    VENV_BIN,
    Block,
    Command,
    all_blocks,
    commands,
    doc_paths,
    expand,
    inline_spans,
    logical_lines,
    markers_outside_blocks,
    rel,
    split_commands,
)
from testsupport.tools import REPO_ROOT, require_tool, which

# Blocks on pages owned by other parts of the project, which carry no marker yet: (page, the start of the
# block's first command line) -> what they need. A block that disappears fails
# test_foreign_marks_are_current.
FOREIGN: dict[tuple[str, str], str] = {
    ("docs/argocd.md", "python3 argocd/set_repo_url.py https://github.com/<you>/hybrid-failover.git"): (
        "rewrites the checked-out repository; tests/k8s/test_set_repo_url.py runs it on a copy"
    ),
    ("docs/argocd.md", "sudo cp argocd/bootstrap/argo-cd.yaml /var/lib/rancher/k3s/server/manifests/"): (
        "needs the laptop's K3s"
    ),
    ("docs/argocd.md", "kubectl -n argocd port-forward svc/argocd-server 8080:80"): "needs the laptop's cluster",
    (
        "docs/argocd.md",
        "ssh -L 8080:localhost:8080 ec2-user@hfo-standby "
        "sudo k3s kubectl -n argocd port-forward svc/argocd-server 8080:80",
    ): "needs the running standby",
    (
        "docs/walkthrough.md",
        "curl -sfL https://get.k3s.io | INSTALL_K3S_CHANNEL=v1.33 sh -s - --disable traefik",
    ): "installs K3s on the laptop",
    (
        "docs/walkthrough.md",
        "openssl req -x509 -days 3650 -nodes -newkey rsa:4096 -keyout sealing.key -out sealing-cert.pem "
        '-subj "/CN=sealed-secret/O=sealed-secret"',
    ): "needs the laptop's cluster",
    ("docs/walkthrough.md", "umask 077"): "needs kubeseal and your secrets",
    (
        "docs/walkthrough.md",
        "sed -i 's#HFO_HEARTBEAT_URL=.*#HFO_HEARTBEAT_URL=<heartbeat Function URL>#' k8s/base/kustomization.yaml",
    ): "needs AWS, kubeseal and a push to your fork",
    ("docs/walkthrough.md", "scp sealing.key sealing-cert.pem ec2-user@hfo-standby:/tmp/"): (
        "needs the running standby"
    ),
    ("docs/walkthrough.md", "kubectl -n hfo get pods"): "needs the laptop's cluster and Funnel",
    ("docs/walkthrough.md", "kubectl -n monitoring port-forward svc/kube-prometheus-stack-grafana 3000:80"): (
        "needs the laptop's cluster"
    ),
    ("docs/watchdog.md", "hfo [--table NAME] [--instance-id ID] [--region REGION] COMMAND ..."): (
        "a usage synopsis, not a command"
    ),
    ("docs/watchdog.md", "hfo --table hfo-state status"): "needs a deployed table and the laptop's Funnel URL",
    ("docs/terraform.md", "make lambda-zip"): "applies the stack to your AWS account",
    ("docs/terraform.md", "umask 077"): "needs the secrets of a real deployment",
    ("docs/cost.md", "aws pricing get-products --region us-east-1"): "needs the AWS Price List API",
}
# FOREIGN blocks that are not commands at all: the static checks skip them.
NOT_COMMANDS = {("docs/watchdog.md", "hfo [--table NAME] [--instance-id ID] [--region REGION] COMMAND ...")}
# Pages whose blocks carry their markers in the page itself.
OWN_PAGES = {"docs/architecture.md", "docs/runbook.md", "docs/security.md", "docs/troubleshooting.md"}

# Values for the documented variables when a command is only parsed, never run.
SAMPLES = {
    "HFO_TABLE_NAME": "hfo-state",
    "HFO_INSTANCE_ID": "i-0123456789abcdef0",
    "HMAC_SECRET": "/hfo/hmac-keyring",
    "DISCORD_SECRET": "/hfo/discord-webhook",
    "TAILSCALE_SECRET": "/hfo/tailscale-auth-key",
    "TICK_FUNCTION": "hfo-tick",
    "HEARTBEAT_FUNCTION": "hfo-heartbeat",
    "ALERT_TOPIC": "arn:aws:sns:eu-west-3:123456789012:hfo-alerts",
    "KEYRING": "keyring-1.json",
    "ZONE": "eu-west-3a",
    "fn": "hfo-tick",
}
PROGRAMS = frozenset({"hfo", "hfo-site", "make", "kubectl", "aws", "terraform"})
PLACEHOLDER = re.compile(r"<[A-Za-z][^<>|;&\n]*>")


def shell_blocks() -> list[Block]:
    return [b for b in all_blocks() if b.is_shell]


def first_line(block: Block) -> str:
    lines = logical_lines(block)
    return lines[0] if lines else ""


def foreign_key(block: Block) -> tuple[str, str] | None:
    line = first_line(block)
    keys = [k for k in FOREIGN if k[0] == block.path and line.startswith(k[1])]
    assert len(keys) <= 1, f"{block.where}: several FOREIGN entries match: {keys}"
    return keys[0] if keys else None


def block_commands(block: Block) -> list[Command]:
    """The block's commands, `<placeholder>` words read as values (as the reader fills them in)."""
    return [c for line in logical_lines(block) for c in split_commands(PLACEHOLDER.sub("sample", line), block.where)]


def every_command() -> list[Command]:
    cmds = [c for b in shell_blocks() if (b.path, first_line(b)) not in NOT_COMMANDS for c in block_commands(b)]
    for path in doc_paths():
        for where, span in inline_spans(path, PROGRAMS):
            cmds += split_commands(PLACEHOLDER.sub("sample", span), where)
    return cmds


def of(program: str, cmds: Iterable[Command] | None = None) -> list[Command]:
    return [c for c in (every_command() if cmds is None else cmds) if c.program == program]


def is_help_of_a_script(cmd: Command) -> bool:
    """`.venv/bin/python bench/x.py --help`: a script of this repository asked for its help."""
    return (
        cmd.program in (".venv/bin/python", "python3")
        and len(cmd.argv) == 3
        and cmd.argv[2] == "--help"
        and cmd.argv[1].endswith(".py")
        and (REPO_ROOT / cmd.argv[1]).is_file()
    )


def statically_checked(cmd: Command) -> bool:
    if not cmd.argv:  # assignments only
        return True
    return cmd.program in STATICALLY_CHECKED or cmd.argv[:2] == ("kubectl", "kustomize") or is_help_of_a_script(cmd)


# ----------------------------------------------------------------------------- markers


def test_the_reader_finds_the_blocks_and_commands() -> None:
    blocks = shell_blocks()
    assert len(blocks) >= 50, "the block reader found far fewer shell blocks than the docs hold"
    assert len(of("hfo")) >= 20 and len(of("aws")) >= 15 and len(of("make")) >= 2
    assert {b.marker.kind for b in blocks if b.marker} == MARKER_KINDS


def test_every_shell_block_is_checked_or_marked() -> None:
    problems = []
    for b in shell_blocks():
        key = foreign_key(b)
        reason = FOREIGN[key] if key else None
        if b.marker is not None:
            m = b.marker
            if reason:
                problems.append(f"{b.where}: marked in the page and in FOREIGN")
            if m.kind not in MARKER_KINDS:
                problems.append(f"{b.where}: unknown marker {m.kind!r} (allowed: {sorted(MARKER_KINDS)})")
            elif m.kind == "run" and m.detail != "moto":
                problems.append(f"{b.where}: `run:` knows only `moto`, got {m.detail!r}")
            elif m.kind == "not-run-here" and len(m.detail.split()) < 2:
                problems.append(f"{b.where}: not-run-here must say what the block needs, got {m.detail!r}")
            continue
        if reason:
            if b.path in OWN_PAGES:
                problems.append(f"{b.where}: mark it in the page, not in FOREIGN")
            continue
        unchecked = sorted({c.program for c in commands(b) if not statically_checked(c)})
        if unchecked:
            problems.append(
                f"{b.where}: runs {unchecked} unmarked: add <!-- run: moto --> or <!-- not-run-here: ... -->"
            )
    assert not problems, "\n".join(problems)


def test_foreign_marks_are_current() -> None:
    used = {foreign_key(b) for b in shell_blocks()}
    stale = sorted(k for k in FOREIGN if k not in used)
    assert not stale, f"FOREIGN names blocks that no longer exist (update it): {stale}"


def test_markers_sit_right_before_a_fence() -> None:
    misplaced = [(rel(p), n, line) for p in doc_paths() for n, line in markers_outside_blocks(p)]
    assert not misplaced, f"marker comments that mark nothing: {misplaced}"


def test_every_block_is_valid_bash() -> None:
    bash = which("bash")
    problems = []
    for b in shell_blocks():
        script = "\n".join(logical_lines(b))
        proc = subprocess.run([bash, "-n"], input=script, capture_output=True, text=True, timeout=10, check=False)
        if proc.returncode != 0:
            problems.append(f"{b.where}: {proc.stderr.strip()}")
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- static checks


def test_hfo_commands_parse() -> None:
    from hfo_watchdog.cli import build_parser

    cmds = of("hfo")
    problems = []
    for cmd in cmds:
        argv = [expand(w, SAMPLES) for w in cmd.argv[1:]]
        parser = build_parser()
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            if exc.code == 0:  # --help
                continue
            problems.append(f"{cmd.where}: `hfo {shlex.join(argv)}` is refused (exit {exc.code})")
    assert not problems, "\n".join(problems)


def test_hfo_site_commands_are_accepted() -> None:
    cmds = {tuple(c.argv) for c in of("hfo-site")}
    assert cmds, "no hfo-site command found: the reader or the docs changed"
    for argv in sorted(cmds):
        proc = subprocess.run(
            [str(VENV_BIN / "hfo-site"), *argv[1:], "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0, f"`{shlex.join(argv)}` is refused: {proc.stderr.strip()}"


def test_make_targets_exist() -> None:
    make = which("make")
    seen = set()
    for cmd in of("make"):
        argv = tuple(cmd.argv[1:])
        if argv in seen:
            continue
        seen.add(argv)
        proc = subprocess.run(
            [make, "-n", *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 0, f"{cmd.where}: `make {shlex.join(argv)}`: {proc.stderr.strip()}"
    assert {"demo", "test"} <= {a[0] for a in seen if a}


def test_script_help_commands_run() -> None:
    cmds = {tuple(c.argv[1:]) for c in every_command() if is_help_of_a_script(c)}
    assert cmds, "no `python script.py --help` command found: the reader or the docs changed"
    for argv in sorted(cmds):
        proc = subprocess.run(
            [str(VENV_BIN / "python"), *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 0 and "usage" in proc.stdout.lower(), f"`{shlex.join(argv)}`: {proc.stderr[-500:]}"


def _kustomize_lines() -> list[tuple[str, str]]:
    """(where, line) of every command line that runs `kubectl kustomize DIR`, in blocks and inline."""
    out = []
    for b in shell_blocks():
        out += [(b.where, line) for line in logical_lines(b)]
    for path in doc_paths():
        out += inline_spans(path, frozenset({"kubectl"}))
    return [(w, line) for w, line in out if re.search(r"\bkubectl kustomize \S", line)]


@pytest.mark.k8s
def test_kustomize_commands_render() -> None:
    """A line made only of `kubectl kustomize` and `grep` runs as written (pipefail, from the root);
    in any other line the `kubectl kustomize DIR` part runs."""
    bash = which("bash")
    which("kubectl")
    lines = _kustomize_lines()
    assert lines
    problems = []
    for where, line in sorted(set(lines)):
        cmds = split_commands(line)
        if all(c.program == "grep" or c.argv[:2] == ("kubectl", "kustomize") for c in cmds):
            script = line
        else:
            script = shlex.join(next(c.argv for c in cmds if c.argv[:2] == ("kubectl", "kustomize")))
        proc = subprocess.run(
            [bash, "-o", "pipefail", "-c", script],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            problems.append(f"{where}: `{script}` exits {proc.returncode}: {proc.stderr.strip()[:300]}")
    assert not problems, "\n".join(problems)


def test_aws_commands_pass_the_aws_cli(tmp_path) -> None:
    python = require_tool("the AWS CLI of tests/docs", str(AWSCLI_PYTHON), "run `make awscli-venv`")
    cmds = of("aws")
    argvs = []
    for cmd in cmds:
        argv = [expand(w, SAMPLES) for w in cmd.argv[1:]]
        for word in argv:  # the CLI reads file:// parameters before it validates them
            if word.startswith("file://"):
                (tmp_path / word.removeprefix("file://")).write_text("sample value\n")
        argvs.append(argv)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "sample",
        "AWS_SECRET_ACCESS_KEY": "sample",
        "AWS_DEFAULT_REGION": "eu-west-3",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    script = REPO_ROOT / "tests" / "testsupport" / "docs_awscli.py"
    proc = subprocess.run(
        [python, str(script)],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    problems = [
        f"{cmd.where}: `aws {shlex.join(argv)}`: {r['error']}"
        for cmd, argv, r in zip(cmds, argvs, results, strict=True)
        if not r["ok"]
    ]
    assert not problems, "\n".join(problems)
