"""Categories of the synthetic world: a visual, a sound and a speech identity each.

A category is what a dataset calls a class ("dog barking"): here it is a
shape + colour + texture that is seen, a sound kind + pitch + rhythm that is
heard, and a word that is spoken. Identities are drawn so that every category
is distinguishable in each modality on its own, except for a few planted
*confusable pairs* that look alike but sound different (``"visual"``) or sound
alike but look different (``"audio"``): they make the two modalities carry
complementary information, which is what AV learning should exploit.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import numpy as np

from avbench.data.synthetic.config import WorldConfig
from avbench.data.synthetic.sound import SOUND_KINDS, SoundIdentity, sample_sound_identity
from avbench.data.synthetic.speech import SpeechIdentity, sample_speech_identities
from avbench.data.synthetic.sprites import SHAPES, TEXTURES

#: saturated object colours (backgrounds are muted, so objects stand out)
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 215, 40),
    "lime": (150, 220, 50),
    "green": (35, 150, 60),
    "teal": (20, 150, 140),
    "cyan": (70, 205, 235),
    "blue": (40, 80, 215),
    "purple": (125, 50, 185),
    "magenta": (215, 50, 175),
    "pink": (250, 150, 190),
    "brown": (130, 75, 35),
    "white": (245, 245, 240),
    "black": (25, 25, 30),
}
_TEXTURE_WORD = {"plain": "", "stripes": "striped", "dots": "dotted", "checker": "checkered",
                 "rings": "ringed"}
#: everyday object names for narrations (Ego4D nouns); a category's look is its noun's look
NOUNS: tuple[str, ...] = (
    "carrot", "cup", "knife", "bowl", "plate", "bottle", "box", "pan", "spoon", "book",
    "phone", "ball", "brush", "can", "jar", "lid", "towel", "bag", "tray", "paper",
    "sponge", "board", "pot", "key", "pen", "glass", "apple", "onion", "bread", "bucket",
    "tomato", "lemon", "mug", "kettle", "fork", "scissors", "remote", "cloth", "wrench",
    "toy", "block", "tape", "bell", "drum", "whistle", "clock", "lamp", "basket",
)


@dataclass(frozen=True)
class VisualIdentity:
    """How a category looks."""

    shape: str  # one of sprites.SHAPES
    color: tuple[int, int, int]  # RGB
    color_name: str
    texture: str  # one of sprites.TEXTURES
    texture_color: tuple[int, int, int]
    texture_freq: float  # texture cycles across the object
    texture_angle: float  # radians (stripes)
    aspect: float  # typical stretch of the shape (x over y)
    rotation: float  # typical orientation, radians


@dataclass(frozen=True)
class Category:
    """One class of the world (``index`` into ``world.categories``)."""

    index: int
    name: str  # readable and unique, e.g. "red striped disk"
    visual: VisualIdentity
    sound: SoundIdentity
    speech: SpeechIdentity
    noun: str  # object name used in narrations

    @property
    def pitch_hz(self) -> float:
        """Frequency where the category's sound energy peaks (= ``sound.pitch_hz``)."""
        return self.sound.pitch_hz


def _name(v: VisualIdentity) -> str:
    words = [v.color_name, _TEXTURE_WORD[v.texture], v.shape]
    return " ".join(w for w in words if w)


def _texture_color(color: tuple[int, int, int], rng: np.random.Generator) -> tuple[int, int, int]:
    """A contrasting second colour for the texture: darker or lighter version of ``color``."""
    c = np.asarray(color, np.float64)
    lum = float(c @ [0.299, 0.587, 0.114])
    f = rng.uniform(0.35, 0.55)
    out = c * f if lum > 110 else c + (255 - c) * (1 - f)
    return tuple(int(v) for v in np.clip(out, 0, 255))  # type: ignore[return-value]


def _shift_color(color: tuple[int, int, int], rng: np.random.Generator
                 ) -> tuple[tuple[int, int, int], str]:
    """A nearby colour (small hue and value shift) for a visually confusable twin, and the
    modifier naming it (``"dark"``, or ``"light"`` for colours already near black)."""
    h, s, v = colorsys.rgb_to_hsv(*(np.asarray(color) / 255.0))
    h = (h + rng.choice([-1, 1]) * rng.uniform(0.02, 0.035)) % 1.0
    if v < 0.35:
        v, word = float(np.clip(v + rng.uniform(0.08, 0.12), 0, 1)), "light"
    else:
        v, word = float(np.clip(v * rng.uniform(0.85, 0.92), 0, 1)), "dark"
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (int(r * 255), int(g * 255), int(b * 255)), word


