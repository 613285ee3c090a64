"""The perturbation library: versioned attacks per modality behind one registry.

``create(name, **params)`` builds an attack; ``manifest()`` describes the whole library.
Attack modules register themselves on import; importing this package imports them all.
"""

from bastion.attacks import image as _image  # noqa: F401  (package marker)
from bastion.attacks.base import Attack, ImageAttack, Modality, Model, Norm
from bastion.attacks.image import fgsm as _fgsm  # noqa: F401
from bastion.attacks.image import pgd as _pgd  # noqa: F401
from bastion.attacks.registry import (
    LIBRARY_VERSION,
    create,
    get,
    manifest,
    manifest_digest,
    names,
    register,
)

__all__ = [
    "LIBRARY_VERSION",
    "Attack",
    "ImageAttack",
    "Modality",
    "Model",
    "Norm",
    "create",
    "get",
    "manifest",
    "manifest_digest",
    "names",
    "register",
]
