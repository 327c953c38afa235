"""AV-LDM sampling speed: seconds per generated 3-s clip vs sampler steps (CPU config).

Builds :class:`avbench.models.avldm.AVLDM` from ``avbench/configs/model/avldm_cpu.yaml``
(the stand-ins under ``$AVBENCH_STANDINS`` or ``--standins``: ``mel-autoencoder`` and
``image-resnet18``; the UNet at random init: speed does not depend on the weights, and a
trained checkpoint can be given with ``--ckpt``), and times
``generate_audio`` on a batch of ``--batch`` clips (4 frames at 128 px, the same-video
condition clip) for each step count, with classifier-free guidance (two UNet passes per
step, stacked) and Griffin-Lim. Per batch it also times the three parts: the reverse
diffusion (UNet), the autoencoder decode and the vocoder. Best of ``--repeats`` runs.
The reference samples with 25 steps (DPM-Solver++ in ``log_sound``); 50 and 100 show the
linear cost of more DDIM steps.

Run (repo root; 1 thread as on the shared 2-core machine)::

    OMP_NUM_THREADS=1 AVBENCH_STANDINS=/path/to/standins \\
        .venv/bin/python benchmarks/perf/avldm_sampling.py --steps 10 25 50 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import yaml


def build(standins: str | None, ckpt: str | None, sampler: str) -> torch.nn.Module:
    from avbench.configs import CONFIG_DIR
    from avbench.models.avldm import AVLDM

    if standins:
        os.environ["AVBENCH_STANDINS"] = standins
    args = yaml.safe_load((CONFIG_DIR / "model" / "avldm_cpu.yaml").read_text())["model"]["init_args"]
    model = AVLDM(**(args | {"sampler": sampler}))
    if ckpt:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
        model.load_state_dict(state)
    return model.eval()


def timed(fn):  # noqa: ANN001, ANN201
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sampler", default="ddim", choices=["ddim", "dpm_solver"])
    ap.add_argument("--standins", default=None)
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = build(a.standins, a.ckpt, a.sampler)
    g = torch.Generator().manual_seed(0)
    b = a.batch
    batch = {"frames": torch.rand(b, model.video_frames, 3, 128, 128, generator=g),
             "cond_audio": 0.05 * torch.randn(b, 1, model.num_samples, generator=g)}
    rows = []
    with torch.no_grad():
        feats = model.frame_features(batch)
        tokens = model.condition_tokens(feats, model.encode_audio(batch["cond_audio"]))
        uncond = torch.zeros_like(tokens)
        for steps in a.steps:
            best: dict[str, float] = {}
            for _ in range(a.repeats):
                wave, total = timed(lambda s=steps: model.generate_audio(
                    batch, steps=s, generator=torch.Generator().manual_seed(1)))
                assert wave.shape == (b, model.num_samples) and torch.isfinite(wave).all()
                z, unet = timed(lambda s=steps: model.sample_latents(tokens, uncond, steps=s))
                mel, dec = timed(lambda z=z: model.mel.unscale(model.decode_latents(z)))
                _, voc = timed(lambda mel=mel: model.vocoder(mel))
                for k, v in (("total", total), ("unet", unet), ("decode", dec), ("vocoder", voc)):
                    best[k] = min(best.get(k, float("inf")), v / b)
            rows.append({"steps": steps, **{f"{k}_s_per_clip": round(v, 3) for k, v in best.items()}})
            print(json.dumps(rows[-1]), flush=True)
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or ''}".strip(),
            "threads": torch.get_num_threads(), "batch": b, "sampler": a.sampler,
            "guidance_scale": model.guidance_scale, "latent": list(model.latent_shape),
            "unet_params_M": round(sum(p.numel() for p in model.unet.parameters()) / 1e6, 3),
            "torch": torch.__version__}
    print(json.dumps(meta))
    print("| steps | s / clip | UNet (guided) | AE decode | Griffin-Lim |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['steps']} | {r['total_s_per_clip']:.2f} | {r['unet_s_per_clip']:.2f} | "
              f"{r['decode_s_per_clip']:.3f} | {r['vocoder_s_per_clip']:.3f} |")
    if a.out:
        Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
