"""Tests for nst_helpers.losses against hand-worked examples, closed forms and autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F_

from nst_helpers import content_loss, gram_matrix, rescale_gram, style_layer_loss, style_loss, total_loss


def test_gram_4x4_image_8_filters_by_hand():
    # Filter i responds with value i+1 on the first row of the 4x4 map and 0 elsewhere,
    # so G_ij = sum over the 4 active positions of (i+1)(j+1) = 4 (i+1)(j+1).
    maps = torch.zeros(1, 8, 4, 4)
    for i in range(8):
        maps[0, i, 0, :] = i + 1
    flat = maps.reshape(8, 16)  # the 8x16 matrix
    gram = gram_matrix(maps)[0]
    assert gram.shape == (8, 8)
    assert gram[0, 0] == 4 and gram[2, 5] == 4 * 3 * 6 and gram[7, 7] == 4 * 64
    by_loops = torch.tensor([[sum(flat[i, k] * flat[j, k] for k in range(16)) for j in range(8)] for i in range(8)])
    torch.testing.assert_close(gram, by_loops)
    torch.testing.assert_close(gram, flat @ flat.T)


def test_gram_of_ones_is_m_everywhere():
    gram = gram_matrix(torch.ones(2, 5, 3, 7))
    torch.testing.assert_close(gram, torch.full((2, 5, 5), 21.0))


def test_gram_is_symmetric_and_ignores_positions():
    f = torch.randn(1, 6, 5, 5)
    perm = torch.randperm(25)
    shuffled = f.flatten(2)[:, :, perm].view_as(f)
    g = gram_matrix(f)
    torch.testing.assert_close(g, g.transpose(1, 2))
    torch.testing.assert_close(gram_matrix(shuffled), g)


def test_content_loss_closed_form():
    f = torch.ones(1, 4, 3, 3)
    p = torch.zeros(1, 4, 3, 3)
    assert content_loss(f, p).item() == pytest.approx(0.5 * 36)
    f = torch.randn(3, 4, 5, 6)
    p = torch.randn(3, 4, 5, 6)
    per_image = content_loss(f, p, reduction="none")
    assert per_image.shape == (3,)
    torch.testing.assert_close(per_image, 0.5 * ((f - p) ** 2).sum(dim=(1, 2, 3)))
    torch.testing.assert_close(content_loss(f, p), per_image.sum())


def test_style_layer_loss_closed_form():
    # F of ones: G = M everywhere. Against A = 0: E = N^2 M^2 / (4 N^2 M^2) = 1/4.
    f = torch.ones(1, 8, 4, 4)
    assert style_layer_loss(f, torch.zeros(1, 8, 8)).item() == pytest.approx(0.25)
    # Against A = G: zero.
    assert style_layer_loss(f, gram_matrix(f)).item() == 0.0
    # General: eq. 4 written out.
    f = torch.randn(2, 6, 4, 5)
    a = torch.randn(1, 6, 6)
    n, m = 6, 20
    expected = ((gram_matrix(f) - a) ** 2).sum(dim=(1, 2)) / (4 * n**2 * m**2)
    torch.testing.assert_close(style_layer_loss(f, a, reduction="none"), expected)


def test_style_loss_weights_default_to_one_over_l():
    feats = {"a": torch.randn(1, 3, 4, 4), "b": torch.randn(1, 5, 2, 2)}
    targets = {"a": torch.randn(1, 3, 3), "b": torch.randn(1, 5, 5)}
    e = {k: style_layer_loss(feats[k], targets[k]) for k in feats}
    torch.testing.assert_close(style_loss(feats, targets), (e["a"] + e["b"]) / 2)
    torch.testing.assert_close(style_loss(feats, targets, {"a": 3.0, "b": 0.5}), 3 * e["a"] + 0.5 * e["b"])
    # only the target layers count
    torch.testing.assert_close(style_loss(feats, {"a": targets["a"]}), e["a"])


def test_total_loss_is_eq7_and_rejects_negative_weights():
    assert total_loss(torch.tensor(2.0), torch.tensor(3.0), alpha=10, beta=0.5).item() == 21.5
    with pytest.raises(ValueError, match="non-negative"):
        total_loss(torch.tensor(1.0), torch.tensor(1.0), alpha=-1, beta=1)
    with pytest.raises(ValueError, match="non-negative"):
        style_loss({"a": torch.ones(1, 2, 2, 2)}, {"a": torch.ones(1, 2, 2)}, {"a": -0.1})
    with pytest.raises(ValueError, match="at least one style layer"):
        style_loss({}, {})


def test_content_gradient_is_masked_difference():
    # The paper's derivative (eq. 2): dL/dF = F - P where F > 0, else 0, through the ReLU.
    torch.manual_seed(0)
    pre = torch.randn(1, 4, 5, 5, requires_grad=True)
    target = torch.rand(1, 4, 5, 5)
    f = torch.relu(pre)
    content_loss(f, target).backward()
    expected = (f.detach() - target) * (pre.detach() > 0)
    torch.testing.assert_close(pre.grad, expected)


def test_style_gradient_matches_eq6():
    # dE/dF = 1/(N^2 M^2) ((F^T (G - A))^T) where F > 0, else 0.
    torch.manual_seed(1)
    n, h, w = 6, 4, 5
    m = h * w
    pre = torch.randn(1, n, h, w, requires_grad=True)
    a = gram_matrix(torch.rand(1, n, h, w))
    f = torch.relu(pre)
    style_layer_loss(f, a).backward()
    flat = f.detach().reshape(n, m)
    g = flat @ flat.T
    analytic = ((flat.T @ (g - a[0])).T / (n**2 * m**2)).reshape(1, n, h, w) * (pre.detach() > 0)
    torch.testing.assert_close(pre.grad, analytic)


def _autograd_style_layer_loss(f: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Eq. 4 written plainly, differentiated by autograd: the reference for the hand-written backward."""
    _, n, h, w = f.shape
    return (gram_matrix(f) - a).pow(2).flatten(1).sum(1) / (4 * n**2 * (h * w) ** 2)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("batch, target_batch", [(1, 1), (3, 1), (3, 3)])
