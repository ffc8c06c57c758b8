"""Tests for nst_helpers.objective: eq. 7 as a function of the image, its targets, the white-noise start."""

from __future__ import annotations

import pytest
import torch

from nst_helpers import STYLE_LAYERS, content_loss, gram_matrix, style_loss, total_variation, white_noise
from nst_helpers.objective import content_targets, initial_image, objective, style_targets


def test_white_noise_is_the_papers_start_and_repeatable(smooth_image):
    noise = white_noise(smooth_image)
    assert noise.shape == smooth_image.shape
    assert noise.mean().item() == pytest.approx(0.5, abs=0.01)
    assert noise.std().item() == pytest.approx(0.05, rel=0.05)
    torch.testing.assert_close(noise, white_noise(tuple(smooth_image.shape)))  # same seed, same noise
    assert not torch.equal(noise, white_noise(smooth_image, seed=1))
    assert white_noise((1, 3, 8, 8), std=0.2).std().item() == pytest.approx(0.2, rel=0.2)


def test_initial_image_resizes_and_explains_what_is_missing(smooth_image):
    assert initial_image(smooth_image[0], (1, 3, 20, 24)).shape == (1, 3, 20, 24)
    torch.testing.assert_close(initial_image("content", smooth_image.shape, content=smooth_image), smooth_image)
    with pytest.raises(ValueError, match="needs a style image"):
        initial_image("style", smooth_image.shape, content=smooth_image)


def test_objective_is_eq_7_plus_the_smoothing_term(random_vgg, pair):
    content, style = pair
    image = white_noise(content)
    p = content_targets(random_vgg, content, ["relu4_2"])
    a = style_targets(random_vgg, style, STYLE_LAYERS, tuple(content.shape[-2:]))
    total, parts = objective(random_vgg, p, a, 0.3, 20.0, tv_weight=0.5)(image)
    feats = random_vgg(image, ["relu4_2", *STYLE_LAYERS])
    expected_content = content_loss(feats["relu4_2"], p["relu4_2"])
    expected_style = style_loss(feats, a)  # w_l = 1/5 (eq. 5)
    torch.testing.assert_close(parts["content"], 0.3 * expected_content)
    torch.testing.assert_close(parts["style"], 20.0 * expected_style)
    torch.testing.assert_close(parts["tv"], 0.3 * 0.5 * total_variation(image))
    torch.testing.assert_close(total, parts["content"] + parts["style"] + parts["tv"])
    paper, paper_parts = objective(random_vgg, p, a, 0.3, 20.0)(image)  # tv_weight=0: eq. 7 exactly
    torch.testing.assert_close(paper, 0.3 * expected_content + 20.0 * expected_style)
    assert paper_parts["tv"] == 0


def test_style_targets_are_the_paintings_grams_per_output_position(random_vgg, pair):
    _, style = pair  # 32x32: at relu1_1 32*32 positions; an output of 16x16 has a quarter of them
    same = style_targets(random_vgg, style, ["relu1_1"], (32, 32))["relu1_1"]
    torch.testing.assert_close(same, gram_matrix(random_vgg(style, ["relu1_1"])["relu1_1"]))
    quarter = style_targets(random_vgg, style, ["relu1_1"], (16, 16))["relu1_1"]
    torch.testing.assert_close(quarter, same / 4)  # G sums over positions: per position, then times M


def test_bf16_features_give_fp32_losses(caffe_vgg, pair):
    """With bf16 autocast the network runs in bf16, but every loss the objective returns is fp32."""
    content, style = pair
    p = content_targets(caffe_vgg, content, ["relu4_2"], precision="bf16")
    a = style_targets(caffe_vgg, style, STYLE_LAYERS, tuple(content.shape[-2:]), precision="bf16")
    assert all(t.dtype == torch.float32 for t in [*p.values(), *a.values()])
    image = white_noise(content)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert caffe_vgg(image, ["relu1_1"])["relu1_1"].dtype == torch.bfloat16  # the features are bf16 here
    total, parts = objective(caffe_vgg, p, a, 1.0, 1e2, precision="bf16", tv_weight=1.0)(image)
    assert total.dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in parts.values()), {k: v.dtype for k, v in parts.items()}
    fp32, _ = objective(caffe_vgg, p, a, 1.0, 1e2, precision="fp32", tv_weight=1.0)(image)
    assert float(total) == pytest.approx(float(fp32), rel=0.05)


