"""Experiment (session 5): the image stand-in trained on ImageNet-like large objects.

The shipped ``image-resnet18`` renders its corpus with the world's calibrated object
sizes (many small objects; held-out accuracy 0.481). This variant draws object areas
with the quantile knots below (0.15-0.95 of the frame), everything else unchanged,
to test whether a stand-in with more object-centric features helps EZ-VSL/FNAC's
failing seed (docs/models.md: it did not). Usage::

    .venv/bin/python benchmarks/learning/results/session5/big_object_standin.py OUT_DIR
"""

from __future__ import annotations

import dataclasses
import sys

import avbench.pretrain.training as training
from avbench.data.synthetic.config import WorldConfig
from avbench.pretrain import corpus
from avbench.pretrain.registry import pretrain

#: object areas (fraction of the frame) at probabilities 0/5/25/50/75/95/100 %
LARGE_OBJECTS = (0.15, 0.22, 0.35, 0.5, 0.65, 0.85, 0.95)


def main(out_dir: str) -> None:
    config = dataclasses.replace(WorldConfig(), object_area_quantiles=LARGE_OBJECTS)
    original = corpus.pretraining_world
    training.pretraining_world = lambda seed, config_=None, n_categories=32: original(
        seed, config, n_categories)
    card = pretrain("image-resnet18", out_dir, seed=0, size="default", force=True)
    print(card.heldout, card.seconds)


if __name__ == "__main__":
    main(sys.argv[1])
