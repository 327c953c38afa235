"""Why ego4d-discovery scores below chance and ego4d-retrieval at chance (docs/models.md,
"Ego4D discovery and retrieval: what the numbers mean").

Three sections, each printed as a table (and all of it written to ``--json``):

* ``world``: the planted truth of the TEST split (``synthetic_scenes.jsonl``) and the
  loaded audio: RMS of sounding vs silent clips (dBFS), whether silent clips are
  ambience only, and the ROC-AUC of the RMS as a sounding score (the audio-energy
  baseline, through :func:`avbench.benchmarks.evaluate`).
* ``loader``: the pairing of ids, labels and media windows with the planted truth, and
  WHEN the loader's single frame (``num_frames: 1``, the suite's data config) is taken
  relative to the narration and to the action, for the frame rule before the fix (the
  window's first frame) and after it (the window centre); the spread of the images
  among the clips of one long video.
* ``models``: for each checkpoint, under both frame rules: the discovery ROC-AUC of the
  task's score (cosine of the clip's own audio and visual embeddings; MC3 also its
  ``sounding_score``), the same AUC with every clip's visual embedding replaced by the
  mean visual embedding (a score that sees no per-clip image), audio->visual instance
  R@1, the share of a2v top-1 hits from the query's own long video, and the mean
  cosine of the visual embeddings within a video and between videos.

Run from the repo root (one thread; about 2 min for 12 checkpoints; MC3 checkpoints and
``--untrained configs/model/mc3_cpu.yaml`` need ``standins/text-encoder``, ``make standins``)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learning/ego4d_diagnosis.py \\
        --root /work/data6/ego4d \\
        --checkpoints 'results/_work/synthetic/*.vggsound.*/checkpoints/best.ckpt' \\
                      'results/_work/synthetic/mc3.*/checkpoints/best.ckpt' \\
        --untrained configs/model/ezvsl_cpu.yaml configs/model/mc3_cpu.yaml \\
        --json /tmp/ego4d_diagnosis.json
"""

from __future__ import annotations

import argparse
import glob
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from avbench.benchmarks import evaluate
from avbench.benchmarks.baselines import AudioEnergyBaseline, audio_rms
from avbench.data.datamodules.ego4d import Ego4DClipsDataModule
from avbench.data.datasets.ego4d import Ego4DClips
from avbench.data.synthetic.actions import APPROACH_S
from avbench.metrics.discovery import discovery_scores
from avbench.metrics.retrieval import retrieval_scores

#: the suite's Ego4D data config (avbench/configs/data/ego4d_synthetic.yaml)
DATA = dict(num_frames=1, sample_rate=16000, clip_seconds=3.0, image_size=128)


class FirstFrameClips(Ego4DClips):
    """The loader's frame rule BEFORE the fix: ``num_frames`` frames from the window start."""

    def frame_times(self, start: float) -> tuple[float, float, int]:
        n = int(self.num_frames or 1)
        return start, n / self.clip_seconds, n


def db(x: float | torch.Tensor) -> float:
    """Linear RMS -> dBFS."""
    return 20 * math.log10(max(float(x), 1e-12))


def auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """ROC-AUC of ``scores`` [N] against binary ``labels`` [N] (the discovery metric)."""
    return float(discovery_scores(scores.double(), labels.long())["roc_auc"])


# ----------------------------------------------------------------------------- data
def load_split(root: Path, rule: str) -> dict[str, Any]:
    """The test split under a frame rule (``"first"`` or ``"centre"``): ids, images
    [N,3,H,W], audio [N,1,L], texts, labels, video uids and the frame's time offset in
    the window (s)."""
    cls = FirstFrameClips if rule == "first" else Ego4DClips
    ds = cls(root, "test", **DATA)
    samples = [ds[i] for i in range(len(ds))]
    first, _, _ = ds.frame_times(0.0)
    return {
        "ids": [s["id"] for s in samples],
        "image": torch.stack([s["image"] for s in samples]),
        "audio": torch.stack([s["audio"] for s in samples]),
        "text": [s["text"] for s in samples],
        "sounding": torch.tensor([bool(s["sounding"]) for s in samples]),
        "video": [s["video_uid"] for s in samples],
        "frame_offset": first,
    }


def scenes(root: Path) -> pd.DataFrame:
    """The planted truth of the test clips, indexed by clip id."""
    df = pd.read_json(root / "synthetic_scenes.jsonl", lines=True)
    return df[df["table"] == "test"].set_index("id")


