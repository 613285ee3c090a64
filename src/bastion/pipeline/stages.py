"""What each stage of the main job does, given the outputs of the stages before it.

Each stage is a function ``(ctx, work_dir) -> output`` plus a function that names its inputs;
the runner hashes the inputs into the stage-cache key, runs the stage only when no complete
entry exists for that key, and records the outcome. Outputs are small JSON-ready dicts (paths
into the stage's cache folder, hashes, headline figures), so that a later run can pick up from
them without holding anything in memory but the dataset.

Stages that leave files (models, evaluation records) write them inside their work folder;
a stage that trains passes ``resume=True`` when its work folder already holds a checkpoint
from an interrupted run.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from bastion import attacks, models
from bastion.config import BastionConfig
from bastion.config.gate import PromoteTo
from bastion.config.text import TextHardeningConfig
from bastion.config.threat import AttackSpec, Channel
from bastion.data import Dataset, load_dataset
from bastion.errors import ConfigError, NotFoundError, TrainingError
from bastion.evaluate import EvaluationRecord, EvaluationWarning, evaluate
from bastion.evaluate.calibration import fit_temperature_on
from bastion.evaluate.gate import decide
from bastion.pipeline.cache import content_hash
from bastion.pipeline.versions import (
    calibrated_model,
    ensure_evaluation,
    ensure_version,
    write_version_report,
)
from bastion.registry import Registry
from bastion.registry.artifacts import tree_sha256

__all__ = ["STAGES", "TEXT_STAGES", "Stage", "StageContext", "stages_for"]

ARTIFACT = "artifact"


@dataclass
class StageContext:
    """What every stage can read: the config, the registry and earlier stages' outputs."""

    config: BastionConfig
    registry: Registry
    home: Path
    console: Console
    progress: bool
    promote_production: bool
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset: Dataset | None = None

    def data(self) -> Dataset:
        if self.dataset is None:
            self.dataset = load_dataset(self.config.data)
        return self.dataset


@dataclass(frozen=True)
class Stage:
    """A stage: its name, what it depends on, what it does, and whether it may be cached."""

    name: str
    title: str
    inputs: Callable[[StageContext], Mapping[str, Any]]
    run: Callable[[StageContext, Path], dict[str, Any]]
    cacheable: bool = True
    applies: Callable[[StageContext], bool] = lambda ctx: True


def _code_identity() -> dict[str, Any]:
    from bastion import __version__

    return {"bastion": __version__, "attacks": attacks.LIBRARY_VERSION, "torch": torch.__version__}


# -- data --------------------------------------------------------------------------------------


def _data_inputs(ctx: StageContext) -> Mapping[str, Any]:
    return {"data": ctx.config.data}


def _data(ctx: StageContext, work: Path) -> dict[str, Any]:
    dataset = ctx.data()
    record = ctx.registry.datasets.register(
        dataset.name, fingerprint=dataset.fingerprint, source=dataset.source
    )
    return {
        "name": dataset.name,
        "fingerprint": dataset.fingerprint,
        "registry": record.ref,
        "train": len(dataset.train),
        "val": len(dataset.val),
        "test": len(dataset.test),
        "classes": list(dataset.classes),
        "summary": f"{dataset.name} {record.ref}: {len(dataset.train)} train / "
        f"{len(dataset.val)} val / {len(dataset.test)} test",
    }


# -- training ----------------------------------------------------------------------------------


def _artifact_output(folder: Path, **more: Any) -> dict[str, Any]:
    spec = models.read_spec(folder)
    return {ARTIFACT: str(folder), "weights_sha256": spec.weights_sha256, **more}


def _baseline_inputs(ctx: StageContext) -> Mapping[str, Any]:
    if ctx.config.model.path is not None:
        spec = models.read_spec(ctx.config.model.path)
        return {"load": str(ctx.config.model.path), "weights_sha256": spec.weights_sha256}
    return {
        "data": ctx.outputs["data"]["fingerprint"],
        "model": ctx.config.model,
        "train": ctx.config.train,
        "code": _code_identity(),
    }


