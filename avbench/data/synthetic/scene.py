"""Scenes: layout sampling and rendering of frames, masks and the audio mix.

A :class:`Scene` is a small, picklable description (numbers only) of one clip:
which categories sound and are annotated, where every object is, which
sounds are heard but not seen, the background and the noise level. Every
pixel and sample is a deterministic function of the scene (and of the
world's categories), so writers can render frames, masks and audio of a scene
in any process and order and get identical arrays.

Layout calibration (DESIGN 4.3): annotated objects' box areas follow the
quantile knots ``config.object_area_quantiles`` (fitted so that each test
split's GT-area quantiles match the real benchmark's), a share
``config.off_center_rate`` of them is pushed towards a border and the rest
is centred with spread ``config.center_spread``, so the centre prior and the
full image are fair but beatable baselines. See
:mod:`avbench.data.synthetic.calibration` and docs "Calibration".

Draw order is the order of ``scene.objects``: silent objects first (behind),
then the annotated sources, then the few silent objects drawn in front
(``config.distractor_front_rate``); masks are the *visible* pixels.
"""

from __future__ import annotations

import colorsys
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from avbench.data.synthetic.categories import Category
from avbench.data.synthetic.config import AREA_QUANTILE_PROBS, WorldConfig
from avbench.data.synthetic.graph import CooccurrenceGraph
from avbench.data.synthetic.sound import colored_noise, motion_envelope, render_sound
from avbench.data.synthetic.sprites import (
    paste,
    render_sprite,
    shape_extent,
    silhouette,
    unpack_rgb,
)

BACKGROUND_KINDS: tuple[str, ...] = ("gradient", "stripes", "checker", "clouds")
_MAX_SIDE = 0.98  # an object's largest box side, as a fraction of the image


@dataclass(frozen=True)
class Background:
    """A muted background texture (deterministic from its parameters)."""

    kind: str
    color_a: tuple[int, int, int]
    color_b: tuple[int, int, int]
    freq: float  # cycles per image (stripes/checker) or grid cells (clouds)
    angle: float
    grain: float  # std of static per-pixel noise (0..255 units)
    seed: int


@dataclass
class SceneObject:
    """A visible object. Geometry is normalised to the image (0..1, y down)."""

    category: int
    sounding: bool  # its sound is in the mix
    annotated: bool  # it is a labelled source (boxes/masks/labels)
    center: tuple[float, float]  # (x, y) of the box centre at rest
    scale: float  # sqrt of the box-area fraction at rest
    rotation: float  # radians (baked into the sprite)
    aspect: float  # stretch of the shape before rotation (x over y)
    width: float  # box width at rest (fraction of the image width)
    height: float  # box height at rest
    pulse: float  # relative growth of the box at full envelope
    bounce: float  # upward shift at full envelope, fraction of the box height
    moving: bool  # False: static; True: follows motion_category's envelope
    motion_seed: int  # seed of that envelope (= the seed of its sound if sounding)
    motion_category: int  # whose onset pattern drives the motion
    color: tuple[int, int, int]
    texture_color: tuple[int, int, int]
    role: str = "source"  # "source" | "distractor" | "cooccurring"

    @property
    def area(self) -> float:
        """Box-area fraction at rest."""
        return self.width * self.height


@dataclass(frozen=True)
class AudioSource:
    """One sound in the mix."""

    category: int
    seed: int  # seeds its event onsets (and the motion of its object, if visible)
    gain_db: float  # scene gain (the category loudness is added when mixing)
    role: str  # "source" (visible, annotated) | "offscreen" | "cooccurring"
    object: int = -1  # index into scene.objects, -1 if not visible


@dataclass
class Scene:
    """One clip's planted truth; see module docstring."""

    seed: int
    labels: list[int]  # annotated categories, first = primary
    objects: list[SceneObject]
    offscreen: list[int]  # off-screen nuisance sources (not in the picture, not labelled)
    cooccurring: list[tuple[int, str]]  # (category, modality) added by the planted graph
    snr_db: float  # mix of sources vs background noise
    background: Background
    sources: list[AudioSource] = field(default_factory=list)
    noise_color: float = 0.5  # background noise low-pass coefficient (0 = white)
    brightness: float = 1.0

    @property
    def annotated_objects(self) -> list[int]:
        return [i for i, o in enumerate(self.objects) if o.annotated]


