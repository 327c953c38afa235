"""Fault kind "ground-truth rasters" (issue 12): masks and maps binarised as the reference does.

Case 4 of the issue: AVSBench S4 masks saved as 8-bit png with JPEG grey levels along
the edges. Counting every non-zero pixel as foreground grew the object (+9% area on the
test file) and a perfect prediction scored IoU 0.91. The S4 reference loader reads
masks with PIL ``convert('1')`` (threshold 128 with Floyd-Steinberg dithering); the
Flickr and VGG-SS maps follow the EZ-VSL/SLAVC ``bbox2gtmap`` (docs/protocols.md).
"""

from __future__ import annotations

import io as pyio
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avbench.data import io
from avbench.data.datasets.avsbench import AVSBench
from avbench.data.datasets.flickr import FlickrSoundNet
from avbench.data.datasets.ssl_layout import boxes_to_gt_map
from avbench.data.synthetic.media import write_image, write_wav

SIZE = 224


def _object() -> np.ndarray:
    """The true object: a disc of radius 40 px, bool [224, 224]."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return (yy - 100) ** 2 + (xx - 120) ** 2 <= 40 ** 2


def _jpeg_edged_png(path: Path) -> Path:
    """The object saved as JPEG (quality 75), decoded and stored as an 8-bit grey png."""
    buf = pyio.BytesIO()
    Image.fromarray(np.where(_object(), 255, 0).astype(np.uint8)).save(buf, format="JPEG", quality=75)
    grey = np.array(Image.open(buf).convert("L"))
    assert ((grey > 0) & (grey < 255)).mean() > 0.01  # grey levels along the edges
    Image.fromarray(grey).save(path)
    return path


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_s4_mask_with_jpeg_edges_is_read_as_the_reference_reads_it(tmp_path: Path) -> None:
    path = _jpeg_edged_png(tmp_path / "m.png")
    truth = _object()
    nonzero = np.array(Image.open(path)) > 0
    assert nonzero.sum() > 1.05 * truth.sum() and _iou(truth, nonzero) < 0.95  # the fault
    mask = io.read_mask(path).numpy().astype(bool)
    reference = np.array(Image.open(path).convert("1"), dtype=bool)  # S4 dataloader.py
    assert np.array_equal(mask, reference)
    assert mask.sum() == pytest.approx(truth.sum(), rel=0.02)
    assert _iou(truth, mask) > 0.97  # a perfect prediction of the object scores ~1


def test_s4_dataset_masks_follow_the_reference_rule(tmp_path: Path) -> None:
    sub = tmp_path / "Single-source"
    data = sub / "s4_data"
    name, cat = "vid_000", "dog_barking"
    for k in range(1, 6):
        write_image(data / "visual_frames" / "test" / cat / name / f"{name}_{k}.png",
                    np.zeros((SIZE, SIZE, 3), np.uint8))
        mask_dir = data / "gt_masks" / "test" / cat / name
        mask_dir.mkdir(parents=True, exist_ok=True)
        _jpeg_edged_png(mask_dir / f"{name}_{k}.png")
    write_wav(data / "audio_wav" / "test" / cat / f"{name}.wav", np.zeros(16000, np.float32), 16000)
    (sub / "s4_meta_data.csv").write_text(f"name,start,category,split\n{name},0,{cat},test\n")
    sample = AVSBench(tmp_path, "s4", "test", image_size=SIZE, clip_seconds=1.0)[0]
    assert _iou(_object(), sample["masks"][2].numpy().astype(bool)) > 0.97
    assert torch.equal(sample["gt_map"], sample["masks"][0])


def test_ms3_palette_mask_is_read_by_index(tmp_path: Path) -> None:
    index = np.zeros((6, 6), np.uint8)
    index[1:4, 2:5] = 1
    img = Image.fromarray(index, mode="P")
    img.putpalette([0, 0, 0, 60, 0, 0] + [0, 0, 0] * 254)  # index 1 dark red: luma < 128
    img.save(tmp_path / "p.png")
    assert np.array_equal(io.read_mask(tmp_path / "p.png").numpy(), index.astype(np.float32))


def _reference_bbox2gtmap(boxes: list[list[int]], mode: str) -> np.ndarray:
    """EZ-VSL/SLAVC ``bbox2gtmap`` at 224 px (read for the rule, re-stated here)."""
    gt = np.zeros((SIZE, SIZE))
    for x0, y0, x1, y1 in boxes:
        temp = np.zeros((SIZE, SIZE))
        temp[y0:y1, x0:x1] = 1
        gt += temp
    if mode == "flickr":
        gt = gt / 2
        gt[gt > 1] = 1
    else:
        gt[gt > 0] = 1
    return gt


def test_flickr_consensus_map_equals_the_reference(tmp_path: Path) -> None:
    boxes_256 = [[10, 20, 130, 200], [50, 60, 250, 255], [0, 0, 77, 91]]  # 3 annotators, 256 px
    root = tmp_path / "flickr"
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "flickr_test.csv").write_text("42\n")
    test = root / "test"
    write_image(test / "frames" / "42.jpg", np.zeros((8, 8, 3), np.uint8))
    write_wav(test / "audio" / "42.wav", np.zeros(1600, np.float32), 16000)
    xml = "".join(f"<object><bbox><label>s</label><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                  f"<ymax>{d}</ymax></bbox></object>" for a, b, c, d in boxes_256)
    (test / "Annotations").mkdir(parents=True)
    (test / "Annotations" / "42.xml").write_text(f"<annotation>{xml}</annotation>")
    gt = FlickrSoundNet(root, "test", image_size=SIZE, clip_seconds=0.1)[0]["gt_map"]
    ref = _reference_bbox2gtmap([[int(224 * v / 256) for v in b] for b in boxes_256], "flickr")
    assert np.array_equal(gt.numpy(), ref.astype(np.float32))
    assert set(np.unique(ref)) == {0.0, 0.5, 1.0}


def test_vggss_union_map_equals_the_reference() -> None:
    boxes = [[0.1, 0.2, 0.55, 0.9], [0.5, -0.3, 1.4, 0.33], [0.123456, 0.654321, 0.2, 0.7]]
    clipped = [np.clip(np.array(b), 0, 1).tolist() for b in boxes]  # vggss_annotations clips
    gt = boxes_to_gt_map(clipped, SIZE, "union")
    ref = _reference_bbox2gtmap([(np.clip(np.array(b), 0, 1) * 224).astype(int).tolist() for b in boxes],
                                "vggss")
    assert np.array_equal(gt.numpy(), ref.astype(np.float32))
