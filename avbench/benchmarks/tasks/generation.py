"""Audio generation from silent video (issue 17, must-have 2): the ``generation`` task kind.

Protocol (avbench's, on synthetic Ego4D where the world knows every action's onsets and
the ambience level). For ``max_clips`` clips of the evaluated split (the first by stable
id hash, spread over its videos), the model's ``generate_audio`` makes a 3-s sound from
the silent frames under each test-time audio ``condition`` (same noise seed per clip for
every condition, so the conditions differ by the condition only):

=============  ==============================================================================
condition      audio condition
=============  ==============================================================================
same_video     the clip's ``cond_audio``: a clip of the same long video at another time
retrieved      the TRAIN clip whose audio is most similar to the clip's video under the
               ``av_model``'s ``embed`` (top-1 cosine; AV-LDM's ``retrieve_condition``)
low_ambient    the quietest TRAIN clip (lowest mean energy; ``lowest_energy_index``), for all
zero           zero audio tokens (``condition="zero"``)
other_video    a TRAIN clip (another video by construction) picked by stable id hash
=============  ==============================================================================

Metrics, each per condition ``c`` (``<metric>/<c>``), and for the real test audio
(``<metric>/real``: the reference each generated number is read against):

* ``FD-avbench/c`` (lower is better): Frechet distance (the FAD formula) between the
  ``audio-resnet18`` stand-in's 128-d per-second embeddings (the features' extractor,
  ``avbench.pretrain.extractors.AudioFeatureExtractor``; 3 per clip) of the generated clips
  and of EVERY real clip of the evaluated split. Never called FAD (no VGGish).
* ``AV-sim/c``: mean cosine of the generated audio's and the video's embeddings under
  ``av_model`` (a suite model with ``embed``: ``av_model_name`` + ``av_model_checkpoint``);
  without one it is not computed (``info["undefined"]`` says why).
* ``sync_precision/c``, ``sync_recall/c``, ``sync_f1/c``: spectral-flux onsets of the
  generated audio (:func:`avbench.metrics.generation.detect_onsets`) against the world's
  planted action onsets within ``+-onset_tolerance`` s (0.1), pooled over clips.
* ``ambient_mae_db/c`` (lower is better), ``ambient_corr/c``, ``ambient_db/c``: the level
  (dBFS) of the quietest 0.5-s window vs the planted ambience ``ambience_db``: mean absolute
  error, Pearson r over clips, and the mean level itself (low-ambient conditioning should
  lower it).

Planted onsets (:func:`planted_onsets`), in clip time: every narrated action of the long
video whose act phase ``[start + 0.35, end - 0.35)`` (``actions.APPROACH_S``) overlaps the
clip window, with the onsets its sound kind renders: ``hits`` one per stroke
(``a + k / rate_hz``), ``rattle`` one per turning point (``a + (k + 0.5) / (2 rate_hz)``),
``scrape`` / ``pour`` (continuous) one at the act start ``a``. The rates come from
re-planning the world (``writers.ego4d.plan(preset, seed)``, deterministic by seed; nothing
is rendered). When the world cannot be re-planned (an older writer, an unknown preset, a
clip not found), the clip's own ``action_start + 0.35`` from ``synthetic_scenes.jsonl`` is
its one onset (``info["onset_source"]`` counts which); so is a clip whose own action the
re-planned world does not reproduce exactly (the writer changed after the data was written). Silent actions have none; their
detected onsets count against precision. Off-screen events are not action onsets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from avbench.benchmarks.tasks.base import PlotRow, TaskRunner, TaskSpec, register_task
from avbench.capabilities import Capability
from avbench.metrics._common import NotScorableError, stable_key
from avbench.metrics.generation import (
    ambient_level_scores,
    detect_onsets,
    frechet_distance,
    lowest_window_db,
    onset_precision_recall,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from avbench.benchmarks.batch_outputs import BatchOutputs

log = logging.getLogger(__name__)

GenCondition = Literal["same_video", "retrieved", "low_ambient", "zero", "other_video"]
CONDITIONS: tuple[str, ...] = ("retrieved", "low_ambient", "zero", "same_video", "other_video")
PER_CONDITION = ("FD-avbench", "AV-sim", "sync_precision", "sync_recall", "sync_f1",
                 "ambient_mae_db", "ambient_corr", "ambient_db")
APPROACH_S = 0.35  # avbench.data.synthetic.actions.APPROACH_S (act phase inside [start, end))
SCENES_FILE = "synthetic_scenes.jsonl"


# --- the world's ground truth --------------------------------------------------------------
def _kind_onsets(kind: str, length: float, rate_hz: float | None) -> np.ndarray:
    """Onsets (s after the act start) of an action sound of ``kind`` over ``length`` s
    (``actions._kind_sound``); ``rate_hz`` None: the act start only."""
    if length <= 0 or kind == "none":
        return np.zeros(0)
    if rate_hz is None or kind in ("scrape", "pour"):
        return np.zeros(1)
    if kind == "hits":
        return np.arange(0.0, length, 1.0 / rate_hz)
    if kind == "rattle":
        on = (np.arange(0.0, length * 2 * rate_hz) + 0.5) / (2 * rate_hz)
        return on[on < length]
    return np.zeros(1)


def _replan(root: Path) -> dict[str, list[Any]] | None:
    """``{video_uid: [Narration, ...]}`` re-planned from the world's preset and seed (written
    in ``avbench_synthetic.json``), None when that is not possible."""
    try:
        meta = json.loads((root / "avbench_synthetic.json").read_text())
        from avbench.data.synthetic.presets import get_preset
        from avbench.data.synthetic.writers import ego4d as writer

        plan = getattr(writer, "plan", None)
        if plan is None:
            return None
        world, videos = plan(get_preset(str(meta["preset"])), int(meta["seed"]))
        vocab = world.actions
        return {pv.video.uid: [(n, vocab.verb(n.verb)) for n in pv.video.narrations]
                for pv in videos}
    except Exception as err:  # noqa: BLE001 - any failure falls back to the sidecar
        log.warning("generation: cannot re-plan the Ego4D world under %s (%s); planted onsets "
                    "fall back to each clip's action start", root, err)
        return None


def planted_onsets(scene: Mapping[str, Any], narrations: Sequence[Any] | None,
                   clip_seconds: float = 3.0) -> tuple[np.ndarray, str]:
    """Planted action onsets (s, clip time, ascending) of one clip and their source.

    Args:
        scene: the clip's ``synthetic_scenes.jsonl`` row (``media_start``, ``media_end``,
            ``action_start``, ``action_end``, ``sounding``, ``sound_kind``).
        narrations: ``(Narration, Verb)`` pairs of the clip's long video (re-planned world),
            or None to use the row's own action start.
        clip_seconds: the loader's window (the centre ``clip_seconds`` of the clip).

    Returns:
        ``(onsets, source)``, source ``"world"`` or ``"action_start"``.
    """
    m0, m1 = float(scene["media_start"]), float(scene["media_end"])
    w0 = m0 + max(m1 - m0 - clip_seconds, 0.0) / 2  # the loader's centre crop
    w1 = w0 + min(clip_seconds, m1 - m0)
    out: list[np.ndarray] = []
    if narrations is not None:
        for n, verb in narrations:
            a, length = n.start + APPROACH_S, max(n.end - n.start - 2 * APPROACH_S, 0.0)
            if not verb.sounding or a + length <= w0 or a >= w1:
                continue
            out.append(a + _kind_onsets(verb.sound_kind, length, float(n.rate_hz)))
        source = "world"
    else:
        if scene.get("sounding"):
            a = float(scene["action_start"]) + APPROACH_S
            out.append(np.array([a]))
        source = "action_start"
    t = np.sort(np.concatenate(out)) if out else np.zeros(0)
    t = t[(t >= w0) & (t < w1)] - w0
    return t, source


def read_world_truth(root: str | Path, clip_seconds: float = 3.0,
                     replan: bool = True) -> dict[str, dict[str, Any]]:
    """Per clip id: ``{"onsets": [s], "onset_source", "ambience_db", "sounding"}`` from
    ``<root>/synthetic_scenes.jsonl`` (and the re-planned world, :func:`planted_onsets`).

    Raises:
        FileNotFoundError: no ``synthetic_scenes.jsonl`` under ``root`` (not the synthetic world).
    """
    root = Path(root)
    path = root / SCENES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: synchrony and ambient level need the "
                                "synthetic world's ground truth")
    plans = _replan(root) if replan else None
    out: dict[str, dict[str, Any]] = {}
    with path.open() as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            narr = None if plans is None else plans.get(row["video_uid"])
            if narr is not None and not any(
                    abs(n.start - float(row["action_start"])) < 1e-6
                    and abs(n.end - float(row["action_end"])) < 1e-6 for n, _ in narr):
                narr = None  # the world changed since the data was written: the sidecar only
            onsets, source = planted_onsets(row, narr, clip_seconds)
            out[str(row["id"])] = {"onsets": onsets, "onset_source": source,
                                   "ambience_db": float(row["ambience_db"]),
                                   "sounding": bool(row.get("sounding", False))}
    return out


# --- the spec ------------------------------------------------------------------------------
@register_task
class GenerationTask(TaskSpec):
    """Generated-audio quality, synchrony and ambience per test-time condition (module doc).

    Args (fields):
        conditions: the test-time audio conditions generated.
        max_clips: clips generated per condition (generation is slow: ~2-4 s per clip per
            condition on one CPU core); None: all.
        sampling_steps, guidance_scale: override the model's (None: the model's own).
        seed: seed of the sampling noise (same for every condition).
        embedder: the audio stand-in directory of FD-avbench (``standins/audio-resnet18``).
        av_model_name, av_model_checkpoint: the suite model (registry name, Lightning
            checkpoint) whose ``embed`` gives AV-sim and the ``retrieved`` condition; None:
            both are not computed.
        av_model_fit: instead of ``av_model_checkpoint``, a runner fit record (``fit.json``
            of ``results/_work/<suite>/<job>/``) whose selected ``weights`` is the checkpoint:
            the model another suite trained (the generation suite names the default suite's
            ``mc3.ego4d.seed0``). A missing record or checkpoint leaves AV-sim and
            ``retrieved`` not computed, with the reason.
        reference_split: the split the ``retrieved`` / ``low_ambient`` / ``other_video``
            conditions come from (never the evaluated one).
        onset_tolerance: synchrony window (s, +-).
        ambient_window: length (s) of the quietest window.
        replan_world: re-plan the world for per-stroke onsets (else the action start only).
        gallery_condition: the condition whose generations the gallery keeps.
    """

    task: Literal["generation"] = "generation"
    requires: tuple[Capability, ...] = ("generate_audio",)
    conditions: tuple[GenCondition, ...] = CONDITIONS  # type: ignore[assignment]
    max_clips: int | None = 48
    sampling_steps: int | None = None
    guidance_scale: float | None = None
    seed: int = 0
    embedder: str = "standins/audio-resnet18"
    av_model_name: str | None = None
    av_model_checkpoint: str | None = None
    av_model_fit: str | None = None
    reference_split: Literal["train", "val", "test"] = "train"
    onset_tolerance: float = 0.1
    ambient_window: float = 0.5
    replan_world: bool = True
    gallery_condition: GenCondition = "same_video"

    lower_is_better: ClassVar[frozenset[str]] = frozenset(
        f"{m}/{c}" for m in ("FD-avbench", "ambient_mae_db") for c in (*CONDITIONS, "real"))

    def metric_names(self) -> list[str]:
        names = [f"{m}/{c}" for c in self.conditions for m in PER_CONDITION]
        return names + [f"{m}/real" for m in PER_CONDITION if m != "FD-avbench"]

    def make_runner(self, capability: str) -> GenerationRunner:
        return GenerationRunner(self, capability)

    def leaderboard_figures(self, benchmark: str,
                            rows: Sequence[PlotRow]) -> list[tuple[str, Figure]]:
        """``<benchmark>_spectrograms.png``: real vs generated log-mel spectrograms of the
        first stored gallery (:mod:`avbench.benchmarks.tasks.generation_gallery`)."""
        from avbench.benchmarks.tasks.generation_gallery import spectrogram_figure

        out = []
        for row in rows:
            if row.gallery is not None and "gen_wave" in row.gallery:
                out.append((f"spectrograms_{row.label}".replace(" ", "_").replace("/", "-"),
                            spectrogram_figure(row.gallery, title=f"{benchmark}: {row.label}")))
        return out

    def leaderboard_files(self, benchmark: str, rows: Sequence[PlotRow],
                          out_dir: Path) -> list[Path]:
        """A few generated/real wav pairs per row with a gallery, next to the plots."""
        from avbench.benchmarks.tasks.generation_gallery import write_generation_galleries

        return write_generation_galleries(rows, benchmark, out_dir)


def av_model_checkpoint(spec: GenerationTask) -> tuple[str | None, str]:
    """``(checkpoint, "")`` of the spec's AV model, or ``(None, reason)`` when there is none:
    no ``av_model_name``, neither checkpoint nor fit record, a fit record that does not exist
    or does not name an existing ``weights`` file."""
    if not spec.av_model_name or not (spec.av_model_checkpoint or spec.av_model_fit):
        return None, ("no av_model_name with av_model_checkpoint / av_model_fit given: AV-sim "
                      "and the retrieved condition need a suite audio-visual model with embed")
    if spec.av_model_checkpoint:
        return spec.av_model_checkpoint, ""
    fit = Path(str(spec.av_model_fit))
    if not fit.is_file():
        return None, (f"{fit} does not exist: the {spec.av_model_name} checkpoint comes from "
                      f"that fit record of another suite (run `make leaderboard` first, or set "
                      f"av_model_checkpoint)")
    try:
        weights = json.loads(fit.read_text())["weights"]
    except (ValueError, KeyError, TypeError) as err:
        return None, f"{fit}: not a fit record with 'weights' ({type(err).__name__}: {err})"
    if not weights or not Path(weights).is_file():
        return None, f"{fit} names the checkpoint {weights!r}, which does not exist"
    return str(weights), ""


def load_av_model(name: str, checkpoint: str | Path) -> Any:
    """A suite model with ``embed`` from its Lightning checkpoint (eval mode, frozen).

    Raises:
        KeyError: unknown registry name. FileNotFoundError: no checkpoint.
        ValueError: the model has no ``embed`` capability.
    """
    import avbench.models  # noqa: F401 - fills the registry
    from avbench.models.base import REGISTRY

    if name not in REGISTRY:
        raise KeyError(f"av_model_name {name!r} is not a registered model ({sorted(REGISTRY)})")
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"av_model_checkpoint {str(path)!r} does not exist")
    model = REGISTRY[name].load_from_checkpoint(str(path), map_location="cpu")
    if "embed" not in model.meta.capabilities:
        raise ValueError(f"{name} has no 'embed' capability: it cannot score AV-sim")
    return model.eval().requires_grad_(False)


def _subset(batch: Mapping[str, Any], idx: list[int]) -> dict[str, Any]:
    n = len(batch["id"])
    out: dict[str, Any] = {}
    for k, v in batch.items():
        if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == n:
            out[k] = v[idx]
        elif isinstance(v, (list, tuple)) and len(v) == n:
            out[k] = [v[i] for i in idx]
        else:
            out[k] = v
    return out


def _mono(wave: Tensor) -> Tensor:
    return wave.reshape(wave.shape[0], -1).float()


class GenerationRunner(TaskRunner):
    """Generates the selected clips per condition; scores them in :meth:`compute`."""

    spec: GenerationTask

    def __init__(self, spec: GenerationTask, capability: str) -> None:
        super().__init__(spec, capability)
        self.model: Any = None
        self.av: Any = None
        self.truth: dict[str, dict[str, Any]] | None = None
        self.selected: set[str] | None = None
        self.ref_waves: Tensor | None = None  # [N, L] reference-split audio
        self.ref_audio_emb: Tensor | None = None  # [N, D] under av_model
        self.low_index: int | None = None
        self.real_emb: dict[str, Tensor] = {}  # id -> [T, 128] (every evaluated clip)
        self.real: dict[str, Tensor] = {}  # id -> wave [L] (selected clips)
        self.gen: dict[str, dict[str, Tensor]] = {c: {} for c in spec.conditions}
        self.avsim: dict[str, dict[str, float]] = {c: {} for c in (*spec.conditions, "real")}
        self.undefined: dict[str, str] = {}
        self.last: dict[str, Any] | None = None  # the last batch's selection (gallery)
        self._embedder: Any = None

    # --- set-up -------------------------------------------------------------------------
    def prepare(self, model: Any, datamodule: Any, split: str) -> None:
        """Load the embedder, the world's truth, the AV model and the reference split's
        audio; choose the generated clips (ids only of the evaluated split).

        Raises:
            ValueError: the evaluated split is the reference split; no datamodule.
        """
        spec = self.spec
        if split == spec.reference_split:
            raise ValueError(f"generation takes its retrieved / low-ambient conditions from the "
                             f"{split!r} split and cannot be evaluated on it")
        if datamodule is None or not hasattr(datamodule, "dataset"):
            raise ValueError("the generation task needs a datamodule with dataset(split)")
        self.model = model
        from avbench.nn.weights import resolve_weights_path
        from avbench.pretrain.extractors import AudioFeatureExtractor

        self._embedder = AudioFeatureExtractor.from_dir(resolve_weights_path(spec.embedder)).eval()
        clip_seconds = float(getattr(datamodule, "clip_seconds", 3.0) or 3.0)
        try:
            self.truth = read_world_truth(datamodule.root, clip_seconds, spec.replan_world)
            sources = [t["onset_source"] for t in self.truth.values()]
            self.info["onset_source"] = {s: sources.count(s) for s in sorted(set(sources))}
        except FileNotFoundError as err:
            self.truth = None
            self.undefined["sync"] = self.undefined["ambient"] = str(err)
        checkpoint, why = av_model_checkpoint(spec)
        if checkpoint is not None:
            self.av = load_av_model(str(spec.av_model_name), checkpoint)
            self.info["av_model"] = f"{spec.av_model_name} ({checkpoint})"
        else:
            self.undefined["AV-sim"] = self.undefined["retrieved"] = why
        evaluated = datamodule.dataset(split)
        ids = [str(evaluated.record_id(r)) for r in evaluated.records]
        chosen = sorted(ids, key=stable_key)
        self.selected = set(chosen if spec.max_clips is None else chosen[:spec.max_clips])
        self.info.update(evaluated_split=split, generated_clips=len(self.selected),
                         clips_in_split=len(ids), reference_split=spec.reference_split)
        if {"retrieved", "low_ambient", "other_video"} & set(spec.conditions):
            self._read_reference(datamodule)

    def _read_reference(self, datamodule: Any) -> None:
        from torch.utils.data import DataLoader

        from avbench.data.sample import collate

        ds = datamodule.dataset(self.spec.reference_split)
        loader = DataLoader(ds, batch_size=int(getattr(datamodule, "batch_size", 8)),
                            shuffle=False, num_workers=int(getattr(datamodule, "num_workers", 0)),
                            collate_fn=collate)
        waves, embs = [], []
        with torch.no_grad():
            for batch in loader:
                waves.append(_mono(batch["audio"]))
                if self.av is not None:
                    embs.append(self.av.embed(batch)["audio"].float())
        if not waves:
            raise NotScorableError(f"the {self.spec.reference_split} split is empty")
        self.ref_waves = torch.cat(waves)
        self.ref_audio_emb = torch.cat(embs) if embs else None
        from avbench.models.avldm import lowest_energy_index

        self.low_index = lowest_energy_index(self.ref_waves)
        self.info["low_ambient_clip_db"] = lowest_window_db(self.ref_waves[self.low_index],
                                                           window=self.spec.ambient_window)

    # --- per batch ----------------------------------------------------------------------
    def _condition(self, name: str, batch: dict[str, Any]) -> Any:
        ids = [str(i) for i in batch["id"]]
        if name == "same_video":
            return "batch"
        if name == "zero":
            return "zero"
        assert self.ref_waves is not None
        if name == "low_ambient":
            return self.ref_waves[self.low_index].expand(len(ids), -1)
        if name == "other_video":
            idx = [stable_key(i) % self.ref_waves.shape[0] for i in ids]
            return self.ref_waves[idx]
        if name == "retrieved":
            from avbench.models.avldm import retrieve_condition

            v = self.av.embed(batch)["visual"]
            return self.ref_waves[retrieve_condition(v, self.ref_audio_emb)]
        raise ValueError(f"unknown condition {name!r}")

    def _embed_audio(self, waves: Tensor) -> Tensor:
        """Per-second stand-in embeddings [B, T, 128] of waves [B, L] (16 kHz)."""
        return self._embedder(_mono(waves).cpu())

    def _av_sim(self, batch: dict[str, Any], waves: Tensor) -> list[float]:
        emb = self.av.embed({**batch, "audio": waves.reshape(waves.shape[0], 1, -1)})
        return (emb["audio"].float() * emb["visual"].float()).sum(-1).tolist()

    def update(self, out: BatchOutputs) -> None:
        if self.selected is None:
            raise RuntimeError("GenerationRunner.prepare() was not called")
        batch, ids = out.batch, out.ids()
        real_emb = self._embed_audio(batch["audio"])
        for i, e in zip(ids, real_emb):
            self.real_emb[i] = e
        idx = [k for k, i in enumerate(ids) if i in self.selected and i not in self.real]
        self.last = None
        if not idx:
            return
        sub = _subset(batch, idx)
        sub_ids = [ids[k] for k in idx]
        for i, w in zip(sub_ids, _mono(sub["audio"])):
            self.real[i] = w.cpu()
        if self.av is not None:
            for i, s in zip(sub_ids, self._av_sim(sub, _mono(sub["audio"]))):
                self.avsim["real"][i] = s
        gens: dict[str, Tensor] = {}
        seed = self.spec.seed * 1_000_003 + stable_key(sub_ids[0]) % 1_000_003
        for cond in self.spec.conditions:
            if cond == "retrieved" and self.av is None:
                continue
            gen = torch.Generator(device=batch["frames"].device if "frames" in batch
                                  else "cpu").manual_seed(seed)
            wave = out.model.generate_audio(sub, condition=self._condition(cond, sub),
                                            guidance_scale=self.spec.guidance_scale,
                                            steps=self.spec.sampling_steps, generator=gen)
            wave = _mono(wave).cpu()
            gens[cond] = wave
            for i, w in zip(sub_ids, wave):
                self.gen[cond][i] = w
            if self.av is not None:
                for i, s in zip(sub_ids, self._av_sim(sub, wave)):
                    self.avsim[cond][i] = s
        self.last = {"ids": sub_ids, "real": _mono(sub["audio"]).cpu(), "gen": gens}

    # --- scores -------------------------------------------------------------------------
    def _scores(self, name: str, waves: dict[str, Tensor], sample_rate: int) -> dict[str, float]:
        out: dict[str, float] = {}
        ids = sorted(waves)
        if self.av is not None and self.avsim[name]:
            out[f"AV-sim/{name}"] = float(np.mean([self.avsim[name][i] for i in ids]))
        if self.truth is None:
            return out
        known = [i for i in ids if i in self.truth]
        missing = len(ids) - len(known)
        if missing:
            self.info.setdefault("clips_without_truth", {})[name] = missing
        if not known:
            return out
        det = [detect_onsets(waves[i], sample_rate) for i in known]
        pr = onset_precision_recall(det, [self.truth[i]["onsets"] for i in known],
                                    self.spec.onset_tolerance)
        out.update({f"sync_precision/{name}": pr["precision"],
                    f"sync_recall/{name}": pr["recall"], f"sync_f1/{name}": pr["f1"]})
        self.info.setdefault("onsets", {})[name] = {
            k: int(pr[k]) for k in ("n_detected", "n_planted", "n_matched")}
        amb = ambient_level_scores(
            [lowest_window_db(waves[i], sample_rate, self.spec.ambient_window) for i in known],
            [self.truth[i]["ambience_db"] for i in known])
        out.update({f"ambient_mae_db/{name}": amb["mae_db"], f"ambient_db/{name}": amb["mean_db"]})
        if "corr" in amb:
            out[f"ambient_corr/{name}"] = amb["corr"]
        self.info.setdefault("ambient_bias_db", {})[name] = amb["bias_db"]
        return out

    def compute(self) -> dict[str, float]:
        """Every metric per condition and for the real audio (module docstring).

        Raises:
            NotScorableError: no clip was generated.
        """
        if not self.real:
            raise NotScorableError("no clip was generated (none of the selected ids was seen)",
                                   self.spec.metric_names())
        sr = int(getattr(self.model, "sample_rate", 16000))
        ref = torch.cat([self.real_emb[i] for i in sorted(self.real_emb)])
        self.info["fd_reference"] = (f"{len(self.real_emb)} real clips x {ref.shape[0] // max(len(self.real_emb), 1)} "
                                     f"s of {self.spec.embedder} embeddings ({ref.shape[1]}-d)")
        metrics = self._scores("real", self.real, sr)
        for cond in self.spec.conditions:
            waves = self.gen[cond]
            if not waves:
                self.undefined[f"FD-avbench/{cond}"] = self.undefined.get(cond, "not generated")
                continue
            emb = torch.cat([self._embed_audio(torch.stack([waves[i]]))[0] for i in sorted(waves)])
            metrics[f"FD-avbench/{cond}"] = frechet_distance(emb, ref)
            metrics.update(self._scores(cond, waves, sr))
        for name in self.spec.metric_names():
            if name not in metrics and name not in self.undefined:
                head = name.split("/")[0]
                key = "AV-sim" if head == "AV-sim" else (
                    "sync" if head.startswith("sync") else "ambient")
                self.undefined[name] = self.undefined.get(key, "undefined on this data")
        self.info["undefined"] = {k: v for k, v in self.undefined.items() if "/" in k}
        self.info["conditions"] = list(self.spec.conditions)
        return metrics

    def gallery_collector(self, n: int) -> GenerationGallery:
        return GenerationGallery(self, n)


class GenerationGallery:
    """Keeps the first ``n`` generated clips: ``ids``, ``real_wave`` [n, L], ``gen_wave``
    [n, L] (the spec's ``gallery_condition``) and ``condition`` [n] (str)."""

    def __init__(self, runner: GenerationRunner, n: int) -> None:
        self.runner, self.n = runner, n
        self.ids: list[str] = []
        self.real: list[np.ndarray] = []
        self.gen: list[np.ndarray] = []

    @property
    def full(self) -> bool:
        return len(self.ids) >= self.n

    def update(self, out: BatchOutputs) -> None:
        last = self.runner.last
        cond = self.runner.spec.gallery_condition
        if last is None or cond not in last["gen"]:
            return
        for k, i in enumerate(last["ids"]):
            if self.full:
                break
            self.ids.append(i)
            self.real.append(last["real"][k].numpy().astype(np.float32))
            self.gen.append(last["gen"][cond][k].numpy().astype(np.float32))

    def result(self) -> dict[str, np.ndarray] | None:
        if not self.ids:
            return None
        cond = self.runner.spec.gallery_condition
        return {"ids": np.asarray(self.ids), "real_wave": np.stack(self.real),
                "gen_wave": np.stack(self.gen), "condition": np.asarray([cond] * len(self.ids))}


__all__ = [
    "CONDITIONS",
    "GenerationGallery",
    "GenerationRunner",
    "GenerationTask",
    "load_av_model",
    "planted_onsets",
    "read_world_truth",
]