def _visual(rng: np.random.Generator, color_name: str, shape: str, texture: str) -> VisualIdentity:
    color = PALETTE[color_name]
    return VisualIdentity(
        shape=shape, color=color, color_name=color_name, texture=texture,
        texture_color=_texture_color(color, rng), texture_freq=float(rng.uniform(2.5, 5.0)),
        texture_angle=float(rng.uniform(0, np.pi)), aspect=float(np.exp(rng.uniform(-0.25, 0.25))),
        rotation=float(rng.uniform(-0.4, 0.4)),
    )


def make_categories(
    config: WorldConfig, rng: np.random.Generator
) -> tuple[list[Category], dict[str, list[tuple[int, int]]]]:
    """Draw ``config.n_categories`` categories and the confusable pairs.

    Colours cycle through the palette (each used about equally often) and the
    shape differs among categories of one colour, so colour + shape identify a
    category; sound kinds cycle too, and pitches are log-spaced over
    ``pitch_range_hz`` then shuffled, so neighbours in pitch usually differ in
    kind and look.
    """
    n = config.n_categories
    if n < 2:
        raise ValueError("n_categories must be >= 2")
    colors = list(PALETTE)
    color_order = [colors[i] for i in rng.permutation(len(colors))]
    used: set[tuple[str, str, str]] = set()
    visuals: list[VisualIdentity] = []
    for c in range(n):
        cname = color_order[c % len(color_order)]
        for _ in range(1000):
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            if any(k[0] == cname and k[1] == shape for k in used) and len(used) < len(colors) * len(SHAPES):
                continue
            texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
            if shape == "ring" and texture == "rings":
                continue
            if (cname, shape, texture) not in used:
                break
        used.add((cname, shape, texture))
        visuals.append(_visual(rng, cname, shape, texture))

    lo, hi = config.pitch_range_hz
    pitches = np.exp(np.linspace(np.log(lo), np.log(hi), n))[rng.permutation(n)]
    kinds = [SOUND_KINDS[i] for i in rng.permutation(np.arange(n) % len(SOUND_KINDS))]
    sounds = [sample_sound_identity(k, float(p), rng) for k, p in zip(kinds, pitches)]
    speech = sample_speech_identities(n, rng)

    # confusable pairs, on disjoint categories
    order = [int(i) for i in rng.permutation(n)]
    n_vis = min(config.n_confusable_visual, n // 4)
    n_aud = min(config.n_confusable_audio, n // 4)
    pairs_v = [(order[2 * k], order[2 * k + 1]) for k in range(n_vis)]
    pairs_a = [(order[2 * (n_vis + k)], order[2 * (n_vis + k) + 1]) for k in range(n_aud)]
    for i, j in pairs_v:
        # j looks like i (same shape/texture/stretch, near colour); sounds stay their own
        vi = visuals[i]
        twin_color, word = _shift_color(vi.color, rng)
        visuals[j] = replace(vi, color=twin_color, color_name=f"{word} {vi.color_name}",
                             texture_color=_texture_color(twin_color, rng))
        if sounds[i].kind == sounds[j].kind and max(sounds[i].pitch_hz, sounds[j].pitch_hz) < 1.3 * min(
                sounds[i].pitch_hz, sounds[j].pitch_hz):
            sounds[j] = replace(sounds[j], pitch_hz=float(np.clip(sounds[i].pitch_hz * 2.0, lo, hi * 1.5)))
    for i, j in pairs_a:
        # j sounds like i (same kind, profile and rhythm, pitch a few % apart); looks stay their own
        si = sounds[i]
        pj = si.pitch_hz * config.confusable_pitch_ratio
        sounds[j] = replace(si, pitch_hz=float(pj),
                            bandwidth_hz=si.bandwidth_hz * config.confusable_pitch_ratio)

    names: set[str] = set()
    categories: list[Category] = []
    for c in range(n):
        name = _name(visuals[c])
        while name in names:  # only possible with more categories than combinations
            name = f"{name} {c}"
        names.add(name)
        noun = NOUNS[c] if c < len(NOUNS) else f"{NOUNS[c % len(NOUNS)]}{c // len(NOUNS) + 1}"
        categories.append(Category(c, name, visuals[c], sounds[c], speech[c], noun))
    return categories, {"visual": pairs_v, "audio": pairs_a}
