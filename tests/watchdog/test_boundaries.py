"""The decision core (hfo_watchdog/core) is pure: every module in it imports only the standard
library and hfo_watchdog.core itself, at any depth of the file (inside functions and under
TYPE_CHECKING too). So no AWS SDK, no HTTP client, no adapter and no handler can creep in."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import hfo_watchdog.core

CORE = Path(hfo_watchdog.core.__file__).resolve().parent
CORE_PACKAGE = "hfo_watchdog.core"


def imports(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import statement in `source`."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                yield node.lineno, ".".join([*base, node.module] if node.module else base)
            else:
                yield node.lineno, node.module or ""


def allowed(name: str) -> bool:
    top = name.split(".", 1)[0]
    return top in sys.stdlib_module_names or name == CORE_PACKAGE or name.startswith(CORE_PACKAGE + ".")


def violations(path: Path) -> list[str]:
    relative = path.relative_to(CORE.parent.parent)
    module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
    found = imports(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
    return [f"{relative}:{line} imports {name}" for line, name in found if not allowed(name)]


def test_the_core_imports_only_the_standard_library_and_itself() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert {p.stem for p in modules} >= {"engine", "model", "draft", "phases", "signals", "lease", "steady"}
    problems = [v for path in modules for v in violations(path)]
    assert problems == []


def test_the_check_catches_what_must_not_be_imported() -> None:
    """The rule itself can fail: an SDK, an adapter, the protocol package or a relative import out
    of the core is each reported, wherever the import statement stands."""
    source = (
        "from __future__ import annotations\n"
        "import json\n"
        "from hfo_watchdog.core.model import Policy\n"
        "from . import lease\n"
        "def later():\n"
        "    import boto3\n"
        "    from .. import store\n"
        "if False:\n"
        "    from hfo_protocol.keys import Keyring\n"
        "    from hfo_watchdog.probe import HttpsProber\n"
    )
    bad = [name for _, name in imports(source, "hfo_watchdog.core.engine") if not allowed(name)]
    assert bad == ["boto3", "hfo_watchdog", "hfo_protocol.keys", "hfo_watchdog.probe"]