def _train(ctx: StageContext, model: torch.nn.Module, work: Path, adversarial: bool) -> Path:
    """Train into ``work/train`` (resuming a checkpoint an interrupted run left there) and
    return the model artifact folder the trainer wrote."""
    from bastion.train import checkpoint, fit

    out = work / "train"
    resume = bool(checkpoint.list_checkpoints(out)) if out.exists() else False
    if resume:
        ctx.console.print(f"  resuming interrupted training from {out}")
    elif out.exists():
        shutil.rmtree(out)  # killed before its first checkpoint: nothing to keep
    config = ctx.config
    result = fit(
        model,
        ctx.data(),
        config.train,
        config.recipe if adversarial else None,
        config.threat_model if adversarial else None,
        out_dir=out,
        resume=resume,
        progress=ctx.progress,
        architecture=config.model.architecture,
        arguments=config.model.arguments,
    )
    if result.artifact is None:
        raise TrainingError(f"training in {out} finished without writing a model artifact")
    return result.artifact


def _baseline(ctx: StageContext, work: Path) -> dict[str, Any]:
    if ctx.config.model.path is not None:
        folder = Path(ctx.config.model.path)
        models.load(folder)  # refuse a broken artifact here, not three stages later
        return _artifact_output(folder, summary=f"loaded {folder}")
    dataset = ctx.data()
    model = models.build(
        ctx.config.model.architecture,
        input_shape=dataset.input_shape,
        num_classes=len(dataset.classes),
        **ctx.config.model.arguments,
    )
    folder = _train(ctx, model, work, adversarial=False)
    return _artifact_output(folder, summary=f"trained {ctx.config.model.architecture}")


def _adversarial_inputs(ctx: StageContext) -> Mapping[str, Any]:
    return {
        "baseline": ctx.outputs["baseline"]["weights_sha256"],
        "data": ctx.outputs["data"]["fingerprint"],
        "recipe": ctx.config.recipe,
        "train": ctx.config.train,
        "threat_model": ctx.config.threat_model.fingerprint(),
        "code": _code_identity(),
    }


def _adversarial(ctx: StageContext, work: Path) -> dict[str, Any]:
    model = models.load(ctx.outputs["baseline"][ARTIFACT])
    folder = _train(ctx, model, work, adversarial=True)
    assert ctx.config.recipe is not None  # applies() guarantees it
    return _artifact_output(folder, summary=f"{ctx.config.recipe.method} from the baseline")


def _candidate(ctx: StageContext) -> dict[str, Any]:
    return ctx.outputs.get("adversarial_training") or ctx.outputs["baseline"]


def _produced(ctx: StageContext, role: str) -> tuple[Path, str]:
    """(artifact folder, evaluation record file) of the ``"baseline"`` or the
    ``"candidate"``, from whichever stages made them (image stages or the text flow)."""
    text = ctx.outputs.get(TEXT_FLOW)
    if text is not None:
        return Path(text[role][ARTIFACT]), str(text[role]["record"])
    if role == "candidate":
        return Path(ctx.outputs["calibrate"][ARTIFACT]), ctx.outputs["evaluate_candidate"]["record"]
    return Path(ctx.outputs["baseline"][ARTIFACT]), ctx.outputs["evaluate_baseline"]["record"]


def _separate_baseline(ctx: StageContext) -> bool:
    """Whether the run trained a baseline distinct from the candidate (it is registered as
    the candidate's parent)."""
    if TEXT_FLOW in ctx.outputs:
        return True
    return ctx.config.model.path is None and "adversarial_training" in ctx.outputs


# -- calibration -------------------------------------------------------------------------------


def calibration_attack(ctx: StageContext) -> AttackSpec | None:
    """The threat model's attack used to make adversarial validation data: its PGD if it
    has one (the standard first-order adversary), else its first attack."""
    specs = ctx.config.threat_model.channel(Channel.IMAGE).attacks
    for spec in specs:
        if spec.name == "pgd":
            return spec
    return specs[0] if specs else None


def _calibrate_inputs(ctx: StageContext) -> Mapping[str, Any]:
    spec = calibration_attack(ctx)
    return {
        "candidate": _candidate(ctx)["weights_sha256"],
        "data": ctx.outputs["data"]["fingerprint"],
        "attack": spec,
        "code": _code_identity(),
    }