# ----------------------------------------------------------------------------- world
def world_section(root: Path, truth: pd.DataFrame, data: dict[str, Any]) -> dict[str, Any]:
    """Loudness of sounding vs silent test clips (planted and as loaded)."""
    meta = json.loads((root / "avbench_synthetic.json").read_text())
    # the loudness model since session 7 (actions.ActionSoundLevels); before: WorldConfig's ranges
    levels = meta.get("action_sound_levels") or meta["world_config"]
    rms = audio_rms(data["audio"])
    lab = data["sounding"]
    planted = truth.loc[data["ids"]]
    silent = planted[~planted["sounding"]]
    dm = Ego4DClipsDataModule(root, batch_size=25, num_workers=0, **DATA)
    baseline = evaluate(AudioEnergyBaseline(), "ego4d-discovery", dm, progress=False)
    return {
        "n": int(lab.numel()),
        "positive_rate": float(lab.double().mean()),
        "ambience_db_range": levels["ambience_db"],
        "action_db_range": levels.get("action_snr_db", levels.get("action_db")),
        "silent_is_background_only": bool(np.allclose(
            silent["audio_rms"], silent.get("background_rms", silent["ambience_rms"]))),
        "loaded_rms_db": {
            "sounding_min": db(rms[lab].min()), "sounding_median": db(rms[lab].median()),
            "silent_max": db(rms[~lab].max()), "silent_median": db(rms[~lab].median()),
            "silent_min": db(rms[~lab].min()),
        },
        "rms_roc_auc": auc(rms, lab),
        "audio_energy_baseline": baseline.metrics,
        "instance_r1_ceiling": instance_ceiling(planted),
    }


def instance_ceiling(planted: pd.DataFrame) -> float:
    """a2v R@1 of an oracle that reads from the audio only what this world links to the
    image - the sound kind (hits / scrape / pour / rattle / none; the visible motion
    follows the verb) and, for hits, the struck object's category (its pitch) - and
    ranks the clips that agree at random (1 / group size per query). The long video
    cannot be read across modalities: its ambience is independent of its tabletop."""
    key = planted["sound_kind"] + ":" + np.where(
        planted["sound_kind"] == "hits", planted["category"].astype(str), "")
    return float((1.0 / key.map(key.value_counts())).mean())


# ----------------------------------------------------------------------------- loader
def image_spread(images: torch.Tensor, videos: list[str]) -> float:
    """Mean over videos of the per-pixel std of the images of that video's clips."""
    by_video: dict[str, list[int]] = {}
    for i, v in enumerate(videos):
        by_video.setdefault(v, []).append(i)
    return float(np.mean([images[idx].std(dim=0).mean().item() for idx in by_video.values()]))


