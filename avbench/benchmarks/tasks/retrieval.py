"""Retrieval (REFERENCE A3): cross-modal retrieval with global embeddings (``model.embed``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from torch import Tensor

from avbench.benchmarks.tasks.base import TaskRunner, TaskSpec, register_task
from avbench.capabilities import Capability
from avbench.metrics.retrieval import CrossModalRetrieval

if TYPE_CHECKING:
    from avbench.benchmarks.batch_outputs import BatchOutputs


@register_task
class RetrievalTask(TaskSpec):
    """REFERENCE A3: cross-modal retrieval with global embeddings (``model.embed``).

    Cosine similarity of the embeddings; ``relevance="class"``: items of the
    same ``label_key`` are relevant, ``"instance"``: only the paired clip.
    """

    task: Literal["retrieval"] = "retrieval"
    requires: tuple[Capability, ...] = ("embed",)
    pairs: tuple[tuple[str, str], ...] = (("audio", "visual"),)
    ks: tuple[int, ...] = (1, 5, 10)
    compute_map: bool = False
    relevance: Literal["class", "instance"] = "class"
    label_key: Literal["label", "labels"] = "label"

    def metric_names(self) -> list[str]:
        names: list[str] = []
        for x, y in self.pairs:
            a, b = x[0], y[0]
            names += [f"{d}_r{k}" for d in (f"{a}2{b}", f"{b}2{a}") for k in self.ks]
            if self.compute_map:
                names += [f"{a}2{b}_map", f"{b}2{a}_map"]
        if self.compute_map:
            names.append("map")  # mean of the first pair's two directions
        return names

    def make_runner(self, capability: str) -> RetrievalRunner:
        return RetrievalRunner(self, capability)


class RetrievalRunner(TaskRunner):
    """Recall@k (and MAP) per modality pair; ``map`` comes from the first pair."""

    spec: RetrievalTask

    def __init__(self, spec: RetrievalTask, capability: str) -> None:
        super().__init__(spec, capability)
        self.metrics = [
            CrossModalRetrieval(
                modalities=pair, ks=spec.ks, compute_map=spec.compute_map, relevance=spec.relevance
            )
            for pair in spec.pairs
        ]

    def update(self, out: BatchOutputs) -> None:
        emb = out.embed()
        labels = None
        if self.spec.relevance == "class":
            labels = out.batch.get(self.spec.label_key)
            if not isinstance(labels, Tensor):
                raise KeyError(f"class-match retrieval needs batch[{self.spec.label_key!r}]")
        for m in self.metrics:
            x, y = m.modalities
            if x not in emb or y not in emb:
                raise KeyError(
                    f"model.embed() returned {sorted(emb)}; retrieval needs {x!r} and {y!r}"
                )
            m.update(emb[x], emb[y], labels, out.ids())

    def compute(self) -> dict[str, float]:
        """R@k and MAP per pair. An R@k with k >= the gallery size is left out, its reason
        in ``info["undefined"]`` (metric -> reason).

        Raises:
            NotScorableError: retrieval is undefined on the data. (When the benchmark's
                main score is one of the left-out R@k, the evaluator makes the result
                not-scorable from ``info["undefined"]``.)
        """
        res: dict[str, float] = {}
        undefined: dict[str, str] = {}
        for i, m in enumerate(self.metrics):
            r = m.compute()
            undefined |= m.undefined
            self.info.setdefault("n", int(r["n"]))
            self.info.setdefault("n_duplicates", int(r["n_duplicates"]))
            for k, v in r.items():
                if k in ("n", "n_duplicates") or (k == "map" and i > 0):
                    continue
                res[k] = float(v)
        if undefined:
            self.info["undefined"] = undefined
        return res


__all__ = ["RetrievalRunner", "RetrievalTask"]
