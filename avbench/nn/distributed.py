"""Cross-rank gathering for contrastive negatives (DESIGN 4.4).

Every contrastive model in avbench scores its local queries against the keys
of ALL ranks, as the reference implementations do under DDP. The gather must
carry gradient back to the rank that produced each key, otherwise the keys of
other ranks act as constants and the effective batch of negatives differs
from the single-process run.

Without an initialised process group (single process, CPU tests, ``fit`` on
one device) every function here is the identity, so models need no special
case.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = [
    "all_gather_no_grad",
    "all_gather_with_grad",
    "gather_with_offset",
    "get_rank",
    "get_world_size",
    "is_distributed",
]


def is_distributed() -> bool:
    """True when a process group with more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def _batch_sizes(t: torch.Tensor) -> list[int]:
    """Leading sizes of ``t`` on every rank (ranks may hold uneven last batches)."""
    size = torch.tensor([t.shape[0]], device=t.device, dtype=torch.long)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return [int(s.item()) for s in sizes]


def _pad_to(t: torch.Tensor, n: int) -> torch.Tensor:
    if t.shape[0] == n:
        return t
    pad = t.new_zeros((n - t.shape[0], *t.shape[1:]))
    return torch.cat([t, pad], dim=0)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient for the local slice.

    Equivalent to ``torch.distributed.nn.functional.all_gather`` (whose
    backward is a reduce-scatter), written with an all-reduce so that it also
    runs on the gloo backend used by CPU DDP. With DDP's gradient averaging
    this yields the gradient of the mean over ranks of the per-rank losses.
    """

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        ctx.rank = dist.get_rank()
        out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(out, t.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        stacked = torch.stack([g.contiguous() for g in grads])
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        return stacked[ctx.rank]


def gather_with_offset(t: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Concatenate ``t`` from all ranks along dim 0, with gradient.

    Returns ``(gathered, offset)`` where ``gathered[offset:offset + len(t)]`` is
    the local ``t`` itself (so the local positives sit at ``offset + arange(B)``).
    Uneven leading sizes across ranks are handled by padding before the gather
    and dropping the padding after it.
    """
    if not is_distributed():
        return t, 0
    sizes = _batch_sizes(t)
    rank = dist.get_rank()
    parts = list(_GatherWithGrad.apply(_pad_to(t, max(sizes))))
    parts[rank] = t  # keep the local autograd path direct
    gathered = torch.cat([p[:n] for p, n in zip(parts, sizes)], dim=0)
    return gathered, sum(sizes[:rank])


def all_gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """``t`` from every rank concatenated along dim 0, gradient flowing to each rank.

    Identity when no process group is initialised.
    """
    return gather_with_offset(t)[0]


@torch.no_grad()
def all_gather_no_grad(t: torch.Tensor) -> torch.Tensor:
    """Like :func:`all_gather_with_grad` for tensors that need no gradient
    (momentum-encoder keys, labels, evaluation features)."""
    if not is_distributed():
        return t
    sizes = _batch_sizes(t)
    out = [torch.empty_like(_pad_to(t, max(sizes))) for _ in sizes]
    dist.all_gather(out, _pad_to(t, max(sizes)).contiguous())
    return torch.cat([p[:n] for p, n in zip(out, sizes)], dim=0)