def loader_section(truth: pd.DataFrame, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Pairing with the planted truth; where the frame lands, per frame rule."""
    centre = runs["centre"]
    planted = truth.loc[centre["ids"]]
    out: dict[str, Any] = {
        "ids_match_truth": sorted(centre["ids"]) == sorted(truth.index),
        "labels_match_truth": bool(
            (centre["sounding"].numpy() == planted["sounding"].to_numpy()).all()),
        "media_window_centred_on_narration": float(
            ((planted["media_start"] + 1.5 - planted["narration_time"]).abs() < 1e-6).mean()),
    }
    for rule, data in runs.items():
        t = planted["media_start"] + data["frame_offset"]
        acting = ((t >= planted["action_start"] + APPROACH_S)
                  & (t < planted["action_end"] - APPROACH_S))
        out[rule] = {
            "frame_minus_narration_s": float((t - planted["narration_time"]).median()),
            "frame_before_action_start": float((t < planted["action_start"]).mean()),
            "frame_in_act_phase": float(acting.mean()),
            "image_spread_within_video": image_spread(data["image"], data["video"]),
        }
    return out


# ----------------------------------------------------------------------------- models
def mean_cos(x: torch.Tensor, same: torch.Tensor) -> float:
    """Mean off-diagonal cosine of the rows of ``x`` over the pairs selected by ``same``."""
    x = F.normalize(x.double(), dim=1)
    cos = x @ x.T
    mask = same & ~torch.eye(len(x), dtype=torch.bool)
    return float(cos[mask].mean())


@torch.no_grad()
def embed_all(model: Any, data: dict[str, Any], batch: int = 25) -> dict[str, torch.Tensor]:
    """``model.embed`` (and ``sounding_score`` when present) over the split, in batches."""
    outs: dict[str, list[torch.Tensor]] = {}
    for lo in range(0, len(data["ids"]), batch):
        sl = slice(lo, lo + batch)
        b = {"id": data["ids"][sl], "image": data["image"][sl], "frames": data["image"][sl, None],
             "audio": data["audio"][sl], "text": data["text"][sl]}
        emb = dict(model.embed(b))
        if hasattr(model, "sounding_score"):
            emb["sounding_score"] = model.sounding_score(b)
        for k, v in emb.items():
            outs.setdefault(k, []).append(v.float())
    return {k: torch.cat(v) for k, v in outs.items()}


def model_row(emb: dict[str, torch.Tensor], data: dict[str, Any]) -> dict[str, float]:
    """Discovery and retrieval diagnostics of one model under one frame rule."""
    a = F.normalize(emb["audio"].double(), dim=1)
    v = F.normalize(emb["visual"].double(), dim=1)
    lab = data["sounding"]
    vid = {u: i for i, u in enumerate(sorted(set(data["video"])))}
    video = torch.tensor([vid[u] for u in data["video"]])
    same = video[:, None] == video[None, :]
    own = (a * v).sum(1)
    top = (a @ v.T).argmax(1)
    row = {
        "disc_auc_cos": auc(own, lab),
        "disc_auc_cos_mean_visual": auc(a @ F.normalize(v.mean(0), dim=0), lab),
        "disc_auc_audio_centrality": auc(a @ F.normalize(a.mean(0), dim=0), lab),
        "cos_sounding": float(own[lab].mean()),
        "cos_silent": float(own[~lab].mean()),
        "a2v_r1": float(retrieval_scores(a, v, ks=(1,), relevance="instance")["r1"]),
        "a2v_top1_same_video": float((video[top] == video).double().mean()),
        "visual_cos_within_video": mean_cos(v, same),
        "visual_cos_between_videos": mean_cos(v, ~same),
        "audio_cos_within_video": mean_cos(a, same),
        "audio_cos_between_videos": mean_cos(a, ~same),
        "unique_visual_rows": float(torch.unique(v.float(), dim=0).shape[0]),
    }
    if "sounding_score" in emb:
        row["disc_auc_sounding_score"] = auc(emb["sounding_score"], lab)
    return row


def untrained(config: str, seed: int = 0) -> Any:
    """A model built from a model config (``configs/model/<name>_cpu.yaml``) with seeded
    random heads and no training: what its encoders do before any audio-visual learning."""
    import importlib

    import yaml

    from avbench.configs import resolve_config

    spec = yaml.safe_load(resolve_config(config).read_text())["model"]
    module, _, cls = spec["class_path"].rpartition(".")
    torch.manual_seed(seed)
    return getattr(importlib.import_module(module), cls)(**spec.get("init_args", {})).eval()


def models_section(patterns: list[str], configs: list[str],
                   runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    from avbench.models import REGISTRY

    jobs: list[tuple[str, Any]] = []
    for path in sorted(p for pat in patterns for p in glob.glob(pat)):
        job = Path(path).parents[1].name  # <model>.<train data>.seed<k>
        jobs.append((job, lambda p=path, j=job: REGISTRY[j.split(".")[0]].load_from_checkpoint(
            p, map_location="cpu").eval()))
    jobs += [(f"untrained:{Path(c).stem}", lambda c=c: untrained(c)) for c in configs]
    rows = []
    for job, build in jobs:
        model = build()
        for rule, data in runs.items():
            rows.append({"job": job, "frame": rule, **model_row(embed_all(model, data), data)})
            print(f"  {job:28s} {rule:6s} " + " ".join(
                f"{k}={v:.3f}" for k, v in rows[-1].items() if isinstance(v, float)), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=Path("data/ego4d"))
    p.add_argument("--checkpoints", nargs="*", default=[],
                   help="glob(s) of best.ckpt files under <job>/checkpoints/")
    p.add_argument("--untrained", nargs="*", default=[],
                   help="model configs to evaluate untrained (e.g. configs/model/ezvsl_cpu.yaml)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)

    truth = scenes(args.root)
    runs = {rule: load_split(args.root, rule) for rule in ("first", "centre")}
    report = {"world": world_section(args.root, truth, runs["centre"]),
              "loader": loader_section(truth, runs)}
    print(json.dumps(report, indent=1))
    report["models"] = models_section(args.checkpoints, args.untrained, runs)
    if report["models"]:
        table = pd.DataFrame(report["models"]).groupby(["frame", "job"]).mean(numeric_only=True)
        print(table.round(3).to_string())
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
