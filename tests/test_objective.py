"""Tests for nst_helpers.objective: eq. 7 as a function of the image, its targets, the white-noise start."""

from __future__ import annotations

import pytest
import torch

from nst_helpers import STYLE_LAYERS, content_loss, gram_matrix, style_loss, total_variation, white_noise
from nst_helpers.objective import Extra, Gram, as_style, build, content_targets, initial_image, objective, style_targets


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


def test_objective_is_eq_7_and_its_parts_add_up_to_the_total(random_vgg, pair):
    content, style = pair
    image = white_noise(content)
    p = content_targets(random_vgg, content, ["relu4_2"])
    a = style_targets(random_vgg, style, STYLE_LAYERS, tuple(content.shape[-2:]))
    total, parts = objective(random_vgg, p, Gram(style), a, 0.3, 20.0)(image)  # no terms: eq. 7 exactly
    feats = random_vgg(image, ["relu4_2", *STYLE_LAYERS])
    expected_content = content_loss(feats["relu4_2"], p["relu4_2"])
    expected_style = style_loss(feats, a)  # w_l = 1/5 (eq. 5)
    assert set(parts) == {"content", "style"}
    torch.testing.assert_close(parts["content"], 0.3 * expected_content)
    torch.testing.assert_close(parts["style"], 20.0 * expected_style)
    torch.testing.assert_close(total, 0.3 * expected_content + 20.0 * expected_style)


def test_each_term_is_a_part_and_adds_to_the_total(random_vgg, pair):
    content, style = pair
    image = white_noise(content)
    p = content_targets(random_vgg, content, ["relu4_2"])
    a = style_targets(random_vgg, style, STYLE_LAYERS, tuple(content.shape[-2:]))
    terms = {"tv": lambda x: 0.3 * 0.5 * total_variation(x), "grey": lambda x: (x - 0.5).pow(2).sum()}
    total, parts = objective(random_vgg, p, Gram(style), a, 0.3, 20.0, terms=terms)(image)
    paper, paper_parts = objective(random_vgg, p, Gram(style), a, 0.3, 20.0)(image)
    assert list(parts) == ["content", "style", "tv", "grey"]
    torch.testing.assert_close(parts["tv"], 0.3 * 0.5 * total_variation(image))
    torch.testing.assert_close(parts["grey"], (image - 0.5).pow(2).sum())
    torch.testing.assert_close(total, parts["content"] + parts["style"] + parts["tv"] + parts["grey"])
    torch.testing.assert_close(total, paper + parts["tv"] + parts["grey"])  # the terms change nothing else
    for k in ("content", "style"):
        torch.testing.assert_close(parts[k], paper_parts[k])


def test_build_computes_the_targets_once_and_is_the_objective(random_vgg, pair):
    content, style = pair
    image = white_noise(content, seed=2)
    built = build(random_vgg, content, ["relu4_2"], Gram(style), ["relu1_1", "relu3_1"], None, 0.5, 7.0, image)
    p = content_targets(random_vgg, content, ["relu4_2"])
    a = style_targets(random_vgg, style, ["relu1_1", "relu3_1"], tuple(content.shape[-2:]))
    total, parts = built(image)
    expected, expected_parts = objective(random_vgg, p, Gram(style), a, 0.5, 7.0)(image)
    torch.testing.assert_close(total, expected)
    for k in ("content", "style"):
        torch.testing.assert_close(parts[k], expected_parts[k])


def test_without_a_style_or_a_content_its_part_is_zero(random_vgg, pair):
    content, style = pair
    image = white_noise(content)
    p = content_targets(random_vgg, content, ["relu2_1"])
    total, parts = objective(random_vgg, p, None, {}, 1.0, 0.0)(image)  # content reconstruction (eq. 1)
    assert float(parts["style"]) == 0 and float(total) == float(parts["content"]) > 0
    a = style_targets(random_vgg, style, ["relu1_1"], tuple(content.shape[-2:]))
    total, parts = objective(random_vgg, {}, Gram(style), a, 0.0, 1.0)(image)  # texture synthesis (eq. 5)
    assert float(parts["content"]) == 0 and float(total) == float(parts["style"]) > 0


def test_a_painting_is_the_papers_gram_term_and_several_must_say_how(pair, random_vgg):
    content, style = pair
    term = as_style(style)
    assert isinstance(term, Gram) and len(term.paintings) == 1
    torch.testing.assert_close(term.paintings[0], style)
    assert as_style(term) is term  # a style term is used as it is
    a = term.targets(random_vgg, ["relu1_1", "relu2_1"], content, "fp32")
    expected = style_targets(random_vgg, style, ["relu1_1", "relu2_1"], tuple(content.shape[-2:]))
    for layer in expected:
        torch.testing.assert_close(a[layer], expected[layer])
    other = term.with_paintings([content])
    assert isinstance(other, Gram) and torch.equal(other.painting, content) and torch.equal(term.painting, style)
    assert term.settings() == {}
    with pytest.raises(TypeError, match=r"Blend\(\[a, b\].*Guided.*ScaleMix"):
        as_style([style, style])
    with pytest.raises(TypeError, match="load_image"):
        as_style("starry_night")


def test_an_extra_does_nothing_unless_it_says_so(pair):
    photo, painting = pair
    extra, style = Extra(), Gram(painting)
    same_photo, same_style = extra.prepare(photo, style)
    assert same_photo is photo and same_style is style
    assert extra.start(photo) is photo and extra.finish(painting, photo) is painting
    assert extra.term(photo, 1.0, 1.0) is None and extra.settings(1.0) == {}


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
    terms = {"tv": lambda x: total_variation(x)}
    total, parts = objective(caffe_vgg, p, Gram(style), a, 1.0, 1e2, precision="bf16", terms=terms)(image)
    assert total.dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in parts.values()), {k: v.dtype for k, v in parts.items()}
    fp32, _ = objective(caffe_vgg, p, Gram(style), a, 1.0, 1e2, precision="fp32", terms=terms)(image)
    assert float(total) == pytest.approx(float(fp32), rel=0.05)


def test_term_scales_follow_the_network_as_its_responses_scale(caffe_vgg, pair):
    """Scaling conv1_1's weights and every bias by k scales every response by k (ReLU and pooling are positively
    homogeneous): eq. 1 by k^2 and eq. 5 by k^4. The raw Caffe network is the reference itself."""
    import copy

    from nst_helpers.features import CONV_LAYERS
    from nst_helpers.objective import term_scales

    _, painting = pair
    assert term_scales(caffe_vgg, painting, "relu4_2", STYLE_LAYERS) == (1.0, 1.0)
    scaled = copy.deepcopy(caffe_vgg)
    scaled.weights = "a file"  # not the reference: measured
    with torch.no_grad():
        scaled.conv("conv1_1").weight.mul_(3.0)
        for name in CONV_LAYERS:
            scaled.conv(name).bias.mul_(3.0)
    c, s = term_scales(scaled, painting, "relu4_2", STYLE_LAYERS)
    assert c == pytest.approx(9.0, rel=1e-3) and s == pytest.approx(81.0, rel=1e-3)
