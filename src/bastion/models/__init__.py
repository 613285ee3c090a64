"""Reference architectures by name and the model artifact that carries one between stages.

    >>> from bastion import models
    >>> net = models.build("small_cnn", input_shape=(1, 8, 8), num_classes=10)
    >>> folder = models.save(net, "out/model", architecture="small_cnn", arguments={},
    ...                      input_shape=(1, 8, 8), classes=[str(d) for d in range(10)],
    ...                      input_scaling={"scale": 16.0})          # doctest: +SKIP
    >>> models.load(folder)                                          # doctest: +SKIP

Every reference model maps inputs in [0, 1] to logits and has ``features(x)`` and ``head``
with ``forward(x) == head(features(x))``.
"""

from __future__ import annotations

from bastion.models import mlp as _mlp  # noqa: F401  (registers "mlp")
from bastion.models import small_cnn as _small_cnn  # noqa: F401  (registers "small_cnn")
from bastion.models.architectures import Builder, architectures, build, register_architecture
from bastion.models.artifact import (
    FORMAT_VERSION,
    SPEC_FILE,
    WEIGHTS_FILE,
    ModelSpec,
    load,
    read_spec,
    save,
    update_extra,
)

__all__ = [
    "FORMAT_VERSION",
    "SPEC_FILE",
    "WEIGHTS_FILE",
    "Builder",
    "ModelSpec",
    "architectures",
    "build",
    "load",
    "read_spec",
    "register_architecture",
    "save",
    "update_extra",
]
