"""Run a model's capability over a benchmark split and score it.

:func:`evaluate` is the single evaluation path of avbench: trained methods
and trivial baselines go through the same code (DESIGN 1.3). It

1. checks applicability from the model's capabilities (a skipped pair comes
   back as a result with ``status="skipped"`` and the reason);
2. iterates ``datamodule.<split>_dataloader()`` once under ``torch.no_grad``
   with the model in eval mode, calling each capability once per batch and
   sharing its output between tasks (AVSBench: one ``localize`` call per frame
   feeds both the segmentation and the localization scores);
3. updates one torchmetrics ``Metric`` per task and returns every number with
   the protocol options that produced it, the capability used per task, the
   sample counts, the train/test leak report and the timing.

DDP: when ``torch.distributed`` is initialised with several ranks, the loader
is re-built with a ``DistributedSampler`` (no shuffle) and each rank evaluates
its shard; the metrics gather per-sample values and drop the sampler's padded
duplicates by id, so every rank returns the single-process numbers.

How model outputs become scores (see the task classes in
:mod:`avbench.benchmarks.meta` and docs/protocols.md):

* localization: ``localize(batch)`` [B,h,w] -> bilinear upsampling to the GT
  size -> per-image min-max -> top-50% (or fixed) rule -> cIoU;
* AVSBench with ``localize``: each annotated frame t is scored with
  ``localize`` on ``batch["frames"][:, t]`` (the clip's audio); the map is
  upsampled and min-max normalised, ``S > 0.5`` gives the IoU mask and the
  255-threshold curve gives F. With ``segment``: ``sigmoid(logits)``;
* retrieval: cosine of ``embed(batch)`` vectors;
* discovery: ``sounding_score(batch)``, else cosine(audio, visual) of ``embed``;
* graph recovery: ``class_graph()`` vs the planted graph file.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor
from torch.utils.data import DataLoader

from avbench.benchmarks.leak import LeakReport, check_leak
from avbench.benchmarks.meta import (
    BenchmarkMeta,
    DiscoveryTask,
    GraphRecoveryTask,
    LocalizationTask,
    RetrievalTask,
    SegmentationTask,
)
from avbench.benchmarks.registry import (
    applicability,
    get_benchmark,
    model_name,
    pick_capability,
)
from avbench.metrics.discovery import DiscoveryMetric
from avbench.metrics.graph import GraphRecoveryMetric, as_graph, load_graph
from avbench.metrics.localization import AUC_THRESHOLDS, LocalizationMetric, prepare_maps
from avbench.metrics.retrieval import CrossModalRetrieval
from avbench.metrics.segmentation import AVSBenchMetric

log = logging.getLogger(__name__)

Status = Literal["ok", "skipped", "failed"]


class TaskOutcome(BaseModel):
    """The result of one task of a benchmark."""

    task: str
    status: Status
    capability_used: str | None = None
    reason: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    info: dict[str, Any] = Field(default_factory=dict)


class EvaluationResult(BaseModel):
    """Everything :func:`evaluate` measured for one (model, benchmark) pair."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str
    benchmark: str
    dataset: str
    subset: str | None = None
    split: str
    status: Status
    reason: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    main_score: str
    main_value: float | None = None
    higher_is_better: bool = True
    protocol: dict[str, Any] = Field(default_factory=dict)
    tasks: list[TaskOutcome] = Field(default_factory=list)
    leak: LeakReport | None = None
    n_samples: int = 0
    seconds: float = 0.0
    world_size: int = 1
    gallery: dict[str, Any] | None = Field(
        default=None,
        exclude=True,
        description="first samples of rank 0 for the leaderboard heat-map gallery (numpy "
        "arrays, see evaluate(gallery=N)); not part of the JSON result",
    )


# --- helpers -------------------------------------------------------------------
def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _model_device(model: Any) -> torch.device:
    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return batch
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}


