"""Egocentric narrated actions (Ego4D layout): long videos, verbs, ambience.

A :class:`LongVideo` is a fixed tabletop (background + a few objects of the
world's categories) seen by a head-mounted camera, with a *persistent ambient
sound* (coloured noise, optional mains-like hum, slow level drift) for its
whole length, and a sequence of narrated actions: a hand (skin-coloured blob
with an arm coming from the bottom edge) approaches an object, acts on it with
a verb, and returns to rest. Some verbs make sound (``cut`` = hits at every
contact of the stroke, ``stir`` = scraping whose loudness follows the hand's
speed, ``pour``, ``shake`` = rattles at the turning points) and some are
silent (``hold``, ``lift``, ``look at``...); silent verbs still move the hand,
so only the audio tells them apart (MC3's sounding-action discovery). The
ambience is rendered on the video's absolute timeline from fixed noise blocks,
so every clip of one video hears the same bed (Action2Sound's ambient
condition) and clips of different videos do not.

Loudness (:class:`ActionSoundLevels`, calibrated so that loudness alone is a fair
but beatable discovery score; docs/synthetic_world.md, "Ego4D"): the bed's level
varies widely between videos; an action's sound sits at a per-action SNR over its
video's bed (some sounding actions are quieter than the bed); and off-screen events
(a sound of a category that is not on the table, with no visual counterpart: the
category's own sound or an action-like sound of its pitch, at its own tempo) occur
on the video's timeline, during silent and sounding actions alike. What makes a
clip *sounding* stays the visible action: its sound follows the hand's strokes and
rings at the acted-on object's pitch.

Narrations follow Ego4D (``"#C C cuts the carrot"``) with verb synonyms and a
few templates.
"""

from __future__ import annotations

import colorsys
import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter

from avbench.data.synthetic.categories import Category
from avbench.data.synthetic.config import WorldConfig
from avbench.data.synthetic.scene import (
    Background,
    SceneObject,
    background_packed,
    box_iou,
    object_sprite,
    place_object,
    rest_box,
    sample_background,
)
from avbench.data.synthetic.sound import (
    CONTROL_RATE,
    OnsetPattern,
    band_noise,
    kernel_envelope,
    render_sound,
    to_audio_rate,
    tone,
)
from avbench.data.synthetic.sprites import pack_rgb, paste, render_sprite, unpack_rgb

APPROACH_S = 0.35  # hand travel time to / from the object
_HAND_R = 0.07  # hand radius (fraction of the image)
_ARM_R = 0.05  # arm half-thickness
_HUM_RMS = float(np.sqrt(np.mean(tone(50.0, (1.0, 0.5), 16000, 16000) ** 2)))


@dataclass(frozen=True)
class Verb:
    name: str  # canonical verb (Ego4D tag_verb)
    synonyms: list[str]  # base forms used in narrations (the first is ``name``'s)
    sounding: bool
    sound_kind: str  # "hits" | "scrape" | "pour" | "rattle" | "none"
    motion: str  # strike | circle | shake | pour | hold | touch | lift | look | point | turn
    rate_hz: tuple[float, float]  # stroke / oscillation rate range