def test_style_layer_loss_backward_matches_autograd(channels_last, batch, target_batch):
    # The hand-written backward (one product, eq. 6) against autograd through F F^T, in float64;
    # the target is not symmetric here, so the general 2 (R + R^T) F form is what is checked.
    g = torch.Generator().manual_seed(batch + target_batch)
    f = torch.randn(batch, 4, 3, 5, dtype=torch.float64, generator=g)
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    f.requires_grad_(True)
    a = torch.randn(target_batch, 4, 4, dtype=torch.float64, generator=g, requires_grad=True)
    weights = torch.randn(batch, dtype=torch.float64, generator=g)
    ours = torch.autograd.grad((style_layer_loss(f, a, reduction="none") * weights).sum(), (f, a))
    reference = torch.autograd.grad((_autograd_style_layer_loss(f, a) * weights).sum(), (f, a))
    for got, want in zip(ours, reference):
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(lambda f, a: style_layer_loss(f, a, reduction="none"), (f, a))
    if channels_last:  # the gradient keeps the features' layout: no transposed copy for autograd to add
        assert ours[0].is_contiguous(memory_format=torch.channels_last)


def test_style_layer_loss_takes_a_2d_target_and_refuses_second_derivatives():
    g = torch.Generator().manual_seed(2)
    f = torch.rand(2, 4, 3, 3, generator=g, requires_grad=True)
    a = gram_matrix(torch.rand(1, 4, 3, 3, generator=g))
    torch.testing.assert_close(style_layer_loss(f, a[0]), style_layer_loss(f, a))
    (grad,) = torch.autograd.grad(style_layer_loss(f, a), f, create_graph=True)
    with pytest.raises(RuntimeError):  # the hand-written backward is first-order only; say so, not a wrong Hessian
        grad.sum().backward()


def test_style_layer_loss_of_bf16_features_is_computed_in_fp32():
    g = torch.Generator().manual_seed(0)
    f32 = torch.rand(1, 8, 6, 6, generator=g)
    a = gram_matrix(torch.rand(1, 8, 6, 6, generator=g))
    f16 = f32.bfloat16().requires_grad_(True)
    loss = style_layer_loss(f16, a)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, style_layer_loss(f16.detach().float(), a))  # same numbers as upcasting first
    loss.backward()
    assert f16.grad.dtype == torch.bfloat16