def _distributed_loader(loader: DataLoader) -> DataLoader:
    """The same loader over this rank's shard (DistributedSampler, no shuffle, padded)."""
    from torch.utils.data.distributed import DistributedSampler

    if isinstance(loader.sampler, DistributedSampler):
        return loader
    sampler = DistributedSampler(loader.dataset, shuffle=False, drop_last=False)
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=False,
    )


def _squeeze_map(x: Tensor) -> Tensor:
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    return x


class _BatchOutputs:
    """Capability outputs of one batch, computed once and shared between tasks."""

    def __init__(self, model: Any, batch: dict[str, Any]) -> None:
        self.model = model
        self.batch = batch
        self._cache: dict[str, Any] = {}

    def ids(self) -> list[str]:
        ids = self.batch.get("id")
        if ids is None:
            raise KeyError("batch has no 'id' (needed for exact, de-duplicated evaluation)")
        return [str(i) for i in ids]

    def embed(self) -> dict[str, Tensor]:
        if "embed" not in self._cache:
            self._cache["embed"] = self.model.embed(self.batch)
        return self._cache["embed"]

    def localize(self) -> Tensor:
        if "localize" not in self._cache:
            self._cache["localize"] = _squeeze_map(self.model.localize(self.batch)).float()
        return self._cache["localize"]

    def masks(self) -> tuple[Tensor, Tensor | None]:
        masks = self.batch.get("masks")
        if not isinstance(masks, Tensor):
            raise KeyError("batch has no 'masks' tensor [B,T,H,W]")
        if masks.ndim == 3:
            masks = masks.unsqueeze(1)
        valid = self.batch.get("mask_valid")
        if isinstance(valid, Tensor):
            valid = valid.reshape(masks.shape[0], masks.shape[1]).bool()
        else:
            valid = None
        return masks, valid

    def localize_frames(self) -> Tensor:
        """Heat maps [B, T, h, w] for each mask frame (one ``localize`` call per frame)."""
        if "localize_frames" in self._cache:
            return self._cache["localize_frames"]
        masks, _ = self.masks()
        t = masks.shape[1]
        frames = self.batch.get("frames")
        if t == 1 and not (isinstance(frames, Tensor) and frames.shape[1] > 1):
            out = self.localize().unsqueeze(1)
        else:
            if not isinstance(frames, Tensor) or frames.shape[1] != t:
                raise KeyError(
                    f"batch has {t} masks per clip but no matching 'frames' [B,{t},3,H,W]"
                )
            maps = []
            for k in range(t):
                sub = dict(self.batch)
                sub["image"] = frames[:, k]
                maps.append(_squeeze_map(self.model.localize(sub)).float())
            out = torch.stack(maps, dim=1)
        self._cache["localize_frames"] = out
        return out

    def segment(self) -> Tensor:
        if "segment" not in self._cache:
            out = self.model.segment(self.batch).float()
            if out.ndim == 3:
                out = out.unsqueeze(1)
            self._cache["segment"] = out
        return self._cache["segment"]


class _TaskRunner:
    """Per-task update/compute around one or more torchmetrics Metrics."""

    def __init__(self, task: Any, capability: str) -> None:
        self.task = task
        self.capability = capability
        self.info: dict[str, Any] = {}

    def update(self, out: _BatchOutputs) -> None:
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        raise NotImplementedError


