"""Smooth random time courses (vectorised over frames) and random generators keyed by names.

The building blocks the action families are choreographed from: smooth random signals
(:func:`wobble`), repeated on-hold-off events (:func:`bumps`), hold-and-move key frames
(:func:`keyframes`) and cross-fades between consecutive segments (:func:`segment_weights`).
"""

from __future__ import annotations

import zlib

import numpy as np

from mlpgraph.data.schema import FPS


def _key(*parts: object) -> tuple[int, ...]:
    """Stable integer spawn key from names (``hash`` is salted per process, crc32 is not)."""
    return tuple(zlib.crc32(str(p).encode()) for p in parts)


def make_rng(seed: int, *parts: object) -> np.random.Generator:
    """An independent generator for (seed, parts...), independent of iteration order."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=_key(*parts)))


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, C1-smooth in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def wobble(rng: np.random.Generator, t: np.ndarray, amp: float, fmax: float = 0.4, n: int = 3) -> np.ndarray:
    """A smooth random signal (sum of ``n`` sinusoids below ``fmax`` Hz) with std about ``amp``."""
    freqs = rng.uniform(0.03, fmax, n)
    phases = rng.uniform(0.0, 2 * np.pi, n)
    weights = rng.normal(size=n)
    weights *= np.sqrt(2.0) / np.linalg.norm(weights)
    return amp * (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None])).sum(0)


def bumps(
    rng: np.random.Generator, t: np.ndarray, gap: float, rise: float, hold: float
) -> np.ndarray:
    """Repeated smooth on-hold-off events in [0, 1], about ``gap`` seconds apart (gestures, bends)."""
    duration = float(t[-1]) + 1.0 / FPS
    n = int(duration / gap * 1.6) + 2
    gaps = rng.uniform(0.6, 1.4, n) * gap
    starts = np.cumsum(gaps) - gaps[0] * rng.uniform(0.2, 1.2)
    holds = hold * rng.uniform(0.6, 1.4, n)
    x = t[None, :] - starts[:, None]
    up = smoothstep(x / rise)
    down = smoothstep((x - rise - holds[:, None]) / rise)
    return (up * (1.0 - down)).max(axis=0)


def keyframes(rng: np.random.Generator, t: np.ndarray, interval: float, values: np.ndarray) -> np.ndarray:
    """Hold-and-move interpolation between key values (K, ...) placed every ``interval`` seconds."""
    pos = t / interval
    k = np.minimum(pos.astype(np.int64), len(values) - 2)
    frac = smoothstep((pos - k - 0.45) / 0.55)
    shape = (-1,) + (1,) * (values.ndim - 1)
    return values[k] + (values[k + 1] - values[k]) * frac.reshape(shape)


def num_keys(t: np.ndarray, interval: float) -> int:
    """How many key values :func:`keyframes` needs to cover ``t`` with keys ``interval`` seconds apart."""
    return int(t[-1] / interval) + 3


def segment_weights(num_frames: int, num_segments: int, fade_frames: int = 50) -> np.ndarray:
    """(K, T) partition of unity: K consecutive segments with smooth cross-fades between them."""
    t = np.arange(num_frames, dtype=np.float64)
    bounds = np.linspace(0, num_frames, num_segments + 1)[1:-1]
    fade = max(1.0, min(float(fade_frames), num_frames / num_segments / 2))
    steps = [smoothstep((t - b) / fade + 0.5) for b in bounds]
    edges = [np.ones_like(t), *steps, np.zeros_like(t)]
    return np.stack([edges[k] - edges[k + 1] for k in range(num_segments)])
