"""LightningDataModules, one per dataset family (filled as families land)."""

from avbench.data.datamodules.base import AVDataModule

__all__ = ["AVDataModule"]
