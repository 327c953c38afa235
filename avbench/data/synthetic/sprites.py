"""Shapes, textured sprites and fast compositing of moving sprites into frames.

Why sprites: a clip has ~24 frames and each object only translates and
scales over time (its rotation, texture and colour are fixed per scene), so an
object is rasterised ONCE per clip at its largest on-screen size, and every
frame is a nearest-neighbour resample of that sprite (two 1-D ``take`` calls)
pasted with a boolean ``copyto``. Pixels are packed as ``uint32`` RGBA with
alpha 255 for opaque, so "transparent" is exactly 0 and one compare gives the
paste mask. Masks come from the same resample, so a mask is exactly the pixels
the object paints.

Coordinates: shapes live in ``[-1, 1]^2`` (y down, as in images). An object
stretches the shape by ``aspect`` (x by sqrt(aspect), y by 1/sqrt(aspect)),
rotates it, and its *box* is the tight box of the result, scaled to the
object's on-screen box.
"""

from __future__ import annotations

import functools

import numpy as np

SHAPES: tuple[str, ...] = (
    "disk", "square", "triangle", "diamond", "pentagon", "hexagon",
    "star", "cross", "ring", "crescent", "heart", "dome",
)
TEXTURES: tuple[str, ...] = ("plain", "stripes", "dots", "checker", "rings")
_GRID = 401  # resolution of the cached boundary point sets used for extents


def _polygon(x: np.ndarray, y: np.ndarray, n: int, offset: float) -> np.ndarray:
    phi = offset + 2 * np.pi * np.arange(n) / n
    d = x[..., None] * np.cos(phi) + y[..., None] * np.sin(phi)
    return d.max(-1) <= np.cos(np.pi / n)


def _star(x: np.ndarray, y: np.ndarray, n: int = 5, r_in: float = 0.55) -> np.ndarray:
    theta = np.arctan2(y, x) + np.pi / 2  # a tip points up
    sector = 2 * np.pi / n
    a = np.abs(np.mod(theta, sector) - sector / 2)  # 0 at the tip... remap below
    a = sector / 2 - a  # angle from the tip direction, in [0, sector/2]
    r = np.hypot(x, y)
    px, py = r * np.cos(a), r * np.sin(a)
    ix, iy = r_in * np.cos(sector / 2), r_in * np.sin(sector / 2)
    # inside iff on the origin's side of the line tip(1,0) -> inner vertex
    cross_p = (ix - 1.0) * py - iy * (px - 1.0)
    cross_o = (ix - 1.0) * 0.0 - iy * (0.0 - 1.0)
    return np.sign(cross_p) == np.sign(cross_o)


