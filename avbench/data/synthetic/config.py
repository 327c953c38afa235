"""The knobs of the synthetic world, in one frozen, JSON-able dataclass.

Every rate the DESIGN (4.3) asks to be a parameter lives here, so robustness
curves (off-screen rate, SNR, distractors, co-occurrence strength) and the
localization calibration (object areas, centre bias) are drawn by changing
one field. Writers record ``dataclasses.asdict(config)`` beside the data, so
the fields are plain numbers, strings and tuples.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of the synthetic audio-visual world (see docs/synthetic_world.md)."""

    # -- media -------------------------------------------------------------
    image_size: int = 128  # default frame side in pixels (frames are square)
    sample_rate: int = 16000  # default audio rate

    # -- categories ----------------------------------------------------------
    n_categories: int = 32
    #: pairs that look alike but sound different / sound alike but look different
    n_confusable_visual: int = 3
    n_confusable_audio: int = 3
    #: range of the categories' characteristic frequencies (log-spaced, shuffled)
    pitch_range_hz: tuple[float, float] = (220.0, 3200.0)
    #: pitch ratio of an audio-confusable pair (1.05 = less than a semitone)
    confusable_pitch_ratio: float = 1.05

    # -- scene layout (calibrated, see docs "Calibration") ---------------------
    #: box-area fraction of an annotated sounding object: lo + (hi - lo) * Beta(a, b)
    #: (before clipping by the frame; realised GT boxes cover ~0.15-0.85, mean ~0.48)
    object_area: tuple[float, float] = (0.2, 0.95)
    object_area_beta: tuple[float, float] = (2.0, 1.0)
    #: with k annotated sources each area is multiplied by k ** -multi_source_shrink
    multi_source_shrink: float = 0.6
    #: annotated objects: with ``off_center_rate`` pushed towards a border, else
    #: centred with this std (fraction of the free range; truncated normal)
    center_spread: float = 0.8
    off_center_rate: float = 0.65
    #: up to this fraction of an object's box may lie beyond each image border
    max_outside: float = 0.3
    #: log-std of the per-scene stretch of a category's shape (box aspect variety)
    aspect_jitter: float = 0.45
    #: silent distractors per scene (inclusive range) and their box-area fraction
    n_distractors: tuple[int, int] = (0, 2)
    distractor_area: tuple[float, float] = (0.03, 0.15)
    #: fraction of silent objects that move (with an envelope nobody hears)
    distractor_motion_rate: float = 0.5
    #: fraction of silent objects drawn in front of the sounding ones
    distractor_front_rate: float = 0.25
    #: per-object RGB jitter (std, 0..255) and per-scene brightness range
    color_jitter: float = 10.0
    brightness: tuple[float, float] = (0.85, 1.1)

    # -- motion (follows the sound envelope) -----------------------------------
    pulse: tuple[float, float] = (0.06, 0.12)  # relative size change at full envelope
    bounce: tuple[float, float] = (0.03, 0.08)  # upward shift, fraction of object height

    # -- audio mix ---------------------------------------------------------------
    offscreen_rate: float = 0.2  # P(an off-screen source is in the mix)
    offscreen_gain_db: tuple[float, float] = (-12.0, -3.0)
    cooccurrence_gain_db: tuple[float, float] = (-9.0, 0.0)
    source_gain_db: tuple[float, float] = (-3.0, 0.0)  # per annotated source
    snr_db: tuple[float, float] = (5.0, 25.0)  # mix vs background noise
    mix_rms: float = 0.08  # the rendered mix is scaled to this RMS (peak < 1)

    # -- planted co-occurrence graph ----------------------------------------------
    graph_edges: int = 24
    graph_prob: tuple[float, float] = (0.3, 0.8)
    graph_max_out: int = 2  # max out-edges per category

    # -- actions (Ego4D) ------------------------------------------------------------
    sounding_verb_rate: float = 0.5  # P(a narration's verb makes sound)
    ambience_db: tuple[float, float] = (-42.0, -30.0)  # RMS of the ambient bed, dBFS
    action_db: tuple[float, float] = (-22.0, -14.0)  # RMS of an action sound while active
    workspace_objects: tuple[int, int] = (3, 5)  # objects on the table of a long video

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (typos must not pass)."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(names)
        if unknown:
            raise KeyError(f"unknown WorldConfig fields: {sorted(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kwargs)
