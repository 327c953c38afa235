"""Cross-rank gather: identity without a process group.

The two-rank checks (exact gradients with uneven batches, InfoNCE equal to the
single-process loss) run inside the one ``torchrun`` job of
``tests/test_models_baselines.py::test_ddp_fit_every_model`` so the suite pays
for one multi-process start-up only.
"""

from __future__ import annotations

import torch

from avbench.nn.distributed import (
    all_gather_no_grad,
    all_gather_with_grad,
    gather_with_offset,
    get_rank,
    get_world_size,
)


def test_single_process_is_identity():
    x = torch.randn(3, 2, requires_grad=True)
    g, off = gather_with_offset(x)
    assert g is x and off == 0
    assert all_gather_with_grad(x) is x and all_gather_no_grad(x) is x
    assert get_rank() == 0 and get_world_size() == 1