class _LocalizationRunner(_TaskRunner):
    def __init__(self, task: LocalizationTask, capability: str) -> None:
        super().__init__(task, capability)
        self.metric = LocalizationMetric(
            threshold_rule=task.threshold_rule,
            threshold=task.threshold,
            align_corners=task.align_corners,
            empty_gt=task.empty_gt,
            success_curve=True,
        )

    def update(self, out: _BatchOutputs) -> None:
        ids = out.ids()
        if self.task.gt_key == "gt_map":
            gt = out.batch.get("gt_map")
            if not isinstance(gt, Tensor):
                raise KeyError("batch has no 'gt_map' [B,H,W]")
            self.metric.update(out.localize(), gt, ids)
            return
        masks, valid = out.masks()
        maps = out.localize_frames()
        b, t = masks.shape[:2]
        frame_ids = [f"{i}#{k}" for i in ids for k in range(t)]
        maps = maps.reshape(b * t, *maps.shape[2:])
        gts = (masks.reshape(b * t, *masks.shape[2:]) > 0.5).float()
        if valid is not None:
            keep = valid.reshape(-1)
            maps, gts = maps[keep], gts[keep]
            frame_ids = [f for f, k in zip(frame_ids, keep.tolist()) if k]
        if frame_ids:
            self.metric.update(maps, gts, frame_ids)

    def compute(self) -> dict[str, float]:
        res = self.metric.compute()
        self.info.update(
            n=int(res["n"]),
            n_empty_gt=int(res["n_empty_gt"]),
            n_duplicates=int(res["n_duplicates"]),
            # the curve the AUC integrates, for the leaderboard's success-curve plot
            success_curve={
                "thresholds": [float(t) for t in AUC_THRESHOLDS],
                "success": [float(v) for v in res["success"]],
            },
        )
        return {k: float(res[k]) for k in ("ap50", "auc", "mean_ciou")}


#: longest side of the gallery images: a 6-sample gallery of photos stays under ~250 KB
#: (deflate barely compresses photos; 6 x 128 x 128 x 3 bytes of image alone are 295 KB)
GALLERY_SIDE = 112


class _GalleryCollector:
    """Keeps the first ``n`` localization samples (image, map, GT) for the heat-map gallery.

    Why here: the maps exist only during evaluation; storing a few of them
    (downsampled, uint8 image / float16 map) lets the leaderboard draw
    qualitative figures without re-running any model. It reuses the batch's
    cached ``localize`` output, so it costs no extra model call.
    """

    def __init__(self, task: LocalizationTask, n: int, max_side: int = GALLERY_SIDE) -> None:
        self.task = task
        self.n = n
        self.max_side = max_side
        self.ids: list[str] = []
        self.images: list[Tensor] = []
        self.maps: list[Tensor] = []
        self.gts: list[Tensor] = []
        self.size: tuple[int, int] | None = None

    @property
    def full(self) -> bool:
        return len(self.ids) >= self.n

    def update(self, out: _BatchOutputs) -> None:
        if self.full:
            return
        ids = out.ids()
        if self.task.gt_key == "gt_map":
            image, gt = out.batch.get("image"), out.batch.get("gt_map")
            if not isinstance(image, Tensor) or not isinstance(gt, Tensor):
                return
            rows = list(range(len(ids)))
            keys, images, maps, gts = ids, image, out.localize(), gt
        else:  # AVSBench: the first annotated frame of each clip
            frames = out.batch.get("frames")
            if not isinstance(frames, Tensor):
                return
            masks, valid = out.masks()
            all_maps = out.localize_frames()
            rows, keys, picks = [], [], []
            for i, sid in enumerate(ids):
                ok = valid[i] if valid is not None else torch.ones(masks.shape[1], dtype=torch.bool)
                t = int(ok.nonzero()[0]) if bool(ok.any()) else None
                if t is not None:
                    rows.append(i)
                    keys.append(f"{sid}#{t}")
                    picks.append(t)
            if not rows:
                return
            idx = torch.tensor(rows)
            sel = torch.tensor(picks)
            images = frames[idx, sel]
            maps = all_maps[idx, sel]
            gts = (masks[idx, sel] > 0.5).float()
            rows = list(range(len(rows)))
        take = rows[: self.n - len(self.ids)]
        images, maps, gts = images[take].float(), maps[take].float(), gts[take].float()
        if self.size is None:  # fixed by the first sample: all rows of the gallery align
            h, w = images.shape[-2:]
            scale = min(1.0, self.max_side / max(h, w))
            self.size = (max(1, round(h * scale)), max(1, round(w * scale)))
        size = self.size
        if tuple(images.shape[-2:]) != size:
            images = F.interpolate(images, size=size, mode="bilinear", antialias=True,
                                   align_corners=False)
        gts = F.interpolate(gts[:, None], size=size, mode="bilinear", antialias=True,
                            align_corners=False)[:, 0]
        maps = prepare_maps(maps, size, align_corners=self.task.align_corners).reshape(-1, *size)
        # 1/256 steps (exact in float16, as fine as the 256-colour map that draws them): the
        # zeroed low mantissa bits make the stored map compress ~3x better
        maps = (maps * 256).round_().div_(256)
        self.ids += [str(keys[i]) for i in take]
        image_u8 = (images.clamp(0, 1) * 255).round().to(torch.uint8)
        self.images.append(image_u8.permute(0, 2, 3, 1).cpu())
        self.maps.append(maps.to(torch.float16).cpu())
        self.gts.append(gts.clamp(0, 1).to(torch.float16).cpu())

    def result(self) -> dict[str, Any] | None:
        """``{ids, image uint8 [N,h,w,3], map float16 [N,h,w] (min-max), gt float16 [N,h,w]}``."""
        if not self.ids:
            return None
        return {
            "ids": np.array(self.ids),
            "image": torch.cat(self.images).numpy(),
            "map": torch.cat(self.maps).numpy(),
            "gt": torch.cat(self.gts).numpy(),
        }