# ----------------------------------------------------------------------------- sampling


def sample_area(rng: np.random.Generator, config: WorldConfig) -> float:
    """Box-area fraction of an annotated object: inverse-CDF draw from
    ``config.object_area_quantiles`` (log-linear between the knots)."""
    u = float(rng.uniform())
    return float(np.exp(np.interp(u, AREA_QUANTILE_PROBS, np.log(config.object_area_quantiles))))


def _jitter_color(c: tuple[int, int, int], std: float, brightness: float,
                  rng: np.random.Generator) -> tuple[int, int, int]:
    v = (np.asarray(c, np.float64) + rng.normal(0.0, std, 3)) * brightness
    return tuple(int(x) for x in np.clip(np.round(v), 0, 255))  # type: ignore[return-value]


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-12)


def _axis_range(before: float, after: float, extent: float, out: float) -> tuple[float, float]:
    """(mid, half-width) of the centre positions keeping an object that reaches ``before`` /
    ``after`` from its centre inside [0, 1], up to ``out * extent`` overhang per border."""
    lo, hi = before - out * extent, 1.0 - after + out * extent
    if hi < lo:
        return (lo + hi) / 2.0, 0.0
    return (lo + hi) / 2.0, (hi - lo) / 2.0


def place_object(
    rng: np.random.Generator,
    cat: Category,
    area: float,
    spread: float | None,
    config: WorldConfig,
    brightness: float,
    moving: bool,
    outside: float | None = None,
) -> SceneObject:
    """An object of ``cat`` with box area ``area`` (before clipping by the frame).

    Placement (``spread`` not None, annotated sources): with probability
    ``1 - config.off_center_rate`` the object is fully in the frame with its
    centre drawn from a normal of std ``spread`` (fraction of the free range,
    truncated by redrawing); otherwise it is pushed towards a random border
    (offset in +-[0.8, 1] of a range that lets ``config.max_outside`` of the
    box overhang the border, like real objects cut by the frame). With
    ``spread=None`` (silent objects) the centre is uniform over the range with
    ``outside`` (default ``config.max_outside``) overhang.
    """
    v = cat.visual
    aspect = float(v.aspect * np.exp(rng.normal(0.0, config.aspect_jitter)))
    rotation = float(v.rotation + rng.normal(0.0, 0.15))
    x0, y0, x1, y1 = shape_extent(v.shape, round(rotation, 4), round(aspect, 4))
    ratio = (x1 - x0) / (y1 - y0)
    pulse = float(rng.uniform(*config.pulse)) if moving else 0.0
    bounce = float(rng.uniform(*config.bounce)) if moving else 0.0
    w, h = np.sqrt(area * ratio), np.sqrt(area / ratio)
    # a side longer than the frame allows is capped and the other side grows to keep the area
    # (large GT boxes span the frame; the sprite fills whatever box it gets)
    cap_w, cap_h = _MAX_SIDE / (1 + pulse), _MAX_SIDE / (1 + pulse + bounce)
    if w > cap_w:
        w, h = cap_w, min(area / cap_w, cap_h)
    elif h > cap_h:
        w, h = min(area / cap_h, cap_w), cap_h
    wm, hm = w * (1 + pulse), h * (1 + pulse)  # largest box during the motion

    def ranges(out: float) -> list[tuple[float, float]]:
        return [_axis_range(wm / 2, wm / 2, wm, out),
                _axis_range(hm / 2 + bounce * h, hm / 2, hm, out)]

    if spread is None:
        out = config.max_outside if outside is None else outside
        u = rng.uniform(-1.0, 1.0, 2)
        rx = ranges(out)
    else:
        z = rng.normal(0.0, spread, (16, 2))
        ok = np.abs(z) <= 1.0
        u = np.array([z[ok[:, k], k][0] if ok[:, k].any() else np.clip(z[0, k], -1, 1)
                      for k in range(2)])
        off, axis = rng.random() < config.off_center_rate, int(rng.integers(2))
        side, far, other = rng.choice([-1.0, 1.0]), rng.uniform(0.8, 1.0), rng.uniform(-1.0, 1.0)
        if off:
            u[axis], u[1 - axis] = side * far, other
            rx = ranges(config.max_outside if outside is None else outside)
        else:
            rx = ranges(0.0)
    cx, cy = rx[0][0] + rx[0][1] * float(u[0]), rx[1][0] + rx[1][1] * float(u[1])
    return SceneObject(
        category=cat.index, sounding=False, annotated=False, center=(float(cx), float(cy)),
        scale=float(np.sqrt(w * h)), rotation=round(rotation, 4), aspect=round(aspect, 4),
        width=float(w), height=float(h), pulse=pulse, bounce=bounce, moving=moving,
        motion_seed=int(rng.integers(2**62)), motion_category=cat.index,
        color=_jitter_color(v.color, config.color_jitter, brightness, rng),
        texture_color=_jitter_color(v.texture_color, config.color_jitter, brightness, rng),
    )