VERBS: tuple[Verb, ...] = (
    Verb("cut", ["cut", "slice", "chop"], True, "hits", "strike", (1.6, 2.6)),
    Verb("knock", ["knock on", "tap on", "rap on"], True, "hits", "strike", (2.0, 3.0)),
    Verb("hammer", ["hammer", "pound", "bang"], True, "hits", "strike", (1.2, 2.0)),
    Verb("stir", ["stir", "mix", "whisk"], True, "scrape", "circle", (0.9, 1.6)),
    Verb("scrub", ["scrub", "scrape", "scour"], True, "scrape", "circle", (1.2, 2.0)),
    Verb("pour", ["pour", "empty", "tip out"], True, "pour", "pour", (0.5, 1.0)),
    Verb("shake", ["shake", "rattle", "jiggle"], True, "rattle", "shake", (2.5, 3.5)),
    Verb("hold", ["hold", "grip", "grasp"], False, "none", "hold", (0.3, 0.6)),
    Verb("touch", ["touch", "feel", "press"], False, "none", "touch", (0.3, 0.6)),
    Verb("lift", ["lift", "raise", "pick up"], False, "none", "lift", (0.4, 0.7)),
    Verb("look", ["look at", "inspect", "examine"], False, "none", "look", (0.3, 0.6)),
    Verb("point", ["point at", "point to", "gesture at"], False, "none", "point", (0.8, 1.5)),
    Verb("turn", ["turn", "rotate", "twist"], False, "none", "turn", (0.6, 1.2)),
)
TEMPLATES: tuple[str, ...] = (
    "#C C {verb} the {noun}",
    "#C C {verb} a {noun}",
    "#C C {verb} the {noun} with the right hand",
    "#C C {verb} the {noun} on the table",
)


def third_person(phrase: str) -> str:
    """``"look at"`` -> ``"looks at"``, ``"touch"`` -> ``"touches"``, ``"carry"`` -> ``"carries"``."""
    head, _, rest = phrase.partition(" ")
    if head.endswith(("s", "sh", "ch", "x", "z")):
        head += "es"
    elif head.endswith("y") and head[-2:-1] not in ("a", "e", "i", "o", "u"):
        head = head[:-1] + "ies"
    else:
        head += "s"
    return f"{head} {rest}".strip()


@dataclass
class ActionVocabulary:
    verbs: list[Verb]
    nouns: list[str]  # one per category (``nouns[c]`` looks like category c)
    templates: list[str] = field(default_factory=lambda: list(TEMPLATES))

    def verb(self, name: str) -> Verb:
        for v in self.verbs:
            if v.name == name:
                return v
        raise KeyError(f"unknown verb {name!r}")

    @property
    def sounding_verbs(self) -> list[Verb]:
        return [v for v in self.verbs if v.sounding]

    @property
    def silent_verbs(self) -> list[Verb]:
        return [v for v in self.verbs if not v.sounding]

    def narrate(self, verb: str, noun: str, rng: np.random.Generator) -> str:
        """A narration text: random synonym of ``verb`` in a random template."""
        v = self.verb(verb)
        syn = v.synonyms[int(rng.integers(len(v.synonyms)))]
        template = self.templates[int(rng.integers(len(self.templates)))]
        return template.format(verb=third_person(syn), noun=noun)


def make_vocabulary(categories: Sequence[Category]) -> ActionVocabulary:
    return ActionVocabulary(list(VERBS), [c.noun for c in categories])


@dataclass(frozen=True)
class Ambience:
    """The persistent ambient bed of one long video."""

    seed: int
    level_db: float  # RMS in dBFS
    color: float  # one-pole low-pass coefficient of the noise (0 = white)
    hum_hz: float  # 0 = no hum
    hum_db: float  # hum level relative to level_db
    drift_hz: float  # slow level modulation
    drift_depth: float


