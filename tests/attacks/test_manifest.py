"""The committed manifest and the library version move together.

If this fails after you changed an attack: bump that attack's ``version`` and
``bastion.attacks.registry.LIBRARY_VERSION``, then run ``python -m bastion.attacks`` to
regenerate ``src/bastion/attacks/MANIFEST.json`` and commit it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bastion import attacks

HOW = (
    "bump the attack's version and LIBRARY_VERSION in bastion/attacks/registry.py, "
    "then run `python -m bastion.attacks` and commit MANIFEST.json"
)


def committed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(attacks.MANIFEST_PATH.read_text(encoding="utf-8"))
    return data


def pairs(manifest: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["version"] for a in manifest["attacks"]}


def test_attack_versions_do_not_change_without_a_library_version_bump() -> None:
    old, new = committed(), attacks.manifest()
    if pairs(old) != pairs(new):
        assert old["library_version"] != attacks.LIBRARY_VERSION, (
            f"attacks changed ({pairs(old)} -> {pairs(new)}) but LIBRARY_VERSION is still "
            f"{attacks.LIBRARY_VERSION}: {HOW}"
        )


def test_library_version_only_moves_forward() -> None:
    def parse(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in version.split("."))

    assert parse(attacks.LIBRARY_VERSION) >= parse(committed()["library_version"])


def test_committed_manifest_is_current() -> None:
    assert committed() == attacks.manifest(), f"MANIFEST.json is stale: {HOW}"


def test_write_manifest_reproduces_the_committed_file(tmp_path: Path) -> None:
    written = attacks.write_manifest(tmp_path / "MANIFEST.json")
    assert written.read_text(encoding="utf-8") == attacks.MANIFEST_PATH.read_text(encoding="utf-8")
