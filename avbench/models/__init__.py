"""Methods, one module each; ``REGISTRY`` maps names to classes.

Importing this package registers every method (``@register`` in each module).
"""

from avbench.models.avldm import AVLDM as AVLDM
from avbench.models.base import CAPABILITIES, REGISTRY, AVModel, ModelMeta, register
from avbench.models.denseav import DenseAV as DenseAV
from avbench.models.ezvsl import EZVSL
from avbench.models.fnac import FNAC
from avbench.models.ili import ILIEmbedding as ILIEmbedding
from avbench.models.jsa import JointSlotSSL
from avbench.models.lvs import LVS
from avbench.models.mc3 import SoundingActionsMC3 as SoundingActionsMC3
from avbench.models.slavc import SLAVC

__all__ = [
    "CAPABILITIES",
    "EZVSL",
    "FNAC",
    "LVS",
    "REGISTRY",
    "SLAVC",
    "AVModel",
    "JointSlotSSL",
    "ModelMeta",
    "register",
]
