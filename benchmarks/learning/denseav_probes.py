"""Diagnosis for DenseAV on the synthetic world (issue 14): what the frozen stand-in towers know.

Linear probes (scikit-learn logistic regression, standardised features, C 0.1) of the frozen
towers of ``denseav_cpu.yaml`` (image-vit patch tokens after the final norm, audio-transformer
hidden states), fitted on train items and scored on held-out items:

* ``mixed``: clips of DenseAV's training data (``mixed_speech_sound_synthetic.yaml``, train
  split for fitting, test split for scoring): the sound clips' VGGSound category from the image
  (token mean / max) and from the audio (time mean / max of the last hidden state); the speech
  clips' first spoken word's category, same features.
* ``words``: every word of the synthetic spoken captions (``synthetic_word_timings.jsonl``):
  its category from the mean of each HuBERT layer's frames inside the word's timing
  (train split -> val split).

Run (repo root)::

    OMP_NUM_THREADS=2 AVBENCH_STANDINS=/path/to/standins .venv/bin/python \\
      benchmarks/learning/denseav_probes.py --speech-root data/spoken_captions \\
      --sound-root data/vggsound --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from avbench.atomic_io import atomic_write_text
from avbench.configs import resolve_config
from avbench.models.denseav import DenseAV
from avbench.pretrain.audio_transformer import normalize_wave
from avbench.runner.instantiation import import_object


def probe(train: list[tuple[np.ndarray, str]], test: list[tuple[np.ndarray, str]]) -> float:
    """Held-out accuracy of a logistic-regression probe."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.1))
    clf.fit(np.stack([x for x, _ in train]), [y for _, y in train])
    return float(np.mean(clf.predict(np.stack([x for x, _ in test])) == np.array([y for _, y in test])))


def mixed_probes(model: DenseAV, args: argparse.Namespace) -> dict[str, float]:
    cfg = yaml.safe_load(resolve_config("data/mixed_speech_sound_synthetic.yaml").read_text())["data"]
    vgg = {}
    for line in (Path(args.sound_root) / "vggsound.csv").read_text().splitlines():
        yid, start, label, _ = line.rsplit(",", 3)
        vgg[f"{yid}_{int(start):06d}"] = label
    first_word = {}
    for line in (Path(args.speech_root) / "synthetic_word_timings.jsonl").read_text().splitlines():
        r = json.loads(line)
        first_word[r["uttid"]] = r["words"][0]["class_name"] if r["words"] else None
    rows: dict[str, list] = {}
    for stage, split in (("fit", "train"), ("test", "test")):
        dm = import_object(cfg["class_path"])(**(cfg["init_args"] | {
            "num_workers": 0, "speech_root": args.speech_root, "sound_root": args.sound_root,
            "epoch_size": args.clips}))
        dm.setup(stage)
        loader = dm.train_dataloader() if stage == "fit" else dm.test_dataloader()
        seen = 0
        with torch.no_grad():
            for b in loader:
                tokens = model.image_tokens(b["image"])
                hidden = model.audio_model(normalize_wave(b["audio"].flatten(1))).last_hidden_state
                feats = {"image_mean": tokens.mean((-2, -1)), "image_max": tokens.amax((-2, -1)),
                         "audio_mean": hidden.mean(1), "audio_max": hidden.amax(1)}
                for i, ident in enumerate(b["id"]):
                    source, key = ident.split("/", 1)
                    label = vgg.get(key) if source == "sound" else first_word.get(key)
                    if label is None:
                        continue
                    for name, f in feats.items():
                        rows.setdefault(f"{source}/{name}/{split}", []).append((f[i].numpy(), label))
                seen += len(b["id"])
                if seen >= args.clips:
                    break
    out = {}
    for source in ("sound", "speech"):
        for name in ("image_mean", "image_max", "audio_mean", "audio_max"):
            out[f"{source}/{name}"] = probe(rows[f"{source}/{name}/train"], rows[f"{source}/{name}/test"])
    return out


def word_probes(model: DenseAV, args: argparse.Namespace) -> dict[str, float]:
    root = Path(args.speech_root)
    rows: dict[str, list] = {}
    with torch.no_grad():
        for line in (root / "synthetic_word_timings.jsonl").read_text().splitlines():
            r = json.loads(line)
            wave, _ = sf.read(root / "PlacesAudio_400k_distro" / r["wav"], dtype="float32")
            states = model.audio_model(normalize_wave(torch.from_numpy(wave)[None]),
                                       output_hidden_states=True).hidden_states
            split = "train" if r["split"] == "train" else "test"
            for w in r["words"]:
                a = int(w["start"] * 50)
                b = max(int(w["end"] * 50), a + 1)
                for layer, h in enumerate(states):
                    rows.setdefault(f"{layer}/{split}", []).append((h[0, a:b].mean(0).numpy(), w["category"]))
    n = len(states)
    return {f"word/layer{layer}": probe(rows[f"{layer}/train"], rows[f"{layer}/test"]) for layer in range(n)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speech-root", required=True)
    p.add_argument("--sound-root", required=True)
    p.add_argument("--clips", type=int, default=1280, help="training clips for the mixed probes")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    cfg = yaml.safe_load(resolve_config("model/denseav_cpu.yaml").read_text())["model"]["init_args"]
    model = DenseAV(**(cfg | {"image_lora_rank": 0})).eval()
    result = {"standins": os.environ.get("AVBENCH_STANDINS", "standins"),
              "mixed": mixed_probes(model, args), "words": word_probes(model, args)}
    print(json.dumps(result, indent=1))
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