class _SegmentationRunner(_TaskRunner):
    def __init__(self, task: SegmentationTask, capability: str) -> None:
        super().__init__(task, capability)
        from_logits = capability == "segment"
        self.metric = AVSBenchMetric(
            from_logits=from_logits,
            iou_threshold=task.iou_threshold,
            n_thresholds=task.n_thresholds,
            beta2=task.beta2,
        )
        self.info["score_transform"] = (
            "sigmoid(logits), bilinear to mask size"
            if from_logits
            else "localize map per frame, bilinear to mask size, per-frame min-max"
        )

    def update(self, out: _BatchOutputs) -> None:
        masks, valid = out.masks()
        b, t, h, w = masks.shape
        if self.capability == "segment":
            logits = out.segment()
            if tuple(logits.shape[-2:]) != (h, w):
                logits = F.interpolate(
                    logits.reshape(b * t, 1, *logits.shape[-2:]),
                    size=(h, w),
                    mode="bilinear",
                    align_corners=self.task.align_corners,
                ).reshape(b, t, h, w)
            scores = logits
        else:
            maps = out.localize_frames()
            scores = prepare_maps(
                maps.reshape(b * t, *maps.shape[2:]), (h, w), align_corners=self.task.align_corners
            ).reshape(b, t, h, w)
        self.metric.update(scores, masks, valid, out.ids())

    def compute(self) -> dict[str, float]:
        res = self.metric.compute()
        self.info.update(
            n_frames=int(res["n_frames"]),
            n_empty_gt=int(res["n_empty_gt"]),
            n_duplicates=int(res["n_duplicates"]),
        )
        return {"miou": float(res["miou"]), "fscore": float(res["fscore"])}


class _RetrievalRunner(_TaskRunner):
    def __init__(self, task: RetrievalTask, capability: str) -> None:
        super().__init__(task, capability)
        self.metrics = [
            CrossModalRetrieval(
                modalities=pair, ks=task.ks, compute_map=task.compute_map, relevance=task.relevance
            )
            for pair in task.pairs
        ]

    def update(self, out: _BatchOutputs) -> None:
        emb = out.embed()
        labels = None
        if self.task.relevance == "class":
            labels = out.batch.get(self.task.label_key)
            if not isinstance(labels, Tensor):
                raise KeyError(f"class-match retrieval needs batch[{self.task.label_key!r}]")
        for m in self.metrics:
            x, y = m.modalities
            if x not in emb or y not in emb:
                raise KeyError(
                    f"model.embed() returned {sorted(emb)}; retrieval needs {x!r} and {y!r}"
                )
            m.update(emb[x], emb[y], labels, out.ids())

    def compute(self) -> dict[str, float]:
        res: dict[str, float] = {}
        for i, m in enumerate(self.metrics):
            r = m.compute()
            self.info.setdefault("n", int(r["n"]))
            self.info.setdefault("n_duplicates", int(r["n_duplicates"]))
            for k, v in r.items():
                if k in ("n", "n_duplicates") or (k == "map" and i > 0):
                    continue
                res[k] = float(v)
        return res


