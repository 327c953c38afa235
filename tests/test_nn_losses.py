"""Loss terms of the shared blocks and the baselines against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from avbench.models.ezvsl import EZVSL
from avbench.models.fnac import FNAC, fnac_l1
from avbench.models.lvs import lvs_logits
from avbench.models.slavc import slavc_logits
from avbench.nn.losses import info_nce, info_nce_logits


def _ce(row: list[float], target: int) -> float:
    return -row[target] + math.log(sum(math.exp(x) for x in row))


def test_info_nce_query_key_matches_hand_value():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[0.8, 0.6], [0.6, 0.8]])
    tau = 0.5
    # logits = q @ k.T / tau = [[1.6, 1.2], [1.2, 1.6]]
    expected = 0.5 * (_ce([1.6, 1.2], 0) + _ce([1.2, 1.6], 1))
    assert info_nce(q, k, tau) == pytest.approx(expected, rel=1e-6)
    # symmetric: key->query logits are the transpose, here the same matrix
    assert info_nce(q, k, tau, symmetric=True) == pytest.approx(expected, rel=1e-6)


def test_info_nce_logits_form_and_negative_mask():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.5, 1.5, 3.0], [0.0, 0.0, 1.0]])
    expected = (_ce([2.0, 1.0, 0.0], 0) + _ce([0.5, 1.5, 3.0], 1) + _ce([0.0, 0.0, 1.0], 2)) / 3
    assert info_nce(logits, tau=1.0) == pytest.approx(expected, rel=1e-6)
    assert info_nce(logits * 2, tau=2.0) == pytest.approx(expected, rel=1e-6)
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[1, 2] = True  # drop a false negative of row 1
    mask[0, 0] = True  # the positive itself is never dropped
    expected_masked = (_ce([2.0, 1.0, 0.0], 0) + _ce([0.5, 1.5], 1) + _ce([0.0, 0.0, 1.0], 2)) / 3
    assert info_nce_logits(logits, 0, mask) == pytest.approx(expected_masked, rel=1e-6)


def test_info_nce_symmetric_uses_transposed_mask():
    q = torch.eye(3)
    k = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[2, 0] = True
    rows = (q @ k.t()).tolist()  # query->key
    cols = (k @ q.t()).tolist()  # key->query
    fwd = (_ce(rows[0], 0) + _ce(rows[1], 1) + _ce([rows[2][1], rows[2][2]], 1)) / 3
    # reverse mask = mask.T: entry (0, 2) dropped for key row 0
    rev = (_ce([cols[0][0], cols[0][1]], 0) + _ce(cols[1], 1) + _ce(cols[2], 2)) / 3
    got = info_nce(q, k, 1.0, symmetric=True, negative_mask=mask)
    assert got == pytest.approx(0.5 * (fwd + rev), rel=1e-6)


def _tiny(cls, **kw):
    return cls(image_width=8, image_layers=(1, 1, 1, 1), audio_width=8,
               audio_layers=(1, 1, 1, 1), dim=2, **kw)


def test_ezvsl_mil_loss_hand_value():
    model = _tiny(EZVSL, tau=0.5)
    # two images with 1x2 maps (D=2), two audios
    v = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]],    # image 0: loc0 = e0, loc1 = e1
                      [[[0.6, 0.0]], [[0.8, 1.0]]]])   # image 1: loc0 = (.6,.8), loc1 = e1
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    v2a, a2v, off = model.mil_logits(v, a)
    # S[n,m] max over locations of <v_n(l), a_m> / tau
    s = [[max(1.0, 0.0), max(0.6, 0.8)], [max(0.6, 0.0), max(0.36 + 0.64, 0.8)]]
    s = [[x / 0.5 for x in row] for row in s]
    assert off == 0
    torch.testing.assert_close(v2a, torch.tensor(s))
    torch.testing.assert_close(a2v, torch.tensor(s).t())
    expected_v2a = (_ce(s[0], 0) + _ce(s[1], 1)) / 2
    expected_a2v = (_ce([s[0][0], s[1][0]], 0) + _ce([s[0][1], s[1][1]], 1)) / 2
    model.visual_map = lambda image: v  # type: ignore[method-assign]
    model.audio_embedding = lambda audio: a  # type: ignore[method-assign]
    losses = model.compute_losses({"image": None, "audio": None})
    assert losses["v2a"] == pytest.approx(expected_v2a, rel=1e-5)
    assert losses["a2v"] == pytest.approx(expected_a2v, rel=1e-5)
    assert losses["total"] == pytest.approx(expected_v2a + expected_a2v, rel=1e-5)


def _softmax(row: list[float]) -> list[float]:
    z = sum(math.exp(x) for x in row)
    return [math.exp(x) / z for x in row]


def test_fnac_l1_hand_value():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    pa = [_softmax([1.0, 0.0]), _softmax([0.0, 2.0])]
    pb = [[0.5, 0.5], [0.5, 0.5]]
    expected = sum(abs(pa[i][j] - pb[i][j]) for i in range(2) for j in range(2)) / 4
    assert fnac_l1(a, b) == pytest.approx(expected, rel=1e-6)


def test_fnac_terms_hand_values_and_warmup():
    tau = 0.5
    model = _tiny(FNAC, tau=tau, warmup_epochs=0, fns1_weight=1.0, tne_weight=2.0,
                  fns2_weight=3.0, fg_threshold=0.6)
    v = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]],
                      [[[0.6, 0.0]], [[0.8, 1.0]]]])
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    model.visual_map = lambda image: v  # type: ignore[method-assign]
    model.audio_embedding = lambda audio: a  # type: ignore[method-assign]
    out = model.compute_losses({"image": None, "audio": None})

    logits = [[1.0 / tau, 0.8 / tau], [0.6 / tau, 1.0 / tau]]
    aud = [[1.0 / tau, 0.6 / tau], [0.6 / tau, 1.0 / tau]]
    img_avg = [[0.5, 0.5], [0.3, 0.9]]
    img = [[sum(x * y for x, y in zip(p, q)) / tau for q in img_avg] for p in img_avg]
    # own maps: image 0 with a0 = [1, 0] -> loc0 is the foreground (normalised 1 > 0.6)
    #           image 1 with a1 = [1.0, 0.8] -> loc0 (1.0) foreground
    fg = [[1.0 / 2, 0.0], [0.6 / 2, 0.8 / 2]]
    fga = [[sum(x * y for x, y in zip(p, q)) / tau for q in fg] for p in fg]

    def l1(x, y):
        px, py = [_softmax(r) for r in x], [_softmax(r) for r in y]
        return sum(abs(px[i][j] - py[i][j]) for i in range(2) for j in range(2)) / 4

    assert out["fns1"] == pytest.approx(l1(aud, logits), rel=1e-5)
    assert out["tne"] == pytest.approx(l1(aud, fga), rel=1e-5)
    assert out["fns2"] == pytest.approx(l1(img, logits), rel=1e-5)
    contrastive = out["v2a"] + out["a2v"]
    full = contrastive + out["fns1"] + 2 * out["tne"] + 3 * out["fns2"]
    assert out["total"] == pytest.approx(full.item(), rel=1e-6)
    model.warmup_epochs = 1  # current_epoch 0 < 1: contrastive only
    out = model.compute_losses({"image": None, "audio": None})
    assert out["total"] == pytest.approx(contrastive.item(), rel=1e-6)


def test_slavc_logits_hand_value():
    tau = 1.0
    # N = M = 2, D = 1, two locations
    v_sel = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 2.0]]]])
    v_loc = torch.tensor([[[[0.5, 1.0]]], [[[1.0, 0.0]]]])
    a_sel = torch.tensor([[1.0], [-1.0]])
    a_loc = torch.tensor([[1.0], [2.0]])
    got = slavc_logits(v_sel, a_sel, v_loc, a_loc, tau)
    vs = [[1.0, 0.0], [0.0, 2.0]]
    vl = [[0.5, 1.0], [1.0, 0.0]]
    expected = torch.zeros(2, 2)
    for n in range(2):
        for m in range(2):
            total = 0.0
            for loc in range(2):
                over_m = _softmax([vs[n][loc] * a_sel[k, 0].item() for k in range(2)])[m]
                over_l = _softmax([vl[n][k] * a_loc[m, 0].item() for k in range(2)])[loc]
                total += over_m * over_l
            expected[n, m] = math.log(total)
    torch.testing.assert_close(got, expected)


def test_lvs_logits_hand_value():
    eps_p, eps_n, t, temp = 0.65, 0.4, 0.03, 0.07
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    own = torch.tensor([[[0.9, 0.1]], [[0.5, 0.7]]])          # A [B=2, 1, 2]
    cross = torch.tensor([[[[0.9, 0.1]], [[0.3, 0.8]]],       # A0 [2, 2, 1, 2]
                          [[[0.2, 0.6]], [[0.5, 0.7]]]])
    got = lvs_logits(own, cross)

    def region(weights, sims):
        return sum(w * s for w, s in zip(weights, sims)) / sum(weights)

    rows = []
    for n in range(2):
        a = own[n, 0].tolist()
        pos = region([sig((x - eps_p) / t) for x in a], a)
        hard = region([1 - sig((x - eps_n) / t) for x in a], a)
        easy = []
        for m in range(2):
            c = cross[n, m, 0].tolist()
            s = region([sig((x - eps_p) / t) for x in c], c)
            easy.append(s * (1 - 100) if m == n else s)
        rows.append([pos / temp] + [e / temp for e in easy] + [hard / temp])
    torch.testing.assert_close(got, torch.tensor(rows))
    no_hard = lvs_logits(own, cross, hard_negative=False)
    torch.testing.assert_close(no_hard, torch.tensor(rows)[:, :3])
