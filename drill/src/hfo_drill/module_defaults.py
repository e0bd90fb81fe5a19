"""What the Terraform modules give the watchdog when a user sets nothing, read from the modules'
own files with python-hcl2, so the drill's direct path (no terraform) cannot drift from them.

- terraform/modules/watchdog: the functions' environment (the `environment` local, each setting
  evaluated on its variable's default; the settings bound to a resource, the table name or the
  instance id, are left to the caller), both functions' timeouts, memory and architecture;
- terraform/modules/standby: the default architecture and its default instance type;
- terraform/examples/complete: the default name prefix.

Only the expression forms the module uses are understood (`tostring(var.x)`, `tostring(var.x *
60)`, `var.x ? "true" : "false"`, `var.x`, a string, and the `cond ? {} : {...}` maps of optional
settings). Anything else is a `ModuleDefaultsError` naming the setting and the expression, so a
change to the module that this reader does not follow stops the drill instead of being guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

WATCHDOG = Path("terraform") / "modules" / "watchdog"
STANDBY = Path("terraform") / "modules" / "standby"
EXAMPLE = Path("terraform") / "examples" / "complete"

_VAR = r"var\.(\w+)"
_FORMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"tostring\({_VAR} \* (\d+)\)"), "scaled"),
    (re.compile(rf"tostring\({_VAR}\)"), "plain"),
    (re.compile(rf'{_VAR} \? "true" : "false"'), "boolean"),
    (re.compile(rf'{_VAR} \? "false" : "true"'), "negated"),
    (re.compile(_VAR), "plain"),
    (re.compile(r'"([^"$]*)"'), "literal"),
)
_OPTIONAL = re.compile(r"^(?P<cond>.+?) \? \{\} : \{(?P<body>.*)\}$")
_NULL_TEST = re.compile(rf"^{_VAR} == null$")
_EMPTY_TEST = re.compile(rf"^length\({_VAR}\) == 0$")


class ModuleDefaultsError(ValueError):
    """A module file this reader cannot follow; the message names the file and the setting."""


@dataclass(frozen=True)
class WatchdogDefaults:
    name: str  # the example's prefix of every resource name
    environment: dict[str, str]  # both functions' environment, minus the resource-bound settings
    resource_bound: frozenset[str]  # settings whose value is a resource of the account
    tick_timeout_s: int
    heartbeat_timeout_s: int
    memory_mb: int
    lambda_architecture: str
    standby_architecture: str
    standby_instance_type: str


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModuleDefaultsError(f"{path} not found: the drill runs from a checkout that holds terraform/")
    options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
    with path.open(encoding="utf-8") as fh:
        document: dict[str, Any] = hcl2.load(fh, serialization_options=options)
    return document


def variable_defaults(path: Path) -> dict[str, Any]:
    """name -> default of every variable declared in a .tf file (None when it has none)."""
    return {name: body.get("default") for block in _load(path).get("variable", []) for name, body in block.items()}


def _local(path: Path, name: str) -> Any:
    for block in _load(path).get("locals", []):
        if name in block:
            return block[name]
    raise ModuleDefaultsError(f"{path}: no local {name!r}")


def _split(text: str, separator: str = ",") -> Iterator[str]:
    """`text` cut at `separator` outside brackets and strings."""
    depth, quoted, start = 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "({[":
            depth += 1
        elif not quoted and ch in ")}]":
            depth -= 1
        elif not quoted and depth == 0 and ch == separator:
            yield text[start:i].strip()
            start = i + 1
    if text[start:].strip():
        yield text[start:].strip()


def _entries(body: str, where: str) -> dict[str, str]:
    out = {}
    for item in _split(body):
        name, eq, expression = item.partition(" = ")
        if not eq or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name.strip()):
            raise ModuleDefaultsError(f"{where}: cannot read the map entry {item!r}")
        out[name.strip()] = expression.strip()
    return out


def _terraform_string(value: Any) -> str:
    """A default as Terraform's tostring() and string interpolation print it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _evaluate(setting: str, expression: str, defaults: Mapping[str, Any], where: str) -> str | None:
    """The setting's value on the variables' defaults; None when it is bound to a resource (a
    resource attribute, or a variable without a default)."""
    for pattern, form in _FORMS:
        found = pattern.fullmatch(expression)
        if not found:
            continue
        if form == "literal":
            return found.group(1)
        variable = found.group(1)
        if variable not in defaults:
            raise ModuleDefaultsError(f"{where}: {setting} uses var.{variable}, which is not declared")
        value = defaults[variable]
        if value is None:
            return None
        if form == "scaled":
            return _terraform_string(value * int(found.group(2)))
        if form == "boolean":
            return "true" if value else "false"
        if form == "negated":
            return "false" if value else "true"
        return _terraform_string(value)
    if re.fullmatch(r"aws_[\w.]+", expression):
        return None
    raise ModuleDefaultsError(f"{where}: {setting} = {expression} is an expression the drill cannot evaluate")


