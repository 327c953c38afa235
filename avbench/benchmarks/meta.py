"""Benchmark descriptions: dataset + split + protocol + metrics + main score.

A :class:`BenchmarkMeta` is pure data (pydantic v2, frozen): what to run and
how to score it. It holds one or more :data:`TaskSpec` (localization,
segmentation, retrieval, discovery, graph recovery), each with the protocol
options that decide its numbers (REFERENCE.md section A) and the model
capabilities that can serve it (any one of them, in order of preference).

Applicability (DESIGN 4.5): a benchmark applies to a model when the model has
a capability serving the **primary** task, the one that produces
``main_score``. Secondary tasks (e.g. retrieval on VGG-SS) run when their
capability is present and are otherwise listed as skipped with the reason.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from avbench.capabilities import Capability

Split = Literal["train", "val", "test"]


class _Task(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def metric_names(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError


class LocalizationTask(_Task):
    """REFERENCE A1: cIoU of binarised heat maps against GT maps.

    ``gt_key="gt_map"``: the batch's ``gt_map`` [B,H,W] (Flickr consensus /
    VGG-SS box union). ``gt_key="masks"``: every annotated AVSBench frame
    ``masks[:, t]`` is one image (frame ``t`` of ``frames`` with the clip's
    audio), frames with empty masks handled by ``empty_gt``.
    """

    task: Literal["localization"] = "localization"
    requires: tuple[Capability, ...] = ("localize",)
    threshold_rule: Literal["top50", "fixed"] = "top50"
    threshold: float = Field(0.6, ge=0.0, le=1.0, description="fixed rule only")
    upsample: Literal["bilinear"] = "bilinear"
    align_corners: bool = True
    gt_key: Literal["gt_map", "masks"] = "gt_map"
    empty_gt: Literal["zero", "exclude"] = "zero"

    def metric_names(self) -> list[str]:
        return ["ap50", "auc", "mean_ciou"]


class SegmentationTask(_Task):
    """REFERENCE A2: AVSBench mIoU and F-score.

    How a model's output becomes the per-pixel score S in [0, 1]:

    * ``segment`` capability: ``model.segment(batch)`` returns logits
      [B,T,H,W] (or [B,H,W] for one frame); bilinear upsampling of the logits
      to the mask size if needed, then ``S = sigmoid(logits)`` (reference).
    * ``localize`` capability (zero-shot, the way AVSBench is used as an SSL
      test): the per-frame heat map is upsampled bilinearly to the mask size
      and **min-max normalised per frame** (as in A1); then
      ``mask = S > 0.5`` for IoU and the 255-threshold curve ``S >= t_k`` for
      F. ``sigmoid(map) > 0.5`` would be wrong for a cosine map (it is
      ``map > 0``), hence the normalisation. Recorded as ``score_transform``.
    """

    task: Literal["segmentation"] = "segmentation"
    requires: tuple[Capability, ...] = ("segment", "localize")
    iou_threshold: float = 0.5
    n_thresholds: int = 255
    beta2: float = 0.3
    align_corners: bool = True

    def metric_names(self) -> list[str]:
        return ["miou", "fscore"]


class RetrievalTask(_Task):
    """REFERENCE A3: cross-modal retrieval with global embeddings (``model.embed``)."""

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


class DiscoveryTask(_Task):
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


class GraphRecoveryTask(_Task):
    """REFERENCE A6: ``model.class_graph()`` vs the planted graph written beside the data."""

    task: Literal["graph_recovery"] = "graph_recovery"
    requires: tuple[Capability, ...] = ("class_graph",)
    graph_file: str = "cooccurrence_graph.json"
    undirected: Literal["both", "ignore"] = "both"

    def metric_names(self) -> list[str]:
        return [
            "edge_precision",
            "edge_recall",
            "edge_f1",
            "shd",
            "skeleton_precision",
            "skeleton_recall",
            "skeleton_f1",
        ]


TaskSpec = Annotated[
    LocalizationTask | SegmentationTask | RetrievalTask | DiscoveryTask | GraphRecoveryTask,
    Field(discriminator="task"),
]


class BenchmarkMeta(BaseModel):
    """One benchmark: dataset + split + protocol (tasks) + metrics + main score."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    dataset: str = Field(description="dataset family (datamodule), e.g. 'vggss', 'avsbench'")
    subset: str | None = Field(None, description="e.g. 'heard', 's4'")
    split: Split = "test"
    tasks: tuple[TaskSpec, ...] = Field(min_length=1)
    metrics: tuple[str, ...]
    main_score: str
    higher_is_better: bool = True
    description: str = ""
    reference: str = Field("", description="REFERENCE.md section of the protocol")

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        # accept its own dumps (which include the computed fields)
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in ("requires", "protocol")}
        return data

    @model_validator(mode="after")
    def _check(self) -> BenchmarkMeta:
        produced = [m for t in self.tasks for m in t.metric_names()]
        dup = {m for m in produced if produced.count(m) > 1}
        if dup:
            raise ValueError(f"{self.name}: tasks produce the same metric names {sorted(dup)}")
        unknown = set(self.metrics) - set(produced)
        if unknown:
            raise ValueError(f"{self.name}: metrics {sorted(unknown)} are not produced by any task")
        if self.main_score not in self.metrics:
            raise ValueError(f"{self.name}: main_score {self.main_score!r} is not in metrics")
        return self

    @property
    def primary_task(self) -> Any:
        """The task that produces ``main_score``."""
        for t in self.tasks:
            if self.main_score in t.metric_names():
                return t
        raise AssertionError("validated in _check")  # pragma: no cover

    @computed_field  # type: ignore[prop-decorator]
    @property
    def requires(self) -> tuple[str, ...]:
        """Capabilities that make the benchmark applicable (any one of them)."""
        return tuple(self.primary_task.requires)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def protocol(self) -> dict[str, Any]:
        """The protocol options of every task (recorded in every result)."""
        return {t.task: t.model_dump(mode="json") for t in self.tasks}
