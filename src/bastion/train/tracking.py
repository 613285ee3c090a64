"""Where a run's numbers go besides its checkpoints: ``metrics.jsonl`` in the artifact folder
always, and MLflow when it is installed.

MLflow is an optional extra, so it is imported only when a run starts and only if present.
A tracking server that fails must not cost the run: the artifact folder is the record, so a
tracking error is logged once and tracking stops for that run.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from bastion.config.recipe import TrackingConfig
from bastion.train.checkpoint import atomic_write_bytes

__all__ = ["MlflowTracker", "flatten", "write_metrics"]

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
_MAX_PARAM_CHARS = 500  # MLflow's limit on a parameter value


def write_metrics(out_dir: Path, history: Sequence[Mapping[str, Any]]) -> Path:
    """Rewrite ``metrics.jsonl``: one JSON object per epoch, from the run's history (so a
    resumed run never shows an epoch twice)."""
    lines = "".join(json.dumps(dict(r), sort_keys=True) + "\n" for r in history)
    path = out_dir / METRICS_FILE
    atomic_write_bytes(path, lines.encode("utf-8"))
    return path


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``, values as MLflow-sized strings."""
    out: dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:_MAX_PARAM_CHARS]
    return out


class MlflowTracker:
    """Parameters, per-epoch metrics and the final artifact, to MLflow if it is importable.

    Every method is a no-op when MLflow is absent, disabled in the config, or has failed.
    """

    def __init__(self, config: TrackingConfig, *, active: bool = True) -> None:
        self.config = config
        self._mlflow: ModuleType | None = None
        self.run_id: str | None = None
        if not (active and config.mlflow):
            return
        try:
            self._mlflow = importlib.import_module("mlflow")
        except ImportError:
            log.debug("mlflow is not installed; not tracking")

    @property
    def enabled(self) -> bool:
        return self._mlflow is not None

    def _call(self, what: str, *args: Any, **kwargs: Any) -> Any:
        if self._mlflow is None:
            return None
        try:
            return getattr(self._mlflow, what)(*args, **kwargs)
        except Exception as exc:  # any tracking failure: keep training, stop tracking
            log.warning("MLflow %s failed (%s); tracking stops for this run", what, exc)
            self._mlflow = None
            return None

    def start(self, run_name: str, params: Mapping[str, Any], run_id: str | None = None) -> None:
        """Start (or, with ``run_id``, continue) a run and log ``params`` once."""
        if self._mlflow is None:
            return
        if self.config.uri is not None:
            self._call("set_tracking_uri", self.config.uri)
        self._call("set_experiment", self.config.experiment)
        run = self._call("start_run", run_id=run_id, run_name=None if run_id else run_name)
        if run is None:
            return
        self.run_id = str(run.info.run_id)
        if run_id is None:
            self._call("log_params", flatten(params))

    def log_epoch(self, record: Mapping[str, Any], step: int) -> None:
        metrics = {
            k: float(v)
            for k, v in record.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
        self._call("log_metrics", metrics, step=step)

    def finish(self, artifacts: Sequence[Path], status: str = "FINISHED") -> None:
        """Log ``artifacts`` (folders or files) and end the run with ``status``."""
        if self._mlflow is None or self.run_id is None:
            return
        for path in artifacts:
            if path.is_dir():
                self._call("log_artifacts", str(path), artifact_path=path.name)
            elif path.is_file():
                self._call("log_artifact", str(path))
        self._call("end_run", status=status)
