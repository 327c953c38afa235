"""Trivial baselines, as model-like objects usable through :func:`evaluate`.

Every leaderboard table shows them so that a number can be read (DESIGN 1.3,
REFERENCE A1):

* :class:`FullImageBaseline` (``localize``): a constant map. Under the top-50%
  rule a constant map selects every pixel (ties at the threshold are kept), so
  its cIoU is ``sum(G) / (sum(G) + #{G == 0})``: the GT area fraction for a
  binary map. On Flickr it scores about 61 AP50 because most GT regions cover
  over half the image.
* :class:`CenterPriorBaseline` (``localize``): an isotropic Gaussian centred in
  the image (sigma = ``sigma`` x the shorter side). Any map that decreases
  with the distance to the centre selects the same central disc of half the
  image under the top-50% rule, so sigma matters only for the fixed
  threshold rule.
* :class:`RandomEmbeddingBaseline` (``embed``): seeded Gaussian embeddings,
  L2-normalised, drawn **per sample id** (and modality), so they do not
  depend on batch size, order or DDP rank. Retrieval then scores chance level
  and discovery (cosine of a clip's own audio and visual embeddings) an
  ROC-AUC of about 0.5.
* :class:`AudioEnergyBaseline` (``sounding_score``): the RMS of the clip's
  waveform ``batch["audio"]``, "the louder clip makes sound". Only
  sounding-action discovery (``ego4d-discovery``) asks for ``sounding_score``,
  so that is the one benchmark it is applicable to. On synthetic Ego4D
  (default world) every sounding clip is louder than every silent one, so it
  scores ROC-AUC 1.0: discovery there is solved by loudness alone
  (``docs/models.md``, "Ego4D discovery and retrieval").

They have no parameters and need no training; ``eval()``/``to()`` are
accepted for uniformity with LightningModules.

One *fitted* baseline (``requires_fit = True``; call ``fit(datamodule)`` before
:func:`evaluate`; the runner, :meth:`avbench.runner.runner.Runner.run_baselines`, fits
each on the TRAINING split of every suite benchmark whose data it accepts,
``accepts_data(data_cfg)``, and scores it there like the trivial ones):

* :class:`CCABaseline` (``embed``): canonical correlation analysis
  (scikit-learn ``CCA``) between the audio and visual feature vectors of the
  benchmark dataset's TRAINING split, the classic baseline of feature-based
  cross-modal retrieval on AVE and VEGAS (REFERENCE C "ILI"). Retrieval then
  ranks by the cosine of the canonical variates.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class BaselineMeta:
    """The subset of ``ModelMeta`` the evaluator and the leaderboard read."""

    name: str
    capabilities: frozenset[str]
    paper: str = "trivial baseline"
    year: int | None = None
    trivial: bool = True
    options: dict[str, Any] = field(default_factory=dict)


def _batch_size(batch: dict[str, Any]) -> int:
    if "id" in batch:
        return len(batch["id"])
    for key in ("image", "frames", "audio", "gt_map", "masks"):
        if isinstance(batch.get(key), Tensor):
            return int(batch[key].shape[0])
    raise ValueError("cannot infer the batch size (no 'id' and no tensor input)")


def _image_size(batch: dict[str, Any], default: int = 224) -> tuple[int, int]:
    for key, dims in (
        ("image", (-2, -1)),
        ("frames", (-2, -1)),
        ("gt_map", (-2, -1)),
        ("masks", (-2, -1)),
    ):
        x = batch.get(key)
        if isinstance(x, Tensor):
            return int(x.shape[dims[0]]), int(x.shape[dims[1]])
    return default, default


class _Baseline:
    meta: BaselineMeta
    #: True: call ``fit(datamodule)`` (training split only) before evaluating
    requires_fit: bool = False

    def eval(self) -> _Baseline:
        return self

    def train(self, mode: bool = True) -> _Baseline:
        return self

    def to(self, *args: Any, **kwargs: Any) -> _Baseline:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.meta.options})"


class FullImageBaseline(_Baseline):
    """Constant heat map: "the sound comes from everywhere"."""

    def __init__(self, resolution: int | None = None) -> None:
        self.resolution = resolution
        self.meta = BaselineMeta(
            "full-image", frozenset({"localize"}), options={"resolution": resolution}
        )

    def localize(self, batch: dict[str, Any]) -> Tensor:
        """Ones at the image resolution (or ``resolution``); no upsampling needed."""
        h, w = (self.resolution, self.resolution) if self.resolution else _image_size(batch)
        return torch.ones(_batch_size(batch), h, w)


def center_gaussian(h: int, w: int, sigma: float = 0.25) -> Tensor:
    """Isotropic Gaussian [h, w] centred at the image centre, sigma relative to min(h, w)."""
    ys = (torch.arange(h, dtype=torch.float64) + 0.5) - h / 2
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) - w / 2
    d2 = ys[:, None] ** 2 + xs[None, :] ** 2
    s = sigma * min(h, w)
    return torch.exp(-d2 / (2 * s * s)).float()


class CenterPriorBaseline(_Baseline):
    """Centre Gaussian prior at the image resolution (no upsampling artefacts)."""

    def __init__(self, sigma: float = 0.25) -> None:
        self.sigma = sigma
        self.meta = BaselineMeta("center-prior", frozenset({"localize"}), options={"sigma": sigma})

    def localize(self, batch: dict[str, Any]) -> Tensor:
        h, w = _image_size(batch)
        return center_gaussian(h, w, self.sigma).expand(_batch_size(batch), h, w).clone()


def _seed_of(*parts: Any) -> int:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class RandomEmbeddingBaseline(_Baseline):
    """Seeded random unit embeddings, one per (seed, sample id, modality)."""

    def __init__(self, dim: int = 128, seed: int = 0) -> None:
        self.dim = dim
        self.seed = seed
        self.meta = BaselineMeta(
            "random-embedding", frozenset({"embed"}), options={"dim": dim, "seed": seed}
        )

    def _draw(self, ids: list[str], modality: str) -> Tensor:
        out = torch.empty(len(ids), self.dim)
        g = torch.Generator()
        for i, sid in enumerate(ids):
            g.manual_seed(_seed_of(self.seed, sid, modality))
            out[i] = torch.randn(self.dim, generator=g)
        return F.normalize(out, dim=1)

    def embed(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        if "id" not in batch:
            raise ValueError(
                "RandomEmbeddingBaseline draws embeddings per sample id: batch has no 'id'"
            )
        ids = [str(i) for i in batch["id"]]
        out = {"audio": self._draw(ids, "audio"), "visual": self._draw(ids, "visual")}
        if "text" in batch:
            out["text"] = self._draw(ids, "text")
        return out


def audio_rms(audio: Tensor) -> Tensor:
    """RMS of each clip's waveform: ``audio`` [B, L] or [B, C, L] -> float64 [B].

    The mean square runs over every channel and sample of the clip (full scale = 1).

    Raises:
        ValueError: ``audio`` is not [B, L] / [B, C, L] or has no samples.
    """
    if audio.ndim not in (2, 3) or audio.shape[-1] == 0:
        raise ValueError(f"audio must be a [B, L] or [B, C, L] waveform, got {tuple(audio.shape)}")
    x = audio.detach().double().flatten(1)
    return x.square().mean(dim=1).sqrt()


class AudioEnergyBaseline(_Baseline):
    """Sounding score = the clip's audio RMS (:func:`audio_rms` of ``batch["audio"]``)."""

    def __init__(self) -> None:
        self.meta = BaselineMeta("audio-energy", frozenset({"sounding_score"}))

    def sounding_score(self, batch: dict[str, Any]) -> Tensor:
        """RMS of ``batch["audio"]`` [B, 1, L] per clip: float64 [B] (higher = more sound).

        Raises:
            KeyError: the batch has no ``audio`` waveform.
        """
        audio = batch.get("audio")
        if not isinstance(audio, Tensor):
            raise KeyError("audio-energy baseline needs batch['audio'] (a waveform)")
        return audio_rms(audio)