def _condition_holds(condition: str, defaults: Mapping[str, Any], where: str) -> bool:
    """`var.x == null` or `length(var.x) == 0`, on the variable's default."""
    found = _NULL_TEST.fullmatch(condition)
    if found:
        return defaults.get(found.group(1)) is None
    found = _EMPTY_TEST.fullmatch(condition)
    if found:
        return len(defaults.get(found.group(1)) or ()) == 0
    raise ModuleDefaultsError(f"{where}: cannot evaluate the condition {condition!r}")


def watchdog_environment(repo: Path) -> tuple[dict[str, str], frozenset[str]]:
    """The functions' environment the module sets on its variables' defaults, and the names of
    the settings it binds to resources (left out of the environment)."""
    defaults = variable_defaults(repo / WATCHDOG / "variables.tf")
    where = str(WATCHDOG / "main.tf")
    expression = str(_local(repo / WATCHDOG / "main.tf", "environment"))
    merged = re.fullmatch(r"\$\{merge\((?P<args>.*)\)\}", expression, flags=re.DOTALL)
    if not merged:
        raise ModuleDefaultsError(f"{where}: the environment local is not a merge() of maps")
    environment: dict[str, str] = {}
    bound: set[str] = set()
    for part in _split(merged.group("args")):
        optional = _OPTIONAL.fullmatch(part)
        if optional:
            if _condition_holds(optional.group("cond"), defaults, where):
                continue  # off by default: the map it adds is empty
            entries = _entries(optional.group("body"), where)
        elif part.startswith("{") and part.endswith("}"):
            entries = _entries(part[1:-1], where)
        else:
            raise ModuleDefaultsError(f"{where}: cannot read the environment part {part!r}")
        for setting, value_expression in entries.items():
            value = _evaluate(setting, value_expression, defaults, where)
            if value is None:
                bound.add(setting)
            else:
                environment[setting] = value
    return environment, frozenset(bound)


def watchdog_defaults(repo: Path) -> WatchdogDefaults:
    """Everything the drill's direct path takes from the modules, read from `repo`'s terraform/."""
    environment, bound = watchdog_environment(repo)
    watchdog = variable_defaults(repo / WATCHDOG / "variables.tf")
    standby = variable_defaults(repo / STANDBY / "variables.tf")
    example = variable_defaults(repo / EXAMPLE / "variables.tf")
    architecture = str(standby["architecture"])
    types = _local(repo / STANDBY / "main.tf", "default_instance_type")
    if not isinstance(types, Mapping) or architecture not in types:
        raise ModuleDefaultsError(f"{STANDBY / 'main.tf'}: no default instance type for {architecture}")
    return WatchdogDefaults(
        name=str(example["name"]),
        environment=environment,
        resource_bound=bound,
        tick_timeout_s=int(watchdog["tick_timeout_s"]),
        heartbeat_timeout_s=int(watchdog["heartbeat_timeout_s"]),
        memory_mb=int(watchdog["lambda_memory_mb"]),
        lambda_architecture=str(watchdog["lambda_architecture"]),
        standby_architecture=architecture,
        standby_instance_type=str(types[architecture]),
    )
