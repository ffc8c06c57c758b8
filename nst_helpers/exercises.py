r"""Self-checks for the notebooks' exercises.

Each notebook ends with exercises and one code cell of self-checks: a student
puts an answer in and runs the cell. Every ``check_*`` function here prints one
line and returns whether the answer holds:

* ``✓ exercise N: ...`` the answer agrees with what the package computes;
* ``✗ exercise N: ...`` it does not, with a hint;
* ``· exercise N: not answered yet`` while the answer is still ``None``.

A check never raises on a wrong answer, so a notebook still runs top to
bottom; the worked solutions (``solutions/``, run by the tests) ``assert``
every check. What a check compares with is computed here, from the package:
a closed form (a Gram entry, a receptive field, a gradient from autograd) or
a measurement of the student's own result (which of two images keeps more
pixel noise, which layer's statistics were matched). The questions' "why"
is answered in the solutions' prose, not checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .color import rgb_to_yiq
from .features import VGG19Features, layer_shapes, receptive_field
from .losses import content_loss, gram_matrix, total_variation
from .optimize import Result
from .speed import device_of
from .stats import gram_losses, psnr, top_band_power
from .style_statistics import feature_covariance, feature_mean, gram_per_position

__all__ = [
    "check_changed_by_shuffle",
    "check_chroma_kept",
    "check_color_moments",
    "check_constant_map",
    "check_content_share",
    "check_deep_layers_matter",
    "check_gram_decomposition",
    "check_gram_entry",
    "check_linear_mmd",
    "check_gram_of_sum",
    "check_layer_size",
    "check_longer_run",
    "check_low_layers_matter",
    "check_max_above_average",
    "check_more_colour",
    "check_noisier",
    "check_pixel_gradient",
    "check_closer_to_photo",
    "check_ratio_row",
    "check_receptive_field",
    "check_smoother",
    "check_statistics_matched",
    "check_weights_steer",
]


def _say(exercise: int, ok: bool, done: str, hint: str) -> bool:
    print(f"{'✓' if ok else '✗'} exercise {exercise}: {done if ok else hint}")
    return ok


def _missing(exercise: int, *answers: Any) -> bool:
    """True (and says so) while any answer is still ``None``."""
    if any(answer is None for answer in answers):
        print(f"· exercise {exercise}: not answered yet")
        return True
    return False


def _image(answer: Tensor | Result) -> Tensor:
    return (answer.image if isinstance(answer, Result) else answer).detach().float().cpu()


# Notebook 01: content reconstruction


def check_layer_size(exercise: int, layer: str, height: int, width: int, answer: int | None) -> bool:
    """Is ``answer`` the number of responses N_l x M_l that eq. 1 compares at ``layer`` for an H x W image?"""
    if _missing(exercise, answer):
        return False
    n, h, w = layer_shapes([layer], height, width)[layer]
    return _say(exercise, int(answer) == n * h * w, f"{layer} compares N x M = {n} x {h * w} = {n * h * w} numbers",
                f"{answer} is not N_l x M_l at {layer}: N_l filters times the positions after its poolings "
                "(each pooling halves the height and the width)")


def check_max_above_average(exercise: int, max_pooled: Tensor | None, average_pooled: Tensor | None) -> bool:
    """Max pooling of the same responses is never below their average: is that what the two tensors show?"""
    if _missing(exercise, max_pooled, average_pooled):
        return False
    if max_pooled.shape != average_pooled.shape:
        return _say(exercise, False, "", f"the shapes differ ({tuple(max_pooled.shape)} and "
                    f"{tuple(average_pooled.shape)}): take the same layer of the same image from both networks")
    below = float((max_pooled < average_pooled - 1e-4 * average_pooled.abs().max()).float().mean())
    same = bool(torch.allclose(max_pooled, average_pooled))
    return _say(exercise, below == 0 and not same,
                "max >= average everywhere, and larger where the 2x2 window's four responses differ",
                "the two are identical: did both come from the same network?" if same else
                f"{below:.0%} of the max-pooled responses are below the average ones: are the two swapped?")


def check_noisier(exercise: int, images: Mapping[str, Tensor | Result | None], answer: str | None) -> bool:
    """Is ``answer`` the key of the image in ``images`` with the most pixel-level (top-band) power?"""
    if _missing(exercise, answer, *images.values()):
        return False
    power = {key: float(top_band_power(_image(value))[0]) for key, value in images.items()}
    noisiest = max(power, key=power.get)
    figures = ", ".join(f"{key} {value:.2e}" for key, value in power.items())
    return _say(exercise, answer == noisiest, f"{noisiest} keeps the most pixel noise (top-band power {figures})",
                f"measured top-band power: {figures}; look at the two pictures enlarged")


def check_longer_run(exercise: int, short: Result | None, long: Result | None) -> bool:
    """Does the longer run (same start) end at a loss no higher than the shorter one?"""
    if _missing(exercise, short, long):
        return False
    if long.steps <= short.steps:
        return _say(exercise, False, "", f"the 'long' run made {long.steps} evaluations and the short one "
                    f"{short.steps}: give the long one more steps")
    ok = long.loss <= short.loss * (1 + 1e-6)
    return _say(exercise, ok, f"{short.steps} -> {long.steps} evaluations: loss {short.loss:.4g} -> {long.loss:.4g} "
                f"(x{long.loss / short.loss:.2f})",
                f"the longer run ended higher ({long.loss:.4g} > {short.loss:.4g}): did both start from the same image?")


def check_pixel_gradient(exercise: int, gradient: Tensor | None, image: Tensor, photo: Tensor,
                         extractor: VGG19Features, layer: str = "relu4_2") -> bool:
    """Is ``gradient`` dL_content/dx of eq. 1 at ``layer``, for the pixels ``image`` against ``photo``?"""
    if _missing(exercise, gradient):
        return False
    device = device_of(extractor)
    x = image.detach().float().to(device).requires_grad_(True)
    with torch.no_grad():
        target = extractor(photo.float().to(device), [layer])[layer]
    content_loss(extractor(x, [layer])[layer], target).backward()
    expected = x.grad.cpu()
    got = gradient.detach().float().cpu()
    if got.shape != expected.shape:
        return _say(exercise, False, "", f"shape {tuple(got.shape)}, expected {tuple(expected.shape)}: one value per pixel")
    error = float((got - expected).norm() / expected.norm())
    return _say(exercise, error < 1e-3, f"the gradient agrees with autograd (relative error {error:.1e})",
                f"relative error {error:.2g} against autograd: differentiate eq. 1 at {layer} with respect to the "
                "pixels (x.requires_grad_(True), loss.backward(), x.grad)")


# Notebook 02: the Gram matrix


def check_gram_entry(exercise: int, features: Tensor, i: int, j: int, answer: float | None) -> bool:
    """Is ``answer`` the entry G[i, j] (0-based, as in the code) of the Gram of ``features`` (N, M)?"""
    if _missing(exercise, answer):
        return False
    value = float(features[i] @ features[j])
    return _say(exercise, abs(float(answer) - value) < 1e-6 * max(1.0, abs(value)),
                f"G[{i},{j}] = {value:g}",
                f"G[{i},{j}] is not {answer}: multiply row {i} of F by row {j} position by position and add "
                "(rows and columns count from 0, as in the code)")


def check_changed_by_shuffle(exercise: int, features: Tensor, row: int, order: Tensor,
                             answer: Sequence[tuple[int, int]] | None) -> bool:
    """Are ``answer``'s (i, j) exactly the Gram entries that change when only ``row`` of F is reordered by ``order``?"""
    if _missing(exercise, answer):
        return False
    shuffled = features.clone()
    shuffled[row] = features[row, order]
    changed = (gram_matrix(shuffled[None, :, :, None]) != gram_matrix(features[None, :, :, None]))[0]
    expected = {(int(i), int(j)) for i, j in changed.nonzero()}
    given = {(int(i), int(j)) for i, j in answer}
    return _say(exercise, given == expected,
                f"{len(expected)} entries change, all in row and column {row}; G[{row},{row}] does not",
                f"the changed entries are not {sorted(given)[:6]}{'...' if len(given) > 6 else ''}: which sums "
                f"involve map {row} next to another map, and does its sum of squares change?")