class CCABaseline(_Baseline):
    """CCA between audio and visual features, fitted on the TRAINING split only.

    Pipeline, every step fitted on the training split's ``audio_feat`` [n, Da]
    and ``visual_feat`` [n, Dv] (the AVE/VEGAS feature files' batch keys):

    1. per modality, standardise and reduce with PCA to ``pca_dim`` components
       (capped at ``n_train - 1`` and the feature size; ``None`` skips PCA).
       Plain CCA is unregularised: with more feature dimensions than training
       clips (synthetic AVE-15: 1024-d visual, 169 training clips) it finds
       perfectly correlated training directions that do not generalise, and
       PCA is the usual remedy;
    2. ``sklearn.cross_decomposition.CCA(n_components, scale=True)`` on the
       reduced features. ``n_components`` default: ``min(number of classes,
       reduced audio dim, reduced visual dim)`` (the class count bounds the
       number of class-discriminative directions);
    3. ``embed`` returns the L2-normalised canonical variates of each modality
       (retrieval ranks by their cosine).

    Deterministic: PCA uses the full SVD and CCA's NIPALS starts from the
    data, so two fits on the same data give the same embeddings.

    Args:
        n_components: canonical dimensions (``None``: the default above).
        pca_dim: PCA components per modality before CCA (``None``: no PCA).
        max_iter, tol: NIPALS settings of scikit-learn's ``CCA``.
    """

    requires_fit = True

    def __init__(self, n_components: int | None = None, pca_dim: int | None = 64,
                 max_iter: int = 1000, tol: float = 1e-6) -> None:
        if n_components is not None and n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        if pca_dim is not None and pca_dim < 1:
            raise ValueError(f"pca_dim must be >= 1, got {pca_dim}")
        self.n_components, self.pca_dim = n_components, pca_dim
        self.max_iter, self.tol = max_iter, tol
        self._pipes: dict[str, Any] | None = None
        self._cca: Any = None
        #: training clip ids (for the evaluator's leak check) and the fit's facts
        self.train_ids: list[str] = []
        self.fit_info: dict[str, Any] = {}
        self.meta = BaselineMeta("cca", frozenset({"embed"}), paper="canonical correlation analysis",
                                 trivial=False, options=self._options())

    def _options(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "pca_dim": self.pca_dim,
                "max_iter": self.max_iter, "tol": self.tol}

    @property
    def fitted(self) -> bool:
        return self._cca is not None

    @staticmethod
    def accepts_data(data_cfg: Mapping[str, Any]) -> bool:
        """Whether a datamodule config serves the inputs CCA needs: a feature source
        (``init_args.source == "features"``: the AVE/VEGAS feature files, batch keys
        ``audio_feat``/``visual_feat``). The runner fits and scores CCA only there."""
        return dict(data_cfg.get("init_args") or {}).get("source") == "features"

    def fit(self, datamodule: Any, batch_size: int = 512) -> CCABaseline:
        """Fit on ``datamodule.dataset("train")`` (never another split); returns ``self``.

        Raises:
            KeyError: the items have no ``audio_feat``/``visual_feat`` (not a feature source).
        """
        from torch.utils.data import DataLoader

        ds = datamodule.dataset("train")
        audio, visual, labels, ids = [], [], [], []
        for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
            for key in ("audio_feat", "visual_feat"):
                if key not in batch:
                    raise KeyError(f"CCA baseline needs batch[{key!r}] (a features source); "
                                   f"got keys {sorted(batch)}")
            audio.append(batch["audio_feat"].double())
            visual.append(batch["visual_feat"].double())
            if "label" in batch:
                labels.append(torch.as_tensor(batch["label"]))
            ids += [str(i) for i in batch.get("id", [])]
        classes = getattr(ds, "classes", None)
        n_classes = len(classes) if classes is not None else (
            int(torch.cat(labels).max()) + 1 if labels else None)
        self.fit_arrays(torch.cat(audio).numpy(), torch.cat(visual).numpy(), n_classes)
        self.train_ids = ids
        self.fit_info["split"] = "train"
        return self

    def fit_arrays(self, audio: np.ndarray, visual: np.ndarray,
                   n_classes: int | None = None) -> CCABaseline:
        """Fit on paired training features ``audio`` [n, Da], ``visual`` [n, Dv]; returns ``self``.

        Raises:
            ValueError: fewer than 3 pairs, mismatched rows or non-finite values.
        """
        from sklearn.cross_decomposition import CCA
        from sklearn.decomposition import PCA
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        a, v = np.asarray(audio, np.float64), np.asarray(visual, np.float64)
        if a.ndim != 2 or v.ndim != 2 or len(a) != len(v):
            raise ValueError(f"need paired 2-D features, got audio {a.shape} and visual {v.shape}")
        if len(a) < 3:
            raise ValueError(f"CCA needs at least 3 training pairs, got {len(a)}")
        if not (np.isfinite(a).all() and np.isfinite(v).all()):
            raise ValueError("CCA baseline: training features contain non-finite values")
        pipes, reduced = {}, {}
        for name, x in (("audio", a), ("visual", v)):
            steps: list[Any] = [StandardScaler()]
            if self.pca_dim is not None:
                k = min(self.pca_dim, x.shape[1], len(x) - 1)
                steps.append(PCA(n_components=k, svd_solver="full"))
            pipes[name] = make_pipeline(*steps).fit(x)
            reduced[name] = pipes[name].transform(x)
        dims = (reduced["audio"].shape[1], reduced["visual"].shape[1])
        k = self.n_components or min(n_classes or min(dims), *dims)
        k = min(k, *dims, len(a) - 1)
        cca = CCA(n_components=k, scale=True, max_iter=self.max_iter, tol=self.tol)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cca.fit(reduced["audio"], reduced["visual"])
        za, zv = cca.transform(reduced["audio"], reduced["visual"])
        corr = [float(np.corrcoef(za[:, i], zv[:, i])[0, 1]) for i in range(k)]
        self._pipes, self._cca = pipes, cca
        self.fit_info = {"n_train": len(a), "n_components": k, "reduced_dims": list(dims),
                         "n_classes": n_classes, "train_canonical_corr": corr,
                         "warnings": sorted({str(w.message) for w in caught})}
        self.meta = BaselineMeta("cca", frozenset({"embed"}), paper="canonical correlation analysis",
                                 trivial=False, options=self._options() | {"fitted_n_components": k})
        return self

    def embed(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """L2-normalised canonical variates ``audio`` [B, k], ``visual`` [B, k] (float32).

        Raises:
            RuntimeError: before :meth:`fit`.
            KeyError: the batch has no ``audio_feat``/``visual_feat``.
        """
        if self._cca is None or self._pipes is None:
            raise RuntimeError("CCA baseline is not fitted: call fit(datamodule) on the "
                               "benchmark dataset's training split first")
        for key in ("audio_feat", "visual_feat"):
            if key not in batch:
                raise KeyError(f"CCA baseline needs batch[{key!r}]")
        a = self._pipes["audio"].transform(batch["audio_feat"].double().cpu().numpy())
        v = self._pipes["visual"].transform(batch["visual_feat"].double().cpu().numpy())
        za, zv = self._cca.transform(a, v)
        return {"audio": F.normalize(torch.from_numpy(za).float(), dim=1),
                "visual": F.normalize(torch.from_numpy(zv).float(), dim=1)}


def trivial_baselines(seed: int = 0) -> list[_Baseline]:
    """The baselines every leaderboard table shows."""
    return [FullImageBaseline(), CenterPriorBaseline(), RandomEmbeddingBaseline(seed=seed)]


#: name -> factory, for configs and the runner
BASELINES = {
    "full-image": FullImageBaseline,
    "center-prior": CenterPriorBaseline,
    "random-embedding": RandomEmbeddingBaseline,
    "audio-energy": AudioEnergyBaseline,
}

#: name -> factory of baselines that are fitted (``requires_fit``) on the training split
FITTED_BASELINES = {"cca": CCABaseline}


def baseline_tag(name: str) -> str:
    """How a leaderboard row names a baseline: ``"baseline"`` for a fitted one (trained on
    the benchmark's TRAIN split, e.g. CCA), else ``"trivial"``."""
    return "baseline" if name in FITTED_BASELINES else "trivial"

__all__ = [
    "BASELINES",
    "AudioEnergyBaseline",
    "BaselineMeta",
    "CCABaseline",
    "CenterPriorBaseline",
    "FITTED_BASELINES",
    "baseline_tag",
    "FullImageBaseline",
    "RandomEmbeddingBaseline",
    "audio_rms",
    "center_gaussian",
    "trivial_baselines",
]
