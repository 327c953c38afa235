"""Spoken-word-like signals: each category has a word, distinct from its sound.

DenseAV-style speech-prompted tasks need a *spoken* name for each category
that shares nothing acoustic with the category's own sound, so a model must
learn the word <-> object association from co-occurrence, and so a two-head
model can separate "language" from "sound". A word is a short syllable
sequence; each syllable has an optional consonant onset (fricative noise,
plosive burst or nasal murmur) and a vowel given by its formant targets
(F1, F2, F3). Synthesis is source-filter in additive form: the harmonics of a
voiced glottal source (f0 ~ 90-250 Hz, spectral tilt) are weighted by the
vocal-tract response of the current formants, which glide between syllables.
The speaker (f0, vocal-tract length, tempo) varies with the render seed; the
word (syllables, formants) is the category's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avbench.data.synthetic.sound import band_noise

#: vowel -> (F1, F2, F3) in Hz (adult averages, Peterson & Barney style)
VOWELS: dict[str, tuple[float, float, float]] = {
    "i": (270.0, 2290.0, 3010.0),
    "e": (530.0, 1840.0, 2480.0),
    "a": (730.0, 1090.0, 2440.0),
    "o": (570.0, 840.0, 2410.0),
    "u": (300.0, 870.0, 2240.0),
    "ae": (660.0, 1720.0, 2410.0),
    "er": (490.0, 1350.0, 1690.0),
    "ih": (390.0, 1990.0, 2550.0),
    "uh": (640.0, 1190.0, 2390.0),
}
#: consonant -> (type, centre Hz, bandwidth Hz)
CONSONANTS: dict[str, tuple[str, float, float]] = {
    "": ("none", 0.0, 0.0),
    "s": ("fricative", 5500.0, 2500.0),
    "sh": ("fricative", 3200.0, 1600.0),
    "f": ("fricative", 4000.0, 4000.0),
    "t": ("plosive", 4000.0, 2500.0),
    "k": ("plosive", 2200.0, 1200.0),
    "p": ("plosive", 1200.0, 1500.0),
    "m": ("nasal", 250.0, 0.0),
    "n": ("nasal", 280.0, 0.0),
}
_BANDWIDTHS = (80.0, 110.0, 160.0)  # formant bandwidths (Hz)
_NASAL_FORMANTS = (260.0, 1100.0, 2300.0)
_FRAME_RATE = 250.0  # control frames per second


@dataclass(frozen=True)
class Syllable:
    consonant: str  # key of CONSONANTS ("" = none)
    vowel: str  # key of VOWELS

    @property
    def formants(self) -> tuple[float, float, float]:
        return VOWELS[self.vowel]


@dataclass(frozen=True)
class SpeechIdentity:
    """A category's spoken word: its syllables (formant targets) and nominal voice."""

    word: str  # phonetic spelling, e.g. "ka-mi"
    syllables: tuple[Syllable, ...]
    f0_hz: float  # nominal voice pitch; speakers vary around it
    syllable_s: float  # nominal vowel length


def sample_speech_identities(n: int, rng: np.random.Generator) -> list[SpeechIdentity]:
    """``n`` distinct words of 1-3 syllables (no two categories share a word)."""
    vowels, consonants = list(VOWELS), list(CONSONANTS)
    out: list[SpeechIdentity] = []
    seen: set[str] = set()
    while len(out) < n:
        k = int(rng.choice([1, 2, 2, 3]))
        syl = tuple(Syllable(consonants[int(rng.integers(len(consonants)))],
                             vowels[int(rng.integers(len(vowels)))]) for _ in range(k))
        word = "-".join(s.consonant + s.vowel for s in syl)
        if word in seen:
            continue
        seen.add(word)
        out.append(SpeechIdentity(word, syl, float(rng.uniform(100.0, 200.0)),
                                  float(rng.uniform(0.14, 0.22))))
    return out