def check_gram_of_sum(exercise: int, first: Tensor, second: Tensor, extra: Tensor | None) -> bool:
    """Is ``extra`` = G(F1 + F2) - G(F1) - G(F2) for two (N, M) responses ``first`` and ``second``?"""
    if _missing(exercise, extra):
        return False
    def gram(f: Tensor) -> Tensor:
        return f @ f.T
    expected = gram(first + second) - gram(first) - gram(second)
    ok = extra.shape == expected.shape and bool(torch.allclose(extra.float(), expected.float(), atol=1e-4))
    return _say(exercise, ok, "the extra terms are F1 F2^T + F2 F1^T: how much each filter of one image "
                "co-occurs with each filter of the other",
                "not G(F1 + F2) - G(F1) - G(F2): expand (F1 + F2)(F1 + F2)^T")


def check_constant_map(exercise: int, features: Tensor, gram: Tensor | None, answer: int | None) -> bool:
    """With a map of ones added to ``features`` (N, M), is ``gram`` the (N+1)x(N+1) Gram and ``answer`` the row of sums?"""
    if _missing(exercise, gram, answer):
        return False
    n, m = features.shape
    ones = torch.ones(1, m, dtype=features.dtype)
    wider = torch.cat([features, ones])
    expected = wider @ wider.T
    if gram.shape != expected.shape or not torch.allclose(gram.float(), expected.float()):
        return _say(exercise, False, "", f"not the Gram of the {n + 1} maps: stack the ones as one more row of F")
    sums = features.sum(dim=1)
    rows = [r for r in range(n + 1) if torch.allclose(gram[r, :n].float(), sums.float())]
    return _say(exercise, int(answer) in rows, f"row {answer} holds the sums of the maps, and G[{n},{n}] = M = {m}",
                f"row {answer} is not the sums of the maps; which row multiplies each map by ones?")


