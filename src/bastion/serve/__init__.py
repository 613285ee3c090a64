"""The guarded inference service (FastAPI): a registry version or a model folder behind the
configured :mod:`bastion.defend` layers, feeding the registry's review queue.

    >>> app = create_app(model=load_model_dir("runs/model"), config=ServeConfig(...),
    ...                  calibration=..., keys=..., review=...)   # doctest: +SKIP
"""

from bastion.serve.app import create_app
from bastion.serve.model import CalibrationData, ServedModel, load_model_dir
from bastion.serve.registry import RegistryReviewSink, load_version
from bastion.serve.review import GroupCommit, ReviewEntry, ReviewSink, export_dataset
from bastion.serve.run import ServeSpec, app_from_env, build_app, run

__all__ = [
    "CalibrationData",
    "GroupCommit",
    "RegistryReviewSink",
    "ReviewEntry",
    "ReviewSink",
    "ServeSpec",
    "ServedModel",
    "app_from_env",
    "build_app",
    "create_app",
    "export_dataset",
    "load_model_dir",
    "load_version",
    "run",
]
