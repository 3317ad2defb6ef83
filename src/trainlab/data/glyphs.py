"""Procedural, download-free digit-like glyphs shaped like MNIST.

Each digit 0-9 is a small set of strokes (polylines) in normalized coordinates:
x and y in [-1, 1], y pointing down, the glyph roughly 1.2 wide and 2 tall.
Rendering jitters the control points, applies a random affine map, and shades
each pixel from its distance to the nearest stroke segment, all vectorized in
torch and driven only by the caller's generator.
"""

from __future__ import annotations

import math

import torch

Point = tuple[float, float]
Stroke = list[Point]


def _arc(cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, n: int) -> Stroke:
    """Points along an elliptical arc, ``n`` segments; angles in degrees, 0 = +x, 90 = down."""
    pts = []
    for i in range(n + 1):
        a = math.radians(start_deg + (end_deg - start_deg) * i / n)
        pts.append((cx + rx * math.cos(a), cy + ry * math.sin(a)))
    return pts


# One template per digit. Angles grow clockwise on screen because y points down.
TEMPLATES: dict[int, list[Stroke]] = {
    0: [_arc(0.0, 0.0, 0.55, 0.95, -90, 270, 10)],
    1: [[(-0.3, -0.65), (0.1, -1.0), (0.05, 1.0)]],
    2: [_arc(0.0, -0.45, 0.52, 0.52, 190, 375, 5) + [(-0.55, 1.0), (0.6, 1.0)]],
    3: [
        _arc(0.0, -0.5, 0.47, 0.47, 200, 450, 6),
        _arc(0.0, 0.45, 0.55, 0.55, -90, 160, 6),
    ],
    4: [
        [(0.3, -1.0), (-0.6, 0.35), (0.62, 0.35)],
        [(0.3, -1.0), (0.3, 1.0)],
    ],
    5: [[(0.55, -1.0), (-0.4, -1.0), (-0.48, -0.12)] + _arc(0.0, 0.4, 0.55, 0.58, -125, 150, 6)],
    6: [[(0.42, -1.0), (-0.1, -0.6), (-0.45, 0.05)] + _arc(0.0, 0.45, 0.5, 0.52, 180, 540, 8)],
    7: [[(-0.6, -1.0), (0.6, -1.0), (-0.1, 1.0)]],
    8: [
        _arc(0.0, -0.52, 0.42, 0.46, 90, 450, 8),
        _arc(0.0, 0.46, 0.52, 0.54, -90, 270, 8),
    ],
    9: [_arc(0.0, -0.45, 0.5, 0.52, 0, 360, 8) + [(0.45, 1.0)]],
}

# Variation ranges. They set the task difficulty: a linear model should land
# around 75-90% while a small CNN stays above 95%.
BASE_SCALE = 0.68  # template half-height -> ~10 px of 14 at 28x28, like MNIST's 20 px box
JITTER = 0.1  # std of per-control-point noise, template units
MAX_ROTATION_DEG = 15.0
SCALE_RANGE = (0.75, 1.1)
ASPECT_RANGE = (0.85, 1.15)  # extra x-only stretch: narrow vs wide handwriting
MAX_SHEAR = 0.3
MAX_SHIFT = 0.18  # fraction of the image size; the main lever on linear accuracy
HALF_WIDTH_PX = (0.6, 2.0)  # stroke half-width at 28x28, scaled with image size
NOISE_STD = 0.05
# Images per pass at 28x28 (scaled down for larger images): the (n, S, 2, H*W)
# projection is then ~26 MB; bigger chunks fall out of cache and run slower.
CHUNK = 256


def _pack_templates() -> tuple[torch.Tensor, torch.Tensor]:
    """Pad templates to common sizes: points (10, P, 2) and segment endpoint indices (10, S, 2)."""
    points, segments = [], []
    for digit in range(10):
        pts: list[Point] = []
        segs: list[tuple[int, int]] = []
        for stroke in TEMPLATES[digit]:
            base = len(pts)
            pts.extend(stroke)
            segs.extend((base + i, base + i + 1) for i in range(len(stroke) - 1))
        points.append(pts)
        segments.append(segs)
    max_p = max(len(p) for p in points)
    max_s = max(len(s) for s in segments)
    # Repeating the last point/segment leaves the nearest-segment distance unchanged.
    pt = torch.tensor([p + [p[-1]] * (max_p - len(p)) for p in points], dtype=torch.float32)
    sg = torch.tensor([s + [s[-1]] * (max_s - len(s)) for s in segments], dtype=torch.long)
    return pt, sg


