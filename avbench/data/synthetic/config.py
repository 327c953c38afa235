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

#: probabilities at which ``WorldConfig.object_area_quantiles`` gives the area
AREA_QUANTILE_PROBS: tuple[float, ...] = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


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
    #: box-area fraction of an annotated sounding object (before clipping by the
    #: frame) at the probabilities ``AREA_QUANTILE_PROBS`` (0, 5, 25, 50, 75, 95,
    #: 100 %): drawn by inverse-CDF sampling, log-linear between knots. The
    #: defaults make the VGG-SS GT (union of boxes) match the real vggss.json
    #: quantiles; AVSBench overrides them per subset (``DATASET_LAYOUTS``).
    object_area_quantiles: tuple[float, ...] = (0.0132, 0.0329, 0.1352, 0.2946, 0.5846, 1.0, 1.0)
    #: with k annotated sources each area is multiplied by k ** -multi_source_shrink
    multi_source_shrink: float = 0.6
    #: place the 2nd, 3rd... annotated source side by side with the first (AVSBench MS3:
    #: performers of one band) instead of independently
    group_sources: bool = False
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
    # per-video RMS of the ambient bed, dBFS (actions.ActionSoundLevels holds the rest of the
    # loudness model; actions are set relative to this bed)
    ambience_db: tuple[float, float] = (-48.0, -22.0)
    # NOT READ since the session-7 recalibration (an action's level is relative to its video's
    # bed: actions.ActionSoundLevels.action_snr_db); kept so data written before still parses
    action_db: tuple[float, float] = (-22.0, -14.0)
    workspace_objects: tuple[int, int] = (3, 5)  # objects on the table of a long video

    def __post_init__(self) -> None:
        q = self.object_area_quantiles
        if len(q) != len(AREA_QUANTILE_PROBS) or not all(0 < a <= 1 for a in q) or \
                any(b < a for a, b in zip(q, q[1:])):
            raise ValueError(
                f"object_area_quantiles must be {len(AREA_QUANTILE_PROBS)} non-decreasing areas in "
                f"(0, 1] (at probabilities {AREA_QUANTILE_PROBS}), got {q}")

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


#: Per-dataset WorldConfig overrides of the scene layout (docs "Calibration"):
#: the defaults above are VGG-SS's; Flickr, AVSBench S4 and MS3 have their own
#: object sizes. Writers
#: apply them through ``writers.ssl_layout.world_config_kwargs(preset, layout)``;
#: a ``--world`` override of the same field wins.
DATASET_LAYOUTS: dict[str, dict[str, Any]] = {
    "vggss": {},
    # VGG-SS's knots moved on the odds scale (ratio 6.842, calibration.shifted_knots) until the
    # full-image map scores the real ~0.61 AP50 on the consensus GT (REFERENCE A1)
    "flickr": {"object_area_quantiles": (0.0838, 0.1888, 0.5168, 0.7408, 0.9059, 1.0, 1.0)},
    # fitted on the box enclosing the mask vs s4_box.json
    "avsbench_s4": {"object_area_quantiles": (0.0086, 0.0216, 0.1518, 0.3907, 0.7221, 1.0, 1.0)},
    # fitted on the box enclosing the union mask vs ms3_box.json (frames with sound);
    # per-source areas, then shrunk by k ** -multi_source_shrink for k = 2-3 grouped sources
    "avsbench_ms3": {"group_sources": True,
                     "object_area_quantiles": (0.005, 0.005, 0.0163, 0.2186, 0.4573, 1.0, 1.0)},
}
