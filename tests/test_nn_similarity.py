"""Dense AV similarity volume, aggregators and OGL helpers."""

from __future__ import annotations

import torch

from avbench.nn.similarity import (
    av_similarity,
    max_over_locations,
    mean_over_locations,
    minmax_normalize,
    object_saliency,
    ogl_combine,
    paired_similarity,
)


def test_similarity_volume_matches_loops():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(3, 4, 2, 5, generator=g)
    a = torch.randn(2, 4, generator=g)
    s = av_similarity(v, a)
    assert s.shape == (3, 2, 2, 5)
    for n in range(3):
        for m in range(2):
            for h in range(2):
                for w in range(5):
                    assert torch.isclose(s[n, m, h, w], v[n, :, h, w] @ a[m])
    a3 = torch.randn(3, 4, generator=g)
    torch.testing.assert_close(paired_similarity(v, a3),
                               av_similarity(v, a3)[torch.arange(3), torch.arange(3)])


def test_aggregators():
    s = torch.tensor([[[1.0, 5.0], [2.0, -1.0]]])
    assert max_over_locations(s).item() == 5.0
    assert mean_over_locations(s).item() == 1.75


def test_minmax_and_ogl():
    m = torch.tensor([[[1.0, 3.0], [2.0, 5.0]]])
    torch.testing.assert_close(minmax_normalize(m), torch.tensor([[[0.0, 0.5], [0.25, 1.0]]]))
    assert minmax_normalize(torch.ones(1, 2, 2)).eq(0).all()
    obj = torch.tensor([[[0.0, 0.0], [0.0, 2.0]]])
    out = ogl_combine(m, obj, alpha=0.4)
    mixed = 0.4 * torch.tensor([[[0.0, 0.5], [0.25, 1.0]]]) + 0.6 * torch.tensor(
        [[[0.0, 0.0], [0.0, 1.0]]])
    torch.testing.assert_close(out, minmax_normalize(mixed))
    feats = torch.tensor([[[[1.0]], [[-3.0]]]])  # [1, 2, 1, 1]
    assert object_saliency(feats).item() == 2.0
