"""Two-head disentanglement (DenseAV; REFERENCE A4): does one head fire for speech, the other
for sound?

Protocol of the reference (``mhamilton723/DenseAV``, ``denseav/train.py``,
``LitAVAligner.disentangle_validation``), on a mixed test set of spoken captions and sound
clips, each with its ``source`` (``"speech"`` / ``"sound"``):

1. each clip's per-head activation ``[B, K]``: the clip scored against its own image by
   each head separately (``get_pairwise_sims(agg_sim=True, agg_heads=False)``: max over
   image tokens, mean over non-silent audio time), taken from the model's
   ``prompted_heatmap(batch)["head_scores"]``;
2. each head's activations min-max normalised over the whole set (the reference does; AP
   does not change under it);
3. ``AP[k, s]``: ``torchmetrics`` ``binary_average_precision`` of head ``k``'s activation
   for "is source ``s``" (speech, sound);
4. best assignment of heads to the two sources (distinct heads; with two heads the
   reference's ``max(mean(AP[0,0], AP[1,1]), mean(AP[0,1], AP[1,0]))``; with more heads
   ``scipy.optimize.linear_sum_assignment``): ``ap_dis`` = the mean AP of the assignment,
   ``ap_speech`` / ``ap_sound`` = the AP of the head assigned to each source (both heads
   reported). ``info``: the AP matrix, the assignment and each head's mean normalised
   activation per source.

A model with one head cannot disentangle: the task is not scorable (with the reason); a
model without ``prompted_heatmap`` is not applicable (the evaluator's capability gate).
The reference's ``act_dis`` (one minus the mean normalised activation) is not reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torchmetrics.functional.classification import binary_average_precision

from avbench.benchmarks.tasks.base import TaskRunner, TaskSpec, register_task
from avbench.benchmarks.tasks.sample_store import SampleStore
from avbench.capabilities import Capability
from avbench.metrics._common import NotScorableError

if TYPE_CHECKING:
    from avbench.benchmarks.batch_outputs import BatchOutputs


def head_source_ap(scores: Tensor, is_source: Tensor) -> Tensor:
    """``AP[k, s]`` of each head's score for each source.

    Args:
        scores: ``[N, K]`` per-clip, per-head activations.
        is_source: bool ``[N, S]``, one column per source.

    Returns:
        ``[K, S]`` average precisions (scores min-max normalised per head first).
    """
    s = scores.float()
    s = s - s.min(0, keepdim=True).values
    s = s / s.max(0, keepdim=True).values.clamp_min(1e-4)
    return torch.stack([
        torch.stack([binary_average_precision(s[:, k], is_source[:, j].long())
                     for j in range(is_source.shape[1])])
        for k in range(s.shape[1])])


def best_assignment(ap: Tensor) -> tuple[list[int], float]:
    """Distinct heads for the sources maximising the mean AP.

    Args:
        ap: ``[K, S]`` with ``K >= S``.

    Returns:
        ``(head of each source, mean AP of that assignment)``.

    Raises:
        ValueError: fewer heads than sources.
    """
    k, s = ap.shape
    if k < s:
        raise ValueError(f"{k} head(s) cannot be assigned to {s} sources")
    rows, cols = linear_sum_assignment(ap.double().numpy(), maximize=True)
    heads = [int(r) for _, r in sorted(zip(cols.tolist(), rows.tolist()))]
    return heads, float(np.mean([float(ap[h, j]) for j, h in enumerate(heads)]))


@register_task
class DisentanglementTask(TaskSpec):
    """DenseAV's head disentanglement on mixed speech + sound clips (module docstring).

    Args (fields):
        source_key: batch key of each clip's source string.
        sources: the two source names (metric names ``ap_<source>``).
    """

    task: Literal["disentanglement"] = "disentanglement"
    requires: tuple[Capability, ...] = ("prompted_heatmap",)
    source_key: str = "source"
    sources: tuple[str, str] = ("speech", "sound")
    normalization: Literal["minmax_per_head"] = "minmax_per_head"

    def metric_names(self) -> list[str]:
        return ["ap_dis", *(f"ap_{s}" for s in self.sources)]

    def make_runner(self, capability: str) -> DisentanglementRunner:
        return DisentanglementRunner(self, capability)


class DisentanglementRunner(TaskRunner):
    """Per-clip head activations and sources (a :class:`SampleStore`, DDP-exact); the AP
    matrix in compute."""

    spec: DisentanglementTask

    def __init__(self, spec: DisentanglementTask, capability: str) -> None:
        super().__init__(spec, capability)
        self.store = SampleStore(("scores", "source"))

    def update(self, out: BatchOutputs) -> None:
        sources = out.batch.get(self.spec.source_key)
        if sources is None or isinstance(sources, Tensor):
            raise KeyError(f"batch needs {self.spec.source_key!r}: one source name per clip")
        res = out.model.prompted_heatmap(out.batch)
        if "head_scores" not in res:
            raise KeyError("model.prompted_heatmap() returned no 'head_scores' [B,K] "
                           "(per-head activation of each clip with its own image)")
        ids = out.ids()
        for sid, src in zip(ids, sources):
            if src not in self.spec.sources:
                raise ValueError(f"clip {sid}: source {src!r} is not one of {self.spec.sources}")
        source = torch.tensor([self.spec.sources.index(s) for s in sources], dtype=torch.long)
        self.store.update(ids, scores=res["head_scores"].float(), source=source)

    def compute(self) -> dict[str, float]:
        """``ap_dis``, ``ap_speech``, ``ap_sound``.

        Raises:
            NotScorableError: one head only, no clip, or a source absent from the set.
        """
        if len(self.store.key) == 0:
            raise NotScorableError("no clips")
        t, dropped = self.store.compute()
        scores, src = t["scores"], t["source"]
        counts = {s: int((src == j).sum()) for j, s in enumerate(self.spec.sources)}
        self.info.update(n=int(src.numel()), n_per_source=counts, n_heads=int(scores.shape[1]),
                         n_duplicates=dropped)
        if scores.shape[1] < len(self.spec.sources):
            raise NotScorableError(f"needs a model with at least {len(self.spec.sources)} "
                                   f"heads, this one has {scores.shape[1]}")
        missing = [s for s, n in counts.items() if n == 0]
        if missing:
            raise NotScorableError(f"no clip of source {missing} in the evaluated set")
        is_source = src[:, None] == torch.arange(len(self.spec.sources))[None]
        ap = head_source_ap(scores, is_source)
        heads, ap_dis = best_assignment(ap)
        normed = scores - scores.min(0).values
        normed = normed / normed.max(0).values.clamp_min(1e-4)
        self.info.update(
            ap_matrix={f"head{k}": {s: float(ap[k, j]) for j, s in enumerate(self.spec.sources)}
                       for k in range(ap.shape[0])},
            assignment={s: heads[j] for j, s in enumerate(self.spec.sources)},
            mean_activation={f"head{k}": {s: float(normed[is_source[:, j], k].mean())
                                          for j, s in enumerate(self.spec.sources)}
                             for k in range(ap.shape[0])},
        )
        return {"ap_dis": ap_dis,
                **{f"ap_{s}": float(ap[heads[j], j]) for j, s in enumerate(self.spec.sources)}}


__all__ = ["DisentanglementRunner", "DisentanglementTask", "best_assignment", "head_source_ap"]
