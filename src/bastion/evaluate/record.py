"""The evaluation record: everything one evaluation measured, as data that outlives the run.

Reports, the gate and the registry read numbers from this record and nowhere else, so it
keeps the provenance needed to trust or replay them (attack-library version, threat-model
fingerprint, dataset fingerprint, seed, thread count) and the per-sample outcome (which
samples stood, which attack broke which sample) that vulnerability reports are built from.

The JSON form is versioned by :data:`SCHEMA_VERSION`; :meth:`EvaluationRecord.from_dict`
refuses other versions rather than misreading them. The per-sample robust mask is stored as a
string of ``0``/``1`` (one byte per sample) instead of a list of booleans.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.attacks import Norm
from bastion.config import Channel, EvaluationConfig
from bastion.errors import EvaluationError
from bastion.evaluate.checks import Flag, FlagCode
from bastion.evaluate.metrics import Reliability

__all__ = ["SCHEMA_VERSION", "AttackResult", "ClassResult", "EvaluationRecord", "Latency"]

SCHEMA_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class AttackResult:
    """One attack of the suite: its identity and what it did.

    ``robust_accuracy`` is the accuracy under this attack alone (it ran on every clean-correct
    sample); it is ``None`` when the evaluation was lazy (``standalone=False``), where the
    attack only saw the samples still standing. ``cumulative_accuracy`` is the worst case
    over this attack and every cheaper one. ``broken_ids`` are the sample ids this attack
    fooled among those it attacked.
    """

    label: str
    name: str
    version: str
    params: dict[str, Any]
    norm: Norm
    budget: float | None
    uses_gradients: bool
    cost: float
    attacked: int
    success_count: int
    robust_accuracy: float | None
    cumulative_accuracy: float
    seconds: float
    broken_ids: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "name": self.name,
            "version": self.version,
            "params": self.params,
            "norm": self.norm.value,
            "budget": self.budget,
            "uses_gradients": self.uses_gradients,
            "cost": self.cost,
            "attacked": self.attacked,
            "success_count": self.success_count,
            "robust_accuracy": self.robust_accuracy,
            "cumulative_accuracy": self.cumulative_accuracy,
            "seconds": self.seconds,
            "broken_ids": list(self.broken_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttackResult:
        return cls(
            label=str(data["label"]),
            name=str(data["name"]),
            version=str(data["version"]),
            params=dict(data["params"]),
            norm=Norm(data["norm"]),
            budget=None if data["budget"] is None else float(data["budget"]),
            uses_gradients=bool(data["uses_gradients"]),
            cost=float(data["cost"]),
            attacked=int(data["attacked"]),
            success_count=int(data["success_count"]),
            robust_accuracy=_opt_float(data["robust_accuracy"]),
            cumulative_accuracy=float(data["cumulative_accuracy"]),
            seconds=float(data["seconds"]),
            broken_ids=tuple(int(i) for i in data["broken_ids"]),
        )


@dataclass(frozen=True, kw_only=True)
class ClassResult:
    """Clean and worst-case accuracy of one true class (``None`` when it has no samples)."""

    label: str
    count: int
    clean_accuracy: float | None
    robust_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "count": self.count,
            "clean_accuracy": self.clean_accuracy,
            "robust_accuracy": self.robust_accuracy,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassResult:
        return cls(
            label=str(data["label"]),
            count=int(data["count"]),
            clean_accuracy=_opt_float(data["clean_accuracy"]),
            robust_accuracy=_opt_float(data["robust_accuracy"]),
        )


@dataclass(frozen=True, kw_only=True)
class Latency:
    """Clean inference time per sample: single-sample percentiles and the batched average."""

    p50_ms: float
    p95_ms: float
    single_samples: int
    batched_ms_per_sample: float
    batch_size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "single_samples": self.single_samples,
            "batched_ms_per_sample": self.batched_ms_per_sample,
            "batch_size": self.batch_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Latency:
        return cls(
            p50_ms=float(data["p50_ms"]),
            p95_ms=float(data["p95_ms"]),
            single_samples=int(data["single_samples"]),
            batched_ms_per_sample=float(data["batched_ms_per_sample"]),
            batch_size=int(data["batch_size"]),
        )


@dataclass(frozen=True, kw_only=True)
class EvaluationRecord:
    """The result of :func:`bastion.evaluate.evaluate` (see the module docstring)."""

    schema_version: int
    started_at: str
    finished_at: str
    seconds: float
    bastion_version: str
    torch_version: str
    torch_threads: int
    attack_library_version: str
    attack_manifest_digest: str
    threat_model: str
    threat_model_fingerprint: str
    channel: Channel
    dataset: str | None
    dataset_fingerprint: str | None
    config: EvaluationConfig
    n_samples: int
    classes: tuple[str, ...]
    clean_accuracy: float
    worst_case_accuracy: float
    attacks: tuple[AttackResult, ...]
    calibration_clean: Reliability
    calibration_adversarial: Reliability
    per_class: tuple[ClassResult, ...]
    latency: Latency
    flags: tuple[Flag, ...]
    checks_seconds: float
    sample_ids: tuple[int, ...]
    robust_mask: tuple[bool, ...]

    # -- convenience views -----------------------------------------------------------------
    @property
    def ece_clean(self) -> float:
        return self.calibration_clean.ece

    @property
    def ece_adversarial(self) -> float:
        return self.calibration_adversarial.ece

    @property
    def flag_codes(self) -> tuple[FlagCode, ...]:
        return tuple(f.code for f in self.flags)

    @property
    def unreliable(self) -> bool:
        """True when any sanity flag was raised (RobustBench's ``unreliable``)."""
        return bool(self.flags)

    def attack(self, label: str) -> AttackResult:
        for result in self.attacks:
            if result.label == label:
                return result
        known = ", ".join(r.label for r in self.attacks)
        raise KeyError(f"no attack labelled {label!r} in this record; known: {known}")

    def robust_ids(self) -> tuple[int, ...]:
        """Ids of the samples that survived every attack (and were clean-correct)."""
        return tuple(i for i, r in zip(self.sample_ids, self.robust_mask, strict=True) if r)

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": self.seconds,
            "bastion_version": self.bastion_version,
            "torch_version": self.torch_version,
            "torch_threads": self.torch_threads,
            "attack_library_version": self.attack_library_version,
            "attack_manifest_digest": self.attack_manifest_digest,
            "threat_model": self.threat_model,
            "threat_model_fingerprint": self.threat_model_fingerprint,
            "channel": self.channel.value,
            "dataset": self.dataset,
            "dataset_fingerprint": self.dataset_fingerprint,
            "config": self.config.model_dump(mode="json"),
            "n_samples": self.n_samples,
            "classes": list(self.classes),
            "clean_accuracy": self.clean_accuracy,
            "worst_case_accuracy": self.worst_case_accuracy,
            "ece_clean": self.ece_clean,
            "ece_adversarial": self.ece_adversarial,
            "attacks": [a.to_dict() for a in self.attacks],
            "calibration": {
                "clean": self.calibration_clean.to_dict(),
                "adversarial": self.calibration_adversarial.to_dict(),
            },
            "per_class": [c.to_dict() for c in self.per_class],
            "latency": self.latency.to_dict(),
            "flags": [f.to_dict() for f in self.flags],
            "checks_seconds": self.checks_seconds,
            "sample_ids": list(self.sample_ids),
            "robust_mask": "".join("1" if r else "0" for r in self.robust_mask),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationRecord:
        version = data.get("schema_version") if isinstance(data, Mapping) else None
        if version != SCHEMA_VERSION:
            raise EvaluationError(
                f"evaluation record schema_version must be {SCHEMA_VERSION}; got {version!r}"
            )
        try:
            mask = str(data["robust_mask"])
            if set(mask) - {"0", "1"}:
                raise ValueError("robust_mask must be a string of 0 and 1")
            calibration = data["calibration"]
            return cls(
                schema_version=SCHEMA_VERSION,
                started_at=str(data["started_at"]),
                finished_at=str(data["finished_at"]),
                seconds=float(data["seconds"]),
                bastion_version=str(data["bastion_version"]),
                torch_version=str(data["torch_version"]),
                torch_threads=int(data["torch_threads"]),
                attack_library_version=str(data["attack_library_version"]),
                attack_manifest_digest=str(data["attack_manifest_digest"]),
                threat_model=str(data["threat_model"]),
                threat_model_fingerprint=str(data["threat_model_fingerprint"]),
                channel=Channel(data["channel"]),
                dataset=_opt_str(data["dataset"]),
                dataset_fingerprint=_opt_str(data["dataset_fingerprint"]),
                config=EvaluationConfig.model_validate(data["config"]),
                n_samples=int(data["n_samples"]),
                classes=tuple(str(c) for c in data["classes"]),
                clean_accuracy=float(data["clean_accuracy"]),
                worst_case_accuracy=float(data["worst_case_accuracy"]),
                attacks=tuple(AttackResult.from_dict(a) for a in data["attacks"]),
                calibration_clean=Reliability.from_dict(calibration["clean"]),
                calibration_adversarial=Reliability.from_dict(calibration["adversarial"]),
                per_class=tuple(ClassResult.from_dict(c) for c in data["per_class"]),
                latency=Latency.from_dict(data["latency"]),
                flags=tuple(Flag.from_dict(f) for f in data["flags"]),
                checks_seconds=float(data["checks_seconds"]),
                sample_ids=tuple(int(i) for i in data["sample_ids"]),
                robust_mask=tuple(c == "1" for c in mask),
            )
        except (KeyError, TypeError, ValueError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise EvaluationError(f"invalid evaluation record: {what}") from exc

    @classmethod
    def from_json(cls, text: str) -> EvaluationRecord:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"evaluation record is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        """Write the JSON form to ``path`` atomically (a crash leaves the old file intact)."""
        path = Path(path)
        text = self.to_json()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text + "\n")
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise EvaluationError(f"cannot write the evaluation record to {path}: {exc}") from exc
        return path

    @classmethod
    def load(cls, path: str | Path) -> EvaluationRecord:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise EvaluationError(f"cannot read evaluation record {path}: {exc}") from exc
        try:
            return cls.from_json(text)
        except EvaluationError as exc:
            raise EvaluationError(f"{path}: {exc}") from exc


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
