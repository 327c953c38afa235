"""Pretrained stand-ins for the synthetic world (DESIGN 4.6, docs/pretrained.md).

The papers start from ImageNet/AudioSet/... networks that cannot be downloaded
here. ``avbench pretrain NAME --out DIR`` trains a stand-in for one of them on
a corpus the synthetic world renders from categories disjoint from every
benchmark's (:mod:`.corpus`), writes its weights in the layout the encoders
load (``image_pretrained: DIR/model.safetensors``) and a card
(:mod:`.card`). Modules:

- :mod:`.corpus` - the pretraining world and its image / sound / sentence datasets;
- :mod:`.card` - ``card.json``, checksums, the code version, ``is_current``;
- :mod:`.training` - the shared supervised loop;
- :mod:`.registry` - the stand-in registry and :func:`pretrain` (train or skip);
- :mod:`.image`, :mod:`.audio` - ``image-resnet18``, ``audio-resnet18``;
- :mod:`.extractors` - the AVE/VEGAS 1024-d visual and 128-d audio features;
- :mod:`.cli` - the ``avbench pretrain`` command.
"""

from avbench.pretrain.card import StandinCard, is_current, read_card, write_card
from avbench.pretrain.registry import STANDINS, StandinSpec, pretrain, register_standin

__all__ = ["STANDINS", "StandinCard", "StandinSpec", "is_current", "pretrain", "read_card",
           "register_standin", "write_card"]