def test_conversion_to_mean_mse_content():
    f, p = torch.randn(1, 7, 4, 6), torch.randn(1, 7, 4, 6)
    n, m = 7, 24
    torch.testing.assert_close(content_loss(f, p), n * m / 2 * F_.mse_loss(f, p))


def test_conversion_to_the_authors_code_the_tutorial_d2l_pystiche_and_cs231n():
    f = torch.randn(1, 8, 5, 6)
    a_feats = torch.randn(1, 8, 5, 6)
    n, m = 8, 30
    e = style_layer_loss(f, gram_matrix(a_feats))
    # Author's code: Gram / M, mean-MSE over the N^2 entries, layer weight 1e3 / N^2.
    authors = 1e3 / n**2 * F_.mse_loss(gram_matrix(f) / m, gram_matrix(a_feats) / m)
    torch.testing.assert_close(authors, 4e3 * e / n**2)
    # Tutorial: Gram / (N M), mean-MSE.
    tutorial = F_.mse_loss(gram_matrix(f) / (n * m), gram_matrix(a_feats) / (n * m))
    torch.testing.assert_close(tutorial, 4 * e / n**2)
    # d2l and Johnson's neural-style: the same Gram / (N M) and mean-MSE as the tutorial (their weights are alpha, beta).
    # pystiche: Gram / M, mean-MSE, the mean over its five layers.
    pystiche = F_.mse_loss(gram_matrix(f) / m, gram_matrix(a_feats) / m) / 5
    torch.testing.assert_close(pystiche, 4 * e / 5)
    # CS231n: Gram / (N M), but a plain sum of squares, and a plain sum for content.
    cs231n = (gram_matrix(f) / (n * m) - gram_matrix(a_feats) / (n * m)).pow(2).sum()
    torch.testing.assert_close(cs231n, 4 * e)
    p = torch.randn(1, 8, 5, 6)
    torch.testing.assert_close((f - p).pow(2).sum(), 2 * content_loss(f, p))


def test_rescale_gram_of_a_tiled_map_is_exact():
    f = torch.rand(1, 4, 5, 6)
    tiled = f.repeat(1, 1, 2, 2)  # twice the size: every position four times
    torch.testing.assert_close(rescale_gram(gram_matrix(tiled), 4 * 30, 30), gram_matrix(f))


def _periodic_texture(h: int = 48, w: int = 48) -> torch.Tensor:
    """A seamless texture: tiling it adds no edges."""
    y = torch.arange(h).view(h, 1) / h * 2 * torch.pi
    x = torch.arange(w).view(1, w) / w * 2 * torch.pi
    channels = [torch.sin(3 * x + 2 * y), torch.cos(4 * y - x), torch.sin(5 * x) * torch.cos(3 * y)]
    return (0.5 + 0.4 * torch.stack(channels)).unsqueeze(0)


def test_style_image_twice_the_size_gives_the_same_loss_scale(caffe_vgg):
    from nst_helpers.objective import style_targets

    # The same seamless texture at 64x64 and tiled to 128x128. Only zero-padding at the
    # borders differs, which weighs less in deeper layers of larger images; measured
    # differences of the rescaled targets here: 1.6% (relu1_1), 4.8% (relu2_1).
    style = _periodic_texture(64, 64)
    big = style.repeat(1, 1, 2, 2)
    out_hw = (64, 64)
    layers = ["relu1_1", "relu2_1"]
    same = style_targets(caffe_vgg, style, layers, out_hw, "fp32")
    twice = style_targets(caffe_vgg, big, layers, out_hw, "fp32")
    for layer in layers:
        assert ((twice[layer] - same[layer]).norm() / same[layer].norm()).item() < 0.06
    x = torch.rand(1, 3, *out_hw, generator=torch.Generator().manual_seed(0))
    feats = caffe_vgg(x, layers)
    assert style_loss(feats, twice).item() == pytest.approx(style_loss(feats, same).item(), rel=0.15)
    # Without the rescaling the target Grams would be 4x too large, and so would the loss scale.
    with torch.no_grad():
        raw = {k: gram_matrix(v) for k, v in caffe_vgg(big, layers).items()}
    ratio = (raw["relu1_1"].norm() / same["relu1_1"].norm()).item()
    assert 3.8 < ratio < 4.2
    assert style_loss(feats, raw).item() > 3 * style_loss(feats, same).item()


