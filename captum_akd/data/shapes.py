"""A procedurally generated fine-grained image dataset with ground-truth part masks.

Every image is a pure function of ``(seed, index)``: nothing is stored, any index
can be drawn in any order, and DataLoader workers need no coordination.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["FineGrainedShapes", "PART_COLOURS", "PART_SHAPES", "SHAPES_MEAN", "SHAPES_STD"]

#: Shapes a deciding part can take, in the order classes use them.
PART_SHAPES: tuple[str, ...] = ("disk", "triangle", "square", "plus", "ring", "diamond")

#: Saturated colours a deciding part can take, in the order classes use them.
#: They are far apart in RGB so that jitter never moves one onto another.
PART_COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.10, 0.10),
    "blue": (0.12, 0.25, 0.95),
    "yellow": (0.95, 0.85, 0.10),
    "green": (0.10, 0.72, 0.18),
    "magenta": (0.85, 0.15, 0.85),
    "cyan": (0.10, 0.85, 0.92),
}

# Distractor parts use these muted colours, which no class ever uses, so a
# distractor can look like a deciding part in size, shape and placement while
# its attributes never decide the class.
_DISTRACTOR_COLOURS = np.array(
    [
        (0.55, 0.55, 0.55),
        (0.90, 0.90, 0.86),
        (0.15, 0.15, 0.17),
        (0.55, 0.36, 0.20),
        (0.50, 0.50, 0.22),
        (0.38, 0.45, 0.58),
        (0.78, 0.66, 0.50),
        (0.60, 0.45, 0.55),
    ],
    dtype=np.float32,
)
_CLASS_COLOURS = np.array(list(PART_COLOURS.values()), dtype=np.float32)

#: Per-channel mean and standard deviation of the images (default settings,
#: estimated on 4000 images); for ``torchvision.transforms.Normalize`` if wanted.
SHAPES_MEAN: tuple[float, float, float] = (0.512, 0.491, 0.491)
SHAPES_STD: tuple[float, float, float] = (0.164, 0.156, 0.168)

MAX_OBJECTS = 2
_MIN_IMAGE_SIZE = 32

# Geometry in units of the part radius r: the four slots lie on a circle of
# radius _SLOT_RADIUS around the body centre, far enough apart that parts at
# most graze each other, and every part (triangle circumradius 1.45 r, plus
# 5 % size jitter) fits in a circle of radius _PART_EXTENT.
_SLOT_RADIUS = 1.6
_PART_EXTENT = 1.53
_BODY_AXES = (2.3, 1.6)
_NUM_SLOTS = 4
# Part radius as a fraction of the image side: one object per image, two objects.
_PART_FRACTION = (0.115, 0.085)


class FineGrainedShapes(Dataset):
    """Seeded, on-the-fly fine-grained "creatures" with masks of the deciding part.

    **How a class is defined.** Every image shows the same kind of object: an
    elliptical, patterned body carrying small parts in four slots spaced
    around its centre (front, back and both sides of the rotated body). Exactly one
    slot holds the *deciding part*, whose **colour and shape** together give
    the class: with ``n_c = ceil(sqrt(num_classes))`` colours and
    ``n_s = ceil(num_classes / n_c)`` shapes, class ``k`` has colour
    ``PART_COLOURS[k % n_c]`` and shape ``PART_SHAPES[k // n_c]``
    (8 classes: red, blue or yellow disk, triangle or square, the yellow
    square unused). Neither attribute alone decides the class, and nothing
    else in the image does: body, background and distractors are drawn
    independently of the label. The deciding part's slot is random. It covers
    2-6 % of a single-object image (4 % on average) and about 2 % per object
    in a two-object image.

    **Nuisance.** A low-frequency colour field with stripes, translucent
    blobs, thin lines and confetti in the background; random body rotation,
    position, scale (+-15 %), colour and pattern; colour and brightness jitter
    on every part; pixel noise. One to three other slots hold *distractor
    parts* of the same size and style, whose attributes never decide a class:
    a muted colour no class uses, or a class colour with a shape no class uses.
    Parts are drawn upright whatever the body's rotation, so shapes are never
    confused by turning (a square never becomes a diamond).

    **Two objects.** With ``two_objects`` (``True`` or a probability), an
    image may hold two non-overlapping objects of different classes, drawn
    smaller, each with its own deciding part and mask, so a map requested for
    one class can be checked against that class's part.

    Images stay in ``[0, 1]``; :data:`SHAPES_MEAN` and :data:`SHAPES_STD`
    are there for models that want normalised inputs. An image is a pure
    function of ``(seed, index)`` (for a given NumPy version): the generator
    is seeded with ``numpy.random.default_rng([seed, index])``.

    Args:
        length: number of images, ``>= 0``. Index ``i`` of a dataset of any
            length is the same image, so a test split is simply another seed
            (or a disjoint index range).
        num_classes: number of classes, ``2 <= num_classes <= 36``.
        image_size: side ``S`` of the square images in pixels, ``>= 32``.
        seed: non-negative integer; different seeds give different images.
        two_objects: ``False`` (default, one object per image), ``True``
            (always two objects) or a probability in ``[0, 1]`` of two.

    Returns (from ``dataset[i]``):
        A dict that the default ``DataLoader`` collate batches (adding a
        leading batch dimension ``N`` to each tensor):

        - ``"image"``: float32 tensor ``3 x S x S`` in ``[0, 1]``;
        - ``"label"``: ``int``, the class of the first object (the only one
          when the image holds one object);
        - ``"mask"``: bool tensor ``1 x S x S``, the pixels of the part that
          decides ``label`` (its filled outline, so a ring's hole counts);
        - ``"labels"``: int64 tensor ``(2,)``, the class of each object,
          ``-1`` where there is no second object;
        - ``"masks"``: bool tensor ``2 x S x S``, the deciding part of each
          object, all ``False`` where ``labels`` is ``-1``;
        - ``"num_objects"``: ``int``, 1 or 2.

    Attributes:
        class_names: ``num_classes`` strings such as ``"blue-triangle"``.
        num_colours, num_shapes: the sizes ``n_c`` and ``n_s`` of the grid.

    Examples:
        >>> from torch.utils.data import DataLoader
        >>> ds = FineGrainedShapes(length=1000, seed=0)
        >>> item = ds[3]
        >>> item["image"].shape, item["mask"].shape, ds.class_names[item["label"]]
        (torch.Size([3, 64, 64]), torch.Size([1, 64, 64]), 'red-triangle')
        >>> batch = next(iter(DataLoader(ds, batch_size=32)))
        >>> batch["image"].shape, batch["label"].shape, batch["masks"].shape
        (torch.Size([32, 3, 64, 64]), torch.Size([32]), torch.Size([32, 2, 64, 64]))
        >>> pairs = FineGrainedShapes(100, image_size=96, two_objects=True)
        >>> pairs[0]["labels"]  # two different classes, one mask each
        tensor([7, 3])
    """

    def __init__(
        self,
        length: int = 10000,
        num_classes: int = 8,
        image_size: int = 64,
        seed: int = 0,
        two_objects: bool | float = False,
    ) -> None:
        _check_int("length", length, 0)
        _check_int("num_classes", num_classes, 2)
        if num_classes > len(PART_SHAPES) * len(PART_COLOURS):
            raise ValueError(
                f"`num_classes` must be at most {len(PART_SHAPES) * len(PART_COLOURS)} "
                f"({len(PART_COLOURS)} colours x {len(PART_SHAPES)} shapes); got {num_classes}"
            )
        _check_int("image_size", image_size, _MIN_IMAGE_SIZE)
        _check_int("seed", seed, 0)
        if isinstance(two_objects, bool):
            p_two = float(two_objects)
        elif isinstance(two_objects, (int, float)) and 0.0 <= float(two_objects) <= 1.0:
            p_two = float(two_objects)
        else:
            raise ValueError(
                f"`two_objects` must be a bool or a probability in [0, 1]; got {two_objects!r}"
            )
        self.length = length
        self.num_classes = num_classes
        self.image_size = image_size
        self.seed = seed
        self.two_objects = p_two
        self.num_colours = math.ceil(math.sqrt(num_classes))
        self.num_shapes = math.ceil(num_classes / self.num_colours)
        colour_names = list(PART_COLOURS)
        self.class_names = [
            f"{colour_names[k % self.num_colours]}-{PART_SHAPES[k // self.num_colours]}"
            for k in range(num_classes)
        ]
        # Shapes no class uses may appear on distractors in class colours.
        self._spare_shapes = list(range(self.num_shapes, len(PART_SHAPES)))

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return (
            f"FineGrainedShapes(length={self.length}, num_classes={self.num_classes}, "
            f"image_size={self.image_size}, seed={self.seed}, two_objects={self.two_objects})"
        )

    def class_attributes(self, label: int) -> tuple[str, str]:
        """Return ``(colour, shape)`` of the deciding part of class ``label``.

        Args:
            label: a class index in ``[0, num_classes)``.

        Returns:
            The colour name (a key of :data:`PART_COLOURS`) and the shape name
            (an entry of :data:`PART_SHAPES`).

        Examples::

            >>> FineGrainedShapes(num_classes=8).class_attributes(4)
            ('blue', 'triangle')
        """
        if not 0 <= label < self.num_classes:
            raise ValueError(f"`label` must be in [0, {self.num_classes}); got {label}")
        return list(PART_COLOURS)[label % self.num_colours], PART_SHAPES[label // self.num_colours]

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"`index` must be an int; got {type(index).__name__}")
        index = int(index)
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        rng = np.random.default_rng([self.seed, index])
        image, labels, masks = self._render(rng)
        size = self.image_size
        all_masks = np.zeros((MAX_OBJECTS, size, size), dtype=bool)
        all_labels = np.full(MAX_OBJECTS, -1, dtype=np.int64)
        all_masks[: len(masks)] = masks
        all_labels[: len(labels)] = labels
        return {
            "image": torch.from_numpy(image),
            "label": int(labels[0]),
            "mask": torch.from_numpy(all_masks[:1].copy()),
            "labels": torch.from_numpy(all_labels),
            "masks": torch.from_numpy(all_masks),
            "num_objects": len(labels),
        }

    # -- rendering -----------------------------------------------------------

    def _render(self, rng: np.random.Generator) -> tuple[np.ndarray, list[int], list[np.ndarray]]:
        size = self.image_size
        two = self.two_objects > 0 and rng.random() < self.two_objects
        canvas = _background(rng, size)
        first = int(rng.integers(self.num_classes))
        labels = [first]
        if two:
            # Uniform over the other classes, so the pair is always mixed.
            second = int(rng.integers(self.num_classes - 1))
            labels.append(second + (second >= first))
        radius = _PART_FRACTION[1 if two else 0] * size
        scale_jitter = (0.92, 1.05) if two else (0.85, 1.15)
        objects = [
            (label, radius * rng.uniform(*scale_jitter), rng.uniform(0.0, 2.0 * math.pi))
            for label in labels
        ]
        centres = _place(rng, size, [(r, angle) for _, r, angle in objects])
        masks = []
        for (label, r, angle), (cy, cx) in zip(objects, centres, strict=True):
            masks.append(self._draw_object(rng, canvas, label, cy, cx, r, angle))
        oy, ox = rng.integers(0, size + 1, 2)
        noise = _noise_bank(size)[:, oy : oy + size, ox : ox + size]
        canvas += rng.uniform(0.01, 0.04) * noise
        np.maximum(canvas, 0.0, out=canvas)
        np.minimum(canvas, 1.0, out=canvas)
        return canvas, labels, masks

    def _draw_object(
        self,
        rng: np.random.Generator,
        canvas: np.ndarray,
        label: int,
        cy: float,
        cx: float,
        r: float,
        angle: float,
    ) -> np.ndarray:
        """Paint one body with its parts; return the deciding part's mask."""
        size = self.image_size
        a, b = _BODY_AXES[0] * r, _BODY_AXES[1] * r
        cos, sin = math.cos(angle), math.sin(angle)
        ys, xs, dy, dx = _window(size, cy, cx, a + 1.0)
        u = cos * dx + sin * dy
        v = -sin * dx + cos * dy
        # Scaled radial distance: an SDF only near the outline, which is all the
        # anti-aliasing needs.
        sdf = (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0) * b
        body = _muted_colour(rng)
        freq = rng.uniform(0.5, 1.3) / r * math.pi
        if rng.random() < 0.5:
            pattern = np.sin(freq * v + rng.uniform(0, 6.3))
        else:
            pattern = np.sin(freq * u + rng.uniform(0, 6.3)) * np.sin(freq * v)
        shade = rng.uniform(0.08, 0.2) * pattern
        colour = body[:, None, None] * (1.0 + shade)
        _paint(canvas, ys, xs, _coverage(sdf), colour)

        slots = rng.permutation(_NUM_SLOTS)
        n_distractors = int(rng.integers(1, _NUM_SLOTS))
        colour_idx, shape_idx = label % self.num_colours, label // self.num_colours
        mask = np.zeros((size, size), dtype=bool)
        # The deciding part is drawn last so that a distractor grazing it can
        # never cover it, and its mask stays exact.
        for k, slot in reversed(list(enumerate(slots[: 1 + n_distractors]))):
            theta = angle + slot * (math.pi / 2)
            py = cy + _SLOT_RADIUS * r * math.sin(theta)
            px = cx + _SLOT_RADIUS * r * math.cos(theta)
            if k == 0:
                part_colour = _CLASS_COLOURS[colour_idx]
                shape = shape_idx
            elif self._spare_shapes and rng.random() < 0.35:
                part_colour = _CLASS_COLOURS[rng.integers(self.num_colours)]
                shape = self._spare_shapes[rng.integers(len(self._spare_shapes))]
            else:
                part_colour = _DISTRACTOR_COLOURS[rng.integers(len(_DISTRACTOR_COLOURS))]
                shape = int(rng.integers(len(PART_SHAPES)))
            jitter = part_colour * rng.uniform(0.85, 1.08) + rng.normal(0, 0.035, 3)
            part_r = r * rng.uniform(0.95, 1.05)
            footprint = _draw_part(canvas, shape, py, px, part_r, jitter.astype(np.float32))
            if k == 0:
                ys, xs, fp = footprint
                mask[ys, xs] = fp
        return mask


# -- drawing helpers ------------------------------------------------------------


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an int >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}")


@lru_cache(maxsize=8)
def _grid(size: int) -> np.ndarray:
    # Pixel centres, so shapes are symmetric about their true centre.
    return np.arange(size, dtype=np.float32) + 0.5


@lru_cache(maxsize=8)
def _upsampler(size: int, cells: int) -> np.ndarray:
    """``size x cells`` bilinear interpolation weights (a smooth field from a coarse one)."""
    pos = (np.arange(size) + 0.5) / size * (cells - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, cells - 2)
    frac = (pos - lo).astype(np.float32)
    weights = np.zeros((size, cells), dtype=np.float32)
    weights[np.arange(size), lo] = 1.0 - frac
    weights[np.arange(size), lo + 1] = frac
    return weights


def _window(
    size: int, cy: float, cx: float, extent: float
) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """The clipped square around a centre, with pixel offsets from it.

    Drawing only inside the window keeps a small part's cost independent of
    the image size.
    """
    y0, y1 = max(int(cy - extent), 0), min(int(math.ceil(cy + extent)) + 1, size)
    x0, x1 = max(int(cx - extent), 0), min(int(math.ceil(cx + extent)) + 1, size)
    grid = _grid(size)
    dy = (grid[y0:y1] - cy)[:, None]
    dx = (grid[x0:x1] - cx)[None, :]
    return slice(y0, y1), slice(x0, x1), dy, dx


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    grey = rng.uniform(0.3, 0.75)
    return np.clip(grey + rng.uniform(-0.14, 0.14, 3), 0.0, 1.0).astype(np.float32)


def _part_sdf(
    shape: int, dy: np.ndarray, dx: np.ndarray, r: float
) -> tuple[np.ndarray, np.ndarray]:
    """Signed distances (negative inside) of a part and of its filled outline.

    Sizes are chosen so all shapes cover a similar area (close to pi r^2),
    so size never gives the class away.
    """
    ady, adx = np.abs(dy), np.abs(dx)
    name = PART_SHAPES[shape]
    if name == "disk":
        sdf = np.sqrt(dx * dx + dy * dy) - r
    elif name == "triangle":
        # Upright equilateral triangle with circumradius 1.45 r.
        half = 0.5 * 1.45 * r
        sdf = np.maximum(dy - half, 0.8660254 * adx - 0.5 * dy - half)
    elif name == "square":
        sdf = np.maximum(ady, adx) - 0.886 * r
    elif name == "plus":
        arm, width = 1.1 * r, 0.4 * r
        sdf = np.minimum(np.maximum(ady - arm, adx - width), np.maximum(ady - width, adx - arm))
    elif name == "ring":
        dist = np.sqrt(dx * dx + dy * dy)
        sdf = np.abs(dist - 0.72 * r) - 0.36 * r
        return sdf, dist - 1.08 * r
    else:  # diamond
        sdf = (ady + adx - 1.25 * r) * 0.70710678
    return sdf, sdf


def _draw_part(
    canvas: np.ndarray, shape: int, cy: float, cx: float, r: float, colour: np.ndarray
) -> tuple[slice, slice, np.ndarray]:
    """Paint an anti-aliased part; return its window and filled-outline mask."""
    ys, xs, dy, dx = _window(canvas.shape[1], cy, cx, _PART_EXTENT * r + 1.0)
    sdf, outline = _part_sdf(shape, dy, dx, r)
    _paint(canvas, ys, xs, _coverage(sdf), colour)
    return ys, xs, outline < 0.0


def _coverage(sdf: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] from a signed distance in pixels.

    Bare ufuncs with ``out=`` instead of ``np.clip``: at this image size the
    wrapper's overhead would cost more than the arithmetic.
    """
    cov = np.subtract(0.5, sdf, dtype=np.float32)
    np.maximum(cov, 0.0, out=cov)
    return np.minimum(cov, 1.0, out=cov)


def _paint(canvas: np.ndarray, ys: slice, xs: slice, cov: np.ndarray, colour: np.ndarray) -> None:
    """Alpha-blend ``colour`` (3 values, or 3 x h x w) over a window with weight ``cov``."""
    region = canvas[:, ys, xs]
    if colour.ndim == 1:
        colour = colour[:, None, None]
    region += cov * (colour - region)


@lru_cache(maxsize=8)
def _noise_bank(size: int) -> np.ndarray:
    """Fixed Gaussian noise, twice the image side, from which each image takes a crop.

    Drawing fresh normals for every pixel would cost more than all the shapes
    together; a random crop of a fixed bank is as good for a nuisance and
    keeps every image a pure function of ``(seed, index)``.
    """
    bank_rng = np.random.default_rng(0x5EED)
    return bank_rng.standard_normal((3, 2 * size, 2 * size), dtype=np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured, cluttered ``3 x size x size`` background."""
    cells = 4
    up = _upsampler(size, cells)
    coarse = rng.uniform(0.12, 0.88, (3, cells, cells)).astype(np.float32)
    # Pull towards grey so the background is rich but rarely as vivid as a part.
    coarse = 0.5 * coarse + 0.5 * coarse.mean(axis=0, keepdims=True)
    canvas = up @ coarse @ up.T
    grid = _grid(size)
    # Python floats throughout: NumPy 2 would promote float32 arrays to float64
    # when combined with float64 NumPy scalars, doubling the cost.
    theta, freq, phase, amp = rng.uniform(
        (0.0, 0.25, 0.0, 0.04), (math.pi, 1.2, 6.3, 0.16)
    ).tolist()
    stripes = np.sin(
        (freq * math.cos(theta)) * grid[None, :] + (freq * math.sin(theta)) * grid[:, None] + phase
    )
    canvas *= 1.0 + amp * stripes
    # Translucent blobs larger than any part.
    n_blobs = int(rng.integers(2, 6))
    blobs = rng.uniform((0, 0, 0.12, 0.2), (size, size, 0.3, 0.5), (n_blobs, 4)).tolist()
    colours = rng.uniform(0, 1, (n_blobs, 3)).astype(np.float32)
    for (cy, cx, rad, alpha), colour in zip(blobs, colours, strict=True):
        rad *= size
        ys, xs, dy, dx = _window(size, cy, cx, rad + 1.0)
        cov = _coverage(np.sqrt(dy * dy + dx * dx) - rad)
        cov *= alpha
        _paint(canvas, ys, xs, cov, colour)
    # Thin lines of any colour: edges and colour everywhere, never part-shaped.
    n_lines = int(rng.integers(2, 7))
    lines = rng.uniform(
        (0, 0, 0.1, 0.4, 0.0), (size, size, 0.4, 0.9, math.pi), (n_lines, 5)
    ).tolist()
    colours = rng.uniform(0, 1, (n_lines, 3)).astype(np.float32)
    for (cy, cx, half_len, width, ang), colour in zip(lines, colours, strict=True):
        half_len *= size
        ys, xs, dy, dx = _window(size, cy, cx, half_len + 1.0)
        along = math.cos(ang) * dx + math.sin(ang) * dy
        across = math.cos(ang) * dy - math.sin(ang) * dx
        _paint(
            canvas,
            ys,
            xs,
            _coverage(np.maximum(np.abs(along) - half_len, np.abs(across) - width)),
            colour,
        )
    # Confetti: square specks far below part size, set in one fancy-indexed write.
    n_dots = int(rng.integers(3, 12))
    side = max(1, round(2 * size / 64))
    corner = rng.integers(0, size - side + 1, (2, n_dots))
    offsets = np.arange(side)
    dot_y = (corner[0][:, None, None] + offsets[None, :, None]).repeat(side, axis=2)
    dot_x = (corner[1][:, None, None] + offsets[None, None, :]).repeat(side, axis=1)
    colours = rng.uniform(0, 1, (3, n_dots, 1, 1)).astype(np.float32)
    canvas[:, dot_y, dot_x] = colours
    return canvas


def _place(
    rng: np.random.Generator, size: int, objects: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Centres for objects ``(part radius, angle)`` with every part inside the image.

    Bodies may be cut by the border, parts never are; two objects never overlap.
    """
    bounds = []
    for r, angle in objects:
        # Axis-aligned reach of the slots at this rotation, plus a part.
        offs = [
            (math.sin(angle + k * math.pi / 2), math.cos(angle + k * math.pi / 2))
            for k in range(_NUM_SLOTS)
        ]
        reach_y = max(abs(o[0]) for o in offs) * _SLOT_RADIUS * r + _PART_EXTENT * r + 1.0
        reach_x = max(abs(o[1]) for o in offs) * _SLOT_RADIUS * r + _PART_EXTENT * r + 1.0
        bounds.append((reach_y, size - reach_y, reach_x, size - reach_x))
    if len(objects) == 1:
        y0, y1, x0, x1 = bounds[0]
        return [(rng.uniform(y0, y1), rng.uniform(x0, x1))]
    # Two objects: whole footprints (body or parts) must not meet. Rather than
    # rejecting random pairs (almost all fail at 64 x 64), draw candidate
    # directions and distances and solve for the range of midpoints that keeps
    # both objects inside; take the first candidate for which it is non-empty.
    radii = [(_SLOT_RADIUS + _PART_EXTENT) * r + 1.0 for r, _ in objects]
    n_try = 32
    phi = rng.uniform(0.0, 2.0 * math.pi, n_try)
    half = 0.5 * (radii[0] + radii[1]) * rng.uniform(1.0, 1.15, n_try)
    hy, hx = half * np.sin(phi), half * np.cos(phi)
    (ay0, ay1, ax0, ax1), (by0, by1, bx0, bx1) = bounds
    lo_y, hi_y = np.maximum(ay0 - hy, by0 + hy), np.minimum(ay1 - hy, by1 + hy)
    lo_x, hi_x = np.maximum(ax0 - hx, bx0 + hx), np.minimum(ax1 - hx, bx1 + hx)
    feasible = np.flatnonzero((lo_y <= hi_y) & (lo_x <= hi_x))
    t = rng.uniform(0.0, 1.0, 2)
    if len(feasible):
        k = feasible[0]
        my = lo_y[k] + t[0] * (hi_y[k] - lo_y[k])
        mx = lo_x[k] + t[1] * (hi_x[k] - lo_x[k])
        return [(float(my + hy[k]), float(mx + hx[k])), (float(my - hy[k]), float(mx - hx[k]))]
    # Unreachable at the sizes the constructor allows; opposite corners as a last resort.
    return [(ay0, ax0), (by1, bx1)]
