"""Starting the server: from a spec to a running uvicorn, with one or many workers.

Everything a worker needs is in a :class:`ServeSpec` — which model (registry reference or
folder), the serve config, the registry URL, and the calibration data file — so that with
``workers > 1`` each uvicorn worker process rebuilds the same app from the spec passed in
the environment (``BASTION_SERVE_SPEC``) through the :func:`app_from_env` factory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from bastion.config.serve import ServeConfig
from bastion.config.store import RegistryConfig
from bastion.errors import ServeError
from bastion.registry import Registry
from bastion.registry.keys import ApiKeyStore
from bastion.serve.app import create_app
from bastion.serve.logs import configure_logging
from bastion.serve.model import CalibrationData, load_model_dir
from bastion.serve.registry import RegistryReviewSink, load_version
from bastion.serve.text import build_text_app

__all__ = ["ENV_SPEC", "ServeSpec", "app_from_env", "build_app", "run"]

ENV_SPEC = "BASTION_SERVE_SPEC"
_WORKER_START_S = 120  # a worker imports torch and fits the detectors before it is ready


class ServeSpec(BaseModel):
    """What to serve and how; exactly one of ``model_ref`` and ``model_dir``."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model_ref: str | None = None
    model_dir: str | None = None
    serve: ServeConfig = ServeConfig()
    registry: RegistryConfig = RegistryConfig()
    registry_url: str | None = None
    calibration_path: str | None = None

    @model_validator(mode="after")
    def _one_model(self) -> ServeSpec:
        if (self.model_ref is None) == (self.model_dir is None):
            raise ValueError("give exactly one of a registry reference or a model folder")
        return self


def build_app(spec: ServeSpec) -> FastAPI:
    """Open the registry, load the model and calibration data, and build the app."""
    registry = Registry.open(spec.registry, url=spec.registry_url)
    text_app = build_text_app(spec, registry)
    if text_app is not None:
        return text_app
    if spec.model_ref is not None:
        model, _ = load_version(registry, spec.model_ref)
    else:
        model = load_model_dir(spec.model_dir or "")
    calibration = (
        CalibrationData.load(spec.calibration_path) if spec.calibration_path is not None else None
    )
    keys = ApiKeyStore(registry.database) if spec.serve.layer("api_key") is not None else None
    return create_app(
        model=model,
        config=spec.serve,
        calibration=calibration,
        keys=keys,
        review=RegistryReviewSink(registry),
    )


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: the spec comes from ``BASTION_SERVE_SPEC``."""
    text = os.environ.get(ENV_SPEC)
    if not text:
        raise ServeError(f"{ENV_SPEC} is not set; start the server with `bastion serve`")
    try:
        spec = ServeSpec.model_validate_json(text)
    except ValidationError as exc:
        raise ServeError(f"{ENV_SPEC} is not a valid serve spec: {exc}") from exc
    configure_logging()
    return build_app(spec)


def run(spec: ServeSpec, *, log_level: str = "info") -> None:
    """Serve until interrupted. One worker runs in this process; more are uvicorn workers."""
    import uvicorn

    configure_logging()
    config = spec.serve
    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "log_level": log_level,
        "access_log": False,  # Bastion writes its own JSON access line per request
    }
    if config.workers == 1:
        uvicorn.run(build_app(spec), **options)
        return
    if spec.calibration_path is not None:
        Path(spec.calibration_path).resolve(strict=True)
    # Workers run under uvicorn's own command in a child interpreter: multiprocessing's
    # spawn re-imports the parent's main script, and workers spawned from the ``bastion``
    # console script die silently at start; ``python -m uvicorn`` is uvicorn's tested path.
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bastion.serve.run:app_from_env",
        "--factory",
        "--workers",
        str(config.workers),
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--log-level",
        log_level,
        "--no-access-log",
        "--timeout-worker-healthcheck",
        str(_WORKER_START_S),
    ]
    env = {**os.environ, ENV_SPEC: spec.model_dump_json()}
    process = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: object) -> None:
        process.send_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    code = process.wait()
    if code not in (0, -signal.SIGTERM, -signal.SIGINT):
        raise ServeError(f"the uvicorn supervisor exited with status {code}")
