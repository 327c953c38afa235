"""The model capabilities: the one list that models declare and benchmarks require.

A model declares in ``meta.capabilities`` the methods it implements
(DESIGN 4.4); a benchmark's task names the capabilities that can serve it
(DESIGN 4.5). Both validate against :data:`CAPABILITIES`:

- ``embed(batch) -> {"audio": [B,D], "visual": [B,D], "text": [B,D]?}``
- ``localize(batch) -> [B,h,w]`` sound-source heat map at feature resolution
- ``segment(batch) -> [B,T,H,W]`` mask logits (AVSBench heads)
- ``sounding_score(batch) -> [B]`` (MC3), ``class_graph() -> adjacency`` (ILI),
  ``prompted_heatmap`` (DenseAV), ``generate_audio`` (AV-LDM)
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
]
CAPABILITIES: frozenset[str] = frozenset(get_args(Capability))

__all__ = ["CAPABILITIES", "Capability"]