@dataclass(frozen=True)
class ActionSoundLevels:
    """Loudness model of the narrated-action world (all levels are RMS in dBFS or dB).

    Calibrated (``avbench.data.synthetic.calibration.ego4d_energy_auc``) so that the
    clip RMS alone scores a discovery ROC-AUC of about 0.70 instead of 1.0.
    """

    #: per-video level of the ambient bed (was (-42, -30) with actions at -22..-14:
    #: every sounding clip was louder than every silent one)
    ambience_db: tuple[float, float] = (-48.0, -22.0)
    #: per-video depth of the bed's slow level drift (0.4 = +-3 dB)
    drift_depth: tuple[float, float] = (0.0, 0.5)
    #: an action's level while active, relative to its video's bed level
    action_snr_db: tuple[float, float] = (-3.0, 21.0)
    #: loudest action (keeps the mix out of clipping in the loudest videos)
    action_max_db: float = -12.0
    #: off-screen events per second of video (Poisson), their length and level over the bed
    offscreen_rate_hz: float = 0.25
    offscreen_seconds: tuple[float, float] = (0.6, 2.4)
    offscreen_snr_db: tuple[float, float] = (-3.0, 15.0)
    #: loudest off-screen event (below the loudest action: the mix stays out of clipping,
    #: so an action always adds energy to its window)
    offscreen_max_db: float = -18.0
    #: share of off-screen events that are the category's own sound (the rest are an
    #: action-like sound - hits / scrape / pour / rattle - at the category's pitch)
    offscreen_source_share: float = 0.5

    def to_dict(self) -> dict[str, object]:
        """JSON-ready field values."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


#: the levels every long video is sampled with (the bed level comes from the world config)
LEVELS = ActionSoundLevels()


def levels_of(config: WorldConfig) -> ActionSoundLevels:
    """:data:`LEVELS` with the bed level of ``config`` (``--world ambience_db=[lo, hi]``)."""
    return dataclasses.replace(LEVELS, ambience_db=tuple(config.ambience_db))
_ACTION_KINDS: tuple[str, ...] = ("hits", "scrape", "pour", "rattle")


@dataclass(frozen=True)
class OffscreenEvent:
    """A sound of a category not on the table, on the long video's absolute timeline."""

    start: float  # seconds into the long video
    duration: float
    category: int
    kind: str  # "source" (the category's own sound) | "hits" | "scrape" | "pour" | "rattle"
    rate_hz: float  # tempo of an action-like event
    level_db: float  # RMS while active, dBFS
    seed: int

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class Narration:
    time: float  # narration timestamp (seconds into the long video)
    verb: str  # canonical verb
    noun: str
    text: str  # "#C C cuts the carrot"
    sounding: bool
    uid: str  # annotation uid
    start: float = 0.0  # the action happens in [start, end)
    end: float = 0.0
    object: int = 0  # index into LongVideo.objects
    category: int = 0
    rate_hz: float = 1.0  # stroke / oscillation rate
    level_db: float = -18.0  # RMS of the action sound while active (sounding verbs)
    seed: int = 0
    snr_db: float = 0.0  # level_db relative to the video's bed level


@dataclass
class LongVideo:
    uid: str
    duration: float
    ambience: Ambience
    narrations: list[Narration]
    seed: int = 0
    background: Background | None = None
    objects: list[SceneObject] = field(default_factory=list)  # static tabletop objects
    skin: tuple[int, int, int] = (225, 180, 150)
    sleeve: tuple[int, int, int] = (60, 60, 90)
    rest: tuple[float, float] = (0.72, 0.9)  # hand position when idle
    offscreen: list[OffscreenEvent] = field(default_factory=list)  # sounds without a visual


# ----------------------------------------------------------------------------- sampling


