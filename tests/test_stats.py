"""Tests for nst_helpers.stats (the grain figure): the top-band power against closed forms, the grain figure on synthetic images."""

from __future__ import annotations

import pytest
import torch

from nst_helpers.stats import grain, top_band_power


def _checker(h: int, w: int, amplitude: float = 0.5) -> torch.Tensor:
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return (0.5 + amplitude * (-1.0) ** (i + j)).expand(1, 3, h, w)  # (1, 3, H, W)


def _ramp(h: int, w: int) -> torch.Tensor:
    x = torch.linspace(0, 1, w).view(1, w).expand(h, w)
    return torch.stack([x, 1 - x, 0.5 * x + 0.25]).unsqueeze(0)  # (1, 3, H, W)


def test_nyquist_checker_has_all_its_variance_in_the_top_band():
    # +-a around the mean at (0.5, 0.5) cycles/px: per-pixel variance a^2 per channel, all of it in the band.
    assert float(top_band_power(_checker(16, 24, 0.5))) == pytest.approx(3 * 0.25)
    assert float(top_band_power(_checker(16, 24, 0.1))) == pytest.approx(3 * 0.01)


def test_power_is_per_pixel_so_tiling_does_not_change_it():
    texture = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    assert float(top_band_power(texture.repeat(1, 1, 2, 3))) == pytest.approx(float(top_band_power(texture)))


def test_constant_and_low_frequency_images_have_no_top_band_power():
    assert float(top_band_power(torch.full((1, 3, 8, 8), 0.7))) == pytest.approx(0, abs=1e-12)
    j = torch.arange(32.0)
    wave = (0.5 + 0.4 * torch.cos(2 * torch.pi * 3 * j / 32)).expand(1, 3, 32, 32)  # 3/32 cycles/px
    assert float(top_band_power(wave)) == pytest.approx(0, abs=1e-12)


def test_checkerboard_scores_high_and_a_smooth_ramp_low():
    photo = _ramp(48, 64)
    texture = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(1))  # white noise
    assert grain(_checker(48, 64), photo, texture) > 2  # all of the checker's variance is in the band
    assert grain(_ramp(48, 64), _checker(48, 64), texture) < 0.01


def test_a_painting_against_itself_scores_one():
    painting = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(2))
    assert grain(painting, _ramp(40, 56), painting) == pytest.approx(1.0)


def test_inputs_are_compared_at_the_results_long_edge():
    from nst_helpers.images import resize

    painting = torch.rand(1, 3, 80, 112, generator=torch.Generator().manual_seed(3))
    small = resize(painting, (40, 56))  # the painting at the result's size: the figure must be exactly 1
    assert grain(small, _ramp(40, 56), painting) == pytest.approx(1.0)
    assert float(top_band_power(painting)) > 2 * float(top_band_power(small))  # not compared at 112 px


def test_cutoff_and_flat_inputs_are_checked():
    with pytest.raises(ValueError, match="cycles per pixel"):
        top_band_power(_ramp(8, 8), cutoff=0.5)
    flat = torch.full((1, 3, 8, 8), 0.5)
    with pytest.raises(ValueError, match="no energy in the top band"):
        grain(_checker(8, 8), flat, flat)