def test_total_variation_of_known_images():
    from nst_helpers.losses import total_variation

    h, w, a = 5, 7, 0.1
    ramp = (a * torch.arange(w, dtype=torch.float64)).expand(1, 3, h, w)  # steps of a along x only
    assert float(total_variation(ramp)) == pytest.approx(3 * h * (w - 1) * a**2)
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    checker = ((-1.0) ** (i + j)).double().expand(2, 3, h, w)  # every neighbour differs by 2
    per_image = 3 * ((h - 1) * w + h * (w - 1)) * 4
    torch.testing.assert_close(total_variation(checker, "none"), torch.full((2,), float(per_image), dtype=torch.float64))
    assert float(total_variation(checker)) == pytest.approx(2 * per_image)
    assert float(total_variation(torch.full((1, 3, h, w), 0.3))) == 0


def test_total_variation_gradient_is_the_graph_laplacian():
    from nst_helpers.losses import total_variation

    x = torch.rand(2, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    total_variation(x).backward()
    # Closed form: d/dx_p = 2 sum over p's neighbours q of (x_p - x_q) (4 neighbours inside, fewer at the border).
    padded = F_.pad(x.detach(), (1, 1, 1, 1), mode="replicate")  # a missing neighbour equals x_p: adds nothing
    centre = padded[:, :, 1:-1, 1:-1]
    expected = 2 * sum(centre - padded[:, :, 1 + dy:padded.shape[2] - 1 + dy, 1 + dx:padded.shape[3] - 1 + dx]
                       for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)))
    torch.testing.assert_close(x.grad, expected)
    assert torch.autograd.gradcheck(lambda t: total_variation(t, "none"), (x.detach().requires_grad_(),))


def test_weighted_total_variation_counts_each_pixels_differences_by_its_weight():
    from nst_helpers.losses import total_variation

    h, w, a = 5, 7, 0.1
    ramp = (a * torch.arange(w, dtype=torch.float64)).expand(1, 3, h, w)  # steps of a along x only
    ones = torch.ones(1, 1, h, w, dtype=torch.float64)
    assert float(total_variation(ramp, weight=ones)) == pytest.approx(float(total_variation(ramp)))
    left = ones.clone()
    left[..., 3:] = 0  # only the pixels of columns 0-2 count: their 3 right-hand steps per row
    assert float(total_variation(ramp, weight=left)) == pytest.approx(3 * h * 3 * a**2)
    assert float(total_variation(ramp, weight=3 * ones)) == pytest.approx(3 * 3 * h * (w - 1) * a**2)
    # Against a loop over the pixels, with a random weight per pixel, and autograd's gradient.
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    wt = torch.rand(2, 1, 4, 5, dtype=torch.float64)
    loop = [sum(float(wt[b, 0, i, j]) * (float((x[b, :, i + 1, j] - x[b, :, i, j]).pow(2).sum()) if i + 1 < 4 else 0.0)
                + float(wt[b, 0, i, j]) * (float((x[b, :, i, j + 1] - x[b, :, i, j]).pow(2).sum()) if j + 1 < 5 else 0.0)
                for i in range(4) for j in range(5)) for b in range(2)]
    torch.testing.assert_close(total_variation(x, "none", wt), torch.tensor(loop, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda t: total_variation(t, "none", wt), (x.clone().requires_grad_(),))


def test_flat_regions_marks_the_pixels_far_from_any_edge():
    from nst_helpers.losses import flat_regions

    h, w = 12, 20
    flat = torch.full((1, 3, h, w), 0.4)
    assert torch.equal(flat_regions(flat), torch.ones(1, 1, h, w))
    step = flat.clone()
    step[..., 10:] = 0.9  # an edge between columns 9 and 10
    mask = flat_regions(step, reach=5)[0, 0]
    # The difference at column 9 (to column 10) exceeds the threshold; a 5 x 5 window reaches 2 px: columns 7-11.
    assert mask[:, :7].eq(1).all() and mask[:, 7:12].eq(0).all() and mask[:, 12:].eq(1).all()
    gentle = (0.01 * torch.arange(w, dtype=torch.float32)).expand(1, 3, h, w)  # 0.03 per px over R, G, B
    assert flat_regions(gentle).eq(1).all() and flat_regions(gentle, threshold=0.02).eq(0).all()
    with pytest.raises(ValueError, match="odd"):
        flat_regions(flat, reach=4)
