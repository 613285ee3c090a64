"""Bastion: adversarial robustness as a routine part of the ML lifecycle.

The public surface is small on purpose; each part lives in its own subpackage
(``bastion.config``, ``bastion.data``, ``bastion.models``, ``bastion.attacks``,
``bastion.train``, ``bastion.evaluate``, ``bastion.registry``, ``bastion.pipeline``,
``bastion.defend``, ``bastion.serve``, ``bastion.monitor``) and imports only downwards.
"""

from bastion.errors import BastionError

__version__ = "0.1.0"

__all__ = ["BastionError", "__version__"]
