"""The synthetic audio-visual world: the one object writers talk to.

``World(config, seed)`` draws the categories (visual, sound and speech
identities, confusable pairs), the planted co-occurrence graph and the action
vocabulary, all from ``seed``; scenes and long videos are then sampled from a
caller's generator and rendered deterministically. The API is the contract in
``docs/synthetic_world.md``; the physics lives in the sibling modules:

- :mod:`.categories` - visual/sound/speech identities, confusable pairs;
- :mod:`.sound`, :mod:`.speech` - source synthesis, event envelopes, words;
- :mod:`.sprites`, :mod:`.scene` - layout, frames, masks, the audio mix;
- :mod:`.graph` - the planted (category, modality) graph;
- :mod:`.actions` - Ego4D-style long videos, verbs, ambience;
- :mod:`.calibration` - trivial-baseline localization scores of the layout.

Independent random streams (``[seed, k]``) feed categories, graph and actions,
so changing e.g. ``graph_edges`` does not change the categories.

Additions beyond the contract (writers may use them): :func:`frame_times`,
``World.sounding_masks`` (per-frame masks), ``World.object_box`` (sub-pixel
geometric box), ``World.motion`` (an object's motion envelope),
``World.render_ambience`` (a long video's ambient bed alone), ``Scene.sources``
(every sound in the mix with its gain and seed), ``Narration.start/end``
(the action interval), ``Narration.category``, ``Category.noun`` and
``World.from_categories`` (a world over given categories: the pretraining corpus).
``SceneObject.scale`` is the square root of its box-area fraction at rest;
``sounding_boxes`` are tight around each annotated object's full silhouette
(a silent object drawn in front does not shrink the box; masks are the
visible pixels).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from avbench.data.synthetic.actions import (
    ActionVocabulary,
    Ambience,
    LongVideo,
    Narration,
    Verb,
    make_vocabulary,
    render_action_audio,
    render_action_frames,
    render_ambience,
    sample_long_video,
)
from avbench.data.synthetic.categories import Category, VisualIdentity, make_categories
from avbench.data.synthetic.config import WorldConfig
from avbench.data.synthetic.graph import CooccurrenceGraph, GraphEdge
from avbench.data.synthetic.scene import (
    AudioSource,
    Background,
    Scene,
    SceneObject,
    mask_box,
    motion,
    object_boxes,
    render_frames,
    render_mix,
    sample_scene,
    silhouettes,
    visible_masks,
)
from avbench.data.synthetic.sound import OnsetPattern, SoundIdentity, render_sound
from avbench.data.synthetic.speech import SpeechIdentity, render_speech

__all__ = [
    "ActionVocabulary", "Ambience", "AudioSource", "Background", "Category", "CooccurrenceGraph",
    "GraphEdge", "LongVideo", "Narration", "OnsetPattern", "Scene", "SceneObject",
    "SoundIdentity", "SpeechIdentity", "Verb", "VisualIdentity", "World", "WorldConfig",
    "frame_times",
]


def frame_times(duration: float, fps: float) -> np.ndarray:
    """Timestamps of a video's frames: ``k / fps`` for ``k < round(duration * fps)`` (at least 1)."""
    return np.arange(max(1, int(round(duration * fps)))) / float(fps)


def _seed_of(rng_or_seed: np.random.Generator | int) -> int:
    if isinstance(rng_or_seed, np.random.Generator):
        return int(rng_or_seed.integers(2**62))
    return int(rng_or_seed)


