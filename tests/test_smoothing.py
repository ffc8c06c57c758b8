"""Tests for nst_helpers.smoothing: ``Smoothing`` adds alpha * weight * L_tv to eq. 7, recorded as "tv"."""

from __future__ import annotations

import pytest
import torch

from nst_helpers import Extra, Smoothing, transfer
from nst_helpers.balance import DEFAULT_TV_WEIGHT, NORMALISED_TV_WEIGHT, default_tv_weight
from nst_helpers.losses import total_variation


def test_its_term_is_alpha_times_the_weight_times_total_variation(smooth_image):
    noise = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    smoothing = Smoothing(0.5)
    assert isinstance(smoothing, Extra) and smoothing.name == "tv"
    term = smoothing.term(smooth_image, alpha=2.0, content_scale=7.0)  # a given weight ignores the network's scale
    torch.testing.assert_close(term(noise), 2.0 * 0.5 * total_variation(noise))
    assert smoothing.settings(7.0) == {"tv_weight": 0.5}


def test_no_weight_is_the_default_for_the_network(smooth_image):
    """``Smoothing(None)``: ``default_tv_weight(c)``, c the network's content term against the raw Caffe one's."""
    noise = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(1))
    smoothing = Smoothing()
    assert smoothing.weight_for(1.0) == DEFAULT_TV_WEIGHT
    assert smoothing.weight_for(1e-5) == pytest.approx(default_tv_weight(1e-5)) == pytest.approx(1e-5 * DEFAULT_TV_WEIGHT)
    torch.testing.assert_close(smoothing.term(smooth_image, 3.0, 1e-5)(noise),
                               3.0 * default_tv_weight(1e-5) * total_variation(noise))
    assert smoothing.settings(1e-5) == {"tv_weight": pytest.approx(default_tv_weight(1e-5))}


def test_in_a_transfer_the_first_tv_part_is_the_closed_form_at_the_start(smooth_image, small_run):
    style = smooth_image.flip(-1)
    default = transfer(smooth_image, style, alpha=3.0, beta=1e3, steps=2, init=smooth_image, recipe="paper",
                       **small_run)
    assert default.settings["tv_weight"] == DEFAULT_TV_WEIGHT  # the raw Caffe network: c = 1
    assert default.history["tv"][0] == pytest.approx(3.0 * DEFAULT_TV_WEIGHT * float(total_variation(smooth_image)),
                                                     rel=1e-5)
    given = transfer(smooth_image, style, alpha=3.0, beta=1e3, steps=2, init=smooth_image, extras=[Smoothing(10.0)],
                     recipe="paper", **small_run)
    assert given.settings["tv_weight"] == 10.0
    assert given.history["tv"][0] == pytest.approx(3.0 * 10.0 * float(total_variation(smooth_image)), rel=1e-5)


def test_the_weight_is_per_unit_of_alpha(smooth_image, small_run):
    """Scaling alpha and beta together scales every part, TV included: only the ratios matter."""
    style = smooth_image.flip(-1)
    kw = dict(steps=1, init=smooth_image, extras=[Smoothing(10.0)], **small_run)
    one = transfer(smooth_image, style, alpha=1.0, beta=1e3, **kw)
    ten = transfer(smooth_image, style, alpha=10.0, beta=1e4, **kw)
    for part in ("total", "content", "style", "tv"):
        assert ten.history[part][0] == pytest.approx(10 * one.history[part][0], rel=1e-5)


@pytest.mark.parametrize("weight", [-1.0, float("inf"), float("nan")])
def test_a_weight_that_cannot_work_is_refused(weight):
    with pytest.raises(ValueError, match="the smoothing weight must be finite and non-negative"):
        Smoothing(weight)


def test_a_normalised_network_gets_the_normalised_smoothing(smooth_image):
    from nst_helpers import load_vgg19

    vgg = load_vgg19("caffe", pooling="avg", device="cpu", normalize=True)
    assert vgg.normalized
    result = transfer(smooth_image, smooth_image.flip(-1), steps=1, network=vgg, progress=False)
    # measured on these images (objective.term_scales): the normalised content term is ~1e-5 of the raw one's
    assert 0.1 * NORMALISED_TV_WEIGHT < result.settings["tv_weight"] < 10 * NORMALISED_TV_WEIGHT