def sample_long_video(
    config: WorldConfig,
    categories: Sequence[Category],
    vocab: ActionVocabulary,
    rng: np.random.Generator,
    duration: float,
    n_narrations: int,
    uid: str,
    levels: ActionSoundLevels | None = None,
) -> LongVideo:
    """A long video with ``n_narrations`` evenly spread narrated actions and its sounds.

    ``levels`` sets the bed level, the actions' SNR and the off-screen events
    (:class:`ActionSoundLevels`; default :func:`levels_of` ``config``: the module's
    :data:`LEVELS` with ``config.ambience_db``); ``config`` also the sounding-verb rate,
    objects and look.
    """
    levels = levels_of(config) if levels is None else levels
    seed = int(rng.integers(2**62))
    r = np.random.default_rng(seed)
    amb = Ambience(
        seed=int(r.integers(2**62)), level_db=float(r.uniform(*levels.ambience_db)),
        color=float(r.uniform(0.2, 0.97)),
        hum_hz=float(r.choice([0.0, r.uniform(50.0, 240.0)])), hum_db=float(r.uniform(-12.0, -3.0)),
        drift_hz=float(r.uniform(0.05, 0.3)), drift_depth=float(r.uniform(*levels.drift_depth)),
    )
    bg = sample_background(r)
    brightness = float(r.uniform(*config.brightness))
    n_obj = int(r.integers(config.workspace_objects[0], config.workspace_objects[1] + 1))
    cats = [int(c) for c in r.permutation(len(categories))[:n_obj]]
    objects: list[SceneObject] = []
    for c in cats:  # non-overlapping, on the table (upper 3/4 of the view); skip if no room
        for _ in range(200):
            o = place_object(r, categories[c], float(r.uniform(0.03, 0.08)), None, config,
                             brightness, False, outside=0.0)
            x0, y0, x1, y1 = rest_box(o)
            if y0 > 0.06 and y1 < 0.75 and all(box_iou(rest_box(o), rest_box(p)) == 0.0
                                                for p in objects):
                o.role = "workspace"
                objects.append(o)
                break
    if not objects:  # cannot happen with the default sizes; keep the video valid anyway
        o = place_object(r, categories[cats[0]], 0.05, None, config, brightness, False, outside=0.0)
        o.role = "workspace"
        objects.append(o)
    skin_h = r.uniform(0.04, 0.09)
    skin_v = r.uniform(0.45, 0.95)
    skin = tuple(int(255 * x) for x in colorsys.hsv_to_rgb(skin_h, r.uniform(0.25, 0.5), skin_v))
    sleeve = tuple(int(x) for x in r.integers(20, 140, 3))

    narrations: list[Narration] = []
    if n_narrations > 0:
        slot = duration / n_narrations
        for i in range(n_narrations):
            t = (i + 0.5) * slot + float(r.uniform(-0.1, 0.1)) * slot
            half = min(float(r.uniform(1.0, 1.4)), 0.45 * slot)
            sounding = bool(r.random() < config.sounding_verb_rate)
            pool = vocab.sounding_verbs if sounding else vocab.silent_verbs
            verb = pool[int(r.integers(len(pool)))]
            k = int(r.integers(len(objects)))
            noun = vocab.nouns[objects[k].category]
            snr = float(r.uniform(*levels.action_snr_db))
            narrations.append(Narration(
                time=float(t), verb=verb.name, noun=noun, text=vocab.narrate(verb.name, noun, r),
                sounding=verb.sounding, uid=str(uuid.UUID(bytes=r.bytes(16), version=4)),
                start=float(t - half), end=float(t + half), object=k,
                category=objects[k].category, rate_hz=float(r.uniform(*verb.rate_hz)),
                level_db=min(amb.level_db + snr, levels.action_max_db),
                seed=int(r.integers(2**62)), snr_db=min(snr, levels.action_max_db - amb.level_db),
            ))
    rest = (float(r.uniform(0.62, 0.8)), float(r.uniform(0.86, 0.93)))
    on_table = {o.category for o in objects}
    offscreen = sample_offscreen_events(np.random.default_rng([seed, 0x0FF5]), duration, amb.level_db,
                                        [c for c in range(len(categories)) if c not in on_table],
                                        levels)
    return LongVideo(uid=uid, duration=float(duration), ambience=amb, narrations=narrations,
                     seed=seed, background=bg, objects=objects, skin=skin,  # type: ignore[arg-type]
                     sleeve=sleeve, rest=rest, offscreen=offscreen)  # type: ignore[arg-type]


def sample_offscreen_events(rng: np.random.Generator, duration: float, bed_db: float,
                            categories: Sequence[int], levels: ActionSoundLevels = LEVELS
                            ) -> list[OffscreenEvent]:
    """Off-screen events of a long video: Poisson onsets at ``levels.offscreen_rate_hz``
    over ``[0, duration)``, each of a category in ``categories`` (those not on the table;
    none if empty) at ``levels.offscreen_snr_db`` over the bed level ``bed_db`` (capped
    at ``levels.offscreen_max_db``), sorted by start."""
    if not categories or levels.offscreen_rate_hz <= 0:
        return []
    events: list[OffscreenEvent] = []
    t = float(rng.exponential(1.0 / levels.offscreen_rate_hz))
    while t < duration:
        source = bool(rng.random() < levels.offscreen_source_share)
        kind = "source" if source else _ACTION_KINDS[int(rng.integers(len(_ACTION_KINDS)))]
        events.append(OffscreenEvent(
            start=t, duration=float(rng.uniform(*levels.offscreen_seconds)),
            category=int(categories[int(rng.integers(len(categories)))]), kind=kind,
            rate_hz=float(rng.uniform(0.8, 3.0)),
            level_db=min(bed_db + float(rng.uniform(*levels.offscreen_snr_db)),
                         levels.offscreen_max_db),
            seed=int(rng.integers(2**62))))
        t += float(rng.exponential(1.0 / levels.offscreen_rate_hz))
    return events


