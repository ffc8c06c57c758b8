"""Spatial and scale control (Gatys et al. 2017): masks, guided Grams, split layers."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from nst_helpers import control, transfer
from nst_helpers.losses import gram_matrix, rescale_gram, style_layer_loss
from nst_helpers.objective import all_style_targets, style_targets
from nst_helpers.style_statistics import gram_per_position


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


def test_scale_split_takes_low_layers_from_one_painting_and_high_from_the_other(caffe_vgg, smooth_image):
    fine, coarse = smooth_image, smooth_image.flip(-1).roll(5, dims=-2)
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    split = all_style_targets(caffe_vgg, [fine, coarse], layers, (40, 48), scale_split="relu2_1")
    a, b = style_targets(caffe_vgg, fine, layers, (40, 48)), style_targets(caffe_vgg, coarse, layers, (40, 48))
    for layer in layers[:2]:
        assert_close(split[layer], a[layer])
    for layer in layers[2:]:
        assert_close(split[layer], b[layer])
    assert control.scale_layers(layers, "relu2_1") == (layers[:2], layers[2:])
    with pytest.raises(ValueError, match="takes two paintings"):
        all_style_targets(caffe_vgg, fine, layers, (40, 48), scale_split="relu2_1")


def test_one_painting_under_a_mask_of_ones_is_the_ordinary_transfer(caffe_vgg, smooth_image):
    painting = smooth_image.flip(-1)
    kwargs = {"alpha": 1.0, "beta": 1e3, "steps": 1, "init": "content", "extractor": caffe_vgg, "progress": False}
    plain = transfer(smooth_image, painting, **kwargs)
    guided = transfer(smooth_image, [painting], masks=[torch.ones(40, 48)], **kwargs)
    assert guided.history["style"][0] == pytest.approx(plain.history["style"][0], rel=1e-4)


def test_two_halves_take_each_their_paintings_colour(caffe_vgg, smooth_image):
    red, blue = torch.zeros(1, 3, 40, 48), torch.zeros(1, 3, 40, 48)
    red[:, 0], red[:, 1:] = 0.9, 0.1
    blue[:, 2], blue[:, :2] = 0.9, 0.1
    red, blue = (x + 0.05 * torch.rand(x.shape, generator=torch.Generator().manual_seed(2)) for x in (red, blue))
    top = torch.zeros(40, 48)
    top[:20] = 1
    result = transfer(smooth_image, [red, blue], masks=[top, 1 - top], alpha=1.0, beta=1e6, steps=30,
                      init="content", extractor=caffe_vgg, progress=False, tv_weight=0)
    upper, lower = result.image[..., :20, :].mean(dim=(0, 2, 3)), result.image[..., 20:, :].mean(dim=(0, 2, 3))
    assert float(upper[0] - upper[2]) > float(lower[0] - lower[2]) + 0.1  # redder above, bluer below
