"""Style statistics against closed forms: G/M = Sigma + mu mu^T, Gram loss = MMD^2 / (4 N^2), Gaussian W2; the
style term ``Statistic`` through the engine, in the Gram's units."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from nst_helpers import Gram, synthesize_texture, transfer
from nst_helpers import style_statistics as ss
from nst_helpers.losses import gram_matrix, style_layer_loss
from nst_helpers.objective import objective, style_targets, white_noise
from nst_helpers.style_statistics import Statistic


def features(seed: int, n: int = 6, h: int = 5, w: int = 4, batch: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(batch, n, h, w, generator=g, dtype=torch.float64) + 0.3)


def test_gram_per_position_is_covariance_plus_outer_mean():
    f = features(0)
    mu = ss.feature_mean(f)
    assert_close(ss.gram_per_position(f), ss.feature_covariance(f) + mu[:, :, None] * mu[:, None, :])
    assert_close(ss.gram_per_position(f), gram_matrix(f) / 20)


def test_the_4x4x8_example_identity():
    # notebook 02's example: integers, so the identity holds to rounding only
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 4, (1, 1, 4, 4), generator=g).double()
    filters = torch.randint(-1, 2, (8, 1, 3, 3), generator=g).double()
    maps = torch.relu(torch.nn.functional.conv2d(image, filters, padding=1))
    mu = maps.reshape(8, 16).mean(1)
    assert_close(ss.gram_per_position(maps)[0], ss.feature_covariance(maps)[0] + torch.outer(mu, mu))


def test_constant_image_has_its_value_as_mean_and_no_spread():
    f = torch.full((1, 3, 4, 5), 2.5)
    assert_close(ss.feature_mean(f), torch.full((1, 3), 2.5))
    assert float(ss.feature_std(f).max()) <= ss.STD_EPS**0.5 * 1.01
    assert_close(ss.feature_covariance(f), torch.zeros(1, 3, 3))


def test_mmd_with_the_quadratic_kernel_is_the_gram_distance_and_eq4():
    fx, fy = features(1), features(2, h=3, w=4)  # another number of positions: per position
    x, y = fx.reshape(6, -1).T, fy.reshape(6, -1).T  # (M, N) sets of feature vectors
    mmd = ss.mmd2(x, y, ss.quadratic_kernel)
    assert_close(mmd, (ss.gram_per_position(fx) - ss.gram_per_position(fy)).pow(2).sum())
    # same number of positions: the paper's E_l (eq. 4) is MMD^2 / (4 N^2)
    fz = features(3)
    z = fz.reshape(6, -1).T
    assert_close(style_layer_loss(fx, gram_matrix(fz)), ss.mmd2(x, z) / (4 * 6**2))
    assert_close(ss.statistic_loss(fx, ss.style_statistic(fz, "gram"), "gram"), ss.mmd2(x, z) / (4 * 6**2))


def test_mmd_of_identical_sets_is_zero_and_linear_mmd_is_the_mean_distance():
    x = features(4).reshape(6, -1).T
    assert abs(float(ss.mmd2(x, x))) < 1e-9
    y = features(5).reshape(6, -1).T
    assert_close(ss.mmd2(x, y, ss.linear_kernel), (x.mean(0) - y.mean(0)).pow(2).sum())
    fx, fy = features(4), features(5)
    assert_close(ss.statistic_loss(fx, ss.style_statistic(fy, "mmd_linear"), "mmd_linear"),
                 (x.mean(0) - y.mean(0)).pow(2).sum() / 6)


def test_mean_std_loss_by_hand():
    fx, fy = features(6), features(7)
    loss = ss.statistic_loss(fx, ss.style_statistic(fy, "mean_std"), "mean_std")
    by_hand = ((fx.mean((2, 3)) - fy.mean((2, 3))).pow(2).sum()
               + (fx.std((2, 3), unbiased=False) - fy.std((2, 3), unbiased=False)).pow(2).sum()) / 6
    assert_close(loss, by_hand, rtol=1e-6, atol=1e-8)


def test_gaussian_w2_closed_forms():
    # diagonal covariances: W2^2 = |m1 - m2|^2 + sum (sqrt(a) - sqrt(b))^2
    m1, m2 = torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[1.0, 1.0, 0.0]])
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 9.0])
    expected = (m1 - m2).pow(2).sum() + (a.sqrt() - b.sqrt()).pow(2).sum()
    assert_close(ss.gaussian_w2(m1, torch.diag(a)[None], m2, torch.diag(b)[None])[0], expected)
    # rotating both Gaussians by the same orthogonal matrix changes nothing
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(8)))
    rotated = ss.gaussian_w2(m1 @ q.T, (q @ torch.diag(a) @ q.T)[None], m2 @ q.T, (q @ torch.diag(b) @ q.T)[None])
    assert_close(rotated[0], expected, rtol=1e-4, atol=1e-4)
    # a Gaussian against itself: zero
    cov = ss.feature_covariance(features(9)).float()
    assert abs(float(ss.gaussian_w2(m1.new_zeros(1, 6), cov, m1.new_zeros(1, 6), cov)[0])) < 1e-3


def test_sliced_w2_closed_forms():
    x = ss._vectors(features(14))  # (1, N, M)
    directions = ss.slice_directions(6, 16, dtype=torch.float64)
    target = torch.einsum("kn,bnm->bkm", directions, x).sort(dim=-1).values
    assert float(ss.sliced_w2(x, target, directions)[0]) < 1e-20  # a set against itself
    shift = torch.tensor([0.5, -1.0, 0.0, 2.0, 0.3, 0.0], dtype=torch.float64)
    # translating every vector by t moves each projection by d_k^T t: SW^2 = mean_k (d_k^T t)^2
    assert_close(ss.sliced_w2(x + shift[None, :, None], target, directions)[0], (directions @ shift).pow(2).mean())
    # one direction, one dimension: W2^2 of two sets of equal size is the mean squared gap of the sorted values
    a, b = torch.tensor([[[3.0, 1.0, 2.0]]]), torch.tensor([[[0.0, 5.0, 1.0]]])
    assert_close(ss.sliced_w2(a, b.sort(-1).values, torch.ones(1, 1))[0], torch.tensor((1.0 + 1.0 + 4.0) / 3))  # [1, 2, 3] vs [0, 1, 5]


def test_sliced_targets_resample_to_another_size():
    fy = features(15)
    target = ss.style_statistic(fy, "sliced_w2")
    assert float(ss.statistic_loss(fy.repeat(1, 1, 2, 2), target, "sliced_w2")) < 1e-6  # tiled: same quantiles
    assert target["directions"].shape == (6, 6)


def test_sqrtm_psd_squares_back():
    cov = ss.feature_covariance(features(10))[0]
    root = ss.sqrtm_psd(cov)
    assert_close(root @ root, cov, rtol=1e-6, atol=1e-9)
    assert_close(root, root.T)


@pytest.mark.parametrize("kind", ss.STATISTICS)
def test_every_statistic_is_zero_on_the_target_and_has_a_finite_gradient(kind):
    fy = features(11)
    target = ss.style_statistic(fy, kind)
    assert float(ss.statistic_loss(fy, target, kind)) < 1e-5
    fx = features(12).requires_grad_(True)
    loss = ss.statistic_loss(fx, target, kind)
    assert float(loss.detach()) > 0
    loss.backward()
    assert torch.isfinite(fx.grad).all() and fx.grad.abs().sum() > 0


def test_statistics_are_per_position():
    # the painting tiled 2 x 2 has the same statistics as the painting: every loss is zero
    fy = features(13)
    for kind in ss.STATISTICS:
        assert float(ss.statistic_loss(fy.repeat(1, 1, 2, 2), ss.style_statistic(fy, kind), kind)) < 1e-5, kind


def test_unknown_statistic_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of gram, mean_std, mmd_linear, sliced_w2"):
        ss.check_statistic("histogram")


def style_part(vgg, term, layers, image):
    """L_style (eq. 5) of ``image`` under the style term ``term`` (its targets made for ``image``)."""
    _, parts = objective(vgg, {}, term, term.targets(vgg, layers, image, "fp32"), 0.0, 1.0)(image)
    return float(parts["style"])


def test_the_gram_statistic_is_the_papers_gram_term(caffe_vgg, smooth_image):
    """``Statistic(p, "gram")``: eq. 4 per position, scale 1: the same loss as ``Gram(p)`` at any image, for a
    painting of another size too."""
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    painting = torch.rand(1, 3, 30, 36, generator=torch.Generator().manual_seed(2))
    image = white_noise(smooth_image, seed=4)
    term = Statistic(painting, "gram")
    assert all(t["scale"] == 1.0 for t in term.targets(caffe_vgg, layers, image, "fp32").values())
    assert style_part(caffe_vgg, term, layers, image) == pytest.approx(
        style_part(caffe_vgg, Gram(painting), layers, image), rel=1e-4)
    assert term.settings() == {"style_statistic": "gram"}


@pytest.mark.parametrize("kind", ["mean_std", "mmd_linear", "sliced_w2"])
def test_another_statistic_is_in_the_grams_units_at_the_start(caffe_vgg, smooth_image, kind):
    """``gram_units``: at the image the targets are made for, the term equals the Gram's; elsewhere it differs."""
    layers = ["relu1_1", "relu2_1"]
    painting = smooth_image.flip(-1).roll(7, dims=-2)
    start, elsewhere = white_noise(smooth_image), white_noise(smooth_image, std=0.2, seed=3)
    term = Statistic(painting, kind)
    targets = term.targets(caffe_vgg, layers, start, "fp32")
    _, parts = objective(caffe_vgg, {}, term, targets, 0.0, 1.0)(start)
    assert float(parts["style"]) == pytest.approx(style_part(caffe_vgg, Gram(painting), layers, start), rel=1e-4)
    _, parts = objective(caffe_vgg, {}, term, targets, 0.0, 1.0)(elsewhere)
    assert float(parts["style"]) != pytest.approx(style_part(caffe_vgg, Gram(painting), layers, elsewhere), rel=1e-2)


