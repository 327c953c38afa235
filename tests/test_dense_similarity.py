"""The chunked DenseAV aggregations equal the plain einsum reference (values and gradients)."""

from __future__ import annotations

import pytest
import torch

from avbench.nn.dense_similarity import (
    aggregate_similarity,
    aggregate_volume,
    paired_volume,
    retrieval_scores,
    similarity_volume,
    split_heads,
    training_similarity,
)


def _inputs(a=5, v=7, k=2, c=3, t=4, h=3, w=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(a, k, c, t, generator=g, dtype=torch.float64, requires_grad=True)
    image = torch.randn(v, k, c, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(a, t, generator=g) > 0.3
    mask[:, 0] = True
    return audio, image, mask


@pytest.mark.parametrize("image_reduce,time_reduce", [("max", "mean"), ("mean", "mean"),
                                                      ("max", "max")])
@pytest.mark.parametrize("max_heads", [True, False])
@pytest.mark.parametrize("chunk", [1, 3, 7, 100])
def test_chunked_equals_einsum_values_and_gradients(image_reduce, time_reduce, max_heads, chunk):
    audio, image, mask = _inputs()
    kw = dict(image_reduce=image_reduce, time_reduce=time_reduce, max_heads=max_heads)
    plain = aggregate_volume(similarity_volume(audio, image), mask, **kw)
    chunked = aggregate_similarity(audio, image, mask, chunk_size=chunk, **kw)
    assert chunked.shape == ((5, 7) if max_heads else (5, 7, 2))
    torch.testing.assert_close(chunked, plain)
    weights = torch.randn_like(plain)
    g_plain = torch.autograd.grad((plain * weights).sum(), (audio, image))
    g_chunk = torch.autograd.grad((chunked * weights).sum(), (audio, image))
    for gp, gc in zip(g_plain, g_chunk):
        torch.testing.assert_close(gc, gp)


def test_training_score_by_hand():
    """max over heads and image tokens, then mean over the non-silent steps only."""
    audio, image, mask = _inputs(a=2, v=3)
    vol = torch.einsum("akct,vkchw->avkhwt", audio, image)
    want = torch.zeros(2, 3, dtype=torch.float64)
    for i in range(2):
        for j in range(3):
            per_t = [vol[i, j, :, :, :, t].max() for t in range(4) if mask[i, t]]
            want[i, j] = torch.stack(per_t).mean()
    torch.testing.assert_close(training_similarity(audio, image, mask, chunk_size=2), want)


def test_retrieval_score_is_per_head_scores_summed():
    audio, image, mask = _inputs(a=2, v=3)
    vol = torch.einsum("akct,vkchw->avkhwt", audio, image)
    per_head = torch.zeros(2, 3, 2, dtype=torch.float64)
    for i in range(2):
        for j in range(3):
            for k in range(2):
                per_t = [vol[i, j, k, :, :, t].max() for t in range(4) if mask[i, t]]
                per_head[i, j, k] = torch.stack(per_t).mean()
    torch.testing.assert_close(retrieval_scores(audio, image, mask, per_head=True), per_head)
    torch.testing.assert_close(retrieval_scores(audio, image, mask), per_head.sum(-1))
    # the head max and the head sum differ: the two aggregations are not the same function
    assert not torch.allclose(training_similarity(audio, image, mask), per_head.sum(-1))


def test_paired_volume_is_the_diagonal_times_the_mask():
    audio, image, mask = _inputs(a=4, v=4)
    vol = similarity_volume(audio, image)
    diag = torch.stack([vol[i, i] for i in range(4)])
    torch.testing.assert_close(paired_volume(audio, image, mask),
                               diag * mask.to(diag.dtype)[:, None, None, None, :])


def test_split_heads_and_errors():
    x = torch.arange(12.0).reshape(1, 6, 2)
    assert split_heads(x, 2)[0, 1, 0].tolist() == [6.0, 7.0]
    with pytest.raises(ValueError, match="heads"):
        split_heads(x, 4)
    audio, image, _ = _inputs()
    with pytest.raises(ValueError, match="chunk_size"):
        aggregate_similarity(audio, image, chunk_size=0)
    with pytest.raises(ValueError, match="heads/channels"):
        aggregate_similarity(audio, image[:, :1])
