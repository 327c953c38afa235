"""DiscoveryMetric (REFERENCE A5) and graph recovery (REFERENCE A6) against hand computations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avbench.metrics import (
    DiscoveryMetric,
    GraphRecoveryMetric,
    as_graph,
    discovery_scores,
    edge_stability,
    from_causallearn,
    graph_recovery_scores,
    load_graph,
)

# --- discovery -------------------------------------------------------------------


def test_discovery_hand_computed():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8])
    labels = torch.tensor([0, 0, 1, 1])
    r = discovery_scores(scores, labels)
    # ROC-AUC: pairs (pos, neg) ordered correctly: (.35>.1), (.8>.1), (.8>.4) of 4 -> 0.75
    assert r["roc_auc"].item() == pytest.approx(0.75)
    # AP: ranking .8(+) .4(-) .35(+) .1(-): (1/1 + 2/3) / 2
    assert r["pr_auc"].item() == pytest.approx((1 + 2 / 3) / 2)
    assert r["positive_rate"].item() == 0.5


def test_discovery_cosine_scores_ties_and_order_only():
    labels = torch.tensor([0, 0, 1, 1])
    # cosine scores in [-1, 1] with the same order -> same numbers (no sigmoid squashing)
    r = discovery_scores(torch.tensor([-0.9, -0.2, -0.3, 0.7]), labels)
    assert r["roc_auc"].item() == pytest.approx(0.75)
    # nearly equal scores stay distinct (a float32 sigmoid would merge them)
    close = torch.tensor([1e-9, 2e-9, 3e-9, 4e-9], dtype=torch.float64)
    assert discovery_scores(close, torch.tensor([0, 0, 1, 1]))["roc_auc"].item() == 1.0
    # ties count one half
    tied = discovery_scores(torch.tensor([0.5, 0.5, 0.5, 0.5]), labels)
    assert tied["roc_auc"].item() == pytest.approx(0.5)
    assert tied["pr_auc"].item() == pytest.approx(0.5)


def test_discovery_metric_batch_invariance_and_dedup():
    g = torch.Generator().manual_seed(0)
    n = 100
    labels = torch.rand(n, generator=g) > 0.6
    scores = labels.float() * 0.3 + torch.rand(n, generator=g)
    ids = [f"c{i}" for i in range(n)]
    res = []
    for bs in (1, 7, 64):
        m = DiscoveryMetric()
        for lo in range(0, n, bs):
            m.update(scores[lo : lo + bs], labels[lo : lo + bs], ids[lo : lo + bs])
        res.append({k: v.item() for k, v in m.compute().items()})
    assert res[0] == res[1] == res[2]
    m = DiscoveryMetric()
    m.update(scores, labels, ids)
    m.update(scores[:4], labels[:4], ids[:4])
    assert m.compute()["roc_auc"].item() == res[0]["roc_auc"]
    # random scores -> ROC-AUC about 0.5, PR-AUC about the positive rate
    rnd = discovery_scores(torch.rand(2000, generator=g), torch.rand(2000, generator=g) > 0.7)
    assert rnd["roc_auc"].item() == pytest.approx(0.5, abs=0.05)
    assert rnd["pr_auc"].item() == pytest.approx(rnd["positive_rate"].item(), abs=0.05)


# --- graph recovery --------------------------------------------------------------
NODES = ["a", "b", "c", "d"]


def adj(edges, nodes=NODES, undirected=()):
    a = np.zeros((len(nodes), len(nodes)), dtype=int)
    ix = {n: i for i, n in enumerate(nodes)}
    for s, t in edges:
        a[ix[s], ix[t]] = 1
    for s, t in undirected:
        a[ix[s], ix[t]] = a[ix[t], ix[s]] = 1
    return a


TRUE = adj([("a", "b"), ("b", "c"), ("c", "d")])
# a->b correct, c->b reversed, c-d undirected (CPDAG), a->d extra
PRED = adj([("a", "b"), ("c", "b"), ("a", "d")], undirected=[("c", "d")])


def test_graph_scores_hand_computed_undirected_both():
    r = graph_recovery_scores((PRED, NODES), (TRUE, NODES))
    # entries: pred {ab, cb, cd, dc, ad} (5), true {ab, bc, cd} (3); TP {ab, cd} = 2
    assert r["edge_precision"] == pytest.approx(2 / 5)
    assert r["edge_recall"] == pytest.approx(2 / 3)
    assert r["edge_f1"] == pytest.approx(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3))
    # skeleton: pred {ab, bc, cd, ad}, true {ab, bc, cd}
    assert r["skeleton_precision"] == pytest.approx(3 / 4) and r["skeleton_recall"] == 1.0
    # SHD: bc reversed (1) + cd undirected vs directed (1) + ad extra (1)
    assert r["shd"] == 3
    assert (r["n_correct"], r["n_reversed"], r["n_undirected"], r["n_missing"], r["n_extra"]) == (
        1, 1, 1, 0, 1,
    )  # fmt: skip
    assert r["n_pred_directed"] == 3 and r["n_pred_undirected"] == 1


def test_graph_scores_undirected_ignored():
    r = graph_recovery_scores((PRED, NODES), (TRUE, NODES), undirected="ignore")
    # directed predictions {ab, cb, ad}: TP {ab}
    assert r["edge_precision"] == pytest.approx(1 / 3) and r["edge_recall"] == pytest.approx(1 / 3)
    assert r["shd"] == 3  # SHD does not depend on the option


def test_node_alignment_by_name_and_extra_nodes():
    perm = ["d", "c", "b", "a"]
    ix = [NODES.index(n) for n in perm]
    pred_perm = PRED[np.ix_(ix, ix)]
    assert graph_recovery_scores((pred_perm, perm), (TRUE, NODES)) == graph_recovery_scores(
        (PRED, NODES), (TRUE, NODES)
    )
    # an extra predicted node's edges are false positives
    nodes5 = NODES + ["e"]
    pred5 = np.zeros((5, 5), dtype=int)
    pred5[:4, :4] = TRUE
    pred5[4, 0] = 1
    r = graph_recovery_scores((pred5, nodes5), (TRUE, NODES))
    assert r["edge_precision"] == pytest.approx(3 / 4) and r["edge_recall"] == 1.0 and r["shd"] == 1


def test_perfect_and_empty_graphs():
    r = graph_recovery_scores((TRUE, NODES), (TRUE, NODES))
    assert r["edge_f1"] == 1.0 and r["shd"] == 0
    e = graph_recovery_scores((np.zeros((4, 4), dtype=int), NODES), (TRUE, NODES))
    assert e["edge_precision"] == 0.0 and e["edge_recall"] == 0.0 and e["shd"] == 3


def test_causallearn_convention():
    from causallearn.graph.Edge import Edge
    from causallearn.graph.Endpoint import Endpoint
    from causallearn.graph.GeneralGraph import GeneralGraph
    from causallearn.graph.GraphNode import GraphNode

    nodes = [GraphNode(n) for n in NODES]
    g = GeneralGraph(nodes)
    g.add_directed_edge(nodes[0], nodes[1])  # a -> b
    g.add_edge(Edge(nodes[2], nodes[3], Endpoint.TAIL, Endpoint.TAIL))  # c - d
    a = from_causallearn(g.graph)
    assert a.tolist() == adj([("a", "b")], undirected=[("c", "d")]).tolist()
    assert as_graph(g).nodes == NODES and as_graph(g).adjacency.tolist() == a.tolist()


def test_planted_graph_json(tmp_path):
    path = tmp_path / "cooccurrence_graph.json"
    path.write_text(
        json.dumps(
            {
                "nodes": NODES,
                "edges": [
                    {"src": "a", "dst": "b", "prob": 0.5},
                    {"src": "b", "dst": "c", "prob": 0.3},
                    {"src": "c", "dst": "d", "prob": 0.2},
                ],
            }
        )
    )
    g = load_graph(path)
    assert g.nodes == NODES and g.adjacency.tolist() == TRUE.tolist()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_graph(tmp_path / "missing.json")


def test_edge_stability_and_metric_over_runs():
    g1 = (adj([("a", "b"), ("b", "c")]), NODES)
    g2 = (adj([("a", "b"), ("c", "d")]), NODES)
    s = edge_stability([g1, g2])
    assert s["jaccard"] == pytest.approx(1 / 3)  # {ab} / {ab, bc, cd}
    assert s["frequency"][0, 1] == 1.0 and s["frequency"][1, 2] == 0.5
    m = GraphRecoveryMetric()
    m.update(g1, (TRUE, NODES))
    m.update(g2, (TRUE, NODES))
    r = m.compute()
    # each run: precision 1, recall 2/3
    assert r["edge_precision"].item() == 1.0
    assert r["edge_recall"].item() == pytest.approx(2 / 3)
    assert r["edge_stability"].item() == pytest.approx(1 / 3) and r["n_runs"].item() == 2
