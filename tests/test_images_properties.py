"""A property-based test of ``images.load_image`` (Hypothesis): any bytes give a picture or a clear error.

Over random bytes, truncated PNG/JPEG/GIF/TIFF/BMP/WebP files, every Pillow mode that can be saved, and
odd sizes (1 px wide, very thin, very small), ``load_image`` either returns a float tensor
``(1, 3, H, W)`` in [0, 1] or raises ``ValueError`` whose message names the file; never anything else.
"""

from __future__ import annotations

import io
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

from nst_helpers import load_image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LA", "I", "F", "I;16"]
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "TIFF": ".tif", "BMP": ".bmp", "WEBP": ".webp"}


def _picture(mode: str, width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width)).astype("<u2"))  # mode I;16
    return rgb.convert(mode)


def _encode(image: Image.Image, fmt: str) -> bytes | None:
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # this format cannot store this mode: nothing to test
        return None
    return buffer.getvalue()


def _check(path) -> None:
    try:
        image = load_image(path)
    except ValueError as err:
        assert str(path) in str(err) or path.name in str(err), err  # the message names the file
        return
    assert isinstance(image, torch.Tensor) and image.dtype == torch.float32
    assert image.dim() == 4 and image.shape[:2] == (1, 3) and image.shape[2] >= 1 and image.shape[3] >= 1
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".png", ".jpg", ".bin", ""]))
def test_random_bytes_load_or_fail_clearly(tmp_path, data, suffix):
    path = tmp_path / f"{uuid.uuid4().hex}{suffix}"
    path.write_bytes(data)
    _check(path)


@SETTINGS
@given(mode=st.sampled_from(MODES), fmt=st.sampled_from(list(FORMATS)),
       width=st.integers(1, 40), height=st.integers(1, 40), seed=st.integers(0, 2**16),
       cut=st.one_of(st.none(), st.floats(0.0, 1.0)))
def test_every_mode_format_size_and_truncation(tmp_path, mode, fmt, width, height, seed, cut):
    data = _encode(_picture(mode, width, height, seed), fmt)
    if data is None:
        return
    if cut is not None:  # a download that stopped part-way
        data = data[: int(len(data) * cut)]
    path = tmp_path / f"{uuid.uuid4().hex}{FORMATS[fmt]}"
    path.write_bytes(data)
    _check(path)
    if cut is None and fmt in ("PNG", "TIFF", "BMP"):  # lossless and complete: the size is kept
        assert tuple(load_image(path).shape[-2:]) == (height, width)
