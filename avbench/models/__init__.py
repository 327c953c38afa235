"""Methods, one module each; ``REGISTRY`` maps names to classes."""

from avbench.models.base import CAPABILITIES, REGISTRY, AVModel, ModelMeta, register

__all__ = ["CAPABILITIES", "REGISTRY", "AVModel", "ModelMeta", "register"]
