"""Step-level collapse probe of the EZ-VSL line from scratch (docs/models.md, "Seed stability").

Trains one model at its CPU config on synthetic VGGSound (augmentation on, as the
suite) and, every ``--every`` steps, prints the training loss, the mean pairwise
cosine of the audio embeddings of the current training batch (train mode, batch
statistics) and of the first VAL batch (eval mode), the visual embeddings' cosine,
and audio->visual R@1 on that VAL batch. At tau = 0.03 the loss starts above
chance (2 log B) and the audio embeddings first collapse onto the uniform-logits
saddle; this shows when.

Run (repo root, synthetic data written)::

    .venv/bin/python benchmarks/learning/saddle_probe.py --model ezvsl --seed 1 --epochs 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ssl_synthetic as S  # noqa: E402


class StepProbe(L.Callback):
    def __init__(self, val_batch: dict[str, Any], every: int) -> None:
        self.val = val_batch
        self.every = every

    @torch.no_grad()
    def on_train_batch_end(self, trainer: L.Trainer, m: Any, out: Any, batch: Any,
                           i: int) -> None:
        if trainer.global_step % self.every != 1 and self.every > 1:
            return
        # train-mode audio embeddings (BN batch statistics; nudges running stats)
        a_train = m.audio_embedding(batch["audio"])
        m.eval()
        a_eval = m.audio_embedding(self.val["audio"])
        emb = m.embed(self.val)
        m.train()
        print(f"step {trainer.global_step - 1:4d} (epoch {trainer.current_epoch}) "
              f"loss {float(out['loss']):.3f} "
              f"audio cos train {S.mean_pairwise_cosine(a_train):.4f} "
              f"eval {S.mean_pairwise_cosine(a_eval):.4f} "
              f"visual cos {S.mean_pairwise_cosine(emb['visual']):.4f} "
              f"VAL-batch R@1 {S.instance_r1(emb['audio'], emb['visual']):.3f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="ezvsl", choices=["ezvsl", "fnac", "slavc"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--every", type=int, default=11, help="print every N steps")
    p.add_argument("--set", nargs="*", default=[], help="ARG=VALUE model overrides")
    p.add_argument("--vggsound-root", type=Path, default=S.REPO / "data" / "vggsound")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = argparse.Namespace(num_workers=None, data=[], vggsound_root=args.vggsound_root,
                              flickr_root=S.REPO / "data" / "flickr")
    dm = S.build_datamodules(data)["vggss"]
    L.seed_everything(args.seed)
    cfg = S._yaml(S.CONFIGS / "model" / f"{args.model}_cpu.yaml", "model")
    model = S._instantiate(cfg, **S.parse_assignments(args.set))
    dm.setup("fit")
    val = next(iter(dm.val_dataloader()))
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=args.epochs, logger=False,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        callbacks=[StepProbe(val, args.every)], num_sanity_val_steps=0, limit_val_batches=0,
    )
    trainer.fit(model, datamodule=dm)


if __name__ == "__main__":
    main()
