"""Check AWS CLI commands without an AWS account: run each through the real AWS CLI (its own argument
parser, its customisations, botocore's parameter validation) and stop it just before the request
would be sent.

Runs in the interpreter of the separate AWS CLI environment (.venv-awscli, `make awscli-venv`), not
under pytest: the AWS CLI pins its own botocore. Input on stdin: a JSON list of argument lists (the
words after `aws`). Output on stdout: a JSON list of {"ok", "operation", "error"}, one per command.
"""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout


class ReachedTheWire(Exception):
    """Raised at botocore's before-call event: the arguments parsed and the parameters validated."""


REACHED: list[str] = []  # operations that got as far as the wire (the CLI prints our exception tersely)


def _stop(model: object, **_: object) -> None:
    REACHED.append(str(getattr(model, "name", "?")))
    raise ReachedTheWire(REACHED[-1])


def check(argv: list[str], loader: object) -> dict[str, object]:
    from awscli.clidriver import create_clidriver

    # A fresh driver per command (customisations keep per-command state), sharing one model loader:
    # loading the service models is what costs time.
    driver = create_clidriver()
    driver.session.register_component("data_loader", loader)
    driver.session.register("before-call", _stop)
    REACHED.clear()
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = driver.main(argv)
        except SystemExit as exc:  # argparse errors exit
            rc = exc.code if isinstance(exc.code, int) else 2
        except ReachedTheWire:
            rc = 0
    if REACHED:
        return {"ok": True, "operation": REACHED[0], "error": ""}
    lines = [line.strip() for line in err.getvalue().splitlines() if line.strip()]
    return {"ok": False, "operation": "", "error": f"exit {rc}: " + " | ".join(lines[-2:])}


def main() -> int:
    from awscli.clidriver import create_clidriver

    commands = json.load(sys.stdin)
    loader = create_clidriver().session.get_component("data_loader")
    json.dump([check(argv, loader) for argv in commands], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
