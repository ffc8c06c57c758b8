"""Colour preservation (Gatys et al. 2017): YIQ, luminance-only transfer, linear colour matching, KeepColors."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from nst_helpers import Blend, Gram, KeepColors, Smoothing, color, transfer


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


def test_luminance_mode_returns_the_photos_chroma(random_vgg):
    photo, painting = image(5), image(6)
    starts = []
    result = transfer(photo, painting, alpha=1.0, beta=1e3, steps=3, init="content", network=random_vgg,
                      progress=False, extras=[Smoothing(), KeepColors("luminance")], recipe="paper",
                      callback=lambda progress: starts.append(progress.image) if progress.step == 1 else None, every=1)
    chroma, photo_chroma = color.rgb_to_yiq(result.image)[:, 1:], color.rgb_to_yiq(photo)[:, 1:]
    assert_close(chroma, photo_chroma, rtol=0, atol=1e-5)  # everywhere: the luminance is limited, not RGB clamped
    assert result.settings["preserve_color"] == "luminance" and "tv" in result.history
    # the run is on grey images: its start (the photo's luminance) has R = G = B
    start = starts[0]
    assert_close(start[:, 0], start[:, 1], rtol=0, atol=0)
    assert_close(start[:, 1], start[:, 2], rtol=0, atol=0)
    assert_close(start, color.luminance(photo).clamp(0, 1))


def test_luminance_mode_prepares_grey_images_matched_to_the_photo():
    photo, painting = image(5), image(6, 30, 36)
    grey_photo, style = KeepColors("luminance").prepare(photo, Gram(painting))
    assert_close(grey_photo, color.luminance(photo))
    assert isinstance(style, Gram) and torch.equal(style.painting, color.match_luminance(painting, photo))
    assert_close(KeepColors("luminance").start(photo), color.luminance(photo))


def test_histogram_mode_gives_every_painting_the_photos_mean_and_covariance():
    photo, paintings = image(7), [image(8, 30, 36), image(9)]
    matched = [color.match_colors(p, photo) for p in paintings]
    assert all(0 <= float(m.min()) and float(m.max()) <= 1 for m in matched)  # the clamp does not bite here
    same_photo, style = KeepColors("histogram").prepare(photo, Blend(paintings, weights=[2, 1]))
    assert same_photo is photo and isinstance(style, Blend) and style.weights == [2, 1]
    c = photo.double().reshape(3, -1)
    for p in style.paintings:
        x = p.double().reshape(3, -1)
        assert_close(x.mean(1), c.mean(1), rtol=1e-5, atol=1e-6)
        assert_close(torch.cov(x, correction=0), torch.cov(c, correction=0), rtol=1e-4, atol=1e-6)
    assert KeepColors("histogram").start(photo) is photo  # colour runs start where they would
    assert KeepColors("histogram").finish(paintings[0], photo) is paintings[0]


def test_histogram_mode_runs_and_records_itself(random_vgg):
    result = transfer(image(7), image(8), alpha=1.0, beta=1e3, steps=2, network=random_vgg, progress=False,
                      extras=[KeepColors("histogram")])
    assert result.settings["preserve_color"] == "histogram" and result.image.shape == (1, 3, 40, 48)
    assert "tv" not in result.history and "tv_weight" not in result.settings  # extras replace the default


@pytest.mark.parametrize("mode", ["yes", None])
def test_an_unknown_mode_is_refused(mode):
    with pytest.raises(ValueError, match="takes 'luminance' or 'histogram'"):
        KeepColors(mode)


def test_chroma_is_kept_even_where_the_luminance_would_overflow():
    photo = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1).expand(1, 3, 4, 4).contiguous()  # a saturated red
    bright = torch.ones(1, 3, 4, 4)  # a result asking for white: Y = 1 cannot carry that chroma
    kept = color.with_chroma_of(bright, photo)
    assert float(kept.min()) >= 0 and float(kept.max()) <= 1
    assert_close(color.rgb_to_yiq(kept)[:, 1:], color.rgb_to_yiq(photo)[:, 1:], rtol=0, atol=1e-5)
