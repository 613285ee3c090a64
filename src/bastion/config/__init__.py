"""Bastion's configuration: one YAML file, validated by pydantic, errors that name the field.

Every other part reads typed sections from here and nothing else parses YAML.
"""

from bastion.config.base import Section
from bastion.config.data import DataConfig
from bastion.config.evaluation import EvaluationConfig
from bastion.config.gate import GatePolicy
from bastion.config.loader import format_location, load_config, parse_config
from bastion.config.model import ModelConfig, TrainConfig
from bastion.config.recipe import RecipeConfig
from bastion.config.schema import BastionConfig
from bastion.config.serve import ServeConfig
from bastion.config.store import RegistryConfig
from bastion.config.threat import AttackSpec, Channel, ChannelThreat, ThreatModel

__all__ = [
    "AttackSpec",
    "BastionConfig",
    "Channel",
    "ChannelThreat",
    "DataConfig",
    "EvaluationConfig",
    "GatePolicy",
    "ModelConfig",
    "RecipeConfig",
    "RegistryConfig",
    "Section",
    "ServeConfig",
    "ThreatModel",
    "TrainConfig",
    "format_location",
    "load_config",
    "parse_config",
]