def _calibrate(ctx: StageContext, work: Path) -> dict[str, Any]:
    source = Path(_candidate(ctx)[ARTIFACT])
    folder = work / ARTIFACT
    staging = work / f".{ARTIFACT}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, staging)
    staging.rename(folder)
    model = models.load(folder)
    val = ctx.data().val
    if len(val) == 0:
        raise ConfigError(
            "temperature scaling needs validation data; set data.val_fraction > 0",
            path="data.val_fraction",
        )
    x, y = val.tensors()
    spec = calibration_attack(ctx)
    attack = attacks.create(spec.name, **spec.params) if spec is not None else None
    fit = fit_temperature_on(model, x, y, attack, batch_size=ctx.config.evaluation.batch_size)
    models.update_extra(folder, temperature=fit.temperature, calibration=fit.to_dict())
    return _artifact_output(
        folder,
        temperature=fit.temperature,
        calibration=fit.to_dict(),
        summary=f"T = {fit.temperature:.3f}; validation NLL {fit.nll_before:.3f} -> "
        f"{fit.nll_after:.3f}, ECE {fit.ece_before:.3f} -> {fit.ece_after:.3f}",
    )


# -- evaluation --------------------------------------------------------------------------------


def _evaluation_inputs(which: str) -> Callable[[StageContext], Mapping[str, Any]]:
    def inputs(ctx: StageContext) -> Mapping[str, Any]:
        out = ctx.outputs[which] if which != "candidate" else ctx.outputs["calibrate"]
        return {
            "model": out["weights_sha256"],
            "temperature": out.get("temperature"),
            "data": ctx.outputs["data"]["fingerprint"],
            "threat_model": ctx.config.threat_model.fingerprint(),
            "evaluation": ctx.config.evaluation,
            "attack_manifest": attacks.manifest_digest(),
            "code": _code_identity(),
        }

    return inputs


def _evaluate(ctx: StageContext, folder: Path, work: Path) -> dict[str, Any]:
    model = calibrated_model(folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EvaluationWarning)
        record = evaluate(
            model,
            ctx.data(),
            ctx.config.threat_model,
            ctx.config.evaluation,
            progress=ctx.progress,
            source=ctx.config.source,
        )
    for warning in caught:
        if issubclass(warning.category, EvaluationWarning):
            ctx.console.print(f"  [yellow]sanity flag:[/yellow] {warning.message}")
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    path = record.save(work / "evaluation.json")
    return {
        "record": str(path),
        "clean_accuracy": record.clean_accuracy,
        "worst_case_accuracy": record.worst_case_accuracy,
        "ece_adversarial": record.ece_adversarial,
        "flags": [f.code.value for f in record.flags],
        "summary": _evaluation_summary(record),
    }


def _evaluation_summary(record: EvaluationRecord) -> str:
    flags = f"; flags: {', '.join(c.value for c in record.flag_codes)}" if record.flags else ""
    return (
        f"clean {100 * record.clean_accuracy:.1f}%, worst-case robust "
        f"{100 * record.worst_case_accuracy:.1f}%, ECE under attack "
        f"{record.ece_adversarial:.3f} ({record.n_samples} test samples){flags}"
    )


def _evaluate_baseline(ctx: StageContext, work: Path) -> dict[str, Any]:
    return _evaluate(ctx, Path(ctx.outputs["baseline"][ARTIFACT]), work)


def _evaluate_candidate(ctx: StageContext, work: Path) -> dict[str, Any]:
    return _evaluate(ctx, Path(ctx.outputs["calibrate"][ARTIFACT]), work)


# -- gate, registration, report ------------------------------------------------------------------


def _production(ctx: StageContext) -> tuple[str | None, dict[str, Any] | None]:
    current = ctx.registry.models.production(ctx.config.name)
    if current is None:
        return None, None
    try:
        row = ctx.registry.evaluations.latest(
            current.ref, threat_model_hash=ctx.config.threat_model.fingerprint()
        )
    except NotFoundError:
        try:
            row = ctx.registry.evaluations.latest(current.ref)
        except NotFoundError:
            return current.ref, None
    return current.ref, dict(row.record)


def _gate_inputs(ctx: StageContext) -> Mapping[str, Any]:
    production, record = _production(ctx)
    return {
        "candidate": _produced(ctx, "candidate")[1],
        "production": production,
        "production_record": content_hash(record) if record else None,
        "policy": ctx.config.gate,
    }


