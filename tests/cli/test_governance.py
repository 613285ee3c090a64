"""The governance and model CLI end to end, in process: owners, risk, vuln, audit, models,
promote and rollback — including the ``Type: message`` / exit 1 contract for errors."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.cli import main
from bastion.registry import Registry

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BASTION_DATABASE_URL", f"sqlite:///{tmp_path / 'registry.db'}")
    monkeypatch.setenv("BASTION_ACTOR", "cli-tester")
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


@pytest.fixture
def run(home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["bastion", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def _models(home: Path, count: int) -> Registry:
    registry = Registry.open(artifacts=home / "store")
    for i in range(count):
        folder = home / f"model-{i}"
        folder.mkdir()
        (folder / "weights.pt").write_text(str(i))
        registry.models.register("digits", artifact=folder)
    return registry


def test_owners_and_risks(run: Run) -> None:
    assert run("owners", "set", "digits", "threat_modelling", "alice")[0] == 0
    assert run("owners", "set", "digits", "incident_response", "carol")[0] == 0
    code, out, _ = run("owners", "list", "--json")
    assert code == 0
    assert [(o["role"], o["owner"]) for o in json.loads(out)] == [
        ("incident_response", "carol"),
        ("threat_modelling", "alice"),
    ]
    code, _, err = run("owners", "set", "digits", "janitor", "x")
    assert code == 1
    assert err.startswith("RegistryError: owner role must be one of")

    code, out, _ = run(
        "risk", "add", "--title", "stickers", "--likelihood", "3", "--impact", "4",
        "--owner", "bob", "--attack", "pgd", "--attack", "occlusion",
        "--next-review", "2027-03-01",
    )  # fmt: skip
    assert (code, out.strip()) == (0, "risk #1 added (score 12)")
    assert run("risk", "update", "1", "--impact", "2", "--status", "mitigating")[0] == 0
    code, out, _ = run("risk", "show", "1")
    shown = json.loads(out)
    assert (shown["score"], shown["status"], shown["attacks"]) == (
        6,
        "mitigating",
        ["pgd", "occlusion"],
    )
    code, out, _ = run("risk", "list", "--json", "--status", "mitigating")
    assert [r["id"] for r in json.loads(out)] == [1]
    code, _, err = run("risk", "add", "--title", "x", "--likelihood", "9", "--impact", "1",
                       "--owner", "a")  # fmt: skip
    assert code == 1
    assert "RegistryError: likelihood must be an integer from 1 to 5, got 9" in err
    code, _, err = run("risk", "show", "7")
    assert code == 1
    assert err.startswith("NotFoundError: no risk #7")


def _evaluation(broken: list[int]) -> dict[str, Any]:
    ids = list(range(10))
    return {
        "attacks": [{"name": "pgd", "version": "1.0.0", "broken_ids": broken}],
        "sample_ids": ids,
        "robust_mask": "".join("0" if i in broken else "1" for i in ids),
    }


def test_vulnerability_life_cycle_is_enforced(run: Run, home: Path) -> None:
    registry = _models(home, 3)
    registry.evaluations.add("digits:1", threat_model_hash="t" * 64, record=_evaluation([7]))
    registry.evaluations.add("digits:2", threat_model_hash="t" * 64, record=_evaluation([7]))
    registry.evaluations.add("digits:3", threat_model_hash="t" * 64, record=_evaluation([1]))
    registry.close()

    code, out, _ = run("vuln", "new", "--template")
    report = yaml.safe_load(out)
    report["affected"] = ["digits:1"]
    report["reproduction"]["sample_ids"] = [7]
    (home / "report.yaml").write_text(yaml.safe_dump(report))
    assert run("vuln", "new", "--from", "report.yaml") == (0, "vulnerability #1 filed (open)\n", "")

    code, _, err = run("vuln", "fix", "1", "--remediation", "TRADES")
    assert code == 1
    assert "is open; it cannot become fixed" in err
    assert run("vuln", "triage", "1", "--note", "replayed")[0] == 0
    assert run("vuln", "fix", "1", "--remediation", "TRADES beta 6")[0] == 0
    code, _, err = run("vuln", "verify", "1", "--evaluation-of", "digits:2")
    assert code == 1
    assert "RegistryError: vulnerability #1 not verified" in err
    assert "'pgd' still breaks samples [7]" in err
    code, out, _ = run("vuln", "verify", "1", "--evaluation-of", "digits:3")
    assert (code, out) == (0, "vulnerability #1 verified by evaluation #3\n")
    code, out, _ = run("vuln", "show", "1", "--json")
    assert json.loads(out)["status"] == "verified"

    code, _, err = run(
        "vuln", "new", "--title", "t", "--severity", "high", "--affected", "digits:1",
        "--owner", "o", "--attack", "pgd", "--attack-version", "1", "--param", "eps=0.3",
        "--samples", "1,x",
    )  # fmt: skip
    assert code == 1
    assert "--samples takes comma-separated integer ids" in err
    assert run(
        "vuln", "new", "--title", "t", "--severity", "high", "--affected", "digits:1",
        "--owner", "o", "--attack", "pgd", "--attack-version", "1", "--param", "eps=0.3",
        "--samples", "1,2",
    )[0] == 0  # fmt: skip
    code, out, _ = run("vuln", "list", "--json", "--status", "open")
    assert [v["reproduction"]["params"] for v in json.loads(out)] == [{"eps": 0.3}]


def test_promote_rollback_and_model_views(run: Run, home: Path) -> None:
    _models(home, 2).close()
    code, out, _ = run("promote", "digits:1", "--stage", "production", "--reason", "first")
    assert (code, out) == (0, "digits:1 is now in production\n")
    code, out, _ = run("promote", "digits:2", "--stage", "production", "--reason", "better")
    assert out == "digits:2 is now in production\ndigits:1 archived\n"
    code, out, _ = run("rollback", "digits", "--reason", "regression in prod")
    assert (code, out) == (
        0,
        "rolled back digits: digits:1 is in production (was digits:2, now archived)\n",
    )
    code, out, _ = run("models", "list", "--json")
    assert [(m["ref"], m["stage"]) for m in json.loads(out)] == [
        ("digits:1", "production"),
        ("digits:2", "archived"),
    ]
    code, out, _ = run("models", "show", "digits@production", "--json")
    shown = json.loads(out)
    assert shown["version"]["ref"] == "digits:1"
    assert [h["kind"] for h in shown["history"]] == ["promote", "archive", "rollback"]
    code, out, _ = run("models", "show", "digits:2")
    assert code == 0
    assert "regression in prod" in out

    code, _, err = run("models", "show", "ghost:1")
    assert (code, err) == (1, "NotFoundError: no model named 'ghost' in the registry\n")
    code, _, err = run("rollback", "digits", "--reason", "again")
    assert code == 1
    assert "no earlier production version" in err
    code, _, err = run("promote", "digits:x", "--stage", "production", "--reason", "r")
    assert code == 1
    assert err.startswith("RegistryError: invalid model reference 'digits:x'")


def test_audit_verify_and_log_detect_tampering(run: Run, home: Path) -> None:
    run("owners", "set", "digits", "attack_simulation", "dana")
    run("risk", "add", "--title", "t", "--likelihood", "1", "--impact", "1", "--owner", "o")
    code, out, _ = run("audit", "verify")
    assert code == 0
    assert out.startswith("audit log OK: 2 entries, head ")
    head = out.split()[-1]
    code, out, _ = run("audit", "log", "--json")
    assert [(e["action"], e["actor"]) for e in json.loads(out)] == [
        ("owner.set", "cli-tester"),
        ("risk.add", "cli-tester"),
    ]
    assert run("audit", "verify", "--expect", head)[0] == 0

    with sqlite3.connect(home / "registry.db") as conn:
        conn.execute("UPDATE risks SET owner = 'mallory'")
        conn.execute("DELETE FROM audit_log WHERE seq = 2")
    code, _, err = run("audit", "verify")
    assert code == 1
    assert "IntegrityError: audit log verification failed" in err
    assert "head records 2 entries but the log holds 1" in err
    assert "risks row 1" in err