def inside(shape: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean membership of points (x, y) in ``shape`` (shape coordinates, y down)."""
    if shape == "disk":
        return x * x + y * y <= 1.0
    if shape == "square":
        return np.maximum(np.abs(x), np.abs(y)) <= 1.0
    if shape == "triangle":
        return (y <= 1.0) & (np.abs(x) <= (y + 1.0) / 2.0)
    if shape == "diamond":
        return np.abs(x) + np.abs(y) <= 1.0
    if shape == "pentagon":
        return _polygon(x, -y, 5, np.pi / 2 + np.pi / 5)
    if shape == "hexagon":
        return _polygon(x, y, 6, 0.0)
    if shape == "star":
        return _star(x, y) & (x * x + y * y <= 1.0)
    if shape == "cross":
        return ((np.abs(x) <= 0.45) & (np.abs(y) <= 1.0)) | ((np.abs(y) <= 0.45) & (np.abs(x) <= 1.0))
    if shape == "ring":
        r2 = x * x + y * y
        return (r2 <= 1.0) & (r2 >= 0.16)
    if shape == "crescent":
        return (x * x + y * y <= 1.0) & ((x - 0.7) ** 2 + y * y >= 0.7**2)
    if shape == "heart":
        hx, hy = 1.15 * x, -1.2 * y + 0.1
        return (hx * hx + hy * hy - 1.0) ** 3 - hx * hx * hy**3 <= 0.0
    if shape == "dome":
        return (x * x + ((y - 1.0) / 2.0) ** 2 <= 1.0) & (y <= 1.0)
    raise ValueError(f"unknown shape {shape!r}; one of {SHAPES}")


@functools.lru_cache(maxsize=len(SHAPES))
def _shape_points(shape: str) -> np.ndarray:
    """Boundary cells of the shape on a fine grid (extremes of any affine image lie there)."""
    g = (np.arange(_GRID) + 0.5) / _GRID * 2.0 - 1.0
    xx, yy = np.meshgrid(g, g)
    m = np.pad(inside(shape, xx, yy), 1)
    edge = m[1:-1, 1:-1] & ~(m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:])
    return np.stack([xx[edge], yy[edge]], axis=1)


def _transform(rotation: float, aspect: float) -> np.ndarray:
    c, s = np.cos(rotation), np.sin(rotation)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([np.sqrt(aspect), 1.0 / np.sqrt(aspect)])


@functools.lru_cache(maxsize=4096)
def shape_extent(shape: str, rotation: float, aspect: float) -> tuple[float, float, float, float]:
    """Tight box ``(x0, y0, x1, y1)`` of the stretched + rotated shape (object-local units)."""
    q = _shape_points(shape) @ _transform(rotation, aspect).T
    half = 1.0 / _GRID
    return (float(q[:, 0].min() - half), float(q[:, 1].min() - half),
            float(q[:, 0].max() + half), float(q[:, 1].max() + half))


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] -> opaque uint32 RGBA (little-endian byte order R, G, B, A)."""
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16) | np.uint32(0xFF000000)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """uint32 RGBA [...] -> uint8 [..., 3] (contiguous)."""
    b = packed.reshape(-1).view(np.uint8).reshape(-1, 4)
    out = np.empty((b.shape[0], 3), np.uint8)
    out[:, 0] = b[:, 0]
    out[:, 1] = b[:, 1]
    out[:, 2] = b[:, 2]
    return out.reshape(*packed.shape, 3)


