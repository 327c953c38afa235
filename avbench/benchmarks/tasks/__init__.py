"""Task kinds as plug-ins: one module per kind, registered in :data:`TASK_KINDS` by its spec.

=====================  ========================  =========================================
kind                   spec                      module
=====================  ========================  =========================================
localization           LocalizationTask          :mod:`.localization` (+ gallery, figures)
segmentation           SegmentationTask          :mod:`.segmentation`
retrieval              RetrievalTask             :mod:`.retrieval`
discovery              DiscoveryTask             :mod:`.discovery`
graph_recovery         GraphRecoveryTask         :mod:`.graph_recovery`
linear_probe           LinearProbeTask           :mod:`.linear_probe`
prompted_segmentation  PromptedSegmentationTask  :mod:`.prompted_segmentation`
disentanglement        DisentanglementTask       :mod:`.disentanglement`
generation             GenerationTask            :mod:`.generation` (+ gallery)
=====================  ========================  =========================================

A new kind is a new module with a :class:`TaskSpec` subclass decorated with
:func:`register_task` (see :mod:`.base`); importing it is enough.
"""

from avbench.benchmarks.tasks.base import (
    TASK_KINDS,
    GalleryCollector,
    PlotRow,
    TaskRunner,
    TaskSpec,
    register_task,
    task_kind,
)
from avbench.benchmarks.tasks.discovery import DiscoveryTask
from avbench.benchmarks.tasks.disentanglement import DisentanglementTask
from avbench.benchmarks.tasks.generation import GenerationTask
from avbench.benchmarks.tasks.graph_recovery import GraphRecoveryTask
from avbench.benchmarks.tasks.linear_probe import LinearProbeTask
from avbench.benchmarks.tasks.localization import LocalizationTask
from avbench.benchmarks.tasks.prompted_segmentation import PromptedSegmentationTask
from avbench.benchmarks.tasks.retrieval import RetrievalTask
from avbench.benchmarks.tasks.segmentation import SegmentationTask

__all__ = [
    "TASK_KINDS",
    "DiscoveryTask",
    "DisentanglementTask",
    "GalleryCollector",
    "GenerationTask",
    "GraphRecoveryTask",
    "LinearProbeTask",
    "LocalizationTask",
    "PlotRow",
    "PromptedSegmentationTask",
    "RetrievalTask",
    "SegmentationTask",
    "TaskRunner",
    "TaskSpec",
    "register_task",
    "task_kind",
]
