"""Adversarial training: one loop, several objectives, resumable and distributed.

``fit(model, dataset, train_config, recipe=None, threat_model=None, out_dir=...)`` trains
cleanly without a recipe (the baseline) and otherwise with PGD-AT, TRADES, MART or fast
FGSM-RS (optionally with AWP, phased exposure, mixed perturbations, EMA), against the
threat model's L∞ budget, with the training attacks taken from :mod:`bastion.attacks`.
``train_from_config`` is the job behind ``bastion train``.
"""

from bastion.train.distributed import launch
from bastion.train.job import default_out_dir, train_from_config, train_from_file
from bastion.train.loop import StepEvent, TrainResult, fit, weights_digest
from bastion.train.plan import Mode, Plan, resolve_plan, training_eps
from bastion.train.schedules import Ramp, lr_factor, ramp_value

__all__ = [
    "Mode",
    "Plan",
    "Ramp",
    "StepEvent",
    "TrainResult",
    "default_out_dir",
    "fit",
    "launch",
    "lr_factor",
    "ramp_value",
    "resolve_plan",
    "train_from_config",
    "train_from_file",
    "training_eps",
    "weights_digest",
]
