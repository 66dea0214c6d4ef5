#!/usr/bin/env python3
"""Regenerates items.json for the torch-edit-score example, deterministically.

Every image is synthetic: a 32x32 RGB picture of a few shapes (rectangles, ellipses, lines) whose
positions and colours come from random.Random(<seed derived from the item id>), drawn with PIL
and stored as base64 PNG. Nothing is downloaded. The output is the benchmark form
{category: [records]}, each record {id, image, instruction, description}.

    /usr/bin/python3 make_items.py            # writes items.json next to this file
    /usr/bin/python3 make_items.py --check    # exit 1 when items.json differs from what it would write
"""
import argparse
import base64
import io
import json
import os
import random
import sys

from PIL import Image, ImageDraw

SIZE = 32

# category -> [(id, instruction, description)]
ITEMS = {
    "color": [
        ("c1", "make the background blue", "a red square on a grey background"),
        ("c2", "turn the circle green", "an orange circle and a line"),
        ("c3", "make everything warmer", "two boxes in cool colours"),
    ],
    "object": [
        ("o1", "remove the small square", "a big and a small square"),
        ("o2", "add a yellow sun", "a landscape with a horizon line"),
        ("o3", "replace the circle with a triangle", "a circle next to a bar"),
    ],
    "style": [
        ("s1", "make it look like a pencil sketch", "a few overlapping shapes"),
        ("s2", "apply a neon glow", "dark shapes on a dark background"),
        ("s3", "make it a watercolor painting", "soft shapes on a light background"),
    ],
}


def _colour(rng):
    return tuple(rng.randrange(256) for _ in range(3))


def draw(item_id):
    """One deterministic 32x32 image for an item id."""
    rng = random.Random("torch-edit-score/" + item_id)
    img = Image.new("RGB", (SIZE, SIZE), _colour(rng))
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 4)):
        x0, y0 = rng.randrange(SIZE - 8), rng.randrange(SIZE - 8)
        x1, y1 = x0 + rng.randint(6, SIZE - x0 - 1), y0 + rng.randint(6, SIZE - y0 - 1)
        shape = rng.choice(("rect", "ellipse", "line"))
        if shape == "rect":
            d.rectangle((x0, y0, x1, y1), fill=_colour(rng))
        elif shape == "ellipse":
            d.ellipse((x0, y0, x1, y1), fill=_colour(rng))
        else:
            d.line((x0, y0, x1, y1), fill=_colour(rng), width=rng.randint(1, 3))
    return img


def png_b64(img):
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def build():
    return {
        cat: [{"id": i, "image": png_b64(draw(i)), "instruction": ins, "description": desc} for i, ins, desc in recs]
        for cat, recs in ITEMS.items()
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "items.json"))
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    a = ap.parse_args()
    text = json.dumps(build(), indent=1) + "\n"
    if a.check:
        try:
            with open(a.out) as f:
                same = f.read() == text
        except OSError:
            same = False
        print("%s: %s" % (a.out, "up to date" if same else "differs from make_items.py's output"))
        sys.exit(0 if same else 1)
    with open(a.out, "w") as f:
        f.write(text)
    print("wrote %s (%d items)" % (a.out, sum(len(v) for v in ITEMS.values())))


if __name__ == "__main__":
    main()
