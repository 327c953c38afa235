"""2-process CPU DDP (gloo): every metric, and evaluate(), give exactly the single-process
numbers, with the DistributedSampler's padded duplicate not counted."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from avbench.metrics import AVSBenchMetric, CrossModalRetrieval, DiscoveryMetric, LocalizationMetric

N = 13  # odd: with 2 ranks the sampler pads one duplicate


def _data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    gts = torch.zeros(N, 32, 32)
    for i in range(N):
        for _ in range(3):
            x0, y0 = torch.randint(0, 20, (2,), generator=g).tolist()
            w, h = torch.randint(6, 20, (2,), generator=g).tolist()
            gts[i, y0 : y0 + h, x0 : x0 + w] += 1
    labels = torch.randint(0, 3, (N,), generator=g)
    return {
        "maps": torch.randn(N, 7, 7, generator=g),
        "gt": (gts / 2).clamp(max=1),
        "seg": torch.rand(N, 2, 16, 16, generator=g),
        "masks": (torch.rand(N, 2, 16, 16, generator=g) > 0.5).float(),
        "audio": torch.randn(N, 8, generator=g) + labels[:, None],
        "visual": torch.randn(N, 8, generator=g) + labels[:, None],
        "labels": labels,
        "score": torch.randn(N, generator=g),
        "sounding": torch.rand(N, generator=g) > 0.5,
    }


def _run_metrics(batches: list[list[int]]) -> dict[str, float]:
    d = _data()
    loc, seg = LocalizationMetric(), AVSBenchMetric()
    ret, disc = CrossModalRetrieval(ks=(1, 5), compute_map=True), DiscoveryMetric()
    for idx in batches:
        ids = [f"clip{i}" for i in idx]
        ix = torch.tensor(idx)
        loc.update(d["maps"][ix], d["gt"][ix], ids)
        seg.update(d["seg"][ix], d["masks"][ix], ids=ids)
        ret.update(d["audio"][ix], d["visual"][ix], d["labels"][ix], ids)
        disc.update(d["score"][ix], d["sounding"][ix], ids)
    out: dict[str, float] = {}
    for name, m in (("loc", loc), ("seg", seg), ("ret", ret), ("disc", disc)):
        out |= {f"{name}/{k}": v.item() for k, v in m.compute().items()}
    return out


class _FakeVGGSS:
    """A LightningDataModule-like object with a test loader of VGG-SS-style samples."""

    def __init__(self, batch_size: int = 3) -> None:
        from avbench.data.sample import collate

        d = _data()
        items = [
            {
                "id": f"clip{i}",
                "image": torch.zeros(3, 32, 32),
                "gt_map": d["gt"][i],
                "label": int(d["labels"][i]),
            }
            for i in range(N)
        ]
        self.loader = DataLoader(items, batch_size=batch_size, collate_fn=collate)

    def setup(self, stage: str | None = None) -> None:
        pass

    def test_dataloader(self) -> DataLoader:
        return self.loader


def _run_evaluate() -> dict[str, dict[str, float]]:
    from avbench.benchmarks import evaluate, trivial_baselines

    out = {}
    for model in trivial_baselines(seed=3):
        bench = "ave-retrieval" if "embed" in model.meta.capabilities else "vggss"
        r = evaluate(model, bench, _FakeVGGSS(), progress=False, raise_errors=True)
        assert r.status == "ok", r.reason
        out[model.meta.name] = r.metrics | {"n_samples": r.n_samples}
    return out


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        sampler = DistributedSampler(range(N), num_replicas=world, rank=rank, shuffle=False)
        idx = list(sampler)
        batches = [idx[i : i + 3] for i in range(0, len(idx), 3)]
        res = {"metrics": _run_metrics(batches), "evaluate": _run_evaluate(), "shard": idx}
        torch.save(res, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_two_process_gloo_equals_single_process(tmp_path):
    ctx_file = tmp_path / "init"
    mp.spawn(_worker, args=(2, str(ctx_file), str(tmp_path)), nprocs=2, join=True)
    single = _run_metrics([list(range(i, min(N, i + 5))) for i in range(0, N, 5)])
    single_eval = _run_evaluate()
    shards = []
    for rank in range(2):
        res = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        shards.append(res["shard"])
        ddp = res["metrics"]
        # bitwise identical on every rank, except the count of dropped padded rows
        assert {k: v for k, v in ddp.items() if "n_duplicates" not in k} == {
            k: v for k, v in single.items() if "n_duplicates" not in k
        }
        assert ddp["loc/n_duplicates"] == 1 and ddp["seg/n_duplicates"] == 2
        assert ddp["ret/n_duplicates"] == 1 and ddp["disc/n_duplicates"] == 1
        assert res["evaluate"] == single_eval
    # the sampler did pad: 14 indices for 13 samples, one counted once
    assert sum(len(s) for s in shards) == N + 1
    assert single["loc/n"] == N and single["seg/n_frames"] == 2 * N
    assert single["loc/n_duplicates"] == 0
    assert single_eval["full-image"]["n_samples"] == N
    assert set(single_eval) == {"full-image", "center-prior", "random-embedding"}
    assert "ap50" in single_eval["full-image"] and "map" in single_eval["random-embedding"]


class _DupIdVGGSS(_FakeVGGSS):
    """The same loader with clip5 and clip6 sharing one id (two different samples)."""

    def __init__(self) -> None:
        super().__init__()
        items = list(self.loader.dataset)
        items[6] = dict(items[6], id=items[5]["id"])
        self.loader = DataLoader(items, batch_size=3,
                                 collate_fn=self.loader.collate_fn)


def _dup_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    from avbench.benchmarks import evaluate, trivial_baselines

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = next(b for b in trivial_baselines() if b.meta.name == "full-image")
        res = {name: evaluate(model, "vggss", dm, progress=False)
               for name, dm in (("dup", _DupIdVGGSS()), ("clean", _FakeVGGSS()))}
        torch.save({k: (r.status, r.reason) for k, r in res.items()}, Path(out_dir) / f"dup{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.slow  # ~20 s: two spawned processes import torch
def test_two_process_duplicate_id_fails_but_padding_does_not(tmp_path):
    """Under DDP the sampler's one padded repeat is expected; a second repeat is a shared id."""
    mp.spawn(_dup_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        res = torch.load(tmp_path / f"dup{rank}.pt", weights_only=False)
        assert res["clean"] == ("ok", None)
        status, reason = res["dup"]
        assert status == "failed" and "vggss: 1 sample id(s) occur more than once" in reason
        assert "(2 repeated sample(s), 1 expected from DDP padding)" in reason
        assert "'clip5' x2" in reason
