"""The perturbation library: versioned attacks per modality behind one registry.

``create(name, **params)`` builds an attack; ``manifest()`` describes the whole library.
Attack modules register themselves on import; importing this package imports them all.
"""

from bastion.attacks import image as _image  # noqa: F401  (package marker)
from bastion.attacks.base import (
    FORWARD_COST,
    Attack,
    ImageAttack,
    Modality,
    Model,
    Norm,
    UnknownParameterError,
)
from bastion.attacks.image import apgd_ce as _apgd_ce  # noqa: F401
from bastion.attacks.image import apgd_dlr as _apgd_dlr  # noqa: F401
from bastion.attacks.image import apgd_t as _apgd_t  # noqa: F401
from bastion.attacks.image import fgsm as _fgsm  # noqa: F401
from bastion.attacks.image import gaussian_noise as _gaussian_noise  # noqa: F401
from bastion.attacks.image import occlusion as _occlusion  # noqa: F401
from bastion.attacks.image import pgd as _pgd  # noqa: F401
from bastion.attacks.image import square as _square  # noqa: F401
from bastion.attacks.registry import (
    LIBRARY_VERSION,
    MANIFEST_PATH,
    create,
    get,
    manifest,
    manifest_digest,
    names,
    register,
    write_manifest,
)
from bastion.attacks.text import char as _text_char  # noqa: F401
from bastion.attacks.text import homoglyph as _text_homoglyph  # noqa: F401
from bastion.attacks.text import invisible as _text_invisible  # noqa: F401
from bastion.attacks.text import leet as _text_leet  # noqa: F401
from bastion.attacks.text import punctuation as _text_punctuation  # noqa: F401
from bastion.attacks.text import synonym as _text_synonym  # noqa: F401

__all__ = [
    "FORWARD_COST",
    "LIBRARY_VERSION",
    "MANIFEST_PATH",
    "Attack",
    "ImageAttack",
    "Modality",
    "Model",
    "Norm",
    "UnknownParameterError",
    "create",
    "get",
    "manifest",
    "manifest_digest",
    "names",
    "register",
    "write_manifest",
]