def rest_box(o: SceneObject) -> tuple[float, float, float, float]:
    cx, cy = o.center
    return (cx - o.width / 2, cy - o.height / 2, cx + o.width / 2, cy + o.height / 2)


def _muted(rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    h = rng.uniform()
    s = rng.uniform(0.03, 0.3)
    v = rng.uniform(0.35, 0.8)
    a = colorsys.hsv_to_rgb(h, s, v)
    b = colorsys.hsv_to_rgb((h + rng.uniform(-0.08, 0.08)) % 1.0, s * rng.uniform(0.5, 1.2),
                            float(np.clip(v + rng.choice([-1, 1]) * rng.uniform(0.08, 0.2), 0.1, 0.95)))
    return (tuple(int(x * 255) for x in a), tuple(int(x * 255) for x in b))  # type: ignore[return-value]


def sample_background(rng: np.random.Generator) -> Background:
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    a, b = _muted(rng)
    freq = float(rng.uniform(3, 6) if kind == "clouds" else rng.uniform(1.5, 7.0))
    return Background(kind, a, b, freq, float(rng.uniform(0, np.pi)), float(rng.uniform(2, 7)),
                      int(rng.integers(2**62)))


def sample_scene(
    config: WorldConfig,
    categories: Sequence[Category],
    graph: CooccurrenceGraph,
    rng: np.random.Generator,
    labels: int | Sequence[int],
    *,
    offscreen: bool | None = None,
    n_distractors: int | None = None,
    cooccurrence: bool = True,
) -> Scene:
    """Draw a scene whose annotated, sounding, visible categories are ``labels``.

    The caller's ``rng`` advances by exactly one draw (the scene seed); all
    content comes from ``default_rng(seed)``.
    """
    n_cat = len(categories)
    labels = [int(labels)] if isinstance(labels, (int, np.integer)) else [int(c) for c in labels]
    if not labels:
        raise ValueError("a scene needs at least one annotated category")
    if len(set(labels)) != len(labels) or not all(0 <= c < n_cat for c in labels):
        raise ValueError(f"labels must be distinct category indices in [0, {n_cat}), got {labels}")
    seed = int(rng.integers(2**62))
    r = np.random.default_rng(seed)
    brightness = float(r.uniform(*config.brightness))

    # planted co-occurrence (always draw, so the stream does not depend on the flag)
    cooc: list[tuple[int, str]] = []
    for a in labels:
        for b, modality, p in graph.out_edges(a):
            hit = r.random() < p
            if cooccurrence and hit and b not in labels and (b, modality) not in cooc:
                cooc.append((b, modality))
    cooc_visual = [b for b, m in cooc if m == "visual"]
    cooc_audio = [b for b, m in cooc if m == "audio"]

    # distractors: silent, not a label, not heard
    if n_distractors is None:
        n_distractors = int(r.integers(config.n_distractors[0], config.n_distractors[1] + 1))
    banned = set(labels) | set(cooc_visual) | set(cooc_audio)
    pool = [c for c in range(n_cat) if c not in banned]
    distractors = [int(c) for c in r.permutation(pool)[:n_distractors]]
    visible = set(labels) | set(cooc_visual) | set(distractors)

    # off-screen source: heard, never seen
    if offscreen is None:
        offscreen = bool(r.random() < config.offscreen_rate)
    pool = [c for c in range(n_cat) if c not in visible and c not in cooc_audio]
    off = [int(r.choice(pool))] if offscreen and pool else []

    # annotated sources, centre-biased, little mutual overlap
    k = len(labels)
    sources: list[SceneObject] = []
    for c in labels:
        area = sample_area(r, config) * k ** (-config.multi_source_shrink)
        best, best_iou = None, np.inf
        for _ in range(30):
            o = place_object(r, categories[c], area, config.center_spread, config, brightness, True)
            iou = max((box_iou(rest_box(o), rest_box(s)) for s in sources), default=0.0)
            if iou < best_iou:
                best, best_iou = o, iou
            if iou <= 0.15:
                break
        assert best is not None
        if config.group_sources and sources:
            _group_with(best, sources, len(sources), config, r)
        best.sounding, best.annotated, best.role = True, True, "source"
        sources.append(best)

    # silent objects (visual co-occurrence + distractors), uniform placement
    behind: list[SceneObject] = []
    front: list[SceneObject] = []
    for c, role in [(c, "cooccurring") for c in cooc_visual] + [(c, "distractor") for c in distractors]:
        lo, hi = config.distractor_area
        area = float(np.exp(r.uniform(np.log(lo), np.log(hi))))
        moving = bool(r.random() < config.distractor_motion_rate)
        in_front = bool(r.random() < config.distractor_front_rate)
        o = place_object(r, categories[c], area, None, config, brightness, moving)
        if in_front:  # do not hide more than a third of any source
            for _ in range(20):
                ov = max(_overlap_frac(rest_box(s), rest_box(o)) for s in sources)
                if ov <= 1 / 3:
                    break
                o = place_object(r, categories[c], area, None, config, brightness, moving)
            else:
                in_front = False
        if moving:  # an envelope that nobody hears
            o.motion_category = int(r.integers(n_cat))
        o.role = role
        (front if in_front else behind).append(o)
    objects = behind + sources + front

    audio: list[AudioSource] = []
    for i, o in enumerate(objects):
        if o.sounding:
            audio.append(AudioSource(o.category, o.motion_seed,
                                     float(r.uniform(*config.source_gain_db)), "source", i))
    for c in off:
        audio.append(AudioSource(c, int(r.integers(2**62)),
                                 float(r.uniform(*config.offscreen_gain_db)), "offscreen"))
    for c in cooc_audio:
        audio.append(AudioSource(c, int(r.integers(2**62)),
                                 float(r.uniform(*config.cooccurrence_gain_db)), "cooccurring"))
    return Scene(
        seed=seed, labels=labels, objects=objects, offscreen=off, cooccurring=cooc,
        snr_db=float(r.uniform(*config.snr_db)), background=sample_background(r), sources=audio,
        noise_color=float(r.uniform(0.0, 0.95)), brightness=brightness,
    )


def _group_with(obj: SceneObject, sources: list[SceneObject], j: int, config: WorldConfig,
                rng: np.random.Generator) -> None:
    """Move annotated source ``obj`` next to the first source (side by side, alternating
    sides for j = 1, 2, like musicians of one band); at most ``config.max_outside`` of its
    box leaves the frame."""
    first = sources[0]
    side = 1.0 if j % 2 else -1.0
    anchor = max(sources, key=lambda o: side * o.center[0])  # outermost source on that side
    gap = float(rng.uniform(-0.15, 0.1))
    cx = anchor.center[0] + side * (anchor.width / 2 + obj.width / 2) * (1 + gap)
    cy = first.center[1] + (first.height - obj.height) / 2 * float(rng.uniform(-0.2, 1.0))
    out = config.max_outside
    lo_x, hi_x = obj.width * (0.5 - out), 1 - obj.width * (0.5 - out)
    lo_y, hi_y = obj.height * (0.5 - out), 1 - obj.height * (0.5 - out)
    obj.center = (float(np.clip(cx, lo_x, hi_x)), float(np.clip(cy, lo_y, hi_y)))


def _overlap_frac(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Fraction of box ``a`` covered by box ``b``."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max((a[2] - a[0]) * (a[3] - a[1]), 1e-12)


# ----------------------------------------------------------------------------- rendering


def motion(obj: SceneObject, categories: Sequence[Category], times: np.ndarray) -> np.ndarray:
    """The object's motion envelope in [0, 1] at ``times`` (0 for static objects)."""
    times = np.atleast_1d(np.asarray(times, np.float64))
    if not obj.moving:
        return np.zeros(times.shape)
    return motion_envelope(categories[obj.motion_category].sound.onset, obj.motion_seed, times)


def object_boxes(obj: SceneObject, categories: Sequence[Category], times: np.ndarray) -> np.ndarray:
    """Normalised ``(x0, y0, x1, y1)`` of the object's box at each time: float [T, 4]."""
    m = motion(obj, categories, times)
    s = 1.0 + obj.pulse * m
    w, h = obj.width * s, obj.height * s
    cx = np.full_like(m, obj.center[0])
    cy = obj.center[1] - obj.bounce * obj.height * m
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def object_sprite(obj: SceneObject, categories: Sequence[Category], size: int) -> np.ndarray:
    """The object's sprite at its largest on-screen size for a ``size``-pixel frame."""
    v = categories[obj.category].visual
    grow = 1.0 + obj.pulse
    return render_sprite(
        v.shape, obj.rotation, obj.aspect,
        int(np.ceil(obj.height * grow * size)), int(np.ceil(obj.width * grow * size)),
        tuple(int(c) for c in obj.color), v.texture, tuple(int(c) for c in obj.texture_color),
        v.texture_freq, v.texture_angle,
    )


_GRAIN_SIDE = 512


@functools.lru_cache(maxsize=1)
def _grain() -> np.ndarray:
    """A fixed field of unit Gaussian grain; scenes use random windows of it (cheap)."""
    return np.random.default_rng(0x6A1).standard_normal((_GRAIN_SIDE, _GRAIN_SIDE), dtype=np.float32)


def _background_field(bg: Background, size: int) -> np.ndarray:
    """float32 [size, size] in [0, 1]: where the background is ``color_b`` rather than ``color_a``."""
    g = ((np.arange(size) + 0.5) / size).astype(np.float32)
    ca, sa = np.float32(np.cos(bg.angle)), np.float32(np.sin(bg.angle))
    if bg.kind == "gradient":
        f = g[None, :] * ca + g[:, None] * sa
        return (f - f.min()) / max(float(np.ptp(f)), 1e-9)
    if bg.kind == "stripes":
        u = g[None, :] * ca + g[:, None] * sa
        return np.float32(0.5) + np.float32(0.5) * np.sin(np.float32(2 * np.pi * bg.freq) * u)
    if bg.kind == "checker":
        s = np.sin(np.float32(2 * np.pi * bg.freq) * g)
        return np.float32(0.5) + np.float32(0.5) * np.tanh(np.float32(3.0) * s[None, :] * s[:, None])
    n = max(2, int(round(bg.freq)))  # clouds: bilinear upsampling of a coarse random grid
    coarse = np.random.default_rng(bg.seed).uniform(size=(n, n))
    pos = g * (n - 1)
    m = np.stack([np.interp(pos, np.arange(n), np.eye(n)[j]) for j in range(n)], axis=1)
    f = m @ coarse @ m.T
    return ((f - f.min()) / max(float(np.ptp(f)), 1e-9)).astype(np.float32)


def background_packed(bg: Background, brightness: float, size: int) -> np.ndarray:
    """The background as packed RGBA: uint32 [size, size]."""
    field_ = _background_field(bg, size)
    rng = np.random.default_rng([bg.seed, size])
    oy, ox = (int(v) for v in rng.integers(0, _GRAIN_SIDE - size + 1, 2)) if size <= _GRAIN_SIDE else (0, 0)
    grain = _grain()[oy:oy + size, ox:ox + size] if size <= _GRAIN_SIDE else \
        rng.standard_normal((size, size), dtype=np.float32)
    grain = grain * np.float32(bg.grain)
    out = np.full((size, size), 0xFF000000, np.uint32)
    for c in range(3):
        a, b = bg.color_a[c] * brightness, bg.color_b[c] * brightness
        plane = np.float32(a) + np.float32(b - a) * field_ + grain
        out |= np.clip(plane, 0, 255).astype(np.uint32) << np.uint32(8 * c)
    return out


def render_background(bg: Background, brightness: float, size: int) -> np.ndarray:
    """uint8 [size, size, 3]."""
    return unpack_rgb(background_packed(bg, brightness, size))


def render_frames(scene: Scene, categories: Sequence[Category], times: np.ndarray,
                  size: int) -> np.ndarray:
    """uint8 [T, size, size, 3] at ``times`` (seconds)."""
    times = np.atleast_1d(np.asarray(times, np.float64))
    canvas = np.empty((times.size, size, size), np.uint32)
    canvas[...] = background_packed(scene.background, scene.brightness, size)[None]
    for obj in scene.objects:
        sprite = object_sprite(obj, categories, size)
        paste(canvas, sprite, object_boxes(obj, categories, times) * size)
    return unpack_rgb(canvas)


def silhouettes(scene: Scene, categories: Sequence[Category], t: float, size: int) -> list[np.ndarray]:
    """Each object's full (unoccluded) pixel mask at time ``t``: list of bool [size, size]."""
    out = []
    for obj in scene.objects:
        box = object_boxes(obj, categories, np.array([t]))[0] * size
        out.append(silhouette(object_sprite(obj, categories, size), box, size, size))
    return out


def visible_masks(scene: Scene, categories: Sequence[Category], t: float, size: int) -> list[np.ndarray]:
    """Each object's visible pixels at ``t`` (objects drawn later occlude earlier ones)."""
    sil = silhouettes(scene, categories, t, size)
    covered = np.zeros((size, size), dtype=bool)
    out: list[np.ndarray] = [np.zeros(0, bool)] * len(sil)
    for i in range(len(sil) - 1, -1, -1):
        out[i] = sil[i] & ~covered
        covered |= sil[i]
    return out


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Normalised tight box ``(x0, y0, x1, y1)`` of a bool mask (pixel edges); zeros if empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return (0.0, 0.0, 0.0, 0.0)
    h, w = mask.shape
    return (float(xs.min() / w), float(ys.min() / h), float((xs.max() + 1) / w),
            float((ys.max() + 1) / h))


def render_mix(scene: Scene, categories: Sequence[Category], duration: float, sample_rate: int,
               config: WorldConfig) -> np.ndarray:
    """The scene's audio: all sources + background noise at ``scene.snr_db``; float32 [L]."""
    n = int(round(duration * sample_rate))
    if n <= 0:
        return np.zeros(0, np.float32)
    mix = np.zeros(n, np.float32)
    for src in scene.sources:
        cat = categories[src.category]
        gain = np.float32(10 ** ((src.gain_db + cat.sound.loudness_db) / 20))
        mix += gain * render_sound(cat.sound, src.seed, duration, sample_rate)
    sig_rms = float(np.sqrt(np.mean(np.square(mix, dtype=np.float64)))) if n else 0.0
    noise = colored_noise(n, scene.noise_color, np.random.default_rng([scene.seed, 0x2015E]))
    noise_rms = sig_rms / 10 ** (scene.snr_db / 20) if sig_rms > 0 else 0.1
    out = mix + np.float32(noise_rms) * noise
    rms = float(np.sqrt(np.mean(np.square(out, dtype=np.float64)))) if n else 0.0
    peak = float(np.abs(out).max()) if n else 0.0
    scale = min(config.mix_rms / max(rms, 1e-12), 0.95 / max(peak, 1e-12))
    return (out * np.float32(scale)).astype(np.float32, copy=False)
