"""Deterministic product pictures drawn with Pillow.

A picture shows an object's shape, its colour and a surface pattern, photographed with
a little jitter (position, scale, rotation, background, lighting, JPEG quality), so the
same product never gives the same bytes twice but always looks alike.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Box = tuple[float, float, float, float]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (196, 38, 46),
    "blue": (36, 84, 196),
    "green": (40, 150, 70),
    "yellow": (236, 200, 40),
    "black": (30, 30, 34),
    "white": (238, 238, 232),
    "grey": (128, 128, 132),
    "orange": (236, 120, 30),
    "purple": (120, 56, 160),
    "pink": (232, 130, 170),
    "brown": (120, 78, 44),
    "teal": (30, 140, 140),
    "navy": (24, 36, 96),
    "beige": (214, 196, 160),
}
PATTERNS = ("plain", "stripes", "dots", "checks", "zigzag", "rings", "diagonal", "grid")


def _mug(d: ImageDraw.ImageDraw, x0, y0, x1, y1):
    w = x1 - x0
    d.rectangle((x0 + 0.1 * w, y0 + 0.2 * w, x0 + 0.72 * w, y1), fill=255)
    d.ellipse((x0 + 0.6 * w, y0 + 0.38 * w, x1, y0 + 0.8 * w), outline=255, width=max(3, int(0.08 * w)))


def _vase(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    d.polygon(
        [
            (cx - 0.12 * w, y0),
            (cx + 0.12 * w, y0),
            (cx + 0.1 * w, y0 + 0.2 * h),
            (cx + 0.42 * w, y0 + 0.6 * h),
            (cx + 0.25 * w, y1),
            (cx - 0.25 * w, y1),
            (cx - 0.42 * w, y0 + 0.6 * h),
            (cx - 0.1 * w, y0 + 0.2 * h),
        ],
        fill=255,
    )


def _lamp(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    d.polygon(
        [(cx - 0.2 * w, y0), (cx + 0.2 * w, y0), (cx + 0.45 * w, y0 + 0.4 * h), (cx - 0.45 * w, y0 + 0.4 * h)], fill=255
    )
    d.rectangle((cx - 0.04 * w, y0 + 0.4 * h, cx + 0.04 * w, y1 - 0.1 * h), fill=255)
    d.ellipse((cx - 0.3 * w, y1 - 0.16 * h, cx + 0.3 * w, y1), fill=255)


def _bowl(d, x0, y0, x1, y1):
    h = y1 - y0
    d.chord((x0, y0 + 0.1 * h, x1, y1 + 0.5 * h), 180, 360, fill=255)
    d.chord((x0, y0 + 0.35 * h, x1, y1), 0, 180, fill=255)


def _bottle(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    d.rectangle((cx - 0.08 * w, y0, cx + 0.08 * w, y0 + 0.25 * h), fill=255)
    d.rounded_rectangle((cx - 0.22 * w, y0 + 0.22 * h, cx + 0.22 * w, y1), radius=0.1 * w, fill=255)


def _clock(d, x0, y0, x1, y1):
    d.ellipse((x0, y0, x1, y1), fill=255)
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    d.line((cx, cy, cx, cy - 0.7 * r), fill=0, width=max(2, int(0.06 * r)))
    d.line((cx, cy, cx + 0.5 * r, cy), fill=0, width=max(2, int(0.06 * r)))


def _candle(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    d.rectangle((cx - 0.16 * w, y0 + 0.25 * h, cx + 0.16 * w, y1), fill=255)
    d.ellipse((cx - 0.07 * w, y0, cx + 0.07 * w, y0 + 0.2 * h), fill=255)


def _pot(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    d.polygon([(x0, y0 + 0.45 * h), (x1, y0 + 0.45 * h), (x1 - 0.18 * w, y1), (x0 + 0.18 * w, y1)], fill=255)
    for k in (-1, 0, 1):
        cx = (x0 + x1) / 2 + k * 0.2 * w
        d.ellipse((cx - 0.1 * w, y0, cx + 0.1 * w, y0 + 0.45 * h), fill=255)


def _kettle(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    d.polygon(
        [(x0 + 0.2 * w, y0 + 0.2 * h), (x1 - 0.25 * w, y0 + 0.2 * h), (x1 - 0.12 * w, y1), (x0 + 0.08 * w, y1)],
        fill=255,
    )
    d.polygon(
        [
            (x0 + 0.12 * w, y0 + 0.45 * h),
            (x0, y0 + 0.25 * h),
            (x0 + 0.05 * w, y0 + 0.22 * h),
            (x0 + 0.2 * w, y0 + 0.4 * h),
        ],
        fill=255,
    )
    d.arc((x0 + 0.25 * w, y0, x1 - 0.3 * w, y0 + 0.4 * h), 180, 360, fill=255, width=max(3, int(0.06 * w)))


def _toaster(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    d.rounded_rectangle((x0, y0 + 0.3 * h, x1, y1), radius=0.15 * w, fill=255)
    d.rectangle((x0 + 0.25 * w, y0 + 0.22 * h, x0 + 0.4 * w, y0 + 0.32 * h), fill=0)
    d.rectangle((x0 + 0.6 * w, y0 + 0.22 * h, x0 + 0.75 * w, y0 + 0.32 * h), fill=0)


def _headphones(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    d.arc((x0 + 0.1 * w, y0, x1 - 0.1 * w, y1 - 0.1 * h), 180, 360, fill=255, width=max(4, int(0.09 * w)))
    d.rounded_rectangle((x0, y0 + 0.45 * h, x0 + 0.28 * w, y1), radius=0.08 * w, fill=255)
    d.rounded_rectangle((x1 - 0.28 * w, y0 + 0.45 * h, x1, y1), radius=0.08 * w, fill=255)


def _speaker(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    d.rounded_rectangle((x0 + 0.15 * w, y0, x1 - 0.15 * w, y1), radius=0.1 * w, fill=255)
    cx = (x0 + x1) / 2
    d.ellipse((cx - 0.22 * w, y0 + 0.45 * h, cx + 0.22 * w, y0 + 0.89 * h), fill=0)
    d.ellipse((cx - 0.1 * w, y0 + 0.1 * h, cx + 0.1 * w, y0 + 0.3 * h), fill=0)


def _sneaker(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    d.polygon(
        [
            (x0, y1 - 0.1 * h),
            (x0, y0 + 0.45 * h),
            (x0 + 0.35 * w, y0 + 0.3 * h),
            (x0 + 0.55 * w, y0 + 0.55 * h),
            (x1, y0 + 0.7 * h),
            (x1, y1 - 0.1 * h),
        ],
        fill=255,
    )
    d.rectangle((x0, y1 - 0.12 * h, x1, y1), fill=255)


def _boot(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    d.polygon(
        [
            (x0 + 0.1 * w, y0),
            (x0 + 0.5 * w, y0),
            (x0 + 0.55 * w, y0 + 0.55 * h),
            (x1, y0 + 0.7 * h),
            (x1, y1),
            (x0 + 0.1 * w, y1),
        ],
        fill=255,
    )


def _tshirt(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    d.polygon(
        [
            (x0 + 0.3 * w, y0),
            (x0 + 0.7 * w, y0),
            (x1, y0 + 0.2 * h),
            (x1 - 0.1 * w, y0 + 0.4 * h),
            (x0 + 0.78 * w, y0 + 0.32 * h),
            (x0 + 0.78 * w, y1),
            (x0 + 0.22 * w, y1),
            (x0 + 0.22 * w, y0 + 0.32 * h),
            (x0 + 0.1 * w, y0 + 0.4 * h),
            (x0, y0 + 0.2 * h),
        ],
        fill=255,
    )


def _hoodie(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    _tshirt(d, x0, y0 + 0.12 * h, x1, y1)
    d.ellipse((x0 + 0.3 * w, y0, x0 + 0.7 * w, y0 + 0.3 * h), fill=255)
    d.rectangle((x0 + 0.05 * w, y0 + 0.3 * h, x0 + 0.2 * w, y1 - 0.1 * h), fill=255)
    d.rectangle((x1 - 0.2 * w, y0 + 0.3 * h, x1 - 0.05 * w, y1 - 0.1 * h), fill=255)


def _cap(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    d.chord((x0 + 0.1 * w, y0 + 0.2 * h, x1 - 0.2 * w, y1 + 0.2 * h), 180, 360, fill=255)
    d.rectangle((x1 - 0.35 * w, y0 + 0.62 * h, x1, y0 + 0.72 * h), fill=255)


def _backpack(d, x0, y0, x1, y1):
    w, h = x1 - x0, y1 - y0
    d.rounded_rectangle((x0 + 0.1 * w, y0 + 0.12 * h, x1 - 0.1 * w, y1), radius=0.2 * w, fill=255)
    d.arc((x0 + 0.3 * w, y0, x1 - 0.3 * w, y0 + 0.3 * h), 180, 360, fill=255, width=max(3, int(0.05 * w)))
    d.rectangle((x0 + 0.25 * w, y0 + 0.6 * h, x1 - 0.25 * w, y1 - 0.08 * h), fill=0)


SHAPES: dict[str, Callable] = {
    "mug": _mug,
    "vase": _vase,
    "lamp": _lamp,
    "bowl": _bowl,
    "bottle": _bottle,
    "clock": _clock,
    "candle": _candle,
    "pot": _pot,
    "kettle": _kettle,
    "toaster": _toaster,
    "headphones": _headphones,
    "speaker": _speaker,
    "sneaker": _sneaker,
    "boot": _boot,
    "tshirt": _tshirt,
    "hoodie": _hoodie,
    "cap": _cap,
    "backpack": _backpack,
}


def _pattern_fill(size: int, colour, accent, pattern: str, phase: float) -> Image.Image:
    img = Image.new("RGB", (size, size), colour)
    d = ImageDraw.Draw(img)
    step = max(6, size // 10)
    off = int(phase * step)
    if pattern == "stripes":
        for y in range(-step + off, size, step):
            d.rectangle((0, y, size, y + step // 3), fill=accent)
    elif pattern == "dots":
        for y in range(off, size, step):
            for x in range(off, size, step):
                d.ellipse((x, y, x + step // 3, y + step // 3), fill=accent)
    elif pattern == "checks":
        for y in range(0, size, step):
            for x in range(0, size, step):
                if (x // step + y // step) % 2:
                    d.rectangle((x, y, x + step - 1, y + step - 1), fill=accent)
    elif pattern == "zigzag":
        for y in range(-step + off, size + step, step):
            pts = [(x, y + (step // 3 if (x // (step // 2)) % 2 else 0)) for x in range(0, size + step, step // 2)]
            d.line(pts, fill=accent, width=max(2, step // 4))
    elif pattern == "rings":
        c = size // 2
        for r in range(step // 2 + off, size, step):
            d.ellipse((c - r, c - r, c + r, c + r), outline=accent, width=max(2, step // 4))
    elif pattern == "diagonal":
        for k in range(-size, size * 2, step):
            d.line((k + off, 0, k + off - size, size), fill=accent, width=max(2, step // 4))
    elif pattern == "grid":
        for k in range(off, size, step):
            d.line((k, 0, k, size), fill=accent, width=2)
            d.line((0, k, size, k), fill=accent, width=2)
    return img


def product_picture(
    shape: str,
    colour: tuple[int, int, int],
    pattern: str,
    accent: tuple[int, int, int],
    rng: np.random.Generator,
    size: int = 128,
) -> Image.Image:
    """One photograph of an object: same arguments, new rng state -> a look-alike with new bytes."""
    big = size * 2  # draw large, then shrink: smooth edges
    background = tuple(int(v) for v in rng.integers(200, 256, size=3))
    canvas = Image.new("RGB", (big, big), background)
    mask = Image.new("L", (big, big), 0)
    scale = rng.uniform(0.62, 0.8)
    extent = big * scale
    x0 = rng.uniform(0.04, 0.96 - scale) * big
    y0 = rng.uniform(0.04, 0.96 - scale) * big
    SHAPES[shape](ImageDraw.Draw(mask), x0, y0, x0 + extent, y0 + extent)
    fill = _pattern_fill(big, colour, accent, pattern, rng.uniform(0, 1))
    canvas.paste(fill, (0, 0), mask)
    canvas = canvas.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BICUBIC, fillcolor=background)
    light = rng.uniform(0.85, 1.12)
    canvas = canvas.point(lambda v: min(255, int(v * light)))
    if rng.random() < 0.3:
        canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def encode(img: Image.Image, fmt: str, rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpg":
        img.save(buf, format="JPEG", quality=int(rng.integers(70, 95)))
    else:
        img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