class World:
    """Categories, graph and actions of one ``(config, seed)``; renders scenes and clips."""

    def __init__(self, config: WorldConfig | None = None, seed: int = 0) -> None:
        config = config if config is not None else WorldConfig()
        categories, pairs = make_categories(config, np.random.default_rng([int(seed), 1]))
        self._setup(config, seed, categories, pairs)

    @classmethod
    def from_categories(cls, categories: Sequence[Category], config: WorldConfig | None = None,
                        seed: int = 0,
                        confusable_pairs: dict[str, list[tuple[int, int]]] | None = None) -> World:
        """A world over the given ``categories`` instead of drawn ones (the pretraining corpus of
        :mod:`avbench.pretrain.corpus`); graph and actions are drawn from ``seed`` as usual and
        ``config.n_categories`` is set to ``len(categories)``.

        Raises:
            ValueError: ``categories[k].index != k`` for some ``k``.
        """
        if any(c.index != k for k, c in enumerate(categories)):
            raise ValueError("categories must be indexed 0..n-1 in order")
        config = dataclasses.replace(config if config is not None else WorldConfig(),
                                     n_categories=len(categories))
        world = cls.__new__(cls)
        world._setup(config, seed, list(categories),
                     confusable_pairs or {"visual": [], "audio": []})
        return world

    def _setup(self, config: WorldConfig, seed: int, categories: list[Category],
               confusable_pairs: dict[str, list[tuple[int, int]]]) -> None:
        self.config = config
        self.seed = int(seed)
        cfg = self.config
        self.categories: list[Category] = categories
        self.confusable_pairs: dict[str, list[tuple[int, int]]] = confusable_pairs
        self.graph = CooccurrenceGraph.sample(
            cfg.n_categories, cfg.graph_edges, cfg.graph_prob, cfg.graph_max_out,
            np.random.default_rng([self.seed, 2]), names=[c.name for c in self.categories])
        self.actions: ActionVocabulary = make_vocabulary(self.categories)

    def __repr__(self) -> str:
        return f"World(seed={self.seed}, n_categories={len(self.categories)})"

    # ------------------------------------------------------------------ scenes

    def sample_scene(
        self,
        rng: np.random.Generator,
        categories: int | Sequence[int],
        *,
        offscreen: bool | None = None,
        n_distractors: int | None = None,
        cooccurrence: bool = True,
    ) -> Scene:
        """A scene whose annotated, sounding, visible categories are ``categories``."""
        return sample_scene(self.config, self.categories, self.graph, rng, categories,
                            offscreen=offscreen, n_distractors=n_distractors,
                            cooccurrence=cooccurrence)

    def _size(self, size: int | None) -> int:
        return int(self.config.image_size if size is None else size)

    def render_frame(self, scene: Scene, t: float, size: int | None = None) -> np.ndarray:
        """uint8 [H, W, 3] at time ``t``."""
        return render_frames(scene, self.categories, np.array([t], np.float64), self._size(size))[0]

    def render_video(self, scene: Scene, duration: float, fps: float,
                     size: int | None = None) -> np.ndarray:
        """uint8 [T, H, W, 3], frame k at ``k / fps``, ``T = round(duration * fps)``."""
        return render_frames(scene, self.categories, frame_times(duration, fps), self._size(size))

    def sounding_mask(self, scene: Scene, t: float, size: int | None = None) -> np.ndarray:
        """bool [H, W]: visible pixels of the annotated sounding objects at ``t``."""
        size = self._size(size)
        masks = visible_masks(scene, self.categories, t, size)
        out = np.zeros((size, size), dtype=bool)
        for i in scene.annotated_objects:
            out |= masks[i]
        return out

    def sounding_masks(self, scene: Scene, times: Sequence[float] | np.ndarray,
                       size: int | None = None) -> np.ndarray:
        """bool [T, H, W]: :meth:`sounding_mask` at each time (AVSBench-style per-frame masks)."""
        return np.stack([self.sounding_mask(scene, float(t), size) for t in np.atleast_1d(times)])

    def object_mask(self, scene: Scene, i: int, t: float, size: int | None = None) -> np.ndarray:
        """bool [H, W]: visible pixels of ``scene.objects[i]`` at ``t``."""
        return visible_masks(scene, self.categories, t, self._size(size))[i]

    def sounding_boxes(self, scene: Scene, t: float) -> list[tuple[float, float, float, float]]:
        """Normalised ``(xmin, ymin, xmax, ymax)`` per annotated object, tight around its
        (unoccluded) pixel mask at ``config.image_size``; order = ``scene.annotated_objects``."""
        sil = silhouettes(scene, self.categories, t, self._size(None))
        return [mask_box(sil[i]) for i in scene.annotated_objects]

    def object_box(self, scene: Scene, i: int, t: float) -> tuple[float, float, float, float]:
        """The geometric (sub-pixel) box of object ``i`` at ``t``, normalised."""
        b = object_boxes(scene.objects[i], self.categories, np.array([t]))[0]
        return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))

    def motion(self, scene: Scene, i: int, times: Sequence[float] | np.ndarray) -> np.ndarray:
        """Motion envelope in [0, 1] of object ``i`` (its sound's envelope if it sounds)."""
        return motion(scene.objects[i], self.categories, np.asarray(times, np.float64))

    def render_audio(self, scene: Scene, duration: float,
                     sample_rate: int | None = None) -> np.ndarray:
        """float32 [L]: annotated + off-screen + co-occurring sources + noise at the scene SNR."""
        sr = int(sample_rate or self.config.sample_rate)
        return render_mix(scene, self.categories, duration, sr, self.config)

    def render_source(self, category: int, duration: float,
                      rng_or_seed: np.random.Generator | int,
                      sample_rate: int | None = None) -> np.ndarray:
        """float32 [L]: one category's sound alone (a fully-on event has RMS 0.5)."""
        sr = int(sample_rate or self.config.sample_rate)
        return render_sound(self.categories[category].sound, _seed_of(rng_or_seed), duration, sr)

    def render_speech(self, category: int, seed: int, sample_rate: int | None = None) -> np.ndarray:
        """float32 [L] (about 0.4-0.9 s): the category's word spoken by speaker ``seed``."""
        sr = int(sample_rate or self.config.sample_rate)
        return render_speech(self.categories[category].speech, int(seed), sr)

    # ------------------------------------------------------------------ actions

    def sample_long_video(self, rng: np.random.Generator, duration: float, n_narrations: int,
                          uid: str) -> LongVideo:
        """A long egocentric video with ``n_narrations`` narrated actions and its ambience."""
        return sample_long_video(self.config, self.categories, self.actions, rng, duration,
                                 n_narrations, uid)

    def render_action_clip(self, video: LongVideo, start: float, duration: float, fps: float,
                           size: int, sample_rate: int | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
        """``(uint8 [T, H, W, 3], float32 [L])`` of ``[start, start + duration)`` of ``video``."""
        sr = int(sample_rate or self.config.sample_rate)
        frames = render_action_frames(video, self.categories, self.actions,
                                      start + frame_times(duration, fps), int(size))
        audio = render_action_audio(video, self.categories, self.actions, start, duration, sr)
        return frames, audio

    def render_ambience(self, video: LongVideo, start: float, duration: float,
                        sample_rate: int | None = None) -> np.ndarray:
        """float32 [L]: the video's ambient bed alone over ``[start, start + duration)``."""
        sr = int(sample_rate or self.config.sample_rate)
        return render_ambience(video.ambience, start, duration, sr)
