"""Colour preservation (Gatys et al. 2017): YIQ, luminance-only transfer, linear colour matching."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from nst_helpers import color, transfer


def image(seed: int, h: int = 40, w: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, 1, 1, generator=g)
    return (0.6 * base + 0.4 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


def test_yiq_round_trip_and_luminance():
    x = image(0)
    assert_close(color.yiq_to_rgb(color.rgb_to_yiq(x)), x, rtol=1e-5, atol=1e-6)
    grey = torch.full((1, 3, 2, 2), 0.4)
    assert_close(color.rgb_to_yiq(grey)[:, 1:], torch.zeros(1, 2, 2, 2), atol=1e-6, rtol=0)  # grey has no chroma
    assert_close(color.luminance(x)[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])


def test_matched_luminance_has_the_contents_mean_and_spread():
    style, content = image(1), image(2, 30, 36)
    y = color.match_luminance(style, content)[:, 0]
    y_c = color.luminance(content)[:, 0]
    assert float(y.mean()) == pytest.approx(float(y_c.mean()), abs=1e-5)
    assert float(y.std(unbiased=False)) == pytest.approx(float(y_c.std(unbiased=False)), rel=1e-4)


def test_histogram_matching_gives_the_contents_mean_and_covariance():
    style, content = image(3), image(4, 30, 36)
    matched = color.match_colors(style, content).double().reshape(3, -1)
    c = content.double().reshape(3, -1)
    assert_close(matched.mean(1), c.mean(1), rtol=1e-6, atol=1e-8)
    assert_close(torch.cov(matched, correction=0), torch.cov(c, correction=0), rtol=1e-5, atol=1e-8)
    # the symmetric root: permuting the channels of both images permutes the result the same way
    order = [2, 0, 1]
    assert_close(color.match_colors(style[:, order], content[:, order]), color.match_colors(style, content)[:, order],
                 rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def tiny_vgg():
    from nst_helpers import load_vgg19

    return load_vgg19(weights="random", pooling="avg")


def test_luminance_mode_returns_the_photos_chroma(tiny_vgg):
    photo, painting = image(5), image(6)
    result = transfer(photo, painting, alpha=1.0, beta=1e3, steps=3, init="content", extractor=tiny_vgg,
                      progress=False, preserve_color="luminance")
    chroma, photo_chroma = color.rgb_to_yiq(result.image)[:, 1:], color.rgb_to_yiq(photo)[:, 1:]
    assert_close(chroma, photo_chroma, rtol=0, atol=1e-5)  # everywhere: the luminance is limited, not RGB clamped
    assert result.settings["preserve_color"] == "luminance"


def test_histogram_mode_runs_and_records_itself(tiny_vgg):
    result = transfer(image(7), image(8), alpha=1.0, beta=1e3, steps=2, extractor=tiny_vgg, progress=False,
                      preserve_color="histogram")
    assert result.settings["preserve_color"] == "histogram" and result.image.shape == (1, 3, 40, 48)


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="preserve_color must be None, 'luminance' or 'histogram'"):
        transfer(image(9), image(10), steps=1, preserve_color="yes")


def test_chroma_is_kept_even_where_the_luminance_would_overflow():
    photo = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1).expand(1, 3, 4, 4).contiguous()  # a saturated red
    bright = torch.ones(1, 3, 4, 4)  # a result asking for white: Y = 1 cannot carry that chroma
    kept = color.with_chroma_of(bright, photo)
    assert float(kept.min()) >= 0 and float(kept.max()) <= 1
    assert_close(color.rgb_to_yiq(kept)[:, 1:], color.rgb_to_yiq(photo)[:, 1:], rtol=0, atol=1e-5)
