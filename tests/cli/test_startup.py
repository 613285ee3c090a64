"""The CLI starts without torch: registry and governance commands must stay quick to launch.

Each check runs in a fresh interpreter, since this test process has long imported torch.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "sklearn")


@pytest.mark.parametrize(
    "module",
    ["bastion.cli.governance", "bastion.cli.models", "bastion.cli.serve", "bastion.cli"],
)
def test_importing_the_cli_does_not_import_torch(module: str) -> None:
    code = (
        f"import json, sys, {module}; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