# Notebook 03: style reconstruction


def check_receptive_field(exercise: int, layer: str, answer: int | None) -> bool:
    """Is ``answer`` the side (px) of the input patch one response of ``layer`` depends on?"""
    if _missing(exercise, answer):
        return False
    side = receptive_field(layer)
    return _say(exercise, int(answer) == side, f"{layer} sees {side} x {side} px",
                f"{layer} does not see {answer} px: each 3x3 convolution adds 2 steps of the current grid, "
                "each 2x2 pooling adds 1 and doubles the step")


def check_statistics_matched(exercise: int, result: Tensor | Result | None, start: Tensor, style_image: Tensor,
                             layers: Sequence[str], extractor: VGG19Features | None = None) -> bool:
    """Are the Gram losses E_l of ``result`` below those of its ``start`` at every one of ``layers``?"""
    if _missing(exercise, result):
        return False
    image = _image(result)
    if start.shape[-2:] != image.shape[-2:]:
        return _say(exercise, False, "", f"start {tuple(start.shape[-2:])} and result {tuple(image.shape[-2:])} "
                    "differ in size: pass the image the run started from")
    before = gram_losses(start, style_image, layers, extractor)
    after = gram_losses(image, style_image, layers, extractor)
    worse = [layer for layer in layers if after[layer] >= before[layer]]
    return _say(exercise, not worse, "every E_l fell: " + ", ".join(
                f"{layer} x{after[layer] / before[layer]:.2g}" for layer in layers),
                f"E_l did not fall at {', '.join(worse)}: was the result synthesized from these layers?")


def check_low_layers_matter(exercise: int, deep_only: Tensor | Result | None, with_low: Tensor | Result | None,
                            style_image: Tensor, extractor: VGG19Features | None = None) -> bool:
    """Does the texture made without relu1_1 miss the painting's relu1_1 statistics more than the one made with it?"""
    if _missing(exercise, deep_only, with_low):
        return False
    deep = gram_losses(_image(deep_only), style_image, ["relu1_1"], extractor)["relu1_1"]
    low = gram_losses(_image(with_low), style_image, ["relu1_1"], extractor)["relu1_1"]
    return _say(exercise, deep > low, f"E_relu1_1 without relu1_1 {deep:.3g}, with it {low:.3g} "
                f"(x{deep / low:.2g}): the colours and fine strokes go unmatched",
                f"E_relu1_1 {deep:.3g} (deep only) is not above {low:.3g}: pass the deep-only texture first")


def check_weights_steer(exercise: int, low_weighted: Tensor | Result | None, high_weighted: Tensor | Result | None,
                        style_image: Tensor, extractor: VGG19Features | None = None) -> bool:
    """Weight on relu1_1 vs weight on relu5_1: does each texture match its heavy layer better, relative to the other?

    Compared: E_relu1_1 itself (the weighted layer carries the loss), and the
    balance E_relu5_1 / E_relu1_1, which must tip towards relu5_1 when it
    carries the weight (absolute deep-layer losses need long runs to separate).
    """
    if _missing(exercise, low_weighted, high_weighted):
        return False
    layers = ["relu1_1", "relu5_1"]
    low = gram_losses(_image(low_weighted), style_image, layers, extractor)
    high = gram_losses(_image(high_weighted), style_image, layers, extractor)
    tilt_low, tilt_high = low["relu5_1"] / low["relu1_1"], high["relu5_1"] / high["relu1_1"]
    ok = low["relu1_1"] < high["relu1_1"] and tilt_high < tilt_low
    measured = (f"E_relu1_1 {low['relu1_1']:.3g} vs {high['relu1_1']:.3g}; E_relu5_1 / E_relu1_1 "
                f"{tilt_low:.3g} vs {tilt_high:.3g}")
    return _say(exercise, ok, f"{measured}: the weights choose which statistics are matched first",
                f"{measured}: pass the relu1_1-weighted texture first; are the weights on the right layers?")


