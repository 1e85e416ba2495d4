#!/usr/bin/python3
"""Generates extra decoder test images and their expected RGB, i.e. what Pillow 9.4 (Debian 12's
python3-pil) gives for Image.open(f).convert("RGB"). Run with Debian's /usr/bin/python3 from this
folder: ./make_extra.py. Writes NAME + NAME.rgb (raw HWC uint8) + manifest.json."""
import io, json, struct, zlib, os
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "coffee.png")
rng = np.random.default_rng(1234)
base = Image.open(SRC).convert("RGB").crop((100, 80, 100 + 61, 80 + 43))  # 61x43, odd sizes
arr = np.asarray(base)
out = {}


def png_chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def write_png(name, w, h, depth, ctype, rows, plte=None, trns=None):
    raw = b"".join(b"\0" + r for r in rows)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    if plte is not None:
        data += png_chunk(b"PLTE", plte)
    if trns is not None:
        data += png_chunk(b"tRNS", trns)
    data += png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")
    open(os.path.join(HERE, name), "wb").write(data)


def pack_bits(vals, depth):
    out, acc, n = bytearray(), 0, 0
    for v in vals:
        acc = (acc << depth) | int(v)
        n += depth
        if n == 8:
            out.append(acc); acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


h, w = arr.shape[:2]
# 16-bit RGB / RGBA / LA with distinct low bytes
a16 = (arr.astype(np.uint16) * 257 + rng.integers(0, 256, arr.shape, dtype=np.uint16) % 257).astype(">u2")
write_png("rgb16.png", w, h, 16, 2, [a16[y].tobytes() for y in range(h)])
alpha16 = rng.integers(0, 65536, (h, w, 1), dtype=np.uint16).astype(">u2")
write_png("rgba16.png", w, h, 16, 6, [np.concatenate([a16, alpha16], 2)[y].tobytes() for y in range(h)])
g16 = a16[:, :, :1]
write_png("la16.png", w, h, 16, 4, [np.concatenate([g16, alpha16], 2)[y].tobytes() for y in range(h)])
# low bit-depth gray and palette (with indices past the end of a short palette)
for depth in (1, 2, 4):
    vals = rng.integers(0, 1 << depth, (h, w))
    write_png(f"gray{depth}.png", w, h, depth, 0, [pack_bits(vals[y], depth) for y in range(h)])
vals = rng.integers(0, 16, (h, w))
write_png("palette4_short.png", w, h, 4, 3, [pack_bits(vals[y], 4) for y in range(h)],
          plte=bytes(rng.integers(0, 256, 3 * 10, dtype=np.uint8)))
gray8 = arr[:, :, 1]
write_png("gray8_trns.png", w, h, 8, 0, [gray8[y].tobytes() for y in range(h)], trns=struct.pack(">H", 17))
write_png("rgb8_trns.png", w, h, 8, 2, [arr[y].tobytes() for y in range(h)], trns=struct.pack(">HHH", 1, 2, 3))

# GIF, BMP, WebP, JPEG written by Pillow
pal = base.quantize(colors=32)
pal.save(os.path.join(HERE, "palette.gif"), interlace=False)
pal.save(os.path.join(HERE, "interlaced.gif"), interlace=True)
gray = base.convert("L")
gray.save(os.path.join(HERE, "gray.gif"))
base.save(os.path.join(HERE, "rgb24.bmp"))
pal.save(os.path.join(HERE, "palette8.bmp"))
base.convert("1").save(os.path.join(HERE, "bilevel1.bmp"))
rgba = base.copy(); rgba.putalpha(Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)))
rgba.save(os.path.join(HERE, "rgba32.bmp"))
base.save(os.path.join(HERE, "lossy.webp"), quality=80)
rgba.save(os.path.join(HERE, "lossy_alpha.webp"), quality=80)
base.save(os.path.join(HERE, "sub422.jpg"), quality=88, subsampling=1)
base.save(os.path.join(HERE, "sub444.jpg"), quality=75, subsampling=0)


def write_bmp(name, w, h, bpp, comp, pixels, masks=b"", palette=b""):
    hdr = struct.pack("<IiiHHIIiiII", 40, w, h, 1, bpp, comp, len(pixels), 2835, 2835, len(palette) // 4, 0)
    off = 14 + len(hdr) + len(masks) + len(palette)
    data = b"BM" + struct.pack("<IHHI", off + len(pixels), 0, 0, off) + hdr + masks + palette + pixels
    open(os.path.join(HERE, name), "wb").write(data)


# 16-bit BMPs (5-5-5 default and 5-6-5 bitfields), bottom-up rows padded to 4 bytes
v16 = rng.integers(0, 65536, (h, w), dtype=np.uint16)
stride = (w * 2 + 3) // 4 * 4
rows = b"".join(v16[y].astype("<u2").tobytes().ljust(stride, b"\0") for y in range(h - 1, -1, -1))
write_bmp("rgb555.bmp", w, h, 16, 0, rows)
write_bmp("rgb565.bmp", w, h, 16, 3, rows, masks=struct.pack("<III", 0xF800, 0x07E0, 0x001F))
# RLE8 / RLE4: encoded runs (one cut at the row end), absolute runs, end-of-line, end-of-bitmap
pal8 = bytes(rng.integers(0, 256, 4 * 6, dtype=np.uint8))
rle = bytes([3, 1, 2, 4, 0, 0,  # row 0: 1 1 1 4 4, EOL pads with 0
             0, 3, 0, 1, 2, 0, 3, 5, 0, 0,  # row 1: absolute 0 1 2 (+ pad byte), then 5 5 5, EOL
             9, 2, 0, 0,  # row 2: nine 2s, cut to eight; EOL (no padding needed, resets x)
             8, 3, 0, 1])  # row 3: eight 3s, end of bitmap
write_bmp("rle8.bmp", 8, 4, 8, 1, rle, palette=pal8)
rle4 = bytes([5, 0x12, 0, 0, 0, 4, 0x34, 0x50, 4, 0x21, 0, 0, 8, 0x33, 0, 0, 8, 0x44, 0, 1])
write_bmp("rle4.bmp", 8, 4, 4, 2, rle4, palette=pal8)

manifest = []
for name in sorted(os.listdir(HERE)):
    if name.endswith((".py", ".rgb", ".json")):
        continue
    im = Image.open(os.path.join(HERE, name))
    rgb = np.asarray(im.convert("RGB"))
    open(os.path.join(HERE, name + ".rgb"), "wb").write(rgb.tobytes())
    manifest.append({"file": name, "pil_mode": im.mode, "format": im.format,
                     "width": rgb.shape[1], "height": rgb.shape[0]})
json.dump(manifest, open(os.path.join(HERE, "manifest.json"), "w"), indent=1)
print(json.dumps(manifest))
