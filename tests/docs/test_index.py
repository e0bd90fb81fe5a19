"""The docs cover what the code has: every page is indexed, every alert key has a runbook entry, every
probe failure class and heartbeat refusal code a troubleshooting entry, every secret a security
entry, every alarm a runbook line, and the Terraform names the commands use exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from testsupport.docs import blocks, commands, logical_lines, read
from testsupport.tools import REPO_ROOT

DOCS = REPO_ROOT / "docs"
TF = REPO_ROOT / "terraform"


def page(name: str) -> str:
    return read(DOCS / name)


def section(text: str, heading: str, *, subsections: bool = True) -> str:
    """The text under a heading, up to the next heading of the same or a higher level (of any level
    without ``subsections``)."""
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert m, f"no heading {heading!r}"
    level = len(m.group(1)) if subsections else 6
    rest = text[m.end() :]
    nxt = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: nxt.start()] if nxt else rest


def table_column(text: str, column: int) -> list[str]:
    """Cells of one column of every Markdown table row in ``text`` (header and rule rows dropped)."""
    cells = []
    for line in text.splitlines():
        if not line.startswith("|") or re.match(r"^\|[-| :]+\|$", line):
            continue
        parts = [p.strip() for p in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(parts) > column:
            cells.append(parts[column])
    return cells[1:]  # the header


def codes(cell: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", cell))


def doc_pages() -> set[str]:
    return {p.name for p in DOCS.glob("*.md")} - {"README.md"}


def test_docs_index_lists_every_page_once_one_line_each() -> None:
    items = re.findall(r"^- \[([\w.-]+\.md)\]\(\1\): \S.*$", page("README.md"), re.M)
    assert sorted(items) == sorted(doc_pages())
    assert len(items) == len(set(items))


def test_readme_documentation_section_links_every_page() -> None:
    text = section(read(REPO_ROOT / "README.md"), "Documentation")
    items = re.findall(r"^- \[docs/([\w.-]+\.md)\]\(docs/\1\): \S.*$", text, re.M)
    assert sorted(items) == sorted(doc_pages())
    assert "(docs/README.md)" in text


def test_every_doctor_check_has_its_section() -> None:
    """docs/doctor.md has a `### <id>` section for each check of `hfo doctor`, in the order they run."""
    from hfo_watchdog.doctor import CHECKS

    sections = re.findall(r"^### ([a-z0-9-]+)\s*$", page("doctor.md"), re.M)
    assert sections == [check_id for check_id, _ in CHECKS]


def arming_keys() -> set[str]:
    """What the watchdog sends when the primary's first heartbeat arms it, asked of the engine."""
    from hfo_watchdog.core import engine
    from hfo_watchdog.core.model import ControlState, Policy, Site, SiteRecord

    first = SiteRecord(Site.PRIMARY, 100.0, 100.0, "running", 1, True, 100.0, 1)
    decision = engine.on_heartbeat(ControlState(), first, None, 100.0, Policy())
    assert decision is not None and decision.state.armed_at == 100.0
    keys = {a.notification.key for a in decision.actions if a.notification is not None}
    assert keys, "arming is notified"
    return keys


def test_every_alert_key_has_a_runbook_entry() -> None:
    from hfo_watchdog.core.alerts import KINDS

    table = section(page("runbook.md"), "Alerts", subsections=False)
    keys = [c for cell in table_column(table, 0) for c in codes(cell)]
    assert sorted(keys) == sorted({*KINDS, *arming_keys(), "transition:<from>-><to>"})


def test_runbook_alarm_names_are_the_ones_terraform_creates() -> None:
    documented = {c for cell in table_column(section(page("runbook.md"), "CloudWatch alarms"), 0) for c in codes(cell)}
    tf = read(TF / "modules/watchdog/main.tf")
    suffixes = re.findall(r'alarm_name\s*=\s*"\$\{[^}]+\}(-[\w-]+)"', tf)
    # "${local.function_names.<fn>}<suffix>" names an alarm on one function; "${var.name}<suffix>" the rest
    names = re.findall(r'alarm_name\s*=\s*"\$\{(?:local\.function_names\.(\w+)|var\.name)\}(-[\w-]+)"', tf)
    expected = {f"hfo-{fn}{suffix}" if fn else f"hfo{suffix}" for fn, suffix in names}
    assert len(names) == len(suffixes) == 3 and documented == expected


def test_every_probe_failure_class_has_a_troubleshooting_entry() -> None:
    from hfo_watchdog.core.model import ProbeFailure

    table = section(page("troubleshooting.md"), "The probe fails")
    documented = {c for cell in table_column(table, 1) for c in codes(cell)}
    assert documented == {f.value for f in ProbeFailure}


