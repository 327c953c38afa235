"""The model capabilities: the one list that models declare and benchmarks require.

A model declares in ``meta.capabilities`` the methods it implements
(DESIGN 4.4); a benchmark's task names the capabilities that can serve it
(DESIGN 4.5). Both validate against :data:`CAPABILITIES`:

- ``embed(batch) -> {"audio": [B,D], "visual": [B,D], "text": [B,D]?}``
- ``localize(batch) -> [B,h,w]`` sound-source heat map at feature resolution
- ``segment(batch) -> [B,T,H,W]`` mask logits (AVSBench heads)
- ``sounding_score(batch) -> [B]`` (MC3), ``class_graph() -> adjacency`` (ILI),
  ``prompted_heatmap`` (DenseAV), ``generate_audio`` (AV-LDM)
- ``pairwise_score``: a model whose own cross-modal score is not a cosine of global
  embeddings (DenseAV's dense retrieval score) implements two methods:
  ``pairwise_features(batch) -> {name: [B, ...]}`` (per-sample tensors, the same
  trailing shape in every batch) and ``pairwise_score(audio_features, visual_features)
  -> [A, V]`` (rows audio), where each argument is such a dict with rows concatenated
  over batches; the ``retrieval`` task's ``score: model`` ranks a whole gallery with it
"""

from __future__ import annotations

from typing import Literal, get_args

Capability = Literal[
    "embed",
    "localize",
    "segment",
    "sounding_score",
    "class_graph",
    "prompted_heatmap",
    "generate_audio",
    "pairwise_score",
]
CAPABILITIES: frozenset[str] = frozenset(get_args(Capability))

__all__ = ["CAPABILITIES", "Capability"]
