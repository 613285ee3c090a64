"""The main job, ``bastion run``: data → baseline → evaluation → adversarial training →
calibration → evaluation → gate → registry → report, each stage cached by the hash of its
inputs and recorded in the registry, resumable after a crash at any point."""

from bastion.pipeline.cache import CacheEntry, StageCache, content_hash
from bastion.pipeline.runner import (
    PipelineResult,
    StageOutcome,
    bastion_home,
    open_registry,
    run_pipeline,
)
from bastion.pipeline.stages import STAGES, Stage, StageContext
from bastion.pipeline.versions import (
    calibrated_model,
    ensure_evaluation,
    ensure_version,
    gate_version,
    lineage,
    version_config,
    write_version_report,
)

__all__ = [
    "STAGES",
    "CacheEntry",
    "PipelineResult",
    "Stage",
    "StageCache",
    "StageContext",
    "StageOutcome",
    "bastion_home",
    "calibrated_model",
    "content_hash",
    "ensure_evaluation",
    "ensure_version",
    "gate_version",
    "lineage",
    "open_registry",
    "run_pipeline",
    "version_config",
    "write_version_report",
]