def vocal_tract_gain(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """|H(f)| of a cascade of 2nd-order resonances; ``formants`` [..., 3] broadcast with freqs."""
    g = np.ones(np.broadcast_shapes(freqs.shape, formants.shape[:-1]), dtype=np.float64)
    for i, bw in enumerate(_BANDWIDTHS):
        fi = formants[..., i]
        r = freqs / fi
        g = g / np.sqrt((1.0 - r * r) ** 2 + (freqs * bw / (fi * fi)) ** 2)
    return g


def formant_envelope(speech: SpeechIdentity, freqs: np.ndarray) -> np.ndarray:
    """Expected power envelope of the word (mean over its vowels), for checks and plots."""
    f = np.asarray(freqs, dtype=np.float64)
    tilt = 1.0 / np.maximum(f / 100.0, 1.0) ** 1.2
    env = np.zeros_like(f)
    for s in speech.syllables:
        env += (vocal_tract_gain(f, np.asarray(s.formants)) * tilt) ** 2
    return env / len(speech.syllables)


def render_speech(speech: SpeechIdentity, seed: int, sample_rate: int) -> np.ndarray:
    """The spoken word by a speaker drawn from ``seed``: float32 [L] (about 0.4-0.9 s), peak 0.5."""
    rng = np.random.default_rng([int(seed), 0x5BEEC4])
    f0_base = speech.f0_hz * rng.uniform(0.8, 1.25)
    tract = rng.uniform(0.93, 1.08) * (f0_base / speech.f0_hz) ** 0.15  # higher voice, shorter tract
    tempo = rng.uniform(0.85, 1.15)
    lead, tail = rng.uniform(0.04, 0.08), rng.uniform(0.04, 0.08)

    # segment plan: (start, end, kind, params)
    t = lead
    vowel_ctr: list[tuple[float, np.ndarray]] = []  # (centre time, formants)
    voiced: list[tuple[float, float, float]] = []  # (start, end, gain)
    noises: list[tuple[float, float, float, float, float]] = []  # (start, end, centre, bw, gain)
    nasal_segments: list[tuple[float, float]] = []
    for syl in speech.syllables:
        ctype, centre, bw = CONSONANTS[syl.consonant]
        if ctype == "fricative":
            d = rng.uniform(0.06, 0.1) * tempo
            noises.append((t, t + d, centre * tract, bw, 0.35))
            t += d
        elif ctype == "plosive":
            t += rng.uniform(0.03, 0.05) * tempo  # closure (silence)
            d = rng.uniform(0.012, 0.022)
            noises.append((t, t + d, centre * tract, bw, 0.6))
            t += d
        elif ctype == "nasal":
            d = rng.uniform(0.05, 0.08) * tempo
            voiced.append((t, t + d, 0.5))
            nasal_segments.append((t, t + d))
            t += d
        dv = speech.syllable_s * tempo * rng.uniform(0.9, 1.1)
        voiced.append((t, t + dv, 1.0))
        vowel_ctr.append((t + dv / 2, np.asarray(syl.formants) * tract))
        t += dv
    total = t + tail
    n = int(round(total * sample_rate))
    n_frames = int(np.ceil(total * _FRAME_RATE)) + 2
    tf = np.arange(n_frames) / _FRAME_RATE

    # formant trajectory: glide between vowel targets; nasal murmur overrides
    centres = np.array([c for c, _ in vowel_ctr])
    targets = np.stack([f for _, f in vowel_ctr])
    formants = np.stack([np.interp(tf, centres, targets[:, i]) for i in range(3)], axis=-1)
    for a, b in nasal_segments:
        sel = (tf >= a) & (tf < b)
        formants[sel] = np.asarray(_NASAL_FORMANTS) * tract

    # voicing gain with 15-ms ramps
    gain = np.zeros(n_frames)
    for a, b, g in voiced:
        ramp = 0.015
        gain = np.maximum(gain, g * np.clip(np.minimum(tf - a, b - tf) / ramp + 0.5, 0.0, 1.0))
    f0 = f0_base * np.linspace(1.1, 0.88, n_frames) * (1.0 + 0.02 * np.sin(
        2 * np.pi * rng.uniform(3, 6) * tf + rng.uniform(0, 2 * np.pi)))

    # additive synthesis of the voiced part
    kmax = int(min(60, 0.45 * sample_rate // f0.max()))
    k = np.arange(1, kmax + 1, dtype=np.float64)
    hf = f0[:, None] * k[None, :]  # [F, K]
    amp = vocal_tract_gain(hf, formants[:, None, :]) / k[None, :] ** 1.2 * gain[:, None]
    ts = np.arange(n) / sample_rate
    pos = ts * _FRAME_RATE
    i0 = np.minimum(pos.astype(np.intp), n_frames - 2)
    fr = (pos - i0)[None, :]
    amp_s = (amp[i0].T * (1 - fr) + amp[i0 + 1].T * fr).astype(np.float32)  # [K, n]
    f0_s = np.interp(ts, tf, f0)
    phase = 2 * np.pi * np.cumsum(f0_s) / sample_rate + rng.uniform(0, 2 * np.pi)
    y = (amp_s * np.sin(k[:, None].astype(np.float32) * phase[None, :].astype(np.float32))).sum(0)
    y = y / max(float(np.abs(y).max()), 1e-9)

    # unvoiced consonants
    for a, b, centre, bw, g in noises:
        i, j = int(a * sample_rate), min(int(b * sample_rate), n)
        if j - i < 4:
            continue
        burst = band_noise(min(centre, 0.45 * sample_rate), bw, j - i, sample_rate, rng)
        w = np.hanning(j - i).astype(np.float32)
        y[i:j] += g * 0.3 * burst * w
    peak = float(np.abs(y).max())
    return (0.5 * y / max(peak, 1e-9)).astype(np.float32)


def word_extent(word: np.ndarray, sample_rate: int, threshold: float = 0.02) -> tuple[float, float]:
    """``(start, end)`` in seconds of the audible part of a rendered word: the first and
    one-past-the-last sample whose magnitude exceeds ``threshold`` times the peak.

    Raises:
        ValueError: ``word`` is empty or silent.
    """
    mag = np.abs(np.asarray(word, dtype=np.float32))
    if mag.size == 0 or float(mag.max()) <= 0.0:
        raise ValueError("word_extent() got an empty or silent word")
    loud = np.flatnonzero(mag > threshold * float(mag.max()))
    return float(loud[0]) / sample_rate, float(loud[-1] + 1) / sample_rate


def concatenate_words(
    words: list[np.ndarray],
    sample_rate: int,
    rng: np.random.Generator,
    *,
    lead_s: tuple[float, float] = (0.1, 0.4),
    gap_s: tuple[float, float] = (0.08, 0.3),
    tail_s: tuple[float, float] = (0.1, 0.3),
    noise_rms: float = 0.002,
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A spoken utterance: ``words`` (each float32 [L_i] from :func:`render_speech`) one after
    the other, with a silent lead, pauses between words and a tail drawn from ``rng`` (seconds),
    over faint white noise of RMS ``noise_rms`` (a room; 0 = digital silence).

    Returns ``(wave float32 [L], timings)``: ``timings[i] = (start, end)`` in seconds of word
    ``i``'s audible part (:func:`word_extent`) in ``wave``.

    Raises:
        ValueError: no words.
    """
    if not words:
        raise ValueError("concatenate_words() needs at least one word")
    pieces: list[np.ndarray] = []
    timings: list[tuple[float, float]] = []
    pos = int(round(rng.uniform(*lead_s) * sample_rate))
    pieces.append(np.zeros(pos, np.float32))
    for k, word in enumerate(words):
        if k:
            gap = int(round(rng.uniform(*gap_s) * sample_rate))
            pieces.append(np.zeros(gap, np.float32))
            pos += gap
        a, b = word_extent(word, sample_rate)
        timings.append((pos / sample_rate + a, pos / sample_rate + b))
        pieces.append(np.asarray(word, np.float32))
        pos += len(word)
    pieces.append(np.zeros(int(round(rng.uniform(*tail_s) * sample_rate)), np.float32))
    wave = np.concatenate(pieces)
    if noise_rms > 0:
        wave = wave + rng.normal(0.0, noise_rms, wave.shape).astype(np.float32)
    return wave.astype(np.float32), timings
