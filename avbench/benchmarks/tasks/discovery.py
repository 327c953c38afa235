"""Discovery (REFERENCE A5): does the clip make sound? ROC-AUC / PR-AUC of a sounding score."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch.nn.functional as F
from torch import Tensor

from avbench.benchmarks.tasks.base import TaskRunner, TaskSpec, register_task
from avbench.capabilities import Capability
from avbench.metrics._common import NotScorableError
from avbench.metrics.discovery import DiscoveryMetric

if TYPE_CHECKING:
    from avbench.benchmarks.batch_outputs import BatchOutputs


@register_task
class DiscoveryTask(TaskSpec):
    """REFERENCE A5: ROC-AUC / PR-AUC of a sounding score against ``batch["sounding"]``.

    Score: ``model.sounding_score(batch)`` when the model has it, otherwise
    (MC3's definition) the cosine of the clip's own audio and visual
    embeddings from ``model.embed``. Recorded as ``capability_used``.
    """

    task: Literal["discovery"] = "discovery"
    requires: tuple[Capability, ...] = ("sounding_score", "embed")
    label_key: str = "sounding"

    def metric_names(self) -> list[str]:
        return ["roc_auc", "pr_auc"]

    def make_runner(self, capability: str) -> DiscoveryRunner:
        return DiscoveryRunner(self, capability)


class DiscoveryRunner(TaskRunner):
    """roc_auc / pr_auc; ``info["score"]`` names the score used."""

    spec: DiscoveryTask

    def __init__(self, spec: DiscoveryTask, capability: str) -> None:
        super().__init__(spec, capability)
        self.metric = DiscoveryMetric()
        self.info["score"] = (
            "model.sounding_score"
            if capability == "sounding_score"
            else "cosine(audio, visual) of embed"
        )

    def update(self, out: BatchOutputs) -> None:
        labels = out.batch.get(self.spec.label_key)
        if not isinstance(labels, Tensor):
            raise KeyError(f"discovery needs batch[{self.spec.label_key!r}]")
        if self.capability == "sounding_score":
            scores = out.model.sounding_score(out.batch)
        else:
            emb = out.embed()
            scores = (
                F.normalize(emb["audio"].float(), dim=1) * F.normalize(emb["visual"].float(), dim=1)
            ).sum(1)
        self.metric.update(scores, labels, out.ids())

    def compute(self) -> dict[str, float]:
        """roc_auc / pr_auc.

        Raises:
            NotScorableError: one class only in ``batch[label_key]`` (the reason names it).
        """
        try:
            res = self.metric.compute()
        except NotScorableError as err:
            raise NotScorableError(f"label {self.spec.label_key!r}: {err.reason}",
                                   err.metrics) from err
        self.info.update(
            n=int(res["n"]),
            n_duplicates=int(res["n_duplicates"]),
            positive_rate=float(res["positive_rate"]),
        )
        return {"roc_auc": float(res["roc_auc"]), "pr_auc": float(res["pr_auc"])}


__all__ = ["DiscoveryRunner", "DiscoveryTask"]