class _DiscoveryRunner(_TaskRunner):
    def __init__(self, task: DiscoveryTask, capability: str) -> None:
        super().__init__(task, capability)
        self.metric = DiscoveryMetric()
        self.info["score"] = (
            "model.sounding_score"
            if capability == "sounding_score"
            else "cosine(audio, visual) of embed"
        )

    def update(self, out: _BatchOutputs) -> None:
        labels = out.batch.get(self.task.label_key)
        if not isinstance(labels, Tensor):
            raise KeyError(f"discovery needs batch[{self.task.label_key!r}]")
        if self.capability == "sounding_score":
            scores = out.model.sounding_score(out.batch)
        else:
            emb = out.embed()
            scores = (
                F.normalize(emb["audio"].float(), dim=1) * F.normalize(emb["visual"].float(), dim=1)
            ).sum(1)
        self.metric.update(scores, labels, out.ids())

    def compute(self) -> dict[str, float]:
        res = self.metric.compute()
        self.info.update(
            n=int(res["n"]),
            n_duplicates=int(res["n_duplicates"]),
            positive_rate=float(res["positive_rate"]),
        )
        return {"roc_auc": float(res["roc_auc"]), "pr_auc": float(res["pr_auc"])}


_RUNNERS = {
    "localization": _LocalizationRunner,
    "segmentation": _SegmentationRunner,
    "retrieval": _RetrievalRunner,
    "discovery": _DiscoveryRunner,
}


def _graph_outcome(
    model: Any,
    task: GraphRecoveryTask,
    capability: str,
    datamodule: Any,
    graph_path: str | Path | None,
) -> TaskOutcome:
    if graph_path is None:
        root = getattr(datamodule, "root", None)
        if root is None:
            raise ValueError("graph recovery needs graph_path= or a datamodule with .root")
        graph_path = Path(root) / task.graph_file
    planted = load_graph(graph_path)
    inferred = as_graph(model.class_graph())
    metric = GraphRecoveryMetric(undirected=task.undirected)
    metric.update(inferred, planted)
    res = {k: float(v) for k, v in metric.compute().items()}
    names = task.metric_names()
    return TaskOutcome(
        task=task.task,
        status="ok",
        capability_used=capability,
        metrics={k: res[k] for k in names},
        info={k: v for k, v in res.items() if k not in names} | {"graph_file": str(graph_path)},
    )


def _gather_ids(ids: list[str]) -> list[str]:
    _, world = _dist()
    if world == 1:
        return ids
    parts: list[Any] = [None] * world
    torch.distributed.all_gather_object(parts, ids)
    return [i for p in parts for i in p]