def check_more_colour(exercise: int, colour: Tensor | Result | None, grey: Tensor | Result | None) -> bool:
    """Is the texture of the colour painting more colourful (larger spread of R, G, B per pixel) than the grey one's?"""
    if _missing(exercise, colour, grey):
        return False
    def saturation(image: Tensor) -> float:
        return float(image.std(dim=1).mean())
    a, b = saturation(_image(colour)), saturation(_image(grey))
    return _say(exercise, a > b, f"colour spread {a:.3f} (colour painting) vs {b:.3f} (grey painting)",
                f"colour spread {a:.3f} vs {b:.3f}: pass the colour painting's texture first")


# Notebook 04: style transfer


def check_deep_layers_matter(exercise: int, shallow: Tensor | Result | None, full: Tensor | Result | None,
                             style_image: Tensor, extractor: VGG19Features | None = None) -> bool:
    """Does the transfer with relu1_1-relu3_1 only miss the painting's relu5_1 statistics more than the full one?"""
    if _missing(exercise, shallow, full):
        return False
    a = gram_losses(_image(shallow), style_image, ["relu5_1"], extractor)["relu5_1"]
    b = gram_losses(_image(full), style_image, ["relu5_1"], extractor)["relu5_1"]
    return _say(exercise, a > b, f"E_relu5_1: {a:.3g} with fewer style layers, {b:.3g} with all five: the large "
                "structures of the painting go unmatched",
                f"E_relu5_1 {a:.3g} (fewer layers) is not above {b:.3g} (all five): pass the result with fewer layers first")


def check_content_share(exercise: int, result: Result | None, answer: float | None) -> bool:
    """Is ``answer`` the content term's share of the loss, alpha L_content / (alpha L_content + beta L_style), at the end?"""
    if _missing(exercise, result, answer):
        return False
    step = result.best_step - 1
    content, style = result.history["content"][step], result.history["style"][step]
    share = content / (content + style)
    return _say(exercise, abs(float(answer) - share) < 1e-3, f"content share {share:.3f} of the returned image",
                f"{answer} is not the share {share:.3f}: use history['content'] and history['style'] at the "
                "returned image's step (result.best_step - 1), both already weighted by alpha and beta")


def check_smoother(exercise: int, results: Mapping[float, Tensor | Result | None]) -> bool:
    """Does the total variation of the results fall as ``tv_weight`` (the keys) grows?"""
    if _missing(exercise, *results.values()):
        return False
    weights = sorted(results)
    tv = [float(total_variation(_image(results[w]))) for w in weights]
    ok = all(later < earlier for earlier, later in zip(tv, tv[1:]))
    listed = ", ".join(f"{w:.2g}: {v:.3g}" for w, v in zip(weights, tv))
    return _say(exercise, ok, f"L_tv falls as tv_weight grows ({listed})",
                f"L_tv by tv_weight: {listed}; it should fall: are the results under the right weights?")


def check_ratio_row(exercise: int, results: Sequence[Result | None]) -> bool:
    """Along a row of transfers, does L_content fall and L_style rise as alpha/beta grows?

    For exact minimisers of eq. 7 this must hold (more weight on a term never
    leaves it larger); short runs follow it too when the ratios are far enough apart.
    """
    if _missing(exercise, *results):
        return False
    if len(results) < 3:
        return _say(exercise, False, "", f"{len(results)} runs: make at least three, a decade apart")
    rows = []
    for result in results:
        alpha, beta = result.settings["alpha"], result.settings["beta"]
        step = result.best_step - 1
        rows.append((alpha / beta, result.history["content"][step] / alpha, result.history["style"][step] / beta))
    rows.sort()
    listed = "; ".join(f"{ratio:.1g}: {content:.3g}, {style:.3g}" for ratio, content, style in rows)
    ok = all(b[1] < a[1] and b[2] > a[2] for a, b in zip(rows, rows[1:]))
    return _say(exercise, ok, f"(alpha/beta: L_content, L_style) {listed}: each decade buys content with style",
                f"(alpha/beta: L_content, L_style) {listed}: L_content should fall and L_style rise; "
                "are the ratios a decade apart, and did the runs start alike?")


