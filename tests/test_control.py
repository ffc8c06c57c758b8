"""Several paintings (Gatys et al. 2017): the style terms Blend, Guided (masks, guided Grams), ScaleMix (split layers)."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from nst_helpers import Gram, control, transfer
from nst_helpers.control import Blend, Guided, ScaleMix
from nst_helpers.losses import gram_matrix, rescale_gram, style_layer_loss
from nst_helpers.objective import objective, style_targets, white_noise
from nst_helpers.style_statistics import gram_per_position

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]


def style_part(vgg, term, layers, image):
    """L_style (eq. 5) of ``image`` under the style term ``term``, through the objective."""
    _, parts = objective(vgg, {}, term, term.targets(vgg, layers, image, "fp32"), 0.0, 1.0)(image)
    return parts["style"]


def test_a_mask_of_ones_gives_the_unguided_loss():
    g = torch.Generator().manual_seed(0)
    f, painting = torch.rand(1, 6, 5, 4, generator=g), torch.rand(1, 6, 7, 3, generator=g)
    unguided = style_layer_loss(f, rescale_gram(gram_matrix(painting), 21, 20))  # eq. 4, per position
    assert_close(control.guided_gram_loss(f, torch.ones(1, 1, 5, 4), gram_per_position(painting)), unguided)


def test_a_masked_region_only_sees_its_own_responses():
    f = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1  # the top half
    target = gram_per_position(f[..., :2, :])
    assert float(control.guided_gram_loss(f, mask, target)) < 1e-10  # the top half's statistics, exactly
    changed = f.clone()
    changed[..., 2:, :] = 5.0  # what happens outside the mask does not matter
    assert float(control.guided_gram_loss(changed, mask, target)) < 1e-10


def test_masks_are_checked_with_clear_errors():
    ones = torch.ones(8, 6)
    with pytest.raises(ValueError, match="2 masks for 1 paintings"):
        control.check_masks([ones, ones], 1, (8, 6))
    with pytest.raises(ValueError, match="the size of the content image"):
        control.check_masks([torch.ones(4, 6)], 1, (8, 6))
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        control.check_masks([2 * ones], 1, (8, 6))
    half = torch.zeros(8, 6)
    half[:4] = 1
    with pytest.raises(ValueError, match="50.0% of the picture uncovered"):
        control.check_masks([half, half], 2, (8, 6))
    assert len(control.check_masks([half, 1 - half], 2, (8, 6))) == 2


def test_layer_masks_follow_the_poolings():
    mask = torch.zeros(32, 48)
    mask[:16] = 1
    masks = control.layer_masks(mask, ["relu1_1", "relu3_1"], (32, 48))
    assert masks["relu1_1"].shape == (1, 1, 32, 48) and masks["relu3_1"].shape == (1, 1, 8, 12)
    assert float(masks["relu3_1"][..., :4, :].min()) == 1 and float(masks["relu3_1"][..., 4:, :].max()) == 0


def test_scale_mix_takes_low_layers_from_the_fine_painting_and_deep_from_the_coarse(caffe_vgg, smooth_image):
    fine, coarse = smooth_image, smooth_image.flip(-1).roll(5, dims=-2)
    start = torch.zeros(1, 3, 40, 48)
    split = ScaleMix(fine, coarse, "relu2_1").targets(caffe_vgg, LAYERS, start, "fp32")
    a, b = style_targets(caffe_vgg, fine, LAYERS, (40, 48)), style_targets(caffe_vgg, coarse, LAYERS, (40, 48))
    assert list(split) == LAYERS
    for layer in LAYERS[:2]:
        assert_close(split[layer], a[layer])
    for layer in LAYERS[2:]:
        assert_close(split[layer], b[layer])
    assert control.scale_layers(LAYERS, "relu2_1") == (LAYERS[:2], LAYERS[2:])
    assert ScaleMix(fine, coarse).settings() == {"paintings": 2, "scale_split": "relu3_1"}
    with pytest.raises(ValueError, match="leaves no style layer on one side"):
        ScaleMix(fine, coarse, "relu5_1").targets(caffe_vgg, LAYERS, start, "fp32")
    with pytest.raises(ValueError, match="Unknown layer 'conv9_9'"):
        ScaleMix(fine, coarse, "conv9_9")


def test_blend_weights_one_and_zero_give_the_first_painting_alone(caffe_vgg, smooth_image):
    first, second = smooth_image.flip(-1), smooth_image.roll(9, dims=-1)
    start = torch.zeros(1, 3, 40, 48)
    blended = Blend([first, second], weights=[1, 0]).targets(caffe_vgg, LAYERS, start, "fp32")
    alone = Gram(first).targets(caffe_vgg, LAYERS, start, "fp32")
    for layer in LAYERS:
        assert_close(blended[layer], alone[layer])
    assert Blend([first, second], weights=[1, 0]).settings() == {"paintings": 2, "style_weights": [1.0, 0.0]}


def test_blend_targets_are_the_weighted_mean_of_the_paintings_grams(caffe_vgg, smooth_image):
    first, second = smooth_image.flip(-1), torch.rand(1, 3, 30, 30, generator=torch.Generator().manual_seed(3))
    start = torch.zeros(1, 3, 40, 48)
    blended = Blend([first, second], weights=[3, 1]).targets(caffe_vgg, LAYERS, start, "fp32")  # shares 3/4, 1/4
    a, b = (style_targets(caffe_vgg, p, LAYERS, (40, 48)) for p in (first, second))
    for layer in LAYERS:
        assert_close(blended[layer], 0.75 * a[layer] + 0.25 * b[layer])
    equal = Blend([first, second]).targets(caffe_vgg, ["relu1_1"], start, "fp32")  # default: equal shares
    assert_close(equal["relu1_1"], (a["relu1_1"] + b["relu1_1"]) / 2)


def test_blended_targets_are_the_weighted_sum_of_the_style_losses_up_to_a_constant():
    """sum_s l_s ||G - A_s||^2 = ||G - sum_s l_s A_s||^2 + const for weights summing to 1 (tested on eq. 4)."""
    g = torch.Generator().manual_seed(0)
    a1, a2 = gram_matrix(torch.rand(1, 4, 5, 6, generator=g)), gram_matrix(torch.rand(1, 4, 5, 6, generator=g))
    weights = (0.7, 0.3)
    blend = weights[0] * a1 + weights[1] * a2

    def gap(features):
        separate = weights[0] * style_layer_loss(features, a1) + weights[1] * style_layer_loss(features, a2)
        return float(separate - style_layer_loss(features, blend))

    x, y = torch.rand(1, 4, 5, 6, generator=g), 3 * torch.rand(1, 4, 5, 6, generator=g)
    assert gap(x) == pytest.approx(gap(y), rel=1e-4, abs=1e-6)


def test_shares_normalise_the_weights():
    assert control.shares([3, 1], 2) == [0.75, 0.25]
    assert control.shares(None, 4) == [0.25] * 4
    assert control.shares([0, 2], 2) == [0.0, 1.0]


@pytest.mark.parametrize("weights, message", [([1.0], "2 paintings but 1 weights"),
                                              ([1.0, -1.0], "weights must be finite and non-negative"),
                                              ([0.0, 0.0], "all zero")])
def test_bad_painting_weights_are_refused(smooth_image, weights, message):
    with pytest.raises(ValueError, match=message):
        Blend([smooth_image, smooth_image], weights=weights)
    with pytest.raises(ValueError, match=message):
        Guided([smooth_image, smooth_image], [torch.ones(40, 48), torch.ones(40, 48)], weights=weights)


def test_mismatched_masks_and_single_paintings_are_refused(smooth_image):
    ones = torch.ones(40, 48)
    with pytest.raises(ValueError, match="1 masks for 2 paintings"):
        Guided([smooth_image, smooth_image], [ones])
    with pytest.raises(ValueError, match="give a list of at least 1 paintings"):
        Blend(smooth_image)  # one painting is a Gram; a blend takes a list
    with pytest.raises(ValueError, match="the size of the content image"):  # checked against the result's size
        Guided([smooth_image], [torch.ones(20, 24)]).targets(None, ["relu1_1"], torch.zeros(1, 3, 40, 48), "fp32")


def test_one_painting_under_a_mask_of_ones_is_the_papers_gram_term(caffe_vgg, smooth_image):
    """A mask of ones gives M_r = M and F_r = F: eq. 4 exactly, at any image."""
    painting = torch.rand(1, 3, 30, 36, generator=torch.Generator().manual_seed(4))  # another size: per position
    image = white_noise(smooth_image)
    guided = style_part(caffe_vgg, Guided([painting], [torch.ones(40, 48)]), LAYERS, image)
    plain = style_part(caffe_vgg, Gram(painting), LAYERS, image)
    assert float(guided) == pytest.approx(float(plain), rel=1e-4)
    kwargs = {"alpha": 1.0, "beta": 1e3, "steps": 1, "init": "content", "network": caffe_vgg, "progress": False}
    run = transfer(smooth_image, Guided([painting], [torch.ones(40, 48)]), **kwargs)
    assert run.history["style"][0] == pytest.approx(transfer(smooth_image, painting, **kwargs).history["style"][0],
                                                    rel=1e-4)
    assert run.settings["masks"] is True and run.settings["style_weights"] == [1.0]


def test_the_style_terms_run_through_transfer_and_record_themselves(random_vgg, pair):
    photo, painting = pair
    kw = dict(alpha=1.0, beta=1e3, steps=2, network=random_vgg, progress=False)
    blend = transfer(photo, Blend([painting, photo], weights=[1, 3]), **kw)
    assert blend.settings["style_weights"] == [0.25, 0.75] and blend.settings["paintings"] == 2
    mix = transfer(photo, ScaleMix(painting, photo, "relu2_1"), **kw)
    assert mix.settings["scale_split"] == "relu2_1"
    for result in (blend, mix):
        assert result.image.shape == photo.shape and result.steps == 2


def test_two_halves_take_each_their_paintings_colour(caffe_vgg, smooth_image):
    red, blue = torch.zeros(1, 3, 40, 48), torch.zeros(1, 3, 40, 48)
    red[:, 0], red[:, 1:] = 0.9, 0.1
    blue[:, 2], blue[:, :2] = 0.9, 0.1
    red, blue = (x + 0.05 * torch.rand(x.shape, generator=torch.Generator().manual_seed(2)) for x in (red, blue))
    top = torch.zeros(40, 48)
    top[:20] = 1
    result = transfer(smooth_image, Guided([red, blue], [top, 1 - top]), alpha=1.0, beta=1e6, steps=30,
                      init="content", network=caffe_vgg, progress=False, extras=())
    upper, lower = result.image[..., :20, :].mean(dim=(0, 2, 3)), result.image[..., 20:, :].mean(dim=(0, 2, 3))
    assert float(upper[0] - upper[2]) > float(lower[0] - lower[2]) + 0.1  # redder above, bluer below
