"""Draw a sample: frame(s) with GT overlay, and the audio spectrogram.

Used by every DataModule's ``plot`` (torchgeo style) so a researcher can look
at what a loader returns instead of reading tensors. Agg backend: nothing is
shown, a Figure is returned.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


def _hwc(img: torch.Tensor) -> torch.Tensor:
    return img.detach().float().clamp(0, 1).permute(1, 2, 0).cpu()


def _frames_to_show(sample: dict[str, Any], max_frames: int) -> list[tuple[int, torch.Tensor]]:
    """(frame index, frame) pairs: evenly spaced video frames, or the single image."""
    if "frames" in sample and isinstance(sample["frames"], torch.Tensor):
        frames = sample["frames"]
        idx = torch.linspace(0, frames.shape[0] - 1, min(max_frames, frames.shape[0])).round().long()
        return [(int(i), frames[i]) for i in idx.unique()]
    if "image" in sample:
        return [(0, sample["image"])]
    return []


def plot_sample(
    sample: dict[str, Any],
    sample_rate: int = 16000,
    suptitle: str | None = None,
    max_frames: int = 3,
) -> Figure:
    """Frames (GT map/masks/boxes overlaid) and a log spectrogram of the audio.

    Overlays: ``gt_map`` as a translucent heat map on the evaluation image,
    ``masks`` (per frame) as contours, normalised ``boxes`` as rectangles.
    """
    frames = _frames_to_show(sample, max_frames)
    has_audio = isinstance(sample.get("audio"), torch.Tensor)
    ncols = max(1, len(frames)) + int(has_audio)
    fig, axes = plt.subplots(1, ncols, figsize=(3.2 * ncols, 3.2), squeeze=False)
    axes = axes[0]
    masks = sample.get("masks")
    for k, (ax, (fi, frame)) in enumerate(zip(axes, frames)):
        ax.imshow(_hwc(frame))
        h, w = frame.shape[-2:]
        if k == 0 and isinstance(sample.get("gt_map"), torch.Tensor):
            ax.imshow(sample["gt_map"].cpu().float(), cmap="jet", alpha=0.35, vmin=0, vmax=1)
        if isinstance(masks, torch.Tensor) and masks.ndim == 3 and fi < masks.shape[0]:
            if masks[fi].any():
                ax.contour(masks[fi].cpu().float(), levels=[0.5], colors="lime", linewidths=1.5)
        if k == 0:
            for box in sample.get("boxes") or []:
                x0, y0, x1, y1 = (float(v) for v in box)
                ax.add_patch(Rectangle((x0 * w, y0 * h), (x1 - x0) * w, (y1 - y0) * h,
                                       fill=False, edgecolor="yellow", linewidth=1.5))
        ax.set_axis_off()
        ax.set_title(f"frame {fi}" if len(frames) > 1 else "image", fontsize=9)
    if has_audio:
        ax = axes[-1]
        wave = sample["audio"].detach().float().reshape(-1).cpu()
        n_fft = 512 if wave.numel() >= 512 else max(16, 2 ** int(torch.log2(torch.tensor(wave.numel())).item()))
        spec = torch.stft(wave, n_fft=n_fft, hop_length=n_fft // 4,
                          window=torch.hann_window(n_fft), return_complex=True).abs()
        seconds = wave.numel() / sample_rate
        ax.imshow((spec + 1e-7).log(), origin="lower", aspect="auto", cmap="magma",
                  extent=(0, seconds, 0, sample_rate / 2000))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (kHz)")
        ax.set_title("log spectrogram", fontsize=9)
    title = suptitle or " | ".join(
        str(sample[k]) for k in ("id", "class_name", "text") if isinstance(sample.get(k), str)
    )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