_POINTS, _SEGMENTS = _pack_templates()


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def _random_affine(n: int, image_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image 2x2 matrices and offsets mapping template coords to pixel coords."""
    angle = _uniform(n, -MAX_ROTATION_DEG, MAX_ROTATION_DEG, generator) * (math.pi / 180)
    scale = _uniform(n, *SCALE_RANGE, generator)
    aspect = _uniform(n, *ASPECT_RANGE, generator)
    shear = _uniform(n, -MAX_SHEAR, MAX_SHEAR, generator)
    shift = _uniform(2 * n, -MAX_SHIFT, MAX_SHIFT, generator).view(n, 2)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([cos, -sin, sin, cos], dim=1).view(n, 2, 2)
    # Shear x by y (slanted handwriting), then stretch x, then rotate.
    shape = torch.zeros(n, 2, 2)
    shape[:, 0, 0] = aspect
    shape[:, 0, 1] = aspect * shear
    shape[:, 1, 1] = 1.0
    half = image_size / 2
    matrix = rot @ shape * (scale * BASE_SCALE * half).view(n, 1, 1)
    offset = (shift + 1) * half  # image centre plus shift, in pixels
    return matrix, offset


def _segment_frames(starts: torch.Tensor, ends: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per segment, the affine rows giving (along, across) offsets from its midpoint, and its half-length.

    Shapes: (n, S, 2) x2 -> (n, S, 2, 3) and (n, S, 1).
    """
    delta = ends - starts
    length = delta.norm(dim=-1, keepdim=True)
    # A zero-length segment gets an arbitrary unit axis so it still draws as a dot.
    fallback = torch.tensor([1.0, 0.0]).expand_as(delta)
    along = torch.where(length > 1e-6, delta / length.clamp_min(1e-6), fallback)
    across = torch.stack([-along[..., 1], along[..., 0]], dim=-1)
    axes = torch.stack([along, across], dim=-2)  # (n, S, 2, 2)
    mid = (starts + ends) / 2
    bias = -(axes @ mid.unsqueeze(-1))  # (n, S, 2, 1)
    return torch.cat([axes, bias], dim=-1), length / 2


def _pixel_centres(image_size: int) -> torch.Tensor:
    """Homogeneous pixel-centre coordinates (x, y, 1) as a (3, H*W) tensor, row-major."""
    coords = torch.arange(image_size, dtype=torch.float32) + 0.5
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten(), torch.ones(image_size * image_size)])


def _nearest_distance(frames: torch.Tensor, half_len: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Distance from every pixel to the nearest segment: (n, S, 2, 3), (n, S, 1), (3, P) -> (n, P)."""
    n, s = frames.shape[:2]
    # One matmul projects every pixel into every segment's frame; few, large ops
    # keep thread-sync overhead low even when the CPU is shared.
    proj = (frames.reshape(-1, 3) @ pixels).view(n, s, 2, -1)
    along, across = proj[:, :, 0], proj[:, :, 1]
    beyond = along.abs_().sub_(half_len).clamp_min_(0.0)  # distance past either end cap
    dist2 = beyond.mul_(beyond).addcmul_(across, across)
    return dist2.amin(dim=1).sqrt_()


def render_digits(labels: torch.Tensor, generator: torch.Generator, image_size: int = 28) -> torch.Tensor:
    """Render one digit-like glyph per label as a (N, 1, image_size, image_size) float32 tensor in [0, 1]."""
    labels = labels.to(torch.long).cpu().flatten()
    n = labels.numel()
    if n and (labels.min() < 0 or labels.max() > 9):
        raise ValueError("labels must be in 0..9")
    # Draw every random parameter up front so the output does not depend on CHUNK.
    points = _POINTS[labels] + JITTER * torch.randn(n, *_POINTS.shape[1:], generator=generator)
    matrix, offset = _random_affine(n, image_size, generator)
    half_width = _uniform(n, *HALF_WIDTH_PX, generator) * (image_size / 28)
    out = torch.randn(n, 1, image_size, image_size, generator=generator).mul_(NOISE_STD)

    points = points @ matrix.transpose(1, 2) + offset.unsqueeze(1)
    seg_idx = _SEGMENTS[labels]  # (n, S, 2)
    starts = torch.gather(points, 1, seg_idx[..., 0:1].expand(-1, -1, 2))
    ends = torch.gather(points, 1, seg_idx[..., 1:2].expand(-1, -1, 2))
    frames, half_len = _segment_frames(starts, ends)
    pixels = _pixel_centres(image_size)
    flat = out.view(n, image_size * image_size)
    chunk = max(1, CHUNK * 28 * 28 // (image_size * image_size))
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        dist = _nearest_distance(frames[lo:hi], half_len[lo:hi], pixels)
        # Linear ramp one pixel wide around the stroke edge: a cheap box-filter antialias.
        flat[lo:hi].add_((half_width[lo:hi, None] + 0.5 - dist).clamp_(0.0, 1.0))
    return out.clamp_(0.0, 1.0)
