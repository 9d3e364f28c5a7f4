"""libvips' derivative set of each JPEG, for the thumbnails bench.

    vips_derivatives.py [--upload-set] OUT FILE...

The whole derivative set (libs/imaging/src/derivatives.rs), made by
libvips through pyvips in this one process, each image decoded once:
`w2048` by `thumbnail` (shrink-on-load, fitted within 2048 px, never
enlarged, EXIF orientation applied), `w1080` resized from it and `w640` from
`w1080` (`resize`, Lanczos3), `thumb_256` the centred square of `w1080`
resized to 256x256. With `--upload-set`, only the outputs ours makes at
upload (no `w2048`): `w1080` by `thumbnail`, the rest as above. Each is
saved as JPEG quality 82 (baseline, 4:2:0,
optimised Huffman tables, no trellis: as ours) and lossy WebP quality 80,
effort (libwebp's method) 0, without metadata. Every intermediate image is
copied to memory so that each is computed once.

Prints one JSON object per image (its file and the process CPU time, every
thread, of making its eight outputs, file reading included, writing them
out not), then one for the run (libvips' version and concurrency), and
writes each output to OUT as `<stem>.<name>.<jpg|webp>`.
"""

import json
import os
import sys
import time

import pyvips

JPEG_QUALITY = 82
WEBP_QUALITY = 80
WEBP_EFFORT = 0
THUMB_EDGE = 256


def fit_within(width, height, edge):
    """The size fitted within `edge` px, never enlarged (ours, rounded)."""
    long = max(width, height)
    if long <= edge:
        return width, height
    scale = lambda side: max(1, (side * edge + long // 2) // long)
    return (edge, scale(height)) if width >= height else (scale(width), edge)


def resized(img, width, height):
    """Lanczos3 to exactly `width` x `height`, in memory."""
    if (img.width, img.height) == (width, height):
        return img
    out = img.resize(width / img.width, vscale=height / img.height, kernel="lanczos3")
    if (out.width, out.height) != (width, height):
        # resize rounds the output size; trim the odd pixel.
        out = out.crop(0, 0, min(out.width, width), min(out.height, height))
    return out.copy_memory()


def webp_options():
    """`effort` since libvips 8.12; `reduction_effort` before."""
    probe = pyvips.Image.black(8, 8)
    try:
        probe.webpsave_buffer(Q=WEBP_QUALITY, effort=WEBP_EFFORT, strip=True)
        return {"effort": WEBP_EFFORT}
    except pyvips.Error:
        return {"reduction_effort": WEBP_EFFORT}


def derivatives(path, webp, upload_set):
    largest = 1080 if upload_set else 2048
    big = pyvips.Image.thumbnail(path, largest, height=largest, size="down").copy_memory()
    w1080 = resized(big, *fit_within(big.width, big.height, 1080))
    w640 = resized(w1080, *fit_within(big.width, big.height, 640))
    side = min(w1080.width, w1080.height)
    square = w1080.crop((w1080.width - side) // 2, (w1080.height - side) // 2, side, side)
    thumb_side = max(1, min(THUMB_EDGE, side))
    thumb = resized(square, thumb_side, thumb_side)
    outputs = [("thumb_256", thumb), ("w640", w640), ("w1080", w1080)]
    if not upload_set:
        outputs.append(("w2048", big))
    made = []
    for name, img in outputs:
        made.append(
            (
                name,
                "jpg",
                img.jpegsave_buffer(
                    Q=JPEG_QUALITY,
                    optimize_coding=True,
                    subsample_mode="on",
                    interlace=False,
                    strip=True,
                ),
            )
        )
        made.append((name, "webp", img.webpsave_buffer(Q=WEBP_QUALITY, strip=True, **webp)))
    return made


def main():
    args = sys.argv[1:]
    upload_set = args[:1] == ["--upload-set"]
    if upload_set:
        args = args[1:]
    out, files = args[0], args[1:]
    # Nothing is made twice; keep no operations around.
    pyvips.cache_set_max(0)
    webp = webp_options()
    for path in files:
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        made = derivatives(path, webp, upload_set)
        cpu_ms = (time.process_time() - start_cpu) * 1000
        wall_ms = (time.perf_counter() - start_wall) * 1000
        stem = os.path.splitext(os.path.basename(path))[0]
        for name, ext, data in made:
            with open(os.path.join(out, f"{stem}.{name}.{ext}"), "wb") as f:
                f.write(data)
        print(json.dumps({"file": path, "cpu_ms": round(cpu_ms, 3), "wall_ms": round(wall_ms, 3)}))
    version = ".".join(str(pyvips.version(i)) for i in range(3))
    print(
        json.dumps(
            {
                "libvips": version,
                "concurrency": pyvips.concurrency_get() if hasattr(pyvips, "concurrency_get") else None,
                "webp": webp,
            }
        )
    )


if __name__ == "__main__":
    main()