def test_gram_units_is_the_ratio_of_the_two_style_terms(caffe_vgg, smooth_image):
    layers = ["relu1_1", "relu2_1"]
    painting, image = smooth_image.flip(-1), white_noise(smooth_image)
    feats = caffe_vgg(painting, layers)
    grams = style_targets(caffe_vgg, painting, layers, (40, 48))
    summaries = {k: ss.style_statistic(f, "mmd_linear") for k, f in feats.items()}
    at = caffe_vgg(image, layers)
    gram_part = sum(0.5 * style_layer_loss(at[k], grams[k]) for k in layers)
    other = sum(0.5 * ss.statistic_loss(at[k], summaries[k], "mmd_linear") for k in layers)
    assert ss.gram_units(caffe_vgg, image, grams, summaries, "mmd_linear") == pytest.approx(
        float(gram_part / other), rel=1e-5)
    with pytest.raises(ValueError, match="already matches the painting's 'mmd_linear' statistics"):
        ss.gram_units(caffe_vgg, painting, grams, summaries, "mmd_linear")


@pytest.mark.parametrize("statistic", ss.STATISTICS)
def test_every_style_statistic_runs_through_the_engine(smooth_image, small_run, statistic):
    result = synthesize_texture(Statistic(smooth_image, statistic), ["relu1_1", "relu2_1"], size=(32, 32), steps=15,
                                **small_run)
    assert result.history["style"][-1] < 0.5 * result.history["style"][0]
    assert result.settings["style_statistic"] == statistic


