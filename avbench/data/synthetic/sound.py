"""Sound identities of categories and their synthesis (numpy, vectorised).

A category sounds like one of four kinds, each with a characteristic frequency
``pitch_hz`` where its energy peaks (tests check the energy there):

- ``harmonic``: a tone with fundamental ``pitch_hz`` and its own partial
  profile (the fundamental is the strongest partial);
- ``am_tone``: a tone at ``pitch_hz`` whose amplitude is modulated at
  ``am_rate_hz`` (sidebands sit below the carrier);
- ``pulses``: short struck resonances at ``pitch_hz`` in a rhythmic onset
  pattern (bursts of ``group_size`` hits);
- ``noise_band``: Gaussian-shaped band of noise centred at ``pitch_hz``.

Every sound is a carrier times an *event envelope*: events (notes, hits,
bursts) at onset times drawn from the category's :class:`OnsetPattern` with a
per-source seed. The same envelope drives the visible motion of the sounding
object (:func:`motion_envelope`), which is what makes audio-visual synchrony
learnable. Onsets are drawn in fixed-size chunks, so the events of the first
``d`` seconds do not depend on the requested duration (a 3-s and a 10-s render
of one source agree on their common part).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.signal import lfilter

SOUND_KINDS: tuple[str, ...] = ("harmonic", "am_tone", "pulses", "noise_band")

#: envelopes are computed at this rate, then interpolated to audio rate
CONTROL_RATE = 1000.0
#: a visible object integrates its sound envelope over this window (about one
#: video frame at 8 fps), so a hit between two frames still shows
MOTION_WINDOW_S = 0.125
_CHUNK = 16  # onset groups drawn per rng call (prefix-consistent chunks)
_TABLE_BITS = 12
_TABLE_SIZE = 1 << _TABLE_BITS


@dataclass(frozen=True)
class OnsetPattern:
    """When a source's events happen and what each event's envelope looks like."""

    rate_hz: float  # groups per second
    regularity: float  # 0 = Poisson onsets, 1 = metronomic
    group_size: int  # events per group (a burst of hits)
    group_gap_s: float  # spacing of events inside a group
    attack_s: float
    sustain_s: float
    decay_s: float  # exponential decay time constant

    @property
    def event_s(self) -> float:
        """Rough audible length of one event."""
        return self.attack_s + self.sustain_s + 3.0 * self.decay_s


@dataclass(frozen=True)
class SoundIdentity:
    """How a category sounds (see module docstring for the kinds)."""

    kind: str
    pitch_hz: float  # where the energy peaks
    partials: tuple[float, ...]  # amplitudes of harmonics 1..K (tonal kinds)
    am_rate_hz: float  # am_tone only (0 otherwise)
    am_depth: float
    bandwidth_hz: float  # noise_band only (0 otherwise)
    onset: OnsetPattern
    loudness_db: float  # category loudness relative to the others

    @property
    def loudness(self) -> float:
        """Alias of ``loudness_db`` (the contract's name)."""
        return self.loudness_db

    def __post_init__(self) -> None:
        if self.kind not in SOUND_KINDS:
            raise ValueError(f"unknown sound kind {self.kind!r}; one of {SOUND_KINDS}")


def sample_sound_identity(kind: str, pitch_hz: float, rng: np.random.Generator) -> SoundIdentity:
    """A random identity of ``kind`` at ``pitch_hz`` (the category's characteristic frequency)."""
    u = rng.uniform
    if kind == "harmonic":
        k = int(rng.integers(3, 8))
        decay = u(0.35, 0.8)
        partials = [1.0] + [float(decay**i * u(0.5, 1.0)) for i in range(1, k)]
        onset = OnsetPattern(u(0.6, 1.6), u(0.2, 0.9), 1, 0.0, u(0.01, 0.05), u(0.12, 0.45),
                             u(0.06, 0.18))
        return SoundIdentity(kind, pitch_hz, tuple(partials), 0.0, 0.0, 0.0, onset, u(-4, 0))
    if kind == "am_tone":
        partials = (1.0, float(u(0.0, 0.35)))
        onset = OnsetPattern(u(0.45, 1.0), u(0.3, 1.0), 1, 0.0, u(0.03, 0.08), u(0.3, 0.8),
                             u(0.08, 0.2))
        return SoundIdentity(kind, pitch_hz, partials, float(u(3.0, 14.0)), float(u(0.5, 0.9)),
                             0.0, onset, u(-4, 0))
    if kind == "pulses":
        k = int(rng.integers(2, 5))
        partials = [1.0] + [float(u(0.2, 0.6) / i) for i in range(1, k)]
        size = int(rng.integers(1, 5))
        onset = OnsetPattern(u(0.6, 1.5), u(0.4, 1.0), size, u(0.09, 0.18), 0.002, 0.0,
                             u(0.035, 0.09))
        return SoundIdentity(kind, pitch_hz, tuple(partials), 0.0, 0.0, 0.0, onset, u(-3, 0))
    if kind == "noise_band":
        onset = OnsetPattern(u(0.5, 1.3), u(0.1, 0.8), 1, 0.0, u(0.02, 0.08), u(0.15, 0.6),
                             u(0.06, 0.2))
        bw = float(pitch_hz * u(0.08, 0.2))
        return SoundIdentity(kind, pitch_hz, (), 0.0, 0.0, bw, onset, u(-4, 0))
    raise ValueError(f"unknown sound kind {kind!r}; one of {SOUND_KINDS}")


# ----------------------------------------------------------------------------- events


@functools.lru_cache(maxsize=2048)
def _onset_chunks(pattern: OnsetPattern, seed: int, n_chunks: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Group starts and amplitudes of the first ``n_chunks`` chunks, and the time after them."""
    rng = np.random.default_rng([int(seed), 0x0E5E7])
    period = 1.0 / pattern.rate_hz
    group_len = (pattern.group_size - 1) * pattern.group_gap_s
    min_gap = group_len + pattern.attack_s + pattern.sustain_s + 1.5 * pattern.decay_s
    t = -float(rng.uniform(0.0, period))
    starts_all: list[np.ndarray] = []
    amps_all: list[np.ndarray] = []
    for _ in range(n_chunks):
        gaps = period * (pattern.regularity
                         + (1.0 - pattern.regularity) * rng.exponential(size=_CHUNK))
        gaps = np.maximum(gaps * rng.uniform(0.92, 1.08, size=_CHUNK), min_gap)
        amps = rng.uniform(0.65, 1.0, size=_CHUNK)
        starts = t + np.concatenate([[0.0], np.cumsum(gaps[:-1])])
        starts_all.append(starts)
        amps_all.append(amps)
        t = float(starts[-1] + gaps[-1])
    starts, amps = np.concatenate(starts_all), np.concatenate(amps_all)
    starts.flags.writeable = False
    amps.flags.writeable = False
    return starts, amps, t


def onset_times(pattern: OnsetPattern, seed: int, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Event onsets (seconds, may start before 0) and amplitudes in [0.5, 1] up to ``duration``.

    Groups are drawn in chunks of fixed size from ``default_rng(seed)``, so the
    result for a shorter duration is a prefix of the result for a longer one
    (and chunks are cached: frames, masks and audio of one source share them).
    """
    n = 1
    starts, amps, end = _onset_chunks(pattern, int(seed), n)
    while end < duration:
        n *= 2
        starts, amps, end = _onset_chunks(pattern, int(seed), n)
    if pattern.group_size > 1:
        j = np.arange(pattern.group_size)
        starts = (starts[:, None] + j[None, :] * pattern.group_gap_s).ravel()
        amps = (amps[:, None] * np.where(j == 0, 1.0, 0.8)[None, :]).ravel()
    keep = (starts < duration) & (starts > -pattern.event_s - 1.0)
    return starts[keep], amps[keep]


def envelope_at(pattern: OnsetPattern, times: np.ndarray, amps: np.ndarray,
                t: np.ndarray) -> np.ndarray:
    """Sum of attack/sustain/decay event shapes at times ``t`` (saturated at 1)."""
    t = np.asarray(t, dtype=np.float64)
    out = np.zeros(t.shape, dtype=np.float64)
    if times.size == 0:
        return out
    a, s, d = max(pattern.attack_s, 1e-4), pattern.sustain_s, pattern.decay_s
    flat = t.ravel()
    tau = flat[None, :] - times[:, None]  # [E, N]
    shape = np.where(tau < a, np.clip(tau / a, 0.0, 1.0),
                     np.where(tau < a + s, 1.0, np.exp(-np.maximum(tau - a - s, 0.0) / d)))
    env = (amps[:, None] * shape).sum(axis=0)
    return np.minimum(env, 1.0).reshape(t.shape)


def kernel_envelope(pattern: OnsetPattern, onsets: np.ndarray, amps: np.ndarray, n: int,
                    sample_rate: int) -> np.ndarray:
    """Like :func:`envelope_at` on the audio grid ``k / sample_rate`` (``k < n``), but built by
    adding one sampled event shape at each onset: exact for short events, O(events x length)."""
    a, s, d = max(pattern.attack_s, 1e-4), pattern.sustain_s, pattern.decay_s
    length = int(np.ceil((a + s + 6 * d) * sample_rate)) + 1
    tau = np.arange(length, dtype=np.float64) / sample_rate
    shape = np.where(tau < a, tau / a, np.where(tau < a + s, 1.0, np.exp(-(tau - a - s) / d)))
    shape = shape.astype(np.float32)
    out = np.zeros(n + length, np.float32)
    for t0, amp in zip(onsets, amps):
        i = int(np.ceil(t0 * sample_rate))
        j = max(i, 0)
        if j >= n:
            continue
        # sample k of the event is at time (j + k) / sr; its shape index is (j + k) - t0 * sr
        frac = j - t0 * sample_rate
        seg = (np.interp(np.arange(length - 1) + frac, np.arange(length), shape, right=0.0)
               if frac else shape[:-1])
        out[j:j + length - 1] += np.float32(amp) * seg
    return np.minimum(out[:n], 1.0)


def event_envelope(pattern: OnsetPattern, seed: int, duration: float,
                   rate: float = CONTROL_RATE) -> np.ndarray:
    """The source's envelope on a grid ``k / rate`` covering ``[0, duration]``."""
    times, amps = onset_times(pattern, seed, duration)
    grid = np.arange(int(np.ceil(duration * rate)) + 2) / rate
    return envelope_at(pattern, times, amps, grid)


@functools.lru_cache(maxsize=256)
def _unit_motion_peak(pattern: OnsetPattern) -> float:
    """Peak of the window-averaged envelope of one full-amplitude event (normaliser)."""
    t = np.arange(0.0, pattern.event_s + MOTION_WINDOW_S + 0.5, 0.002)
    one = envelope_at(pattern, np.array([0.0]), np.array([1.0]), t)
    w = max(1, int(round(MOTION_WINDOW_S / 0.002)))
    smooth = np.convolve(one, np.ones(w) / w, mode="same")
    return float(max(smooth.max(), 1e-6))


def motion_envelope(pattern: OnsetPattern, seed: int, t: np.ndarray | float) -> np.ndarray:
    """Envelope averaged over a ~frame-long window centred at ``t``, in [0, 1].

    This drives the visible pulse/bounce of the object making the sound; it is
    normalised so that one full-amplitude event reaches 1.
    """
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    horizon = float(t.max()) + MOTION_WINDOW_S
    times, amps = onset_times(pattern, seed, max(horizon, 1e-3))
    offsets = np.linspace(-MOTION_WINDOW_S / 2, MOTION_WINDOW_S / 2, 17)
    env = envelope_at(pattern, times, amps, t[:, None] + offsets[None, :]).mean(axis=1)
    return np.minimum(env / _unit_motion_peak(pattern), 1.0)


# ----------------------------------------------------------------------------- carriers


@functools.lru_cache(maxsize=512)
def _wavetable(partials: tuple[float, ...]) -> np.ndarray:
    """One period of sum_k p_k sin(2 pi k x), peak-normalised, as float32."""
    x = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    k = np.arange(1, len(partials) + 1)
    table = (np.asarray(partials)[:, None] * np.sin(2 * np.pi * k[:, None] * x[None, :])).sum(0)
    table /= max(np.abs(table).max(), 1e-9)
    return table.astype(np.float32)


def tone(pitch_hz: float, partials: tuple[float, ...], n: int, sample_rate: int,
         phase: float = 0.0) -> np.ndarray:
    """A periodic tone (partials above 0.45 * sample_rate are dropped), float32 peak 1.

    The phase is a 32-bit fixed-point accumulator (wrap-around = mod 1), so the
    table lookup costs three integer passes.
    """
    kmax = max(1, int(0.45 * sample_rate // max(pitch_hz, 1e-3)))
    table = _wavetable(tuple(float(p) for p in partials[:kmax]))
    inc = np.uint32(int(round(pitch_hz / sample_rate * 2**32)) % 2**32)
    ph = np.arange(n, dtype=np.uint32) * inc + np.uint32(int(phase % 1.0 * 2**32) % 2**32)
    return table[ph >> np.uint32(32 - _TABLE_BITS)]


def band_noise(center_hz: float, bandwidth_hz: float, n: int, sample_rate: int,
               rng: np.random.Generator) -> np.ndarray:
    """Noise with a Gaussian spectral band (FWHM ``bandwidth_hz``) at ``center_hz``; unit RMS."""
    m = scipy.fft.next_fast_len(max(n, 16), real=True)
    freqs = np.fft.rfftfreq(m, 1.0 / sample_rate)
    sigma = max(bandwidth_hz, 1.0) / 2.355
    lo = np.searchsorted(freqs, center_hz - 4 * sigma)
    hi = np.searchsorted(freqs, center_hz + 4 * sigma)
    spec = np.zeros(freqs.size, dtype=np.complex128)
    band = freqs[lo:hi]
    mag = np.exp(-0.5 * ((band - center_hz) / sigma) ** 2)
    k = hi - lo
    spec[lo:hi] = mag * (rng.standard_normal(k) + 1j * rng.standard_normal(k))
    x = scipy.fft.irfft(spec, m)[:n]
    rms = float(np.sqrt(np.mean(x * x))) if n else 1.0
    return (x / max(rms, 1e-12)).astype(np.float32)


def colored_noise(n: int, color: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS background noise; ``color`` in [0, 1) is a one-pole low-pass (0 = white)."""
    white = rng.standard_normal(n, dtype=np.float32)
    if color > 0:
        b = np.array([1.0 - color], np.float32)
        a = np.array([1.0, -color], np.float32)
        white = lfilter(b, a, white)
    rms = float(np.sqrt(np.mean(np.square(white, dtype=np.float64)))) if n else 1.0
    return (white / np.float32(max(rms, 1e-12))).astype(np.float32, copy=False)


def to_audio_rate(env_ctrl: np.ndarray, n: int, sample_rate: int,
                  rate: float = CONTROL_RATE) -> np.ndarray:
    """Linear interpolation of a control-rate envelope to ``n`` audio samples (float32)."""
    e = env_ctrl.astype(np.float32)
    ratio = sample_rate / rate
    if float(ratio).is_integer() and ratio >= 1:
        r = int(ratio)
        k = -(-n // r)
        if e.size < k + 1:
            e = np.concatenate([e, np.full(k + 1 - e.size, e[-1], np.float32)])
        frac = np.arange(r, dtype=np.float32) / np.float32(r)
        out = e[:k, None] + frac[None, :] * (e[1:k + 1] - e[:k])[:, None]
        return out.reshape(-1)[:n]
    pos = np.arange(n, dtype=np.float64) * (rate / sample_rate)
    return np.interp(pos, np.arange(e.size), e).astype(np.float32)


def render_sound(sound: SoundIdentity, seed: int, duration: float, sample_rate: int) -> np.ndarray:
    """One source of identity ``sound`` with its events seeded by ``seed``: float32 [L].

    The carrier is scaled so that a fully-on event has RMS 0.5; loudness and
    scene gains are applied by the mixer.
    """
    n = int(round(duration * sample_rate))
    if n <= 0:
        return np.zeros(0, np.float32)
    env = to_audio_rate(event_envelope(sound.onset, seed, duration), n, sample_rate)
    rng = np.random.default_rng([int(seed), 0xCA771E5])
    if sound.kind == "noise_band":
        carrier = band_noise(sound.pitch_hz, sound.bandwidth_hz, n, sample_rate, rng) * 0.5
    else:
        carrier = tone(sound.pitch_hz, sound.partials, n, sample_rate, float(rng.uniform()))
        carrier *= np.float32(0.5 / _table_rms(sound.partials, sound.pitch_hz, sample_rate))
        if sound.kind == "am_tone":
            ph = float(rng.uniform())
            tt = np.arange(n, dtype=np.float32) / np.float32(sample_rate)
            am = np.sin(np.float32(2 * np.pi * sound.am_rate_hz) * tt + np.float32(2 * np.pi * ph))
            carrier *= (1.0 - sound.am_depth / 2) + (sound.am_depth / 2) * am
    return (carrier * env).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=512)
def _table_rms(partials: tuple[float, ...], pitch_hz: float, sample_rate: int) -> float:
    kmax = max(1, int(0.45 * sample_rate // max(pitch_hz, 1e-3)))
    table = _wavetable(tuple(float(p) for p in partials[:kmax]))
    return float(np.sqrt(np.mean(table.astype(np.float64) ** 2)))