# --- the entry point -------------------------------------------------------------
def evaluate(
    model: Any,
    benchmark: str | BenchmarkMeta,
    datamodule: Any = None,
    split: str | None = None,
    *,
    train_ids: Iterable[str] | None = None,
    train_source: str | None = None,
    graph_path: str | Path | None = None,
    progress: bool = True,
    max_batches: int | None = None,
    raise_errors: bool = False,
    gallery: int = 0,
) -> EvaluationResult:
    """Evaluate ``model`` on ``benchmark`` over ``datamodule``'s ``split`` loader.

    Args:
        model: anything with ``meta.capabilities`` and the capability methods
            (an ``AVModel`` or a trivial baseline).
        benchmark: a registered name or a :class:`BenchmarkMeta`.
        datamodule: a LightningDataModule with ``setup(stage)`` and
            ``<split>_dataloader()`` (not needed for graph recovery when
            ``graph_path`` is given).
        split: ``"val"`` or ``"test"``; default: the benchmark's split. Model
            selection must use ``"val"`` (DESIGN 1.2).
        train_ids: the model's training clip ids; the result then carries a
            :class:`LeakReport` of their overlap with the evaluated ids.
        graph_path: planted graph file (graph recovery); default
            ``datamodule.root / task.graph_file``.
        max_batches: stop after this many batches (smoke tests).
        raise_errors: re-raise instead of returning ``status="failed"``.
        gallery: keep the first ``gallery`` samples of the (first) localization
            task on rank 0 (ids, uint8 image <= 112 px, min-max map and GT at
            the image size) in ``result.gallery`` for the leaderboard's heat-map
            gallery; never part of ``model_dump``. 0: none.

    Returns:
        :class:`EvaluationResult`; ``status`` is ``"skipped"`` (with the
        reason) when the model lacks the capability, ``"failed"`` (with the
        error) when the primary task raised, else ``"ok"``.
    """
    bench = get_benchmark(benchmark)
    split = split or bench.split
    rank, world = _dist()
    start = time.perf_counter()
    name = model_name(model)
    base = dict(
        model=name,
        benchmark=bench.name,
        dataset=bench.dataset,
        subset=bench.subset,
        split=split,
        main_score=bench.main_score,
        higher_is_better=bench.higher_is_better,
        protocol=bench.protocol,
        world_size=world,
    )
    app = applicability(model, bench)
    if not app.applicable:
        return EvaluationResult(status="skipped", reason=app.reason, **base)

    outcomes: dict[int, TaskOutcome] = {}
    runners: dict[int, _TaskRunner] = {}
    graph_tasks: list[tuple[int, GraphRecoveryTask, str]] = []
    for i, task in enumerate(bench.tasks):
        cap = pick_capability(model, task.requires)
        if cap is None:
            outcomes[i] = TaskOutcome(
                task=task.task,
                status="skipped",
                reason=f"needs capability {' or '.join(task.requires)}",
            )
        elif isinstance(task, GraphRecoveryTask):
            graph_tasks.append((i, task, cap))
        else:
            runners[i] = _RUNNERS[task.task](task, cap)

    primary = bench.tasks.index(bench.primary_task)
    collector = None
    if gallery > 0 and rank == 0:
        loc = next((r for r in runners.values() if isinstance(r, _LocalizationRunner)), None)
        if loc is not None:
            collector = _GalleryCollector(loc.task, gallery)
    seen_ids: list[str] = []
    was_training = getattr(model, "training", None)
    try:
        for i, task, cap in graph_tasks:
            try:
                outcomes[i] = _graph_outcome(model, task, cap, datamodule, graph_path)
            except Exception as err:
                if raise_errors:
                    raise
                outcomes[i] = TaskOutcome(
                    task=task.task, status="failed", capability_used=cap, reason=_err(err)
                )

        if runners:
            if datamodule is None:
                raise ValueError(f"benchmark {bench.name} needs a datamodule")
            loader_fn = getattr(datamodule, f"{split}_dataloader", None)
            if loader_fn is None:
                raise AttributeError(f"{type(datamodule).__name__} has no {split}_dataloader()")
            if hasattr(datamodule, "setup"):
                datamodule.setup({"test": "test", "val": "validate"}.get(split, "fit"))
            loader = loader_fn()
            if world > 1:
                loader = _distributed_loader(loader)
            if hasattr(model, "eval"):
                model.eval()
            device = _model_device(model)
            failed: dict[int, str] = {}
            iterator: Iterable[Any] = loader
            if progress and rank == 0:
                from tqdm.auto import tqdm

                iterator = tqdm(loader, desc=f"{bench.name} [{name}]", leave=False)
            with torch.no_grad():
                for n_batch, batch in enumerate(iterator):
                    if max_batches is not None and n_batch >= max_batches:
                        break
                    batch = _to_device(batch, device)
                    out = _BatchOutputs(model, batch)
                    seen_ids.extend(str(x) for x in batch.get("id", []))
                    for i, runner in runners.items():
                        if i in failed:
                            continue
                        try:
                            runner.update(out)
                        except Exception as err:
                            if raise_errors or i == primary:
                                raise
                            failed[i] = _err(err)
                            log.warning(
                                "%s/%s task %s failed: %s", bench.name, name, runner.task.task, err
                            )
                    if collector is not None and not collector.full:
                        try:
                            collector.update(out)
                        except Exception as err:  # a figure must never fail an evaluation
                            if raise_errors:
                                raise
                            log.warning("%s/%s: gallery disabled: %s", bench.name, name, err)
                            collector = None
            for i, runner in runners.items():
                if i in failed:
                    outcomes[i] = TaskOutcome(
                        task=runner.task.task,
                        status="failed",
                        capability_used=runner.capability,
                        reason=failed[i],
                    )
                    continue
                try:
                    metrics = runner.compute()
                    outcomes[i] = TaskOutcome(
                        task=runner.task.task,
                        status="ok",
                        capability_used=runner.capability,
                        metrics=metrics,
                        info=runner.info,
                    )
                except Exception as err:
                    if raise_errors or i == primary:
                        raise
                    outcomes[i] = TaskOutcome(
                        task=runner.task.task,
                        status="failed",
                        capability_used=runner.capability,
                        reason=_err(err),
                    )
    except Exception as err:
        if raise_errors:
            raise
        log.error("evaluation of %s on %s failed:\n%s", name, bench.name, traceback.format_exc())
        return EvaluationResult(
            status="failed",
            reason=_err(err),
            tasks=[outcomes[i] for i in sorted(outcomes)],
            seconds=time.perf_counter() - start,
            **base,
        )
    finally:
        if was_training and hasattr(model, "train"):
            model.train(True)

    all_ids = sorted(set(_gather_ids(seen_ids)))
    leak = None
    if train_ids is not None:
        leak = check_leak(
            train_ids, all_ids, train_source=train_source, test_source=f"{bench.name}:{split}"
        )
        if leak.has_leak:
            log.warning("%s on %s: %s", name, bench.name, leak.summary())
    tasks = [outcomes[i] for i in sorted(outcomes)]
    metrics = {k: v for t in tasks for k, v in t.metrics.items()}
    main = outcomes[primary]
    status: Status = "ok" if main.status == "ok" else "failed"
    return EvaluationResult(
        status=status,
        reason=None if status == "ok" else main.reason,
        metrics={k: metrics[k] for k in bench.metrics if k in metrics}
        | {k: v for k, v in metrics.items() if k not in bench.metrics},
        main_value=metrics.get(bench.main_score),
        tasks=tasks,
        leak=leak,
        n_samples=len(all_ids),
        seconds=time.perf_counter() - start,
        gallery=collector.result() if collector is not None and status == "ok" else None,
        **base,
    )


def _err(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def evaluate_all(
    models: Iterable[Any],
    benchmarks: Iterable[str | BenchmarkMeta],
    datamodules: dict[str, Any],
    **kwargs: Any,
) -> list[EvaluationResult]:
    """Evaluate every model on every benchmark; skipped pairs are listed with their reason.

    ``datamodules`` maps a benchmark name (or its dataset family) to a datamodule.
    """
    results = []
    benches = [get_benchmark(b) for b in benchmarks]
    for m in models:
        for b in benches:
            dm = datamodules.get(b.name, datamodules.get(b.dataset))
            results.append(evaluate(m, b, dm, **kwargs))
    return results