def test_every_heartbeat_refusal_has_a_troubleshooting_entry() -> None:
    contract = {c for cell in table_column(section(page("protocol.md"), "Heartbeat"), 2) for c in codes(cell)}
    assert {"stale", "future", "replay", "bad_signature", "unknown_key", "unavailable"} <= contract
    table = section(page("troubleshooting.md"), "Heartbeats are refused")
    documented = {c for cell in table_column(table, 0) for c in codes(cell)}
    assert contract <= documented, sorted(contract - documented)


@pytest.mark.k8s
def test_every_secret_has_a_security_entry() -> None:
    from testsupport.k8s import of_kind, render

    table = section(page("security.md"), "Secrets")
    cells = " ".join(table_column(table, 1))
    sealed = [d["metadata"] for name in ("laptop", "platform-laptop") for d in of_kind(render(name), "SealedSecret")]
    assert len(sealed) == 4
    for meta in sealed:
        assert f"`{meta['namespace']}/{meta['name']}`" in cells, f"SealedSecret {meta['namespace']}/{meta['name']}"
    managed = re.findall(r'name\s*=\s*"/\$\{var\.name\}/([\w-]+)"', read(TF / "modules/secrets/main.tf"))
    assert sorted(managed) == ["discord-webhook", "hmac-keyring", "tailscale-auth-key"]
    for secret in managed:
        assert f"`/<name>/{secret}`" in cells, f"SSM SecureString parameter /<name>/{secret}"
    rotations = {m for m in re.findall(r"\]\(#([\w-]+)\)", " ".join(table_column(table, 3)))}
    headings = set(re.findall(r"^### (.+)$", section(page("security.md"), "Rotating secrets"), re.M))
    assert rotations <= {re.sub(r"[^\w\- ]", "", h).lower().replace(" ", "-") for h in headings}


def _outputs() -> dict[str, str]:
    """Output name -> its block's text, from the module's outputs.tf (both roots forward every one of
    them, tests/terraform/test_static.py checks it)."""
    text = read(TF / "modules/hybrid-failover/outputs.tf")
    return {m.group(1): m.group(2) for m in re.finditer(r'^output "(\w+)" \{(.*?)^\}', text, re.M | re.S)}


def test_terraform_outputs_the_docs_read_exist() -> None:
    outputs = _outputs()
    functions = set(re.findall(r"^\s+(\w+)\s+=\s+\{ handler = ", read(TF / "modules/watchdog/main.tf"), re.M))
    assert functions == {"tick", "heartbeat"}
    found = 0
    for path in sorted(DOCS.glob("*.md")):
        for b in blocks(path):
            for line in logical_lines(b) if b.is_shell else []:
                for m in re.finditer(r"terraform output (?:-raw |-json )?(\w+)(?:\s*\|\s*jq -r \.(\w+))?", line):
                    found += 1
                    name, key = m.group(1), m.group(2)
                    assert name in outputs, f"{b.where}: no output {name!r}"
                    if key:
                        keys = (
                            functions
                            if name == "function_names"
                            else set(re.findall(r"^\s+(\w+)\s+=", outputs[name], re.M))
                        )
                        assert key in keys, f"{b.where}: output {name} has no key {key!r} ({sorted(keys)})"
    assert found >= 9


def _resource_exists(address: str) -> bool:
    """An address of the deployed root (module.hfo...), followed through the module sources from the
    repository's root, which calls the same module by a local path."""
    m = re.fullmatch(r"((?:module\.\w+\.)+)(\w+)\.(\w+)", address)
    if not m:
        return False
    folder = TF / "examples/complete"
    for module in re.findall(r"module\.(\w+)\.", m.group(1)):
        text = "".join(read(p) for p in sorted(folder.glob("*.tf")))
        src = re.search(rf'module "{module}" \{{\s*source\s*=\s*"([^"]+)"', text)
        if not src:
            return False
        folder = (folder / src.group(1)).resolve()
    kind, name = m.group(2), m.group(3)
    return any(f'resource "{kind}" "{name}"' in read(p) for p in Path(folder).glob("*.tf"))


def test_terraform_replace_addresses_exist() -> None:
    addresses = set()
    for path in [REPO_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        addresses |= set(re.findall(r"-replace=([\w.\[\]\"]+)", read(path)))
    assert "module.hfo.module.standby.aws_instance.this" in addresses
    missing = sorted(a for a in addresses if not _resource_exists(a))
    assert not missing, f"-replace= addresses that name no resource: {missing}"


def test_runbook_mode_commands_exist_in_the_cli() -> None:
    """The runbook names every mode the CLI can set (and nothing the CLI lacks)."""
    from hfo_watchdog.cli import build_parser

    parser = build_parser()
    verbs = set(parser._subparsers._group_actions[0].choices)
    used = {c.argv[1] for b in blocks(DOCS / "runbook.md") if b.is_shell for c in commands(b) if c.program == "hfo"}
    assert {"status", "history", "drill", "pin", "pause", "resume"} <= used <= verbs
