"""One evaluator per task, as torchmetrics ``Metric``s (REFERENCE.md section A).

=====================  ==========================  =====================================
metric                 protocol                    numbers
=====================  ==========================  =====================================
LocalizationMetric     A1 Flickr / VGG-SS / AVS    ap50, auc, mean_ciou
AVSBenchMetric         A2 AVSBench S4 / MS3        miou, fscore
CrossModalRetrieval    A3 VGG-SS, AVE, VEGAS, Ego  a2v_r1.., v2a_r1.., a2v_map, v2a_map, map
DiscoveryMetric        A5 sounding actions         roc_auc, pr_auc
GraphRecoveryMetric    A6 planted graph            edge_precision/recall/f1, shd, ...
=====================  ==========================  =====================================

All are vectorised in torch, store per-sample values keyed by sample id and
reduce them in ``compute()`` after de-duplication, so results do not depend
on the batch size and a DDP run (with DistributedSampler padding) gives the
single-process numbers exactly. A metric undefined on the data (one class only,
a single item, nothing left to score) raises :class:`NotScorableError` from
``compute()`` with the reason. See ``docs/protocols.md``. Metric direction
(lower is better) is declared by the task specs in :mod:`avbench.benchmarks.tasks`.
"""

from avbench.metrics._common import NotScorableError, dedup_by_key, keys_for, stable_key
from avbench.metrics.discovery import DiscoveryMetric, discovery_scores, discovery_undefined
from avbench.metrics.graph import (
    Graph,
    GraphRecoveryMetric,
    as_graph,
    edge_stability,
    from_causallearn,
    graph_recovery_scores,
    load_graph,
)
from avbench.metrics.localization import LocalizationMetric, compute_ciou, summarize_ciou
from avbench.metrics.retrieval import CrossModalRetrieval, retrieval_scores, retrieval_undefined
from avbench.metrics.segmentation import AVSBenchMetric

__all__ = [
    "AVSBenchMetric",
    "CrossModalRetrieval",
    "DiscoveryMetric",
    "Graph",
    "GraphRecoveryMetric",
    "LocalizationMetric",
    "NotScorableError",
    "as_graph",
    "compute_ciou",
    "dedup_by_key",
    "discovery_scores",
    "discovery_undefined",
    "edge_stability",
    "from_causallearn",
    "graph_recovery_scores",
    "keys_for",
    "load_graph",
    "retrieval_scores",
    "retrieval_undefined",
    "stable_key",
    "summarize_ciou",
]