def _gate(ctx: StageContext, work: Path) -> dict[str, Any]:
    artifact, record_file = _produced(ctx, "candidate")
    record = EvaluationRecord.load(record_file)
    production, production_record = _production(ctx)
    if production is not None:
        serving = ctx.registry.models.get(production)
        if serving.artifact_sha256 == tree_sha256(artifact):
            # a re-run of the version already serving: it is not its own baseline
            production, production_record = None, None
    decision = decide(record, production_record, ctx.config.gate)
    for reason in decision.reasons:
        colour = "green" if reason.startswith("PASS") else "red"
        ctx.console.print(f"  [{colour}]{reason}[/{colour}]")
    if production is not None and production_record is None:
        ctx.console.print(f"  [yellow]{production} is in production but has no evaluation[/]")
    return {
        "decision": decision.to_dict(),
        "production": production,
        "summary": f"{decision.verdict.value.upper()} "
        f"({sum(not c.passed for c in decision.checks)} of {len(decision.checks)} checks "
        f"failed; against {production or 'no production version'})",
    }


def _target_stage(ctx: StageContext, passed: bool) -> str | None:
    if not passed:
        return None
    if ctx.promote_production:
        return PromoteTo.PRODUCTION.value
    target = ctx.config.gate.promote_to
    return None if target is PromoteTo.NONE else target.value


def _moves_up(current: str, target: str) -> bool:
    """A run only ever promotes: it never demotes a version someone moved further (a rerun
    of the production version) nor revives an archived one."""
    order = {"none": 0, "staging": 1, "production": 2}
    return current in order and order[target] > order[current]


def _register(ctx: StageContext, work: Path) -> dict[str, Any]:
    config = ctx.config
    snapshot = config.model_dump(mode="json")
    fingerprint = ctx.outputs["data"]["fingerprint"]
    threat = config.threat_model.fingerprint()
    baseline_ref = None
    if _separate_baseline(ctx):
        baseline_artifact, baseline_record = _produced(ctx, "baseline")
        baseline = ensure_version(
            ctx.registry,
            config.name,
            baseline_artifact,
            config=snapshot,
            parent=None,
            dataset_fingerprint=fingerprint,
        )
        baseline_ref = baseline.ref
        ensure_evaluation(
            ctx.registry,
            baseline.ref,
            EvaluationRecord.load(baseline_record),
            threat,
        )
    candidate_artifact, candidate_record = _produced(ctx, "candidate")
    candidate = ensure_version(
        ctx.registry,
        config.name,
        candidate_artifact,
        config=snapshot,
        parent=baseline_ref,
        dataset_fingerprint=fingerprint,
    )
    record = EvaluationRecord.load(candidate_record)
    evaluation = ensure_evaluation(ctx.registry, candidate.ref, record, threat)
    gate = ctx.outputs["gate"]
    decision = gate["decision"]
    gates = [
        g
        for g in ctx.registry.gates.list(candidate.ref)
        if g.evaluation_id == evaluation.id and g.inputs.get("decision") == decision
    ]
    if not gates:
        gates = [
            ctx.registry.gates.record(
                candidate.ref,
                policy=decision["policy"],
                inputs={"decision": decision, "production": gate["production"]},
                verdict=decision["verdict"],
                reasons=[c["reason"] for c in decision["checks"]],
                baseline=gate["production"],
                evaluation_id=evaluation.id,
            )
        ]
    target = _target_stage(ctx, decision["verdict"] == "pass")
    version = ctx.registry.models.get(candidate.ref)
    if target is not None and _moves_up(version.stage.value, target):
        version = ctx.registry.models.promote(
            candidate.ref, target, reason=f"gate passed (decision #{gates[0].id}) in bastion run"
        )
    return {
        "baseline": baseline_ref,
        "candidate": candidate.ref,
        "evaluation_id": evaluation.id,
        "gate_id": gates[0].id,
        "stage": version.stage.value,
        "summary": f"{candidate.ref} registered"
        + (f" (parent {baseline_ref})" if baseline_ref else "")
        + f"; stage {version.stage.value}",
    }


def _report_inputs(ctx: StageContext) -> Mapping[str, Any]:
    """The report shows the registered candidate, its evaluation and gate decision and the
    version in production: the same rows give the same report."""
    registered = {k: v for k, v in ctx.outputs["register"].items() if k != "summary"}
    return {
        "register": registered,
        "production": ctx.outputs["gate"]["production"],
        "code": _code_identity(),
    }


