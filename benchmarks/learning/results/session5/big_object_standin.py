"""Experiment: image stand-in trained on ImageNet-like (large) objects instead of the calibrated sizes."""
import dataclasses, sys
import avbench.pretrain.training as tr
from avbench.pretrain import corpus
from avbench.data.synthetic.config import WorldConfig
BIG = dataclasses.replace(WorldConfig(), object_area_quantiles=(0.15, 0.22, 0.35, 0.5, 0.65, 0.85, 0.95))
orig = corpus.pretraining_world
tr.pretraining_world = lambda seed, config=None, n_categories=32: orig(seed, BIG, n_categories)
from avbench.pretrain.registry import pretrain
card = pretrain("image-resnet18", sys.argv[1], seed=0, size="default", force=True)
print(card.heldout, card.seconds)
