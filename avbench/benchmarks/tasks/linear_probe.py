"""Linear probe: classify frozen embeddings with a logistic regression fitted on another split.

Protocol (MC3's EPIC-Sounds audio classification; avbench's choice of probe): embed
every clip of ``fit_split`` (default ``train``) with ``model.embed`` (the
``modality`` embedding, default ``audio``; the model is frozen: eval mode, no
gradients), standardise the features (mean and standard deviation of the FIT
split) and fit a multinomial logistic regression (scikit-learn ``lbfgs``, L2,
``C`` = 1.0, ``max_iter`` = 1000, ``random_state`` = ``seed``); then embed the
evaluated split (the benchmark's, EPIC-Sounds: ``val``) and report

* ``top1``: the share of evaluated clips whose predicted class is their label;
* ``mean_class_acc``: the accuracy of each class present in the evaluated split,
  averaged over those classes (EPIC-Sounds' "mean per-class accuracy").

The probe never sees the evaluated split: it is fitted in :meth:`compute` from
``fit_split``'s own loader only, the evaluated split's embeddings are used for
prediction only, and the runner refuses an evaluated split equal to ``fit_split``
or one sharing clip ids with it. (EPIC-Sounds' recognition test split has no
labels, so the val split is the evaluated one.)

How the task gets two splits: the evaluator hands the evaluated split's batches to
:meth:`~LinearProbeRunner.update` as for every task, and calls
:meth:`~avbench.benchmarks.tasks.base.TaskRunner.prepare` once before with the
datamodule; the runner reads ``fit_split`` there through
``datamodule.dataset(fit_split)`` (no shuffling, no augmentation, every clip).

Bad input: an evaluated clip whose class does not occur in ``fit_split`` cannot be
predicted: ``unseen_classes="skip"`` (default) drops it and counts it in
``info["skipped"]``, ``"error"`` raises. A non-finite embedding raises ValueError
naming the split and a clip id. A fit split with one class only raises
:class:`~avbench.metrics.NotScorableError`.

Audio-only batches: the avbench SSL models' ``embed`` encodes the image too. When a
batch has no ``image``, a constant zero image of ``placeholder_image`` pixels is
added for the call (only the ``modality`` embedding is used; ``None`` disables it).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor

from avbench.benchmarks.tasks.base import TaskRunner, TaskSpec, register_task
from avbench.capabilities import Capability
from avbench.metrics._common import KeyedMetric, NotScorableError, keys_for

if TYPE_CHECKING:
    from avbench.benchmarks.batch_outputs import BatchOutputs


@register_task
class LinearProbeTask(TaskSpec):
    """A logistic-regression probe on frozen ``model.embed`` features (module docstring).

    Args (fields):
        modality: the ``embed`` output that is probed.
        fit_split: the split the probe is fitted on (never the evaluated one).
        label_key: the batch key of the integer class.
        C: inverse L2 strength of the logistic regression (scikit-learn's ``C``).
        max_iter: lbfgs iterations (``info["converged"]`` says whether it converged).
        seed: ``random_state`` of the regression.
        standardize: z-score the features with the fit split's mean and std.
        unseen_classes: ``"skip"`` (count) or ``"error"`` for evaluated clips whose
            class is absent from ``fit_split``.
        placeholder_image: side of the zero image added to batches without ``image``.
    """

    task: Literal["linear_probe"] = "linear_probe"
    requires: tuple[Capability, ...] = ("embed",)
    modality: str = "audio"
    fit_split: Literal["train", "val", "test"] = "train"
    label_key: str = "label"
    C: float = 1.0
    max_iter: int = 1000
    seed: int = 0
    standardize: bool = True
    unseen_classes: Literal["skip", "error"] = "skip"
    placeholder_image: int | None = 64

    def metric_names(self) -> list[str]:
        return ["top1", "mean_class_acc"]

    def make_runner(self, capability: str) -> LinearProbeRunner:
        return LinearProbeRunner(self, capability)


class EmbeddingStore(KeyedMetric):
    """Per-clip embeddings and integer labels, de-duplicated by clip id (DDP-safe).

    ``update(emb [B,D], labels [B], ids)``; ``compute() -> (keys [N], emb [N,D] float64,
    labels [N] int64)`` sorted by key.
    """

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("emb", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, emb: Tensor, labels: Tensor, ids: Any = None) -> None:
        if emb.ndim != 2 or labels.reshape(-1).shape[0] != emb.shape[0]:
            raise ValueError(f"embeddings [B,D] and labels [B], got {tuple(emb.shape)}, "
                             f"{tuple(labels.shape)}")
        self.emb.append(emb.detach().double().to(self.device))
        self.labels.append(labels.detach().reshape(-1).long().to(self.device))
        self._append_keys(ids, emb.shape[0])

    def compute(self) -> tuple[Tensor, Tensor, Tensor]:
        keys, (emb, labels), _ = self._deduplicated(self.emb, self.labels)
        return keys.cpu(), emb.cpu(), labels.cpu()


def _device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


def check_finite(emb: Tensor, ids: list[str], split: str) -> None:
    """Raise ValueError naming ``split`` and a clip when a row of ``emb`` [B,D] is not finite."""
    bad = ~torch.isfinite(emb).all(dim=1)
    if bool(bad.any()):
        first = ids[int(bad.nonzero()[0])] if ids else "?"
        raise ValueError(f"model.embed() gave non-finite embeddings for {int(bad.sum())} clip(s) "
                         f"of the {split} split (e.g. {first!r}); the probe cannot use them")


def fit_probe(x: np.ndarray, y: np.ndarray, spec: LinearProbeTask) -> tuple[Any, dict[str, Any]]:
    """Fit the probe on features ``x`` [N,D] and labels ``y`` [N].

    Returns the fitted scikit-learn estimator (a pipeline: optional StandardScaler,
    LogisticRegression) and facts for ``info`` (``n_fit``, ``n_classes_fit``,
    ``converged``, ``n_iter``).

    Raises:
        NotScorableError: fewer than 2 classes in ``y``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes = np.unique(y)
    if classes.size < 2:
        raise NotScorableError(f"the {spec.fit_split} split has {classes.size} class(es): "
                               "a probe needs at least 2", ["top1", "mean_class_acc"])
    clf = LogisticRegression(C=spec.C, max_iter=spec.max_iter, random_state=spec.seed)
    steps = [StandardScaler(), clf] if spec.standardize else [clf]
    probe = make_pipeline(*steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported as info["converged"]
        # small splits: "more unique classes than 50% of the samples" (y is classes here)
        warnings.filterwarnings("ignore", message="The number of unique classes")
        probe.fit(x, y)
    n_iter = int(np.max(clf.n_iter_))
    return probe, {"n_fit": int(y.size), "n_classes_fit": int(classes.size),
                   "n_iter": n_iter, "converged": n_iter < spec.max_iter}


def probe_accuracy(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``top1`` (share correct) and ``mean_class_acc`` (per-class accuracy averaged over
    the classes present in ``y``) of predictions ``pred`` [N] for labels ``y`` [N]."""
    correct = pred == y
    classes, inverse = np.unique(y, return_inverse=True)
    per_class = np.bincount(inverse, weights=correct) / np.bincount(inverse)
    return {"top1": float(correct.mean()), "mean_class_acc": float(per_class.mean())}


class LinearProbeRunner(TaskRunner):
    """Collects the evaluated split's embeddings; fits on ``fit_split`` and scores in compute."""

    spec: LinearProbeTask

    def __init__(self, spec: LinearProbeTask, capability: str) -> None:
        super().__init__(spec, capability)
        self.store = EmbeddingStore()
        self.model: Any = None
        self.datamodule: Any = None
        self.info["probe"] = (f"logistic regression (lbfgs, C={spec.C}, max_iter={spec.max_iter}, "
                              f"seed {spec.seed}) on {'standardised ' if spec.standardize else ''}"
                              f"{spec.modality} embeddings of the {spec.fit_split} split")

    def prepare(self, model: Any, datamodule: Any, split: str) -> None:
        """Keep the model and datamodule; refuse to evaluate on the fit split.

        Raises:
            ValueError: ``split`` is ``fit_split``, or no datamodule.
        """
        if split == self.spec.fit_split:
            raise ValueError(f"the linear probe fits on the {split!r} split and cannot be "
                             "evaluated on it")
        if datamodule is None or not hasattr(datamodule, "dataset"):
            raise ValueError("the linear probe needs a datamodule with dataset(split) to read "
                             f"its {self.spec.fit_split!r} split")
        self.model, self.datamodule = model, datamodule
        self.info["evaluated_split"] = split

    def embed(self, model: Any, batch: dict[str, Any]) -> Tensor:
        """The ``modality`` embedding [B,D] of a batch (a zero image added when the batch has
        none and ``placeholder_image`` is set).

        Raises:
            KeyError: ``model.embed`` returns no such modality.
        """
        if "image" not in batch and self.spec.placeholder_image is not None:
            audio = batch.get("audio")
            n = len(batch["id"])
            s = self.spec.placeholder_image
            dev = audio.device if isinstance(audio, Tensor) else None
            batch = dict(batch) | {"image": torch.zeros(n, 3, s, s, device=dev)}
        emb = model.embed(batch)
        if self.spec.modality not in emb:
            raise KeyError(f"model.embed() returned {sorted(emb)}; the probe needs "
                           f"{self.spec.modality!r}")
        return emb[self.spec.modality].float()

    def _labels(self, batch: dict[str, Any], split: str) -> Tensor:
        labels = batch.get(self.spec.label_key)
        if not isinstance(labels, Tensor):
            raise KeyError(f"the linear probe needs batch[{self.spec.label_key!r}] ({split} split)")
        if bool((labels < 0).any()):
            raise ValueError(f"the {split} split has unlabelled clips ({self.spec.label_key} < 0); "
                             "the probe needs labels on both splits")
        return labels

    def update(self, out: BatchOutputs) -> None:
        ids = out.ids()
        labels = self._labels(out.batch, "evaluated")
        if "image" in out.batch or self.spec.placeholder_image is None:
            emb = out.embed()
            if self.spec.modality not in emb:
                raise KeyError(f"model.embed() returned {sorted(emb)}; the probe needs "
                               f"{self.spec.modality!r}")
            x = emb[self.spec.modality].float()
        else:
            x = self.embed(out.model, out.batch)
        check_finite(x, ids, "evaluated")
        self.store.update(x, labels, ids)

    def fit_features(self) -> tuple[Tensor, np.ndarray, np.ndarray]:
        """Embed ``fit_split`` (every clip, in order, no augmentation).

        Returns:
            keys [N] (int64 id keys), features [N,D] float64, labels [N] int64.
        """
        from torch.utils.data import DataLoader

        from avbench.data.sample import collate

        dm, split = self.datamodule, self.spec.fit_split
        dataset = dm.dataset(split)
        loader = DataLoader(dataset, batch_size=int(getattr(dm, "batch_size", 32)), shuffle=False,
                            num_workers=int(getattr(dm, "num_workers", 0)), collate_fn=collate)
        device = _device(self.model)
        keys, feats, labels = [], [], []
        with torch.no_grad():
            for batch in loader:
                ids = [str(i) for i in batch["id"]]
                y = self._labels(batch, split)
                if device.type != "cpu":
                    batch = {k: v.to(device) if isinstance(v, Tensor) else v
                             for k, v in batch.items()}
                x = self.embed(self.model, batch)
                check_finite(x, ids, split)
                keys.append(keys_for(ids, len(ids), 0))
                feats.append(x.double().cpu())
                labels.append(y.reshape(-1).long().cpu())
        if not feats:
            raise NotScorableError(f"the {split} split is empty", self.spec.metric_names())
        return (torch.cat(keys), torch.cat(feats).numpy(), torch.cat(labels).numpy())

    def compute(self) -> dict[str, float]:
        """Fit on ``fit_split``, predict the evaluated clips: ``top1``, ``mean_class_acc``.

        Raises:
            RuntimeError: :meth:`prepare` was not called.
            ValueError: the splits share clip ids; an evaluated class absent from the fit
                split with ``unseen_classes="error"``.
            NotScorableError: one class in the fit split, or no evaluated clip left.
        """
        if self.datamodule is None:
            raise RuntimeError("LinearProbeRunner.prepare() was not called")
        keys, x_eval, y_eval = self.store.compute()
        was_training = getattr(self.model, "training", False)
        if hasattr(self.model, "eval"):
            self.model.eval()
        try:
            fit_keys, x_fit, y_fit = self.fit_features()
        finally:
            if was_training:
                self.model.train(True)
        shared = np.intersect1d(fit_keys.numpy(), keys.numpy())
        if shared.size:
            raise ValueError(f"{shared.size} clip id(s) of the evaluated split are also in the "
                             f"{self.spec.fit_split} split: the probe would be scored on its "
                             "training data")
        probe, facts = fit_probe(x_fit, y_fit, self.spec)
        self.info.update(facts)
        x, y = x_eval.numpy(), y_eval.numpy()
        seen = np.isin(y, np.unique(y_fit))
        if not seen.all():
            unseen = sorted({int(c) for c in y[~seen]})
            if self.spec.unseen_classes == "error":
                raise ValueError(f"{int((~seen).sum())} evaluated clip(s) have classes absent "
                                 f"from the {self.spec.fit_split} split: {unseen}")
            self.info["skipped"] = {"class absent from fit split": int((~seen).sum())}
            self.info["unseen_classes"] = unseen
            x, y = x[seen], y[seen]
        if y.size == 0:
            raise NotScorableError("no evaluated clip has a class of the fit split",
                                   self.spec.metric_names())
        self.info.update(n=int(y.size), n_classes=int(np.unique(y).size),
                         majority_top1=float(np.bincount(y).max() / y.size))
        return probe_accuracy(probe.predict(x), y)


__all__ = [
    "EmbeddingStore",
    "LinearProbeRunner",
    "LinearProbeTask",
    "check_finite",
    "fit_probe",
    "probe_accuracy",
]
