"""The supervised training loop every stand-in shares (plain PyTorch, CPU-sized).

:func:`fit_classifier` trains ``model(x) -> logits [B, n_classes]`` with
cross-entropy, AdamW and a linear-warm-up cosine schedule, then scores the
held-out split. It is deterministic by ``seed`` on CPU: ``torch.manual_seed``
before the first batch, shuffling from a seeded ``torch.Generator``, workers
(if any) seeded from it too. The caller seeds before building the model so
the initial weights are deterministic as well (:func:`seed_everything`).

:func:`materialize` renders an on-demand corpus once into tensors, so an
epoch over the data costs no rendering (the world renders a 128-px frame in
about 4 ms; a stand-in sees each image several times).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from avbench.atomic_io import atomic_path
from avbench.data.synthetic.world import World
from avbench.pretrain.card import StandinCard, make_card, write_card
from avbench.pretrain.corpus import pretraining_world

__all__ = ["StandinRun", "fit_classifier", "materialize", "save_safetensors", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def materialize(dataset: Dataset, *, desc: str = "render", progress: bool = True,
                transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> TensorDataset:
    """All items of ``dataset`` (pairs ``(tensor x, int label)``) stacked into a ``TensorDataset``
    ``(X [N, ...], y long [N])``; ``transform`` maps each ``x`` first (e.g. to uint8 pixels)."""
    xs, ys = [], []
    for i in tqdm(range(len(dataset)), desc=desc, disable=None if progress else True, leave=False):  # type: ignore[arg-type]
        x, y = dataset[i]
        xs.append(x if transform is None else transform(x))
        ys.append(int(y))
    return TensorDataset(torch.stack(xs), torch.tensor(ys, dtype=torch.long))


def save_safetensors(path: str | Path, state: dict[str, torch.Tensor]) -> Path:
    """Write ``state`` (tensors, made contiguous on CPU) to ``path`` as safetensors, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
    return path


def _schedule(steps: int) -> Callable[[int], float]:
    warm = max(1, steps // 20)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    return factor


def _evaluate(model: nn.Module, data: Dataset, batch_size: int,
              num_workers: int) -> tuple[float, float]:
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    model.eval()
    correct, loss, n = 0, 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            y = torch.as_tensor(y)
            logits = model(x)
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            n += len(y)
    return correct / max(n, 1), loss / max(n, 1)


def fit_classifier(model: nn.Module, train: Dataset, heldout: Dataset, *, steps: int,
                   batch_size: int, lr: float, seed: int, desc: str, progress: bool = True,
                   weight_decay: float = 0.0, num_workers: int = 0,
                   augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                   grad_clip: float | None = None,
                   ) -> dict[str, float]:
    """Train ``model`` for ``steps`` optimizer steps on ``train``; score ``heldout``.

    Args:
        model: ``model(x) -> logits [B, n_classes]`` for a batch ``x`` of the datasets' inputs
            (images, waves, token ids: whatever the default collate makes of them).
        train, heldout: datasets of ``(x, label int)``.
        steps: optimizer steps (epochs repeat over ``train``; the last partial batch is dropped).
        batch_size, lr, weight_decay: AdamW with ``lr`` after a warm-up of ``steps // 20``
            steps, cosine decay to 0.
        seed: shuffling and any randomness inside the loop (augmentation, dropout).
        desc: progress-bar label; ``progress=False`` hides it (``True`` shows it on a TTY).
        num_workers: DataLoader workers (seeded from ``seed``).
        augment: optional ``x -> x`` applied to each training batch (uses torch's global RNG,
            seeded here).
        loss_fn: the training loss ``loss_fn(model, x, y) -> scalar`` (default: cross-entropy of
            ``model(x)``; held-out scoring is always the cross-entropy / accuracy of ``model(x)``).
        grad_clip: clip the global gradient norm to this value before each step (None: no clip).

    Returns:
        ``{"steps", "train_loss" (mean of the last 50 steps), "heldout_accuracy", "heldout_loss"}``.

    Raises:
        ValueError: ``steps < 1`` or ``train`` smaller than one batch.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if len(train) < batch_size:  # type: ignore[arg-type]
        raise ValueError(f"train set of {len(train)} items is smaller than one batch ({batch_size})")  # type: ignore[arg-type]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, drop_last=True,
                        generator=gen, num_workers=num_workers,
                        worker_init_fn=(lambda w: seed_everything(seed * 1000 + w)) if num_workers else None)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(steps))
    losses: list[float] = []
    model.train()
    bar = tqdm(total=steps, desc=desc, disable=None if progress else True, leave=False)
    step = 0
    while step < steps:
        for x, y in loader:
            if augment is not None:
                x = augment(x)
            y = torch.as_tensor(y)
            loss = F.cross_entropy(model(x), y) if loss_fn is None else loss_fn(model, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
            if step >= steps:
                break
    bar.close()
    acc, hloss = _evaluate(model, heldout, batch_size, num_workers)
    model.train()
    return {"steps": float(steps), "train_loss": float(np.mean(losses[-50:])),
            "heldout_accuracy": acc, "heldout_loss": hloss}


@dataclass(frozen=True)
class StandinRun:
    """One training run of stand-in ``name`` into ``out_dir``: what its card needs besides
    the results. ``world`` is the pretraining world of ``seed`` (``seed`` is also the benchmark
    world seed whose categories the corpus avoids: ``registry.pretrain``)."""

    name: str
    out_dir: Path
    seed: int
    size: str
    world: World
    started: float  # time.time() at the start

    @classmethod
    def start(cls, name: str, out_dir: str | Path, seed: int, size: str) -> StandinRun:
        """Start the clock, create ``out_dir`` (and parents) and build the pretraining world."""
        started = time.time()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        return cls(name, out_dir, seed, size, pretraining_world(seed), started)

    def finish(self, *, architecture: dict[str, Any], files: dict[str, str],
               corpus: dict[str, Any], steps: int, heldout: dict[str, float]) -> StandinCard:
        """Write ``card.json`` for the ``files`` already in ``out_dir`` (the world's categories
        in label order, ``world_seed = seed``; :func:`~avbench.pretrain.card.make_card`) and
        return the card.

        Raises:
            FileNotFoundError: a file named in ``files`` is not in ``out_dir``.
        """
        card = make_card(
            self.out_dir, name=self.name, architecture=architecture, files=files, seed=self.seed,
            world_seed=self.seed, categories=[c.name for c in self.world.categories],
            corpus=corpus, steps=steps, heldout=heldout, size=self.size, started=self.started)
        write_card(self.out_dir, card)
        return card
