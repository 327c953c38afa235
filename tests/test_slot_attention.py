"""Slot attention of JSA (avbench.nn.slot_attention): normalisations, shared
slots, one iteration against the equations, masking, decoder."""

from __future__ import annotations

import math

import pytest
import torch

from avbench.nn.slot_attention import (
    JointSlotAttention,
    SlotAttentionBranch,
    SpatialBroadcastDecoder,
    slot_attention_weights,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine (and under ``pytest -n 2``)
    OpenMP threads contending with other processes slow small ops many-fold."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


D = 16


def _joint(**kw) -> JointSlotAttention:
    torch.manual_seed(0)
    return JointSlotAttention(dim=D, mlp_hidden=32, **kw)


def test_weights_match_hand_computation():
    # 2 slots, 3 tokens, D = 2, scale 1: logits = q k^T
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    k = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    assign, attn = slot_attention_weights(q, k, scale=1.0, eps=0.0)
    logits = [[2.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
    for n in range(3):  # softmax over the SLOT axis, per token
        z = math.exp(logits[0][n]) + math.exp(logits[1][n])
        for s in range(2):
            assert assign[0, s, n].item() == pytest.approx(math.exp(logits[s][n]) / z, rel=1e-6)
    for s in range(2):  # then normalised over tokens
        row = [assign[0, s, n].item() for n in range(3)]
        for n in range(3):
            assert attn[0, s, n].item() == pytest.approx(row[n] / sum(row), rel=1e-6)


def test_each_token_weights_over_slots_sum_to_one():
    m = _joint(n_slots=3).eval()
    img, aud = m(torch.randn(4, 49, D), torch.randn(4, 16, D))
    for out, n_tokens in ((img, 49), (aud, 16)):
        assert out.assign.shape == (4, 3, n_tokens)
        torch.testing.assert_close(out.assign.sum(dim=1), torch.ones(4, n_tokens))
        assert (out.assign >= 0).all()
        # the weighted-mean weights of every slot sum to 1 over tokens
        torch.testing.assert_close(out.attn.sum(dim=-1), torch.ones(4, 3))
    # cross-modal attention: one modality's query over the other's keys
    assert img.cross_attn.shape == (4, 3, 16) and aud.cross_attn.shape == (4, 3, 49)
    _, expected = slot_attention_weights(aud.query, img.keys, D**-0.5)
    torch.testing.assert_close(aud.cross_attn, expected)


def test_shared_initial_slots_option():
    shared = _joint(shared_slots=True)
    assert shared.initial_slots("image") is shared.initial_slots("audio")
    separate = _joint(shared_slots=False)
    assert separate.initial_slots("image") is not separate.initial_slots("audio")
    n_shared = sum(p.numel() for p in shared.parameters())
    n_sep = sum(p.numel() for p in separate.parameters())
    assert n_sep - n_shared == 2 * D
    # both branches have their own projections
    assert shared.image.to_q is not shared.audio.to_q


def test_one_iteration_follows_the_equations():
    torch.manual_seed(1)
    br = SlotAttentionBranch(dim=D, mlp_hidden=32, iters=1, mask_ratio=0.0).eval()
    init = torch.randn(1, 2, D)
    x = torch.randn(3, 5, D)
    k, v = br.keys_values(x, mask=False)
    out = br.iterate(init, k, v)
    xn = br.norm_input(x)
    torch.testing.assert_close(k, br.to_k(xn))
    s0 = init.expand(3, -1, -1)
    q = br.to_q(br.norm_slots(s0))
    a = torch.softmax(q @ br.to_k(xn).transpose(1, 2) / math.sqrt(D), dim=1) + br.eps
    a = a / a.sum(-1, keepdim=True)
    u = a @ br.to_v(xn)
    s = br.gru(u.reshape(-1, D), s0.reshape(-1, D)).reshape(3, 2, D)
    s = s + br.mlp(br.norm_pre_ff(s))
    torch.testing.assert_close(out.slots, s)
    torch.testing.assert_close(out.query, q)
    torch.testing.assert_close(out.attn, a)


def test_sharpening_changes_returned_maps_not_slots():
    m = _joint().eval()
    x, y = torch.randn(2, 9, D), torch.randn(2, 4, D)
    img1, aud1 = m(x, y, sharpen=1.0)
    img2, aud2 = m(x, y, sharpen=0.1)
    torch.testing.assert_close(img1.slots, img2.slots)
    torch.testing.assert_close(aud1.slots, aud2.slots)
    assert not torch.allclose(aud1.cross_attn, aud2.cross_attn)


def test_masking_only_in_training():
    m = _joint(mask_ratio=0.5)
    x, y = torch.randn(2, 9, D), torch.randn(2, 4, D)
    m.train()
    torch.manual_seed(0)
    a, _ = m(x, y)
    b, _ = m(x, y)
    assert not torch.allclose(a.slots, b.slots)  # random masks differ
    unmasked, _ = m(x, y, mask=False)
    m.eval()
    c, _ = m(x, y)
    d, _ = m(x, y)
    torch.testing.assert_close(c.slots, d.slots)
    torch.testing.assert_close(c.slots, unmasked.slots)


def test_mask_ratio_replaces_that_fraction_with_the_mask_token():
    br = SlotAttentionBranch(dim=4, mask_ratio=0.1)
    with torch.no_grad():
        br.mask_token.fill_(1.0)
    torch.manual_seed(0)
    out = br.mask_tokens(torch.zeros(200, 500, 4))
    replaced = (out == 1.0).all(-1).float().mean().item()
    assert replaced == pytest.approx(0.1, abs=0.005)
    assert ((out == 0) | (out == 1)).all()


def test_decoder_alpha_mixes_slots_and_position_embedding():
    torch.manual_seed(0)
    dec = SpatialBroadcastDecoder(2, 3, slot_dim=8, feat_dim=5)
    slots = torch.randn(4, 2, 8)
    out = dec(slots)
    assert out.shape == (4, 6, 5)
    # identical slots: the softmax over slots is uniform, recon = one slot's features
    same = slots[:, :1].expand(-1, 3, -1)
    single = dec.mlp(same[:, :1, None] + dec.position_embedding()[None, None])[..., :-1]
    torch.testing.assert_close(dec(same), single[:, 0])
    # position embedding: column part then row part, row-major tokens
    pos = dec.position_embedding()
    torch.testing.assert_close(pos[4], torch.cat([dec.col_embed[1], dec.row_embed[1]]))
    # another grid interpolates the learned embeddings, keeping the endpoints
    pos5 = dec.position_embedding((2, 5))
    assert dec(slots, (2, 5)).shape == (4, 10, 5)
    torch.testing.assert_close(pos5[4, :4], dec.col_embed[2, :4])
    torch.testing.assert_close(pos5[0, :4], dec.col_embed[0, :4])


def test_bad_inputs_raise():
    m = _joint()
    with pytest.raises(ValueError, match="batch sizes differ"):
        m(torch.randn(2, 9, D), torch.randn(3, 4, D))
    with pytest.raises(ValueError, match=r"tokens must be \[B,N,16\]"):
        m(torch.randn(2, 9, D + 1), torch.randn(2, 4, D))
    with pytest.raises(ValueError, match="mask_ratio"):
        SlotAttentionBranch(dim=D, mask_ratio=1.0)


@pytest.mark.parametrize("iters", [2, 5])
def test_several_iterations_follow_the_equations_and_return_the_last_attention(iters):
    """``iters`` hand-written iterations; the returned query/attentions are the LAST
    iteration's (computed from the slots BEFORE its update), the cross attention is
    that query over the other modality's keys, and sharpening scales only those."""
    torch.manual_seed(2)
    br = SlotAttentionBranch(dim=D, mlp_hidden=32, iters=iters, mask_ratio=0.0).eval()
    init = torch.randn(1, 2, D)
    x, other = torch.randn(3, 6, D), torch.randn(3, 4, D)
    k, v = br.keys_values(x, mask=False)
    out = br.iterate(init, k, v, other_keys=other, sharpen=0.5)

    def weights(q, keys, scale):
        a = torch.softmax(q @ keys.transpose(1, 2) * scale, dim=1) + br.eps
        return a / a.sum(-1, keepdim=True)

    s = init.expand(3, -1, -1)
    queries = []
    for _ in range(iters):
        q = br.to_q(br.norm_slots(s))
        queries.append(q)
        u = weights(q, k, D**-0.5) @ v
        s = br.gru(u.reshape(-1, D), s.reshape(-1, D)).reshape(3, 2, D)
        s = s + br.mlp(br.norm_pre_ff(s))
    torch.testing.assert_close(out.slots, s)
    torch.testing.assert_close(out.query, queries[-1])
    assert not torch.allclose(queries[-1], queries[0])  # the iterations do move the slots
    torch.testing.assert_close(out.attn, weights(queries[-1], k, 0.5 * D**-0.5))
    torch.testing.assert_close(out.cross_attn, weights(queries[-1], other, 0.5 * D**-0.5))
    # one iteration fewer gives different slots: every iteration counts
    short = SlotAttentionBranch(dim=D, mlp_hidden=32, iters=iters - 1, mask_ratio=0.0).eval()
    short.load_state_dict(br.state_dict())
    assert not torch.allclose(short.iterate(init, k, v).slots, out.slots)
