"""The batch contract: collate stacks what it can and keeps the rest."""

import pytest
import torch

from avbench.data.sample import collate


def test_collate_stacks_tensors_and_keeps_strings():
    samples = [
        {"id": f"c{i}", "image": torch.full((3, 4, 4), float(i)), "label": i, "sounding": i % 2 == 0,
         "text": f"#C C taps {i}", "boxes": [[0.0, 0.0, 0.5, 0.5]] * (i + 1)}
        for i in range(3)
    ]
    batch = collate(samples)
    assert batch["id"] == ["c0", "c1", "c2"]
    assert batch["image"].shape == (3, 3, 4, 4)
    assert torch.equal(batch["image"][:, 0, 0, 0], torch.tensor([0.0, 1.0, 2.0]))
    assert batch["label"].dtype == torch.long and batch["label"].tolist() == [0, 1, 2]
    assert batch["sounding"].dtype == torch.bool and batch["sounding"].tolist() == [True, False, True]
    assert [len(b) for b in batch["boxes"]] == [1, 2, 3]


def test_collate_keeps_ragged_tensors_as_list():
    batch = collate([{"frames": torch.zeros(2, 3, 4, 4)}, {"frames": torch.zeros(3, 3, 4, 4)}])
    assert isinstance(batch["frames"], list) and [f.shape[0] for f in batch["frames"]] == [2, 3]


def test_collate_rejects_inconsistent_keys():
    with pytest.raises(KeyError, match="gt_map"):
        collate([{"id": "a", "gt_map": torch.zeros(2, 2)}, {"id": "b"}])
