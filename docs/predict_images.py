#!/usr/bin/env python3
"""Writes the images of README's `predict` and `serve` examples (standard library only).

    python3 docs/predict_images.py DATA_DIR OUT_DIR

DATA_DIR holds MNIST's t10k-images-idx3-ubyte (raw or .gz). OUT_DIR gets:
  drawn_seven_240x240.png, drawn_zero_240x240.png, drawn_one_240x240.png
      a stroke drawn with a round pen of radius 9 in near-black (20) on a
      near-white (245) 240 x 240 canvas, edges anti-aliased;
  two_light_on_dark_84x84.png      test image 1 (a 2), each pixel made 3 x 3;
  seven_dark_on_white_200x180.png  test image 0 (a 7) inverted, each pixel
      made 5 x 5, on a white 200 x 180 page;
  blank_white.png                  white, 64 x 64;
  notes.png                        a text file under a picture's name.
The same inputs always give the same pixels (the PNG bytes also depend on zlib).
"""

import gzip
import math
import os
import struct
import sys
import zlib


def png(path, width, height, rows):
    """An 8-bit greyscale PNG of `rows` (a list of `height` lists of `width` shades)."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def segment_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)
    t = max(0.0, min(1.0, t))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def drawn(path, points, side=240, radius=9.0, paper=245, ink=20):
    segments = list(zip(points, points[1:]))
    rows = []
    for y in range(side):
        row = []
        for x in range(side):
            d = min(segment_distance(x + 0.5, y + 0.5, *a, *b) for a, b in segments)
            cover = max(0.0, min(1.0, radius + 0.5 - d))
            row.append(round(paper + (ink - paper) * cover))
        rows.append(row)
    png(path, side, side, rows)


def test_images(data_dir):
    for name in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            raw = (gzip.open if name.endswith(".gz") else open)(p, "rb").read()
            magic, n, h, w = struct.unpack(">IIII", raw[:16])
            assert magic == 0x803 and (h, w) == (28, 28), p
            return lambda i: [list(raw[16 + i * 784 + r * 28: 16 + i * 784 + (r + 1) * 28]) for r in range(28)]
    sys.exit(f"{data_dir}: no t10k-images-idx3-ubyte(.gz); give MNIST's directory")


def enlarged(image, k):
    return [[v for v in row for _ in range(k)] for row in image for _ in range(k)]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    data_dir, out = sys.argv[1], sys.argv[2]
    image = test_images(data_dir)
    os.makedirs(out, exist_ok=True)
    o = lambda name: os.path.join(out, name)

    drawn(o("drawn_seven_240x240.png"), [(62, 52), (178, 52), (108, 196)])
    zero = [(120 + 52 * math.sin(2 * math.pi * i / 48), 120 - 82 * math.cos(2 * math.pi * i / 48)) for i in range(49)]
    drawn(o("drawn_zero_240x240.png"), zero)
    drawn(o("drawn_one_240x240.png"), [(95, 80), (135, 40), (120, 200)])

    two = enlarged(image(1), 3)
    png(o("two_light_on_dark_84x84.png"), 84, 84, two)

    seven = enlarged([[255 - v for v in row] for row in image(0)], 5)
    page = [[255] * 200 for _ in range(180)]
    for y, row in enumerate(seven):
        page[20 + y][30:170] = row
    png(o("seven_dark_on_white_200x180.png"), 200, 180, page)

    png(o("blank_white.png"), 64, 64, [[255] * 64 for _ in range(64)])
    with open(o("notes.png"), "w") as f:
        f.write("shopping: milk, bread\n")


if __name__ == "__main__":
    main()