def check_closer_to_photo(exercise: int, closer: Tensor | Result | None, farther: Tensor | Result | None,
                          photo: Tensor) -> bool:
    """Is ``closer`` nearer the photo, pixel for pixel (higher PSNR), than ``farther``?"""
    if _missing(exercise, closer, farther):
        return False
    a, b = psnr(_image(closer), photo), psnr(_image(farther), photo)
    return _say(exercise, a > b, f"PSNR against the photo {a:.1f} dB vs {b:.1f} dB",
                f"PSNR {a:.1f} dB is not above {b:.1f} dB: pass the result you expect nearer the photo first")


# Notebook 06: style statistics


def check_gram_decomposition(exercise: int, features: Tensor, mean: Tensor | None, covariance: Tensor | None) -> bool:
    """Are ``mean`` (N,) and ``covariance`` (N, N) those of ``features`` (1, N, H, W), so that G/M = Sigma + mu mu^T?"""
    if _missing(exercise, mean, covariance):
        return False
    mu, sigma = feature_mean(features)[0].cpu(), feature_covariance(features)[0].cpu()
    mean, covariance = mean.detach().float().cpu().reshape(-1), covariance.detach().float().cpu()
    if mean.shape != mu.shape or covariance.shape != sigma.shape:
        return _say(exercise, False, "", f"shapes {tuple(mean.shape)} and {tuple(covariance.shape)}; expected "
                    f"{tuple(mu.shape)} and {tuple(sigma.shape)}: one mean per channel, an N x N covariance")
    scale = float(gram_per_position(features).abs().max())
    ok_mean = bool(torch.allclose(mean, mu.float(), rtol=1e-4, atol=1e-5 * scale))
    ok_cov = bool(torch.allclose(covariance, sigma.float(), rtol=1e-3, atol=1e-5 * scale))
    return _say(exercise, ok_mean and ok_cov, "G/M = Sigma + mu mu^T with your mean and covariance",
                ("the mean is right; " if ok_mean else "the mean differs: average each channel over the positions; ")
                + ("the covariance is right" if ok_cov else "the covariance differs: subtract the mean, then "
                   "(F - mu)(F - mu)^T / M, dividing by M, not M - 1"))


def check_linear_mmd(exercise: int, extractor: VGG19Features, image: Tensor, style_image: Tensor, layer: str,
                     answer: float | None) -> bool:
    """Is ``answer`` the linear-kernel MMD^2 between the two images' feature vectors at ``layer``: ||mu_x - mu_y||^2?"""
    if _missing(exercise, answer):
        return False
    device = device_of(extractor)
    with torch.no_grad():
        fx, fy = (extractor(x.float().to(device), [layer])[layer] for x in (image, style_image))
    value = float((feature_mean(fx) - feature_mean(fy)).pow(2).sum())
    return _say(exercise, abs(float(answer) - value) <= 1e-3 * value, f"MMD^2 = ||mu_x - mu_y||^2 = {value:.6g}",
                f"{answer} is not {value:.6g}: with k(x, y) = x^T y each mean of kernel values is a product of means")


# Notebook 07: controlling perceptual factors


def check_chroma_kept(exercise: int, result: Tensor | Result | None, photo: Tensor) -> bool:
    """Does ``result`` have the photo's chroma (YIQ's I and Q) at every pixel?"""
    if _missing(exercise, result):
        return False
    gap = (rgb_to_yiq(_image(result)) - rgb_to_yiq(photo.float().cpu()))[0, 1:].abs()
    worst = float(gap.max())
    return _say(exercise, worst < 1e-4, f"I and Q equal the photo's at every pixel (largest gap {worst:.1e})",
                f"the chroma differs from the photo's by up to {worst:.3g}: pass a result of "
                "extras=[KeepColors('luminance')] and the photo it was made from")


def check_color_moments(exercise: int, matched: Tensor | None, photo: Tensor) -> bool:
    """Does ``matched`` (a painting after colour matching, unclamped) have the photo's colour mean and covariance?"""
    if _missing(exercise, matched):
        return False
    m, c = matched.detach().double().cpu().reshape(3, -1), photo.double().cpu().reshape(3, -1)
    mean_gap = float((m.mean(1) - c.mean(1)).abs().max())
    cov_gap = float((torch.cov(m, correction=0) - torch.cov(c, correction=0)).abs().max())
    ok = mean_gap < 1e-4 and cov_gap < 1e-4
    return _say(exercise, ok, "the matched painting has the photo's colour mean and covariance",
                f"mean off by {mean_gap:.2g}, covariance by {cov_gap:.2g}: map x -> A (x - mu_s) + mu_c with "
                "A = Sigma_c^(1/2) Sigma_s^(-1/2), before clamping")
