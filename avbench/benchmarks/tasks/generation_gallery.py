"""Gallery of the ``generation`` task: real vs generated spectrograms and a few wav files.

The task's gallery collector stores ``ids``, ``real_wave`` [n, L], ``gen_wave`` [n, L]
(16 kHz) and ``condition`` [n] beside the result (avbench/runner/galleries.py). Here:

* :func:`spectrogram_figure` - one column per clip, real on top, generated below: log-mel
  (128 bands, 125-7600 Hz, n_fft 1024, hop 256: AV-LDM's front-end), dB re the figure's
  loudest bin, 80 dB range;
* :func:`write_generation_gallery` - that figure as ``<prefix>_spectrograms.png`` plus the
  first ``n_wavs`` clips as ``<prefix>_<k>_{real,generated}.wav`` (16-bit PCM) in a
  directory (the leaderboard's plots directory).

matplotlib is imported inside the functions (evaluation never imports it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from avbench.atomic_io import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SAMPLE_RATE = 16000


def log_mel_db(waves: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Log-mel power in dB of waves [n, L]: [n, 128, frames] (AV-LDM's mel settings)."""
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=1024, hop_length=256,
                                               f_min=125.0, f_max=7600.0, n_mels=128,
                                               norm="slaney", mel_scale="slaney")
    with torch.no_grad():
        power = mel(torch.as_tensor(np.asarray(waves, np.float32)))
    return (10 * torch.log10(power + 1e-10)).numpy()


def spectrogram_figure(gallery: Mapping[str, np.ndarray], title: str = "",
                       max_clips: int = 6) -> Figure:
    """Real (top row) vs generated (bottom row) log-mel spectrograms of up to ``max_clips``
    gallery clips.

    Raises:
        KeyError: the gallery lacks ``real_wave`` / ``gen_wave``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(len(gallery["ids"]), max_clips)
    real, gen = log_mel_db(gallery["real_wave"][:n]), log_mel_db(gallery["gen_wave"][:n])
    top = float(max(real.max(), gen.max()))
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n + 0.5, 4.4), squeeze=False)
    cond = str(gallery["condition"][0]) if "condition" in gallery else "generated"
    for k in range(n):
        for r, (spec, label) in enumerate(((real[k], "real"), (gen[k], f"generated ({cond})"))):
            ax = axes[r, k]
            ax.imshow(spec, origin="lower", aspect="auto", vmin=top - 80, vmax=top, cmap="magma",
                      extent=(0, spec.shape[-1] * 256 / SAMPLE_RATE, 0, 128))
            ax.set_xticks([0, 1, 2, 3]) if r == 1 else ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(label, fontsize=8)
            if r == 0:
                ax.set_title(str(gallery["ids"][k])[-18:], fontsize=7)
    fig.suptitle(title or "real vs generated log-mel", fontsize=9)
    fig.tight_layout()
    return fig


def _write_wav(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    data = wave / peak * 0.99 if peak > 0.99 else wave  # never clip
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.asarray(data, np.float32), sample_rate, subtype="PCM_16",
                 format="WAV")


def write_generation_gallery(gallery: Mapping[str, np.ndarray] | None, out_dir: str | Path,
                             prefix: str, n_wavs: int = 3, sample_rate: int = SAMPLE_RATE,
                             with_png: bool = True) -> list[Path]:
    """Write ``<prefix>_spectrograms.png`` (unless ``with_png`` is False) and ``n_wavs``
    real/generated wav pairs to ``out_dir``; returns the files (none for a gallery without
    generated audio)."""
    if gallery is None or "gen_wave" not in gallery:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    if with_png:
        import matplotlib.pyplot as plt

        fig = spectrogram_figure(gallery, title=prefix)
        png = out / f"{prefix}_spectrograms.png"
        with atomic_path(png) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)
        files.append(png)
    for k in range(min(n_wavs, len(gallery["ids"]))):
        for key, name in (("real_wave", "real"), ("gen_wave", "generated")):
            path = out / f"{prefix}_{k}_{name}.wav"
            _write_wav(path, np.asarray(gallery[key][k]), sample_rate)
            files.append(path)
    return files


def write_generation_galleries(rows: Any, benchmark: str, out_dir: str | Path) -> list[Path]:
    """For each leaderboard row (:class:`~avbench.benchmarks.tasks.base.PlotRow`) with a
    generation gallery: its wav pairs as ``<benchmark>_<row label>_<k>_*.wav`` (the
    leaderboard's hook; the spectrogram PNG comes from the spec's ``leaderboard_figures``)."""
    files: list[Path] = []
    for row in rows:
        gal = getattr(row, "gallery", None)
        if gal is not None and "gen_wave" in gal:
            label = str(row.label).replace(" ", "_").replace("/", "-")
            files += write_generation_gallery(gal, out_dir, f"{benchmark}_{label}",
                                              with_png=False)
    return files


__all__ = ["log_mel_db", "spectrogram_figure", "write_generation_galleries",
           "write_generation_gallery"]