def texture_mask(texture: str, freq: float, angle: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where the secondary texture colour shows, in shape coordinates."""
    if texture == "plain":
        return np.zeros(x.shape, dtype=bool)
    if texture == "stripes":
        u = x * np.cos(angle) + y * np.sin(angle)
        return np.sin(np.pi * freq * u) > 0.0
    if texture == "dots":
        fx = np.mod((x + 1.0) * freq / 2.0, 1.0) - 0.5
        fy = np.mod((y + 1.0) * freq / 2.0, 1.0) - 0.5
        return fx * fx + fy * fy < 0.09
    if texture == "checker":
        return (np.floor((x + 1.0) * freq / 2.0) + np.floor((y + 1.0) * freq / 2.0)) % 2 == 1
    if texture == "rings":
        return np.sin(np.pi * freq * np.hypot(x, y)) > 0.0
    raise ValueError(f"unknown texture {texture!r}; one of {TEXTURES}")


@functools.lru_cache(maxsize=256)
def render_sprite(
    shape: str,
    rotation: float,
    aspect: float,
    height: int,
    width: int,
    color: tuple[int, int, int],
    texture: str = "plain",
    texture_color: tuple[int, int, int] = (255, 255, 255),
    texture_freq: float = 3.0,
    texture_angle: float = 0.0,
    shading: float = 0.15,
) -> np.ndarray:
    """The object filling a ``height x width`` box: uint32 [height+1, width+1], read-only.

    The extra last row and column are transparent (0): out-of-box resample
    indices point there, so pasting needs no bounds checks. Cached (LRU): a
    scene's frames, masks and boxes reuse one rasterisation.
    """
    height, width = max(int(height), 1), max(int(width), 1)
    x0, y0, x1, y1 = shape_extent(shape, rotation, aspect)
    qx = (x0 + (np.arange(width) + 0.5) / width * (x1 - x0)).astype(np.float32)
    qy = (y0 + (np.arange(height) + 0.5) / height * (y1 - y0)).astype(np.float32)
    inv = np.linalg.inv(_transform(rotation, aspect)).astype(np.float32)
    px = inv[0, 0] * qx[None, :] + inv[0, 1] * qy[:, None]
    py = inv[1, 0] * qx[None, :] + inv[1, 1] * qy[:, None]
    ins = inside(shape, px, py)
    tex = texture_mask(texture, texture_freq, texture_angle, px, py)
    # soft top-light shading (screen space: it does not rotate with the object), one colour per row
    shade = 1.0 + shading * (0.5 - (np.arange(height) + 0.5) / height)
    main = pack_rgb(np.clip(np.outer(shade, color), 0, 255).astype(np.uint8))
    second = pack_rgb(np.clip(np.outer(shade, texture_color), 0, 255).astype(np.uint8))
    out = np.zeros((height + 1, width + 1), np.uint32)
    out[:height, :width] = np.where(ins, np.where(tex, second[:, None], main[:, None]), np.uint32(0))
    out.flags.writeable = False
    return out


def _axis_index(start: float, stop: float, n_px: int, n_sprite: int) -> tuple[int, int, np.ndarray]:
    """Pixel range [a, b) covered by the box [start, stop) and the sprite index of each pixel."""
    a = max(int(np.floor(start)), 0)
    b = min(int(np.ceil(stop)), n_px)
    if b <= a:
        return 0, 0, np.zeros(0, np.intp)
    u = (np.arange(a, b) + 0.5 - start) / max(stop - start, 1e-9)
    idx = np.floor(u * n_sprite).astype(np.intp)
    idx[(u < 0) | (u >= 1)] = n_sprite  # the transparent pad row/column
    return a, b, idx


def resample(sprite: np.ndarray, box: np.ndarray, height: int, width: int
             ) -> tuple[int, int, int, int, np.ndarray]:
    """The sprite drawn into box ``(x0, y0, x1, y1)`` (pixels): ``(ya, yb, xa, xb, patch)``."""
    hs, ws = sprite.shape[0] - 1, sprite.shape[1] - 1
    xa, xb, cols = _axis_index(box[0], box[2], width, ws)
    ya, yb, rows = _axis_index(box[1], box[3], height, hs)
    patch = sprite.take(rows, axis=0).take(cols, axis=1)
    return ya, yb, xa, xb, patch


def _axis_indices(starts: np.ndarray, stops: np.ndarray, n_px: int, n_sprite: int
                  ) -> tuple[int, int, np.ndarray]:
    """Union pixel range [a, b) of per-frame boxes and per-frame sprite indices [T, b - a]."""
    a = max(int(np.floor(starts.min())), 0)
    b = min(int(np.ceil(stops.max())), n_px)
    if b <= a:
        return 0, 0, np.zeros((starts.size, 0), np.intp)
    px = np.arange(a, b) + 0.5
    u = (px[None, :] - starts[:, None]) / np.maximum(stops - starts, 1e-9)[:, None]
    idx = np.floor(u * n_sprite).astype(np.intp)
    idx[(u < 0) | (u >= 1)] = n_sprite  # the transparent pad row/column
    return a, b, idx


def paste(canvas: np.ndarray, sprite: np.ndarray, boxes: np.ndarray) -> None:
    """Paint ``sprite`` into ``canvas`` uint32 [T, H, W] at per-frame pixel ``boxes`` [T, 4]."""
    n_t, height, width = canvas.shape
    if n_t > 1 and np.all(boxes == boxes[0]):
        ya, yb, xa, xb, patch = resample(sprite, boxes[0], height, width)
        if patch.size:
            np.copyto(canvas[:, ya:yb, xa:xb], patch[None], where=(patch != 0)[None])
        return
    hs, ws = sprite.shape[0] - 1, sprite.shape[1] - 1
    xa, xb, cols = _axis_indices(boxes[:, 0], boxes[:, 2], width, ws)
    ya, yb, rows = _axis_indices(boxes[:, 1], boxes[:, 3], height, hs)
    if xb <= xa or yb <= ya:
        return
    region = canvas[:, ya:yb, xa:xb]
    for t in range(n_t):
        patch = sprite.take(rows[t], axis=0).take(cols[t], axis=1)
        np.copyto(region[t], patch, where=patch != 0)


def silhouette(sprite: np.ndarray, box: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean [H, W] of the pixels the sprite paints in ``box``."""
    out = np.zeros((height, width), dtype=bool)
    ya, yb, xa, xb, patch = resample(sprite, box, height, width)
    if patch.size:
        out[ya:yb, xa:xb] = patch != 0
    return out