def _report(ctx: StageContext, work: Path) -> dict[str, Any]:
    ref = ctx.outputs["register"]["candidate"]
    paths = write_version_report(ctx.registry, ref, ctx.home, dataset=ctx.data())
    return {key: str(path) for key, path in paths.items()} | {"summary": str(paths["html"])}


def _has_recipe(ctx: StageContext) -> bool:
    return ctx.config.recipe is not None


STAGES: tuple[Stage, ...] = (
    Stage("data", "Load the data", _data_inputs, _data, cacheable=False),
    Stage("baseline", "Baseline model", _baseline_inputs, _baseline),
    Stage(
        "evaluate_baseline",
        "Evaluate the baseline",
        _evaluation_inputs("baseline"),
        _evaluate_baseline,
    ),
    Stage(
        "adversarial_training",
        "Adversarial training",
        _adversarial_inputs,
        _adversarial,
        applies=_has_recipe,
    ),
    Stage("calibrate", "Temperature scaling", _calibrate_inputs, _calibrate),
    Stage(
        "evaluate_candidate",
        "Evaluate the candidate",
        _evaluation_inputs("candidate"),
        _evaluate_candidate,
    ),
    Stage("gate", "Gate", _gate_inputs, _gate, cacheable=False),
    Stage("register", "Register", lambda ctx: {}, _register, cacheable=False),
    Stage("report", "Report", _report_inputs, _report),
)


# -- the text channel --------------------------------------------------------------------------

TEXT_FLOW = "text_flow"
#: the text flow's conditions the pipeline needs: the baseline and the gated candidate
_TEXT_ROLES = {"baseline": "baseline", "candidate": "hardened"}


def _text_hardening(ctx: StageContext) -> TextHardeningConfig:
    return ctx.config.text or TextHardeningConfig()


def _text_flow_inputs(ctx: StageContext) -> Mapping[str, Any]:
    return {
        "data": ctx.outputs["data"]["fingerprint"],
        "model": ctx.config.model,
        "text": _text_hardening(ctx),
        "threat_model": ctx.config.threat_model.fingerprint(),
        "evaluation": ctx.config.evaluation,
        "attack_manifest": attacks.manifest_digest(),
        "code": _code_identity(),
    }


def _text_flow(ctx: StageContext, work: Path) -> dict[str, Any]:
    from bastion.pipeline.text_flow import run_text_flow

    if ctx.config.recipe is not None:
        raise ConfigError(
            "a text pipeline is hardened by its 'text' section, not by 'recipe' "
            "(an image adversarial-training recipe); remove 'recipe'",
            source=ctx.config.source,
            path="recipe",
        )
    result = run_text_flow(
        ctx.config,
        hardening=_text_hardening(ctx),
        out_dir=work,
        conditions=tuple(_TEXT_ROLES.values()),
        log=lambda message: ctx.console.print(f"  {message}"),
    )
    out: dict[str, Any] = {}
    for role, condition in _TEXT_ROLES.items():
        record = result.evaluations[condition].record.save(work / f"{condition}.evaluation.json")
        out[role] = {
            ARTIFACT: str(result.artifacts[condition]),
            "record": str(record),
            "condition": condition,
        }
    base = result.evaluations["baseline"].record
    hard = result.evaluations["hardened"].record
    return {
        **out,
        # top level too, so that the cache notices when these files are gone
        ARTIFACT: out["candidate"][ARTIFACT],
        "record": out["candidate"]["record"],
        "flow": str(work / "text_flow.json"),
        "flow_summary": result.summary,
        "summary": f"worst-case robust accuracy {100 * base.worst_case_accuracy:.1f}% -> "
        f"{100 * hard.worst_case_accuracy:.1f}% (clean {100 * base.clean_accuracy:.1f}% -> "
        f"{100 * hard.clean_accuracy:.1f}%); strongest attack on the baseline: "
        f"{result.summary.get('strongest_attack', '-')}",
    }


#: a text dataset: the text flow (train, attack, harden, evaluate) replaces the image stages
TEXT_STAGES: tuple[Stage, ...] = (
    STAGES[0],
    Stage(TEXT_FLOW, "Train, attack and harden the text model", _text_flow_inputs, _text_flow),
    *(s for s in STAGES if s.name in ("gate", "register", "report")),
)


def stages_for(ctx: StageContext) -> tuple[Stage, ...]:
    """The stages of this run, by the dataset's modality."""
    return TEXT_STAGES if ctx.data().modality == Channel.TEXT.value else STAGES
