"""CrossModalRetrieval (REFERENCE A3): R@K with class-match hits, per-query MAP@all, ties."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from avbench.metrics import CrossModalRetrieval, retrieval_scores


def brute_force(
    sim: torch.Tensor, rel: torch.Tensor, ks=(1, 2, 3)
) -> tuple[float, dict[int, float]]:
    """Mean AP and hit@K averaged over every order of tied items (exhaustive)."""
    aps, hits = [], {k: [] for k in ks}
    for row, r in zip(sim.tolist(), rel.tolist()):
        vals = sorted(set(row), reverse=True)
        groups = [[j for j, v in enumerate(row) if v == val] for val in vals]
        perms = list(itertools.product(*[list(itertools.permutations(g)) for g in groups]))
        ap_row, hit_row = 0.0, {k: 0.0 for k in ks}
        for p in perms:
            order = [j for g in p for j in g]
            found, prec = 0, []
            for rank, j in enumerate(order, 1):
                if r[j]:
                    found += 1
                    prec.append(found / rank)
            ap_row += sum(prec) / max(sum(r), 1)
            for k in ks:
                hit_row[k] += float(any(r[j] for j in order[:k]))
        aps.append(ap_row / len(perms))
        for k in ks:
            hits[k].append(hit_row[k] / len(perms))
    return sum(aps) / len(aps), {k: sum(v) / len(v) for k, v in hits.items()}


def test_hand_computed_no_ties():
    # 3 items, classes [0, 0, 1]; queries = audio, gallery = visual
    audio = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    visual = torch.tensor([[0.0, 1.0], [1.0, 0.2], [1.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    # a0 sims to v: 0, .98, 1 -> order v2(c1), v1(c0), v0(c0): AP = (1/2 + 2/3)/2 = 7/12, hit@1 0
    # a1 sims: 1, .196, 0 -> v0(c0), v1(c0), v2: AP = 1, hit@1 1
    # a2 sims: .707, .832, .707 (tie v0/v2): v1(c0), then {v0 c0, v2 c1}: relevant v2 at rank 2 or 3
    #   expected AP = (1/2 + 1/3) / 2 = 5/12; hit@1 0, hit@2 = 1/2
    s = retrieval_scores(audio, visual, labels, labels, ks=(1, 2))
    assert s["map"].item() == pytest.approx((7 / 12 + 1 + 5 / 12) / 3, abs=1e-12)
    assert s["r1"].item() == pytest.approx(1 / 3, abs=1e-12)
    assert s["r2"].item() == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-12)


def test_all_tied_equals_random_ranking_expectation():
    # constant embeddings: every similarity ties -> the expectation over random orders
    n, labels = 4, torch.tensor([0, 0, 1, 1])
    e = torch.ones(n, 3)
    s = retrieval_scores(e, e, labels, labels, ks=(1, 2, 4))
    # E[AP] for N=4, R=2 by enumeration of the 6 placements: (1 + 5/6 + 3/4 + 7/12 + 1/2 + 5/12)/6
    assert s["map"].item() == pytest.approx(
        (1 + 5 / 6 + 3 / 4 + 7 / 12 + 1 / 2 + 5 / 12) / 6, abs=1e-12
    )
    # closed form (1/N) sum_p [1/p + (R-1)/(N-1) (p-1)/p]
    closed = sum(1 / p + (1 / 3) * (p - 1) / p for p in range(1, 5)) / 4
    assert s["map"].item() == pytest.approx(closed, abs=1e-12)
    assert s["r1"].item() == pytest.approx(0.5, abs=1e-12)
    assert s["r2"].item() == pytest.approx(1 - 1 / math.comb(4, 2), abs=1e-12)  # 5/6
    assert s["r4"].item() == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ties_match_exhaustive_enumeration(seed):
    g = torch.Generator().manual_seed(seed)
    n = 6
    # integer embeddings -> exactly representable similarities with many ties
    q = torch.randint(0, 2, (n, 3), generator=g).double() + torch.tensor([1.0, 0, 0])
    gal = torch.randint(0, 2, (n, 3), generator=g).double() + torch.tensor([1.0, 0, 0])
    labels = torch.randint(0, 3, (n,), generator=g)
    s = retrieval_scores(q, gal, labels, labels, ks=(1, 2, 3))
    qn = torch.nn.functional.normalize(q, dim=1)
    gn = torch.nn.functional.normalize(gal, dim=1)
    sim = qn @ gn.T
    rel = labels[:, None] == labels[None, :]
    ap, hits = brute_force(sim, rel)
    assert s["map"].item() == pytest.approx(ap, abs=1e-12)
    for k in (1, 2, 3):
        assert s[f"r{k}"].item() == pytest.approx(hits[k], abs=1e-12)


def test_instance_relevance():
    audio = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    visual = torch.tensor([[1.0, 0.05], [1.0, 0.0], [0.0, 1.0]])
    # only the pair (i, i) is relevant.
    # a0: v1 (1) > v0 (.9988) > v2 (0): v0 at rank 2 -> AP 1/2, hit@2
    # a1: v2 (1) > v0 (.05) > v1 (0): v1 at rank 3 -> AP 1/3
    # a2: v0 (.9987) > v1 (.995) > v2 (.0995): v2 at rank 3 -> AP 1/3
    s = retrieval_scores(audio, visual, ks=(1, 2), relevance="instance")
    a0 = 1 / 2
    a1 = 1 / 3
    a2 = 1 / 3
    assert s["map"].item() == pytest.approx((a0 + a1 + a2) / 3, abs=1e-12)
    assert s["r1"].item() == 0.0 and s["r2"].item() == pytest.approx(1 / 3)


def test_map_is_per_query_not_running_precision():
    # one query, gallery order: relevant, irrelevant, irrelevant, relevant
    q = torch.tensor([[1.0, 0.0]])
    gal = torch.tensor([[1.0, 0.0], [1.0, 0.3], [1.0, 0.6], [1.0, 0.9]])
    lq, lg = torch.tensor([0]), torch.tensor([0, 1, 1, 0])
    from avbench.metrics.retrieval import _ranking_stats, relevance_matrix

    sim = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(gal, dim=1).T
    ap, _ = _ranking_stats(sim.double(), relevance_matrix(lq, lg, 1, 4, "class"), ks=())
    assert ap.item() == pytest.approx((1 + 2 / 4) / 2)  # precision at the 2 relevant ranks
    running = (1 + 1 / 2 + 1 / 3 + 2 / 4) / 4  # the averaging avbench does NOT do
    assert ap.item() != pytest.approx(running)


def test_metric_both_directions_batch_invariance_and_dedup():
    g = torch.Generator().manual_seed(0)
    n, c = 90, 5
    labels = torch.randint(0, c, (n,), generator=g)
    centers = torch.randn(c, 16, generator=g)
    audio = centers[labels] + 2.0 * torch.randn(n, 16, generator=g)
    visual = centers[labels] + 2.0 * torch.randn(n, 16, generator=g)
    ids = [f"s{i}" for i in range(n)]
    res = []
    for bs in (1, 7, 64):
        m = CrossModalRetrieval(ks=(1, 5, 10), compute_map=True)
        for lo in range(0, n, bs):
            m.update(
                audio[lo : lo + bs], visual[lo : lo + bs], labels[lo : lo + bs], ids[lo : lo + bs]
            )
        res.append({k: v.item() for k, v in m.compute().items()})
    assert res[0] == res[1] == res[2]
    assert set(res[0]) >= set(CrossModalRetrieval(ks=(1, 5, 10)).metric_names())
    # v2a is retrieval with the roles swapped
    s = retrieval_scores(visual, audio, labels, labels, ks=(1, 5, 10))
    # (same numbers; the metric sums in id-key order, hence approx)
    assert res[0]["v2a_r5"] == pytest.approx(s["r5"].item(), abs=1e-12)
    assert res[0]["v2a_map"] == pytest.approx(s["map"].item(), abs=1e-12)
    assert 0.2 < res[0]["a2v_r1"] < 0.95  # a non-trivial case
    assert res[0]["map"] == pytest.approx((res[0]["a2v_map"] + res[0]["v2a_map"]) / 2)
    # padded duplicates are dropped
    m = CrossModalRetrieval(ks=(1, 5, 10), compute_map=True)
    m.update(audio, visual, labels, ids)
    m.update(audio[:2], visual[:2], labels[:2], ids[:2])
    r = m.compute()
    assert r["n_duplicates"].item() == 2 and r["a2v_map"].item() == res[0]["a2v_map"]


def test_random_embeddings_score_chance():
    g = torch.Generator().manual_seed(0)
    n, c = 400, 4
    labels = torch.arange(n) % c
    a, v = torch.randn(n, 64, generator=g), torch.randn(n, 64, generator=g)
    s = retrieval_scores(a, v, labels, labels, ks=(1, 10))
    # chance: R@1 = 1/4; R@10 = 1 - (3/4)^10 (approx., sampling w/o replacement); MAP ~ R/N
    assert s["r1"].item() == pytest.approx(0.25, abs=0.07)
    assert s["r10"].item() == pytest.approx(1 - 0.75**10, abs=0.07)
    r, nn = n // c, n
    expected_map = sum(1 / p + (r - 1) / (nn - 1) * (p - 1) / p for p in range(1, nn + 1)) / nn
    assert s["map"].item() == pytest.approx(expected_map, abs=0.03)


def test_recall_at_k_not_smaller_than_the_gallery_is_left_out():
    """4 items: R@5 and R@10 would be 1.0 for any embeddings; only R@1 is computed."""
    from avbench.metrics import NotScorableError
    from avbench.metrics.retrieval import trivial_recall

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    m = CrossModalRetrieval(ks=(1, 4, 5), compute_map=False, relevance="instance")
    m.update(x, y, ids=[f"c{i}" for i in range(4)])
    out = m.compute()
    assert {k for k in out if "_r" in k} == {"a2v_r1", "v2a_r1"}
    assert set(m.undefined) == {"a2v_r4", "a2v_r5", "v2a_r4", "v2a_r5"}
    assert "gallery of 4 items" in m.undefined["a2v_r4"]
    assert trivial_recall((1, 3, 4), 4).keys() == {4}
    # the same R@1 as without the trivial k
    ref = CrossModalRetrieval(ks=(1,), compute_map=False, relevance="instance")
    ref.update(x, y, ids=[f"c{i}" for i in range(4)])
    assert float(out["a2v_r1"]) == float(ref.compute()["a2v_r1"])
    # nothing left to compute: not scorable
    only = CrossModalRetrieval(ks=(5, 10), compute_map=False, relevance="instance")
    only.update(x, y, ids=[f"c{i}" for i in range(4)])
    with pytest.raises(NotScorableError, match="k >= gallery size"):
        only.compute()
    # with MAP the metric still scores
    with_map = CrossModalRetrieval(ks=(5,), compute_map=True, relevance="instance")
    with_map.update(x, y, ids=[f"c{i}" for i in range(4)])
    assert "map" in with_map.compute() and "a2v_r5" in with_map.undefined