def test_blended_targets_are_the_weighted_sum_of_the_style_losses_up_to_a_constant():
    """sum_s l_s ||G - A_s||^2 = ||G - sum_s l_s A_s||^2 + const for weights summing to 1 (tested on eq. 4)."""
    from nst_helpers.losses import gram_matrix, style_layer_loss

    g = torch.Generator().manual_seed(0)
    a1, a2 = gram_matrix(torch.rand(1, 4, 5, 6, generator=g)), gram_matrix(torch.rand(1, 4, 5, 6, generator=g))
    weights = (0.7, 0.3)
    blend = weights[0] * a1 + weights[1] * a2

    def gap(features):
        separate = weights[0] * style_layer_loss(features, a1) + weights[1] * style_layer_loss(features, a2)
        return float(separate - style_layer_loss(features, blend))

    x, y = torch.rand(1, 4, 5, 6, generator=g), 3 * torch.rand(1, 4, 5, 6, generator=g)
    assert gap(x) == pytest.approx(gap(y), rel=1e-4, abs=1e-6)


def test_blending_weights_one_and_zero_give_the_first_painting_alone(smooth_image):
    from nst_helpers import load_vgg19, transfer

    vgg = load_vgg19(weights="random", pooling="avg")
    other = smooth_image.flip(-1)
    kwargs = {"alpha": 1.0, "beta": 1e3, "steps": 1, "init": "content", "extractor": vgg, "progress": False}
    alone = transfer(smooth_image, other, **kwargs)
    blended = transfer(smooth_image, [other, smooth_image.roll(9, dims=-1)], style_weights=[1, 0], **kwargs)
    assert blended.history["total"][0] == pytest.approx(alone.history["total"][0], rel=1e-5)
    assert blended.settings["style_weights"] == [1, 0]


@pytest.mark.parametrize("weights, message", [([1.0], "2 style images but 1 style_weights"),
                                              ([1.0, -1.0], "style_weights"), ([0.0, 0.0], "all zero")])
def test_bad_style_weights_are_refused(smooth_image, weights, message):
    from nst_helpers import load_vgg19, transfer

    vgg = load_vgg19(weights="random", pooling="avg")
    with pytest.raises(ValueError, match=message):
        transfer(smooth_image, [smooth_image, smooth_image], style_weights=weights, steps=1, extractor=vgg)


def test_several_paintings_need_the_gram_and_weights_need_several(smooth_image):
    from nst_helpers import load_vgg19, transfer

    vgg = load_vgg19(weights="random", pooling="avg")
    with pytest.raises(ValueError, match="work on Gram matrices"):
        transfer(smooth_image, [smooth_image, smooth_image], style_statistic="mean_std", steps=1, extractor=vgg)
    with pytest.raises(ValueError, match="needs a list of paintings"):
        transfer(smooth_image, smooth_image, style_weights=[1.0], steps=1, extractor=vgg)


def test_term_scales_follow_the_network_as_its_responses_scale(caffe_vgg, pair):
    """Scaling conv1_1's weights and every bias by k scales every response by k (ReLU and pooling are positively
    homogeneous): eq. 1 by k^2 and eq. 5 by k^4. The raw Caffe network is the reference itself."""
    import copy

    from nst_helpers.features import CONV_LAYERS
    from nst_helpers.objective import term_scales

    photo, painting = pair
    assert term_scales(caffe_vgg, photo, painting, "relu4_2", STYLE_LAYERS) == (1.0, 1.0)
    scaled = copy.deepcopy(caffe_vgg)
    scaled.weights = "a file"  # not the reference: measured
    with torch.no_grad():
        scaled.conv("conv1_1").weight.mul_(3.0)
        for name in CONV_LAYERS:
            scaled.conv(name).bias.mul_(3.0)
    c, s = term_scales(scaled, photo, painting, "relu4_2", STYLE_LAYERS)
    assert c == pytest.approx(9.0, rel=1e-3) and s == pytest.approx(81.0, rel=1e-3)
