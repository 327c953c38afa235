"""The benchmark registry and applicability (DESIGN 4.5).

``BENCHMARKS`` maps a name to its :class:`BenchmarkMeta`; :func:`applicability`
decides whether a model can be evaluated on a benchmark from its declared
capabilities, and :func:`plan` expands models x benchmarks into the pairs to
run and the pairs skipped, each with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

from avbench.benchmarks.meta import (
    BenchmarkMeta,
    DiscoveryTask,
    GraphRecoveryTask,
    LocalizationTask,
    RetrievalTask,
    SegmentationTask,
)

_LOC = ("ap50", "auc", "mean_ciou")
_R_AV = tuple(f"{d}_r{k}" for d in ("a2v", "v2a") for k in (1, 5, 10))

BENCHMARKS: dict[str, BenchmarkMeta] = {}


def register(meta: BenchmarkMeta, *, overwrite: bool = False) -> BenchmarkMeta:
    """Add a benchmark to :data:`BENCHMARKS` (names are unique)."""
    if meta.name in BENCHMARKS and not overwrite:
        raise KeyError(f"benchmark {meta.name!r} is already registered")
    BENCHMARKS[meta.name] = meta
    return meta


def get_benchmark(name: str | BenchmarkMeta) -> BenchmarkMeta:
    """The benchmark called ``name`` (a :class:`BenchmarkMeta` is returned as is)."""
    if isinstance(name, BenchmarkMeta):
        return name
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}") from None


def list_benchmarks() -> list[str]:
    return sorted(BENCHMARKS)


# --- entries ----------------------------------------------------------------
register(
    BenchmarkMeta(
        name="flickr-test",
        dataset="flickr",
        split="test",
        tasks=(LocalizationTask(),),
        metrics=_LOC,
        main_score="ap50",
        description="Flickr-SoundNet test (249/250 images, 3-annotator consensus maps).",
        reference="A1",
    )
)
register(
    BenchmarkMeta(
        name="vggss",
        dataset="vggss",
        subset="all",
        split="test",
        tasks=(LocalizationTask(), RetrievalTask(ks=(1, 5, 10), relevance="class")),
        metrics=_LOC + _R_AV,
        main_score="ap50",
        description="VGG-SS (5,158 clips, 221 classes): localization and class-match retrieval.",
        reference="A1, A3",
    )
)
for _sub in ("heard", "unheard"):
    register(
        BenchmarkMeta(
            name=f"vggss-{_sub}",
            dataset="vggss",
            subset=_sub,
            split="test",
            tasks=(LocalizationTask(),),
            metrics=_LOC,
            main_score="ap50",
            description=f"VGG-SS {_sub} test split (110 heard / 110 unheard classes).",
            reference="A1",
        )
    )
for _sub in ("s4", "ms3"):
    register(
        BenchmarkMeta(
            name=f"avsbench-{_sub}",
            dataset="avsbench",
            subset=_sub,
            split="test",
            tasks=(
                SegmentationTask(),
                LocalizationTask(gt_key="masks", empty_gt="exclude"),
            ),
            metrics=("miou", "fscore") + _LOC,
            main_score="miou",
            description=(
                f"AVSBench {_sub.upper()} test, zero-shot: segmentation from a "
                "localization map (min-max, S > 0.5 / F curve) or a segmentation "
                "head, and cIoU on frames with a non-empty mask."
            ),
            reference="A2, A1",
        )
    )
for _ds, _desc in (("ave", "AVE-15 (ILI protocol)"), ("vegas", "VEGAS (10 classes)")):
    register(
        BenchmarkMeta(
            name=f"{_ds}-retrieval",
            dataset=_ds,
            split="test",
            tasks=(RetrievalTask(ks=(), compute_map=True, relevance="class"),),
            metrics=("a2v_map", "v2a_map", "map"),
            main_score="map",
            description=f"{_desc}: MAP@all audio->visual and visual->audio, class relevance.",
            reference="A3",
        )
    )
register(
    BenchmarkMeta(
        name="ego4d-discovery",
        dataset="ego4d",
        split="test",
        tasks=(DiscoveryTask(),),
        metrics=("roc_auc", "pr_auc"),
        main_score="roc_auc",
        description="Ego4D narrated clips: does the action make sound? ROC-AUC / PR-AUC.",
        reference="A5",
    )
)
register(
    BenchmarkMeta(
        name="ego4d-retrieval",
        dataset="ego4d",
        split="test",
        tasks=(RetrievalTask(ks=(1, 5, 10), relevance="instance"),),
        metrics=_R_AV,
        main_score="a2v_r1",
        description="Ego4D clips: instance retrieval (the paired clip is the only match).",
        reference="A3",
    )
)
register(
    BenchmarkMeta(
        name="synthetic-graph-recovery",
        dataset="synthetic",
        split="train",
        tasks=(GraphRecoveryTask(),),
        metrics=(
            "edge_f1",
            "edge_precision",
            "edge_recall",
            "shd",
            "skeleton_f1",
        ),
        main_score="edge_f1",
        description=(
            "Planted (modality, category) co-occurrence graph of the synthetic "
            "world (cooccurrence_graph.json beside the training data) vs "
            "model.class_graph()."
        ),
        reference="A6",
    )
)


# --- applicability ------------------------------------------------------------
class Applicability(BaseModel):
    """Whether a model can be evaluated on a benchmark, and why not."""

    model_config = ConfigDict(frozen=True)

    model: str
    benchmark: str
    applicable: bool
    capability: str | None = None
    reason: str | None = None


def model_name(model: Any) -> str:
    meta = getattr(model, "meta", None)
    return str(getattr(meta, "name", None) or type(model).__name__)


def capabilities_of(model: Any) -> frozenset[str]:
    """The capabilities a model declares in ``model.meta.capabilities``."""
    meta = getattr(model, "meta", None)
    caps = getattr(meta, "capabilities", None)
    if caps is None:
        return frozenset()
    return frozenset(str(c) for c in caps)


def pick_capability(model: Any, requires: Iterable[str]) -> str | None:
    """The first capability of ``requires`` the model has, else None."""
    caps = capabilities_of(model)
    for c in requires:
        if c in caps:
            return c
    return None


def applicability(model: Any, benchmark: str | BenchmarkMeta) -> Applicability:
    """Applicable iff the model has a capability serving the benchmark's primary task."""
    bench = get_benchmark(benchmark)
    cap = pick_capability(model, bench.requires)
    name = model_name(model)
    if cap is None:
        have = sorted(capabilities_of(model)) or ["none"]
        return Applicability(
            model=name,
            benchmark=bench.name,
            applicable=False,
            reason=(
                f"needs capability {' or '.join(bench.requires)} for "
                f"{bench.primary_task.task}; model has {', '.join(have)}"
            ),
        )
    return Applicability(model=name, benchmark=bench.name, applicable=True, capability=cap)


def plan(
    models: Iterable[Any], benchmarks: Iterable[str | BenchmarkMeta] | None = None
) -> tuple[list[tuple[Any, BenchmarkMeta]], list[Applicability]]:
    """Split models x benchmarks into pairs to run and skipped pairs (with reasons)."""
    benches = [
        get_benchmark(b) for b in (benchmarks if benchmarks is not None else list_benchmarks())
    ]
    run, skipped = [], []
    for m in models:
        for b in benches:
            a = applicability(m, b)
            if a.applicable:
                run.append((m, b))
            else:
                skipped.append(a)
    return run, skipped