def test_the_grams_units_hold_in_texture_synthesis_too(smooth_image, small_run):
    """Always scaled: a texture's first evaluation (the same white noise) has the Gram's style term."""
    kw = dict(layers=["relu1_1", "relu2_1"], size=(32, 32), steps=1, **small_run)
    gram = synthesize_texture(smooth_image, **kw)
    other = synthesize_texture(Statistic(smooth_image, "mean_std"), **kw)
    assert other.history["style"][0] == pytest.approx(gram.history["style"][0], rel=1e-4)


def test_another_statistic_is_weighed_in_the_grams_units_in_a_transfer(smooth_image, small_run):
    """At the start image the mean/std style term equals the Gram's: alpha/beta keeps its meaning."""
    style = smooth_image.flip(-1).roll(7, dims=-2)
    kwargs = {"alpha": 1.0, "beta": 1e3, "steps": 1, "init": "content", **small_run}
    gram = transfer(smooth_image, style, **kwargs)
    other = transfer(smooth_image, Statistic(style, "mean_std"), **kwargs)
    assert other.history["style"][0] == pytest.approx(gram.history["style"][0], rel=1e-4)
    assert other.settings["style_statistic"] == "mean_std" and "style_statistic" not in gram.settings


def test_an_unknown_style_statistic_is_refused(smooth_image):
    with pytest.raises(ValueError, match="unknown style statistic 'gatys'; choose one of"):
        Statistic(smooth_image, "gatys")
