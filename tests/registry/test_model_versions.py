"""Model versions, lineage, artifacts, datasets, evaluations, gates, stages and rollback."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

import bastion
from bastion.errors import IntegrityError, ModelError, NotFoundError, RegistryError
from bastion.registry import GateVerdict, Registry, Stage, StageChangeKind, tree_sha256
from bastion.registry.db import Tx
from bastion.registry.tables import ModelVersionRow

MakeArtifact = Callable[..., Path]


def test_versions_count_up_per_name_with_lineage_and_provenance(
    registry: Registry, make_artifact: MakeArtifact
) -> None:
    source = make_artifact()
    v1 = registry.models.register(
        "digits",
        artifact=source,
        config={"train": {"epochs": 2}, "eps": 0.1},
        dataset_fingerprint="d" * 64,
        attack_library_version="1.2.0",
    )
    v2 = registry.models.register("digits", artifact=make_artifact(), parent=v1.ref)
    other = registry.models.register("mnist", artifact=make_artifact(), parent="digits:2")

    assert (v1.version, v2.version, other.version) == (1, 2, 1)
    assert v1.stage is Stage.NONE
    assert v2.parent == "digits:1"
    assert other.parent == "digits:2"
    assert v1.parent is None
    assert v1.config == {"train": {"epochs": 2}, "eps": 0.1}
    assert v1.dataset_fingerprint == "d" * 64
    assert v1.attack_library_version == "1.2.0"
    assert v1.code_version.startswith(bastion.__version__)
    assert v1.created_by == "tester"
    # The artifact is a content-addressed copy with the source's hash, not the source.
    assert v1.artifact_sha256 == tree_sha256(source)
    assert v1.artifact_path.name == v1.artifact_sha256
    assert v1.artifact_path.is_dir()
    assert v1.artifact_path != source
    assert (v1.artifact_path / "weights.pt").read_bytes() == (source / "weights.pt").read_bytes()
    assert [m.ref for m in registry.models.list()] == ["digits:1", "digits:2", "mnist:1"]
    assert [m.ref for m in registry.models.list("digits")] == ["digits:1", "digits:2"]


def test_identical_artifacts_share_one_stored_copy(
    registry: Registry, make_artifact: MakeArtifact
) -> None:
    a = registry.models.register("m", artifact=make_artifact(b"same"))
    b = registry.models.register("m", artifact=make_artifact(b"same"))
    c = registry.models.register("m", artifact=make_artifact(b"different"))
    assert a.artifact_path == b.artifact_path != c.artifact_path
    assert a.artifact_sha256 == b.artifact_sha256 != c.artifact_sha256


def test_changing_a_stored_artifact_is_detected(
    registry: Registry, make_artifact: MakeArtifact
) -> None:
    version = registry.models.register("m", artifact=make_artifact())
    assert registry.models.verify_artifact(version.ref).ref == "m:1"
    (version.artifact_path / "weights.pt").write_bytes(b"poisoned")
    with pytest.raises(IntegrityError, match="was modified"):
        registry.models.verify_artifact("m:1")


def test_references_resolve_and_missing_ones_raise_not_found(
    registry: Registry, make_artifact: MakeArtifact
) -> None:
    registry.models.register("m", artifact=make_artifact())
    registry.models.register("m", artifact=make_artifact())
    registry.models.promote("m:1", "staging", reason="try it")
    assert registry.models.get("m").version == 2  # bare name = latest
    assert registry.models.get("m@staging").version == 1
    assert registry.models.get("m:2").version == 2
    with pytest.raises(NotFoundError, match="has versions 1, 2"):
        registry.models.get("m:7")
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        registry.models.get("nope:1")
    with pytest.raises(NotFoundError, match="production"):
        registry.models.get("m@production")
    with pytest.raises(NotFoundError):
        registry.models.promote("m:9", "production", reason="x")
    with pytest.raises(NotFoundError):
        registry.evaluations.latest("m:1")


def test_a_failed_write_leaves_nothing_behind(
    registry: Registry, make_artifact: MakeArtifact
) -> None:
    before = registry.audit.verify().entries
    with pytest.raises(NotFoundError):
        registry.models.register("m", artifact=make_artifact(), parent="ghost:1")
    with pytest.raises(ModelError, match="not found"):
        registry.models.register("m", artifact=Path("/nonexistent/model"))

    def half_done(tx: Tx) -> None:
        tx.insert(
            ModelVersionRow(
                name="half",
                version=1,
                stage="none",
                artifact_path="x",
                artifact_sha256="0" * 64,
                parent_id=None,
                config={},
                dataset_fingerprint=None,
                attack_library_version=None,
                code_version="t",
                created_at=tx.now,
                created_by=tx.actor,
            ),
            "model.register",
        )
        raise RegistryError("crash after the insert")

    with pytest.raises(RegistryError, match="crash after the insert"):
        registry.database.write(half_done)
    assert registry.models.list() == []
    report = registry.audit.verify()
    assert report.ok
    assert report.entries == before


def test_promotion_archives_the_old_production_and_rollback_restores_it(
    registry: Registry, make_artifact: MakeArtifact
) -> None:
    for _ in range(3):
        registry.models.register("m", artifact=make_artifact())
    registry.models.promote("m:1", "production", reason="first release")
    registry.models.promote("m:2", "staging", reason="candidate")
    registry.models.promote("m:2", "production", reason="gate passed")
    assert registry.models.get("m:1").stage is Stage.ARCHIVED
    assert registry.models.production("m") is not None
    registry.models.promote("m:3", "production", reason="gate passed again")

    restored = registry.models.rollback("m", reason="v3 misbehaves in production")
    assert restored.ref == "m:2"
    assert restored.stage is Stage.PRODUCTION
    assert registry.models.get("m:3").stage is Stage.ARCHIVED
    # A second rollback walks further back, it does not bounce back to 3.
    assert registry.models.rollback("m", reason="v2 too").ref == "m:1"
    assert [m.stage for m in registry.models.list("m")] == [
        Stage.PRODUCTION,
        Stage.ARCHIVED,
        Stage.ARCHIVED,
    ]
    with pytest.raises(RegistryError, match="no earlier production version"):
        registry.models.rollback("m", reason="nothing left")

    history = registry.models.history("m")
    assert [(h.model, h.to_stage, h.kind) for h in history[-2:]] == [
        ("m:2", Stage.ARCHIVED, StageChangeKind.ARCHIVE),
        ("m:1", Stage.PRODUCTION, StageChangeKind.ROLLBACK),
    ]
    assert history[-1].reason == "v2 too"
    assert history[-1].actor == "tester"
    actions = [e.action for e in registry.audit.log()]
    assert actions.count("stage.rollback") == 2
    assert registry.audit.verify().ok


def test_stage_changes_need_a_reason_and_a_real_change(
    registry: Registry, make_artifact: MakeArtifact
) -> None:
    registry.models.register("m", artifact=make_artifact())
    with pytest.raises(RegistryError, match="reason is required"):
        registry.models.promote("m:1", "staging", reason="  ")
    with pytest.raises(RegistryError, match="stage must be one of"):
        registry.models.promote("m:1", "live", reason="x")
    registry.models.promote("m:1", "staging", reason="x")
    with pytest.raises(RegistryError, match="already in staging"):
        registry.models.promote("m:1", "staging", reason="x")
    with pytest.raises(RegistryError, match="no version in production"):
        registry.models.rollback("m", reason="x")
    with pytest.raises(NotFoundError):
        registry.models.rollback("ghost", reason="x")


def test_datasets_version_by_content(registry: Registry) -> None:
    a = registry.datasets.register("digits", fingerprint="a" * 64, source="sklearn")
    again = registry.datasets.register("digits", fingerprint="a" * 64, source="sklearn")
    b = registry.datasets.register("digits", fingerprint="b" * 64, source="sklearn")
    assert (a.version, again.id, b.version) == (1, a.id, 2)
    assert registry.datasets.get("digits").version == 2
    assert registry.datasets.get("digits", 1).fingerprint == "a" * 64
    assert [d.ref for d in registry.datasets.by_fingerprint("b" * 64)] == ["digits:2"]
    with pytest.raises(NotFoundError):
        registry.datasets.get("digits", 3)


def test_evaluations_keep_claimed_apart_from_measured(
    registry: Registry, make_artifact: MakeArtifact
) -> None:
    registry.models.register("m", artifact=make_artifact())
    record = {"clean_accuracy": 0.91, "attacks": [{"name": "pgd", "broken_ids": [1, 2]}]}
    stored = registry.evaluations.add(
        "m:1",
        threat_model_hash="t" * 64,
        record=record,
        measured={"clean_accuracy": 0.91, "robust_accuracy": 0.40},
        claimed={"robust_accuracy": 0.55},
        sanity_flags=["zero_gradients"],
    )
    latest = registry.evaluations.latest("m:1")
    assert latest == stored
    assert latest.record == record
    assert latest.measured["robust_accuracy"] == 0.40
    assert latest.claimed == {"robust_accuracy": 0.55}
    assert latest.unreliable
    assert latest.sanity_flags == ("zero_gradients",)
    with pytest.raises(RegistryError, match=r"measured figures\.ece is nan"):
        registry.evaluations.add(
            "m:1", threat_model_hash="t" * 64, record={}, measured={"ece": math.nan}
        )
    assert len(registry.evaluations.list("m:1")) == 1


def test_gate_decisions_record_policy_inputs_verdict_and_reasons(
    registry: Registry, make_artifact: MakeArtifact
) -> None:
    registry.models.register("m", artifact=make_artifact())
    registry.models.register("m", artifact=make_artifact())
    evaluation = registry.evaluations.add("m:2", threat_model_hash="t" * 64, record={})
    decision = registry.gates.record(
        "m:2",
        policy={"min_clean_accuracy": 0.9},
        inputs={"clean_accuracy": 0.85},
        verdict="fail",
        reasons=["clean accuracy 0.85 < 0.90"],
        baseline="m:1",
        evaluation_id=evaluation.id,
    )
    assert decision.verdict is GateVerdict.FAIL
    assert decision.baseline == "m:1"
    assert registry.gates.latest("m:2") == decision
    with pytest.raises(RegistryError, match="gate verdict must be one of"):
        registry.gates.record("m:2", policy={}, inputs={}, verdict="maybe", reasons=[])
    with pytest.raises(NotFoundError):
        registry.gates.record(
            "m:2", policy={}, inputs={}, verdict="pass", reasons=[], evaluation_id=99
        )


def test_registry_opens_default_sqlite_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_artifact: MakeArtifact
) -> None:
    from bastion.config import RegistryConfig

    monkeypatch.delenv("BASTION_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    with Registry.open() as reg:
        reg.models.register("m", artifact=make_artifact())
        assert reg.artifacts == (tmp_path / ".bastion" / "artifacts").resolve()
    assert (tmp_path / ".bastion" / "registry.db").is_file()
    config = RegistryConfig(home=str(tmp_path / "elsewhere"))
    with Registry.open(config) as reg:
        assert reg.models.list() == []
    monkeypatch.setenv("BASTION_DATABASE_URL", f"sqlite:///{tmp_path / '.bastion/registry.db'}")
    with Registry.open(config) as reg:  # the environment beats the file
        assert [m.ref for m in reg.models.list()] == ["m:1"]


def test_bad_urls_and_unreachable_servers_give_registry_errors(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="invalid registry database URL"):
        Registry.open(url="not a url")
    with pytest.raises(RegistryError, match="no database driver"):
        Registry.open(url="postgresql+nosuchdriver://u@localhost/db")
    with pytest.raises(RegistryError, match="registry open failed"):
        Registry.open(url="postgresql+psycopg://u@127.0.0.1:1/db?connect_timeout=2")