# ----------------------------------------------------------------------------- kinematics


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _target(video: LongVideo, n: Narration, motion: str) -> tuple[float, float]:
    o = video.objects[n.object]
    ox, oy = o.center
    if motion in ("strike", "touch"):
        return ox, oy - o.height / 2 - _HAND_R * 0.6
    if motion == "pour":
        return ox, oy - o.height / 2 - 0.12
    if motion == "point":
        return ox + 0.05, oy - o.height / 2 - 0.15
    if motion == "turn":
        return ox + o.width / 2, oy
    return ox, oy  # circle, shake, hold, lift: hand on the object


def _act(n: Narration, motion: str, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hand offset (dx, dy) during the act phase, ``tau`` seconds into it."""
    w = 2 * np.pi * n.rate_hz
    z = np.zeros_like(tau)
    if motion == "strike":
        return z, -0.12 * np.abs(np.sin(np.pi * n.rate_hz * tau))
    if motion == "circle":
        return 0.06 * np.sin(w * tau), 0.03 * np.sin(2 * w * tau)
    if motion == "shake":
        return 0.05 * np.sin(w * tau), z
    if motion == "lift":
        return z, -0.12 * np.sin(np.pi * np.clip(tau / max(_act_len(n), 1e-3), 0, 1))
    if motion == "point":
        return 0.015 * np.sin(w * tau), 0.01 * np.sin(0.5 * w * tau)
    if motion in ("pour", "hold", "touch", "turn"):
        return 0.006 * np.sin(w * tau), 0.006 * np.cos(w * tau)
    return z, z  # look


def _act_len(n: Narration) -> float:
    return max(n.end - n.start - 2 * APPROACH_S, 0.0)


def hand_position(video: LongVideo, vocab: ActionVocabulary, t: np.ndarray) -> np.ndarray:
    """Hand centre (x, y) at absolute times ``t``: float [T, 2]."""
    t = np.atleast_1d(np.asarray(t, np.float64))
    rx, ry = video.rest
    pos = np.stack([rx + 0.01 * np.sin(0.7 * t + video.seed % 7),
                    ry + 0.008 * np.sin(1.1 * t + video.seed % 5)], axis=1)
    for n in video.narrations:
        sel = (t >= n.start) & (t < n.end)
        if not sel.any():
            continue
        motion = vocab.verb(n.verb).motion
        if motion == "look":
            continue
        tt = t[sel]
        tx, ty = _target(video, n, motion)
        a = _smoothstep((tt - n.start) / APPROACH_S) * _smoothstep((n.end - tt) / APPROACH_S)
        dx, dy = _act(n, motion, np.maximum(tt - n.start - APPROACH_S, 0.0))
        inside = ((tt >= n.start + APPROACH_S) & (tt < n.end - APPROACH_S)).astype(np.float64)
        hx, hy = tx + dx * inside, ty + dy * inside
        pos[sel, 0] = pos[sel, 0] * (1 - a) + hx * a
        pos[sel, 1] = pos[sel, 1] * (1 - a) + hy * a
    return pos


def _object_boxes(video: LongVideo, vocab: ActionVocabulary, i: int, t: np.ndarray) -> np.ndarray:
    """Normalised boxes [T, 4] of workspace object ``i`` (moves under lift / shake / turn)."""
    o = video.objects[i]
    cx = np.full(t.shape, o.center[0])
    cy = np.full(t.shape, o.center[1])
    w = np.full(t.shape, o.width)
    h = np.full(t.shape, o.height)
    for n in video.narrations:
        if n.object != i:
            continue
        motion = vocab.verb(n.verb).motion
        sel = (t >= n.start + APPROACH_S) & (t < n.end - APPROACH_S)
        if not sel.any() or motion not in ("lift", "shake", "turn"):
            continue
        tau = t[sel] - n.start - APPROACH_S
        dx, dy = _act(n, motion, tau)
        if motion == "turn":
            w[sel] = o.width * (0.55 + 0.45 * np.abs(np.cos(np.pi * n.rate_hz * tau)))
        else:
            cx[sel] += dx
            cy[sel] += dy
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


# ----------------------------------------------------------------------------- rendering


def _draw_arm(canvas: np.ndarray, hand_px: np.ndarray, anchor_px: np.ndarray, radius: float,
              color: np.uint32) -> None:
    n_t, height, width = canvas.shape
    for k in range(n_t):
        (hx, hy), (ax, ay) = hand_px[k], anchor_px[k]
        x0 = max(int(min(hx, ax) - radius), 0)
        x1 = min(int(max(hx, ax) + radius) + 1, width)
        y0 = max(int(min(hy, ay) - radius), 0)
        y1 = min(int(max(hy, ay) + radius) + 1, height)
        if x1 <= x0 or y1 <= y0:
            continue
        px = np.arange(x0, x1) + 0.5
        py = (np.arange(y0, y1) + 0.5)[:, None]
        dx, dy = hx - ax, hy - ay
        den = max(dx * dx + dy * dy, 1e-9)
        s = np.clip(((px - ax) * dx + (py - ay) * dy) / den, 0.0, 1.0)
        d2 = (px - ax - s * dx) ** 2 + (py - ay - s * dy) ** 2
        region = canvas[k, y0:y1, x0:x1]
        region[d2 <= radius * radius] = color


def render_action_frames(video: LongVideo, categories: Sequence[Category], vocab: ActionVocabulary,
                         times: np.ndarray, size: int) -> np.ndarray:
    """uint8 [T, size, size, 3] of the tabletop, objects, arm and hand at absolute ``times``."""
    times = np.atleast_1d(np.asarray(times, np.float64))
    canvas = np.empty((times.size, size, size), np.uint32)
    bg = video.background or Background("gradient", (120, 110, 100), (90, 80, 70), 1.0, 0.0, 3.0, 0)
    canvas[...] = background_packed(bg, 1.0, size)[None]
    for i, o in enumerate(video.objects):
        paste(canvas, object_sprite(o, categories, size), _object_boxes(video, vocab, i, times) * size)
    hand = hand_position(video, vocab, times)
    anchor = np.stack([hand[:, 0] * 0.4 + 0.6 * (video.rest[0] + 0.2), np.full(times.size, 1.25)], 1)
    arm_color = pack_rgb(np.asarray(video.sleeve, np.uint8))
    _draw_arm(canvas, hand * size, anchor * size, _ARM_R * size, arm_color)
    d = int(np.ceil(2 * _HAND_R * size))
    sprite = render_sprite("disk", 0.0, 1.3, d, int(np.ceil(d * 1.3)), video.skin)
    boxes = np.stack([hand[:, 0] - 1.3 * _HAND_R, hand[:, 1] - _HAND_R,
                      hand[:, 0] + 1.3 * _HAND_R, hand[:, 1] + _HAND_R], axis=1) * size
    paste(canvas, sprite, boxes)
    return unpack_rgb(canvas)


def render_ambience(amb: Ambience, start: float, duration: float, sample_rate: int) -> np.ndarray:
    """The ambient bed on the absolute timeline ``[start, start + duration)``: float32 [L].

    White noise comes in one-second blocks seeded by ``(amb.seed, block)`` and
    is filtered with a 50-ms warm-up, so overlapping windows of one video agree
    (up to the filter's warm-up) and the level is the same in every clip.
    """
    n = int(round(duration * sample_rate))
    if n <= 0:
        return np.zeros(0, np.float32)
    i0 = int(round(start * sample_rate))
    warm = min(int(0.05 * sample_rate), max(i0, 0))
    a, b = i0 - warm, i0 + n
    blocks = range(a // sample_rate, (b - 1) // sample_rate + 1)
    white = np.concatenate([
        np.random.default_rng([amb.seed, blk]).standard_normal(sample_rate, dtype=np.float32)
        for blk in blocks])
    off = a - blocks[0] * sample_rate
    white = white[off:off + (b - a)]
    c = amb.color
    noise = lfilter(np.array([1.0 - c], np.float32), np.array([1.0, -c], np.float32), white)[warm:]
    noise *= np.float32(1.0 / np.sqrt((1 - c) / (1 + c)))
    # slow level drift on the absolute timeline (control rate, then interpolated)
    t_ctrl = start + np.arange(int(np.ceil(duration * CONTROL_RATE)) + 2) / CONTROL_RATE
    drift = 1.0 + amb.drift_depth * np.sin(2 * np.pi * amb.drift_hz * t_ctrl + amb.seed % 11)
    drift = to_audio_rate(drift / np.sqrt(1 + amb.drift_depth**2 / 2), n, sample_rate)
    level = np.float32(10 ** (amb.level_db / 20))
    out = level * noise * drift
    if amb.hum_hz > 0:  # phase-continuous on the absolute timeline
        hum = tone(amb.hum_hz, (1.0, 0.5), n, sample_rate, (amb.hum_hz * i0 / sample_rate) % 1.0)
        out += level * np.float32(10 ** (amb.hum_db / 20) / _HUM_RMS) * hum
    return out.astype(np.float32, copy=False)


def _kind_sound(kind: str, length: float, rate_hz: float, pitch_hz: float,
                rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """An action-like sound of ``kind`` over ``length`` s at tempo ``rate_hz``, unscaled."""
    m = int(round(length * sample_rate))
    tau = np.arange(m) / sample_rate
    f = rate_hz
    if kind == "hits":  # a struck resonance at every contact of the stroke
        onsets = np.arange(0.0, length, 1.0 / f)
        pitch = float(np.clip(pitch_hz, 150.0, 2500.0))
        pat = OnsetPattern(1.0, 1.0, 1, 0.0, 0.002, 0.0, float(rng.uniform(0.04, 0.09)))
        env = kernel_envelope(pat, onsets, np.ones(onsets.size), m, sample_rate)
        click = OnsetPattern(1.0, 1.0, 1, 0.0, 0.001, 0.0, 0.012)
        cenv = kernel_envelope(click, onsets, np.ones(onsets.size), m, sample_rate)
        y = env * tone(pitch, (1.0, 0.5, 0.3), m, sample_rate, float(rng.uniform()))
        y += 0.5 * cenv * band_noise(3000.0, 3000.0, m, sample_rate, rng)
    elif kind == "scrape":  # loudness follows the hand's speed
        w = 2 * np.pi * f
        speed = np.hypot(0.06 * w * np.cos(w * tau), 0.06 * w * np.cos(2 * w * tau))
        env = (speed / speed.max()).astype(np.float32)
        y = env * band_noise(float(rng.uniform(1800, 3500)), 1500.0, m, sample_rate, rng)
    elif kind == "pour":  # continuous gurgling band
        g = 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(6, 12) * tau + rng.uniform(0, 6.3))
        ramp = np.clip(np.minimum(tau, length - tau) / 0.1, 0, 1)
        y = (g * ramp).astype(np.float32) * band_noise(float(rng.uniform(800, 1400)), 600.0, m,
                                                       sample_rate, rng)
    else:  # rattle at the turning points of the shake
        onsets = (np.arange(0.0, length * 2 * f) + 0.5) / (2 * f)
        onsets = onsets[onsets < length]
        pat = OnsetPattern(1.0, 1.0, 1, 0.0, 0.002, 0.0, 0.035)
        env = kernel_envelope(pat, onsets, np.ones(onsets.size), m, sample_rate)
        y = env * band_noise(4200.0, 2500.0, m, sample_rate, rng)
    return np.asarray(y, np.float32)


def _at_level(y: np.ndarray, level_db: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    return (y * np.float32(10 ** (level_db / 20) / max(rms, 1e-12))).astype(np.float32)


def _action_sound(video: LongVideo, n: Narration, categories: Sequence[Category],
                  vocab: ActionVocabulary, sample_rate: int) -> np.ndarray:
    """The sound of one narrated action over its act phase [start + APPROACH_S, end - APPROACH_S)."""
    verb = vocab.verb(n.verb)
    length = _act_len(n)
    m = int(round(length * sample_rate))
    if not verb.sounding or m <= 0:
        return np.zeros(max(m, 0), np.float32)
    rng = np.random.default_rng([n.seed, 0xAC7])
    y = _kind_sound(verb.sound_kind, length, n.rate_hz, categories[n.category].pitch_hz, rng,
                    sample_rate)
    return _at_level(y, n.level_db)


def _offscreen_sound(e: OffscreenEvent, categories: Sequence[Category],
                     sample_rate: int) -> np.ndarray:
    """One off-screen event over its whole duration at its level: float32 [L]."""
    m = int(round(e.duration * sample_rate))
    if m <= 0:
        return np.zeros(0, np.float32)
    if e.kind == "source":  # the category's own sound, with its own onset pattern
        y = render_sound(categories[e.category].sound, e.seed, e.duration, sample_rate)
        if not np.any(y):  # an event pattern that stays off over this span: a steady tone
            y = tone(categories[e.category].pitch_hz, (1.0, 0.5), m, sample_rate)
    else:
        rng = np.random.default_rng([e.seed, 0x0FF])
        y = _kind_sound(e.kind, e.duration, e.rate_hz, categories[e.category].pitch_hz, rng,
                        sample_rate)
    ramp = np.clip(np.minimum(np.arange(y.size), y.size - 1 - np.arange(y.size))
                   / (0.02 * sample_rate), 0.0, 1.0).astype(np.float32)  # 20-ms fades
    return _at_level(y * ramp, e.level_db)


def _add_at(out: np.ndarray, snd: np.ndarray, t0: float, start: float, sample_rate: int) -> None:
    """Mix ``snd`` (starting at absolute time ``t0``) into ``out`` (starting at ``start``)."""
    j0 = int(round(t0 * sample_rate)) - int(round(start * sample_rate))
    lo, hi = max(j0, 0), min(j0 + snd.size, out.size)
    if hi > lo:
        out[lo:hi] += snd[lo - j0:hi - j0]


def render_background_audio(video: LongVideo, categories: Sequence[Category], start: float,
                            duration: float, sample_rate: int) -> np.ndarray:
    """The ambient bed + the off-screen events overlapping the window: float32 [L]
    (what the clip sounds like without its visible action; not clipped)."""
    out = render_ambience(video.ambience, start, duration, sample_rate)
    for e in video.offscreen:
        if e.end > start and e.start < start + duration:
            _add_at(out, _offscreen_sound(e, categories, sample_rate), e.start, start, sample_rate)
    return out


def render_action_audio(video: LongVideo, categories: Sequence[Category], vocab: ActionVocabulary,
                        start: float, duration: float, sample_rate: int) -> np.ndarray:
    """Background (bed + off-screen events) + the sounds of the visible actions overlapping
    the window, clipped to +-0.99: float32 [L]."""
    out = render_background_audio(video, categories, start, duration, sample_rate)
    for n in video.narrations:
        a = n.start + APPROACH_S
        if n.end - APPROACH_S <= start or a >= start + duration:
            continue
        snd = _action_sound(video, n, categories, vocab, sample_rate)
        if snd.size:
            _add_at(out, snd, a, start, sample_rate)
    return np.clip(out, -0.99, 0.99)
