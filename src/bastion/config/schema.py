"""The whole Bastion file: one YAML document, one section per part."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PrivateAttr

from bastion.config.base import Section
from bastion.config.data import DataConfig
from bastion.config.evaluation import EvaluationConfig
from bastion.config.gate import GatePolicy
from bastion.config.model import ModelConfig, TrainConfig
from bastion.config.recipe import RecipeConfig
from bastion.config.serve import ServeConfig
from bastion.config.store import RegistryConfig
from bastion.config.text import TextHardeningConfig
from bastion.config.threat import ThreatModel

__all__ = ["BastionConfig"]


class BastionConfig(Section):
    """A pipeline file. Only ``data`` is required; every other section has defaults."""

    name: str = Field(default="model", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    recipe: RecipeConfig | None = None
    threat_model: ThreatModel = Field(default_factory=ThreatModel)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    gate: GatePolicy = Field(default_factory=GatePolicy)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    text: TextHardeningConfig | None = Field(
        default=None, description="how a text model is hardened (text datasets only)"
    )
    output_dir: Path = Field(default=Path("runs"), description="where artifacts are written")

    _source: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> str | None:
        """The file this config was loaded from, for error messages."""
        return self._source
