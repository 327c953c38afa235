"""EZ-VSL / FNAC: is the localization map the audio embeddings' common direction?

Scores a selected checkpoint on synthetic VGG-SS with each clip's own audio embedding,
with the mean test-audio embedding for every clip (a sound-independent map), and with
the own embedding minus that mean (docs/models.md, "Session 6"). The own-vs-another-clip
comparison of every model is the registered benchmark ``vggss-mismatched``
(diag_shuffle.json holds its session-6 figures).

    python benchmarks/learning/results/session6/mean_audio_map.py CKPT ezvsl \
        --vggsound-root DIR --flickr-root DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from avbench.benchmarks import evaluate
from avbench.models.ezvsl import EZVSL
from avbench.models.fnac import FNAC
from avbench.nn.similarity import paired_similarity

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import ssl_synthetic  # noqa: E402  (benchmarks/learning)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("model", choices=["ezvsl", "fnac"])
    p.add_argument("--vggsound-root", default="data/vggsound")
    p.add_argument("--flickr-root", default="data/flickr")
    args = p.parse_args()
    torch.set_num_threads(1)
    cls = {"ezvsl": EZVSL, "fnac": FNAC}[args.model]
    model = cls.load_from_checkpoint(args.checkpoint, map_location="cpu").eval()
    ns = argparse.Namespace(num_workers=0, data=[], vggsound_root=args.vggsound_root,
                            flickr_root=args.flickr_root)
    dm = ssl_synthetic.build_datamodules(ns)["vggss"]
    dm.setup("test")
    with torch.no_grad():
        audio = torch.cat([model.audio_embedding(b["audio"]) for b in dm.test_dataloader()])
    mean = audio.mean(0)
    print(f"mean pairwise cosine {float((audio @ audio.T).mean()):.3f}")

    def localize(mode: str):
        def fn(batch):
            v, a = model.visual_map(batch["image"]), model.audio_embedding(batch["audio"])
            a = {"own": a, "mean": mean.expand_as(a), "own_minus_mean": a - mean}[mode]
            return paired_similarity(v, a) / model.tau
        return fn

    for mode in ("own", "mean", "own_minus_mean"):
        model.localize = localize(mode)
        res = evaluate(model, "vggss", dm, progress=False, raise_errors=True)
        print(mode, {k: round(float(res.metrics[k]), 3) for k in ("ap50", "mean_ciou")})


if __name__ == "__main__":
    main()
