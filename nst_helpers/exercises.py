r"""Self-checks for the notebooks' exercises.

Each notebook ends with exercises and one code cell of self-checks: a student
puts an answer in and runs the cell. Every ``check_*`` function here prints one
line and returns whether the answer holds:

* ``✓ exercise N: ...`` the answer agrees with what the package computes;
* ``✗ exercise N: ...`` it does not: what is wrong, and what to try;
* ``· exercise N: not answered yet`` while the answer is still ``None``.

A check never raises (an answer it cannot use at all is a ✗ too), so a notebook
still runs top to bottom; the worked solutions (``solutions/``, run by the
tests) ``assert`` every check. What a check compares with is computed here,
from the package: a closed form (a Gram entry, a receptive field, a gradient
from autograd) or a measurement of the student's own result (which of two
images keeps more pixel noise, which layer's statistics were matched). The
questions' "why" is answered in the solutions' prose, not checked.

The obvious wrong answers fail (the tests try each: the photo, the painting,
the start, a copy of an input, zeros, a flat image). Where an exercise asks for
a run, the answer is the run's ``Result``: its ``settings`` say how it was made
(the task, the layers, the network, the ratio), which an image cannot; and an
image that is flat, or one of the inputs again, is refused before it is measured.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .balance import paper_ratio
from .color import rgb_to_yiq
from .features import STYLE_LAYERS, VGG19Features, layer_shapes, receptive_field
from .losses import content_loss, gram_matrix, total_variation
from .optimize import Result
from .speed import device_of
from .stats import gram_losses, psnr, top_band_power
from .style_statistics import feature_mean

__all__ = [
    "check_changed_by_shuffle", "check_chroma_kept", "check_closer_to_photo", "check_color_moments",
    "check_constant_map", "check_content_share", "check_deep_layers_matter", "check_gram_decomposition",
    "check_gram_entry", "check_gram_of_sum", "check_layer_size", "check_linear_mmd", "check_longer_run",
    "check_low_layers_matter", "check_max_above_average", "check_more_colour", "check_more_layers_help",
    "check_noisier", "check_paper_row", "check_pixel_gradient", "check_ratio_row", "check_receptive_field",
    "check_smoother", "check_statistics_matched", "check_weights_steer",
]


def _say(exercise: int, ok: bool, done: str, hint: str) -> bool:
    print(f"{'✓' if ok else '✗'} exercise {exercise}: {done if ok else hint}")
    return ok


def _wrong(exercise: int, hint: str) -> bool:
    return _say(exercise, False, "", hint)


def _check(*answers: str) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
    """Make a check of a function: it waits ("not answered yet") while one of its ``answers`` (parameters, or an
    item of one) is still None, and prints a ✗ instead of raising on an answer it cannot use at all (a list for a
    tensor, a misspelt argument): the notebook runs on."""
    def wrap(check: Callable[..., bool]) -> Callable[..., bool]:
        signature = inspect.signature(check)

        @functools.wraps(check)
        def guarded(exercise: int, *args: Any, **kwargs: Any) -> bool:
            try:
                given = [signature.bind(exercise, *args, **kwargs).arguments.get(name) for name in answers]
                items = [v for g in given if isinstance(g, (list, tuple, dict))
                         for v in (g.values() if isinstance(g, dict) else g)]
                if any(answer is None for answer in given + items):
                    print(f"· exercise {exercise}: not answered yet")
                    return False
                return check(exercise, *args, **kwargs)
            except Exception as err:  # noqa: BLE001 - the module's contract: the notebook runs on past a wrong answer
                return _wrong(exercise, f"this answer cannot be used ({type(err).__name__}: {err}); "
                              "pass what the comment beside it asks for")
        return guarded
    return wrap


def _image(answer: Tensor | Result) -> Tensor:
    return (answer.image if isinstance(answer, Result) else answer).detach().float().cpu()


def _not_runs(task: str, runs: Mapping[str, Any], differing: Sequence[str] | None = None, **wanted: Any) -> str:
    """Why the named ``runs`` are not ``Result``s of ``task`` with the ``wanted`` settings, or (with ``differing``)
    differ in other settings than those: '' if they are what the exercise asks for."""
    for name, run in runs.items():
        if not isinstance(run, Result):
            return (f"{name} is a {type(run).__name__}, not a run: pass the Result that nst_helpers.{task} "
                    "returned (not its .image); its settings say how it was made")
        if run.settings.get("task") != task:
            return f"{name} was made by {run.settings.get('task')}: make it with nst_helpers.{task}"
        for key, value in wanted.items():
            if run.settings.get(key) != value:
                return f"{name} was made with {key}={run.settings.get(key)!r}; the exercise asks for {key}={value!r}"
    if differing is None:
        return ""
    (first, a), *others = ((name, run.settings) for name, run in runs.items())
    for name, b in others:
        keys = sorted((set(a) | set(b)) - {*differing, "every", "progress", "device"})  # bookkeeping may differ
        if differ := "; ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)):
            return (f"{name} differs from {first} in more than {' and '.join(differing) or 'its images'} ({differ}): "
                    "make them alike otherwise (same start, steps and network)")
    return ""


def _copy_or_flat(answer: Tensor | Result, **inputs: Tensor) -> str:
    """Why the answer's image is no picture a run made: flat, or one of the named ``inputs`` again ('' if neither)."""
    image = _image(answer)
    if float(image.flatten(2).std(dim=2).max()) < 1e-3:
        return "the image is flat (one value everywhere): pass what the run made"
    for name, other in inputs.items():
        if other.shape == image.shape and float((image - other.detach().float().cpu()).abs().max()) < 1e-3:
            return f"the image is {name} itself: pass what the run made from it"
    return ""


def _ratio(run: Result) -> float:
    return run.settings["alpha"] / run.settings["beta"]


def _terms(run: Result) -> tuple[float, float]:
    """alpha L_content and beta L_style at the returned image (``history`` is already weighted)."""
    return run.history["content"][run.best_step - 1], run.history["style"][run.best_step - 1]


# Notebook 01: content reconstruction


@_check("answer")
def check_layer_size(exercise: int, layer: str, height: int, width: int, answer: int | None) -> bool:
    """Is ``answer`` the number of responses N_l x M_l that eq. 1 compares at ``layer`` for an H x W image?"""
    n, h, w = layer_shapes([layer], height, width)[layer]
    part = {n: "N_l alone", h * w: "M_l alone"}.get(answer, f"{answer}")
    return _say(exercise, float(answer) == n * h * w, f"{layer} compares N x M = {n} x {h * w} = {n * h * w} numbers",
                f"{part} is not N_l x M_l at {layer}: N_l filters times the positions after its poolings "
                "(each pooling halves the height and the width)")


@_check("max_pooled", "average_pooled")
def check_max_above_average(exercise: int, max_pooled: Tensor | None, average_pooled: Tensor | None) -> bool:
    """Are these max and average poolings of the same responses: average <= max <= 4 x average everywhere?

    The largest of a 2x2 window's four responses is at least their mean and, none being negative (``pool1``
    follows a ReLU), at most their sum.
    """
    high, mean = max_pooled.detach().float().cpu(), average_pooled.detach().float().cpu()
    if high.shape != mean.shape:
        return _wrong(exercise, f"the shapes differ ({tuple(high.shape)} and {tuple(mean.shape)}): take the same "
                      "layer of the same image from both networks")
    tol = 1e-4 * float(mean.abs().max().clamp_min(1e-12))
    below, beyond = (float(bad.float().mean()) for bad in (high < mean - tol, high > 4 * mean + tol))
    if torch.allclose(high, mean):
        hint = "the two are identical: take pool1 from the max-pooling network and from the average-pooling one"
    elif _copy_or_flat(high) or _copy_or_flat(mean) or float(torch.minimum(high, mean).min()) < -tol:
        hint = "these are not pool1 responses, which vary over the image and, after a ReLU, are never negative"
    elif below:
        hint = f"{below:.0%} of the max-pooled responses are below the average ones: are the two swapped?"
    else:
        hint = (f"{beyond:.0%} of the max-pooled responses exceed 4 x the average (their window's sum), impossible "
                "for the same responses: take pool1 of the same image from both networks") if beyond else ""
    return _say(exercise, not hint, "average <= max <= 4 x average: max is larger where a window's responses differ",
                hint)


@_check("answer", "images")
def check_noisier(exercise: int, images: Mapping[str, Result | None], answer: str | None) -> bool:
    """Is ``answer`` the layer whose reconstruction in ``images`` ({layer: Result}) keeps the most top-band power?"""
    for layer, run in images.items():
        if problem := _not_runs("reconstruct_content", {f"the {layer} reconstruction": run}, layer=layer):
            return _wrong(exercise, problem)
    if answer not in images:
        return _wrong(exercise, f"{answer!r} is not one of {list(images)}: answer with the layer's name")
    power = {key: float(top_band_power(_image(value))[0]) for key, value in images.items()}
    figures = ", ".join(f"{key} {value:.2e}" for key, value in power.items())
    noisiest = max(power, key=power.get)
    return _say(exercise, answer == noisiest and min(power.values()) < power[noisiest] * (1 - 1e-6),
                f"{noisiest} keeps the most pixel noise (top-band power {figures})",
                f"measured top-band power: {figures}; look at the pictures enlarged")


@_check("short", "long")
def check_longer_run(exercise: int, short: Result | None, long: Result | None) -> bool:
    """Does the longer run, the same as the short one but for its steps, end at a loss no higher?"""
    task = short.settings.get("task") if isinstance(short, Result) else "reconstruct_content"
    if problem := _not_runs(task, {"the short run": short, "the long run": long}, ["steps"]):
        return _wrong(exercise, problem)
    if long.steps <= short.steps:
        return _wrong(exercise, f"the 'long' run made {long.steps} evaluations and the short one {short.steps}: "
                      "give the long one more steps")
    return _say(exercise, long.loss <= short.loss * (1 + 1e-6), f"{short.steps} -> {long.steps} evaluations: loss "
                f"{short.loss:.4g} -> {long.loss:.4g} (x{long.loss / short.loss:.2f})",
                f"the longer run ended higher ({long.loss:.4g} > {short.loss:.4g}): did both start from one image?")


@_check("gradient")
def check_pixel_gradient(exercise: int, gradient: Tensor | None, image: Tensor, photo: Tensor,
                         extractor: VGG19Features, layer: str = "relu4_2") -> bool:
    """Is ``gradient`` dL_content/dx of eq. 1 at ``layer``, for the pixels ``image`` against ``photo``?"""
    device = device_of(extractor)
    x = image.detach().float().to(device).requires_grad_(True)
    with torch.no_grad():
        target = extractor(photo.float().to(device), [layer])[layer]
    content_loss(extractor(x, [layer])[layer], target).backward()
    expected, got = x.grad.cpu(), gradient.detach().float().cpu()
    if got.shape != expected.shape:
        return _wrong(exercise, f"shape {tuple(got.shape)}, expected {tuple(expected.shape)}: one value per pixel")
    error = float((got - expected).norm() / expected.norm())
    flipped = float((got + expected).norm() / expected.norm()) < 1e-3
    return _say(exercise, error < 1e-3, f"the gradient agrees with autograd (relative error {error:.1e})",
                "the sign is flipped: differentiate the loss itself, not its negative" if flipped else
                f"relative error {error:.2g} against autograd: differentiate eq. 1 at {layer} with respect to the "
                "pixels (x.requires_grad_(True), loss.backward(), x.grad)")


# Notebook 02: the Gram matrix


@_check("answer")
def check_gram_entry(exercise: int, features: Tensor, i: int, j: int, answer: float | None) -> bool:
    """Is ``answer`` the entry G[i, j] (0-based, as in the code) of the Gram of ``features`` (N, M)?"""
    value = float(features[i] @ features[j])
    return _say(exercise, abs(float(answer) - value) < 1e-6 * max(1.0, abs(value)), f"G[{i},{j}] = {value:g}",
                f"G[{i},{j}] is not {answer}: multiply row {i} of F by row {j} position by position and add "
                "(rows and columns count from 0, as in the code)")


@_check("answer")
def check_changed_by_shuffle(exercise: int, features: Tensor, row: int, order: Tensor,
                             answer: Sequence[tuple[int, int]] | None) -> bool:
    """Are ``answer``'s (i, j) exactly the Gram entries that change when only ``row`` of F is reordered by ``order``?"""
    shuffled = features.clone()
    shuffled[row] = features[row, order]
    changed = (gram_matrix(shuffled[None, :, :, None]) != gram_matrix(features[None, :, :, None]))[0]
    expected = {(int(i), int(j)) for i, j in changed.nonzero()}
    given = {(int(i), int(j)) for i, j in answer}
    return _say(exercise, given == expected,
                f"{len(expected)} entries change, all in row and column {row}; G[{row},{row}] does not",
                f"the changed entries are not {sorted(given)[:6]}{'...' if len(given) > 6 else ''}: which sums "
                f"involve map {row} next to another map, and does its sum of squares change?")


@_check("cross")
def check_gram_of_sum(exercise: int, first: Tensor, second: Tensor, cross: Tensor | None) -> bool:
    """Is ``cross`` one extra term of G(F1 + F2) - G(F1) - G(F2) = F1 F2^T + F2 F1^T, for (N, M) responses?

    One term is asked for: the difference, computed, would be right without the expansion. A term alone is
    not symmetric; the difference (and half of it) is.
    """
    got, f1, f2 = torch.as_tensor(cross).detach().double().cpu(), first.double(), second.double()
    terms = {"F1 F2^T": f1 @ f2.T, "F2 F1^T": f2 @ f1.T}

    def near(value: Tensor) -> bool:
        return got.shape == value.shape and bool(torch.allclose(got, value, atol=1e-6 * float(value.abs().max())))
    if any(near(term) for term in terms.values()):
        return _say(exercise, True, "the extra terms are F1 F2^T and its transpose F2 F1^T: how much each filter of "
                    "one image co-occurs with each filter of the other", "")
    both = terms["F1 F2^T"] + terms["F2 F1^T"]
    return _wrong(exercise, ("that is the whole difference (or half of it), computed: " if near(both) or near(both / 2)
                             else "not an extra term: ") + "expand (F1 + F2)(F1 + F2)^T and give one of its two extra "
                  "terms as a product of F1 and F2")


@_check("colour", "grey")
def check_more_colour(exercise: int, colour: Result | None, grey: Result | None) -> bool:
    """Is the colour painting's texture more colourful (spread of R, G, B per pixel) than the grey one's, made alike?"""
    if problem := _not_runs("synthesize_texture", {"the colour texture": colour, "the grey texture": grey}, []):
        return _wrong(exercise, problem)
    a, b = (float(_image(run).std(dim=1).mean()) for run in (colour, grey))
    if b < 1e-6:
        return _wrong(exercise, "the grey texture has no colour at all, to the last digit: is it the grey painting "
                      "itself? Synthesize its texture from the colour one's start")
    return _say(exercise, a > b, f"colour spread {a:.3f} (colour painting) vs {b:.3f} (grey painting)",
                f"colour spread {a:.3f} vs {b:.3f}: pass the colour painting's texture first")


@_check("gram", "answer")
def check_constant_map(exercise: int, features: Tensor, gram: Tensor | None, answer: int | None) -> bool:
    """With a map of ones added to ``features`` (N, M), is ``gram`` the (N+1)^2 Gram and ``answer`` the row of sums?"""
    n, m = features.shape
    wider = torch.cat([features, torch.ones(1, m, dtype=features.dtype)])
    expected = wider @ wider.T
    if gram.shape != expected.shape or not torch.allclose(gram.float(), expected.float()):
        return _wrong(exercise, f"not the Gram of the {n + 1} maps: stack the ones as one more row of F")
    rows = [r for r in range(n + 1) if torch.allclose(gram[r, :n].float(), features.sum(dim=1).float())]
    return _say(exercise, int(answer) in rows, f"row {answer} holds the sums of the maps, and G[{n},{n}] = M = {m}",
                f"row {answer} is not the sums of the maps; which row multiplies each map by ones?")


# Notebook 03: style reconstruction


@_check("answer")
def check_receptive_field(exercise: int, layer: str, answer: int | None) -> bool:
    """Is ``answer`` the side (px) of the input patch one response of ``layer`` depends on?"""
    side = receptive_field(layer)
    return _say(exercise, float(answer) == side, f"{layer} sees {side} x {side} px",
                f"{layer} does not see {answer} px: each 3x3 convolution adds 2 steps of the current grid, "
                "each 2x2 pooling adds 1 and doubles the step")


@_check("result")
def check_statistics_matched(exercise: int, result: Result | None, start: Tensor, style_image: Tensor,
                             layers: Sequence[str], extractor: VGG19Features | None = None) -> bool:
    """Is ``result`` a texture made from ``layers`` whose Gram losses E_l all fell below its ``start``'s?"""
    if problem := _not_runs("synthesize_texture", {"the texture": result}, layers=list(layers)):
        return _wrong(exercise, problem)
    image = _image(result)
    if start.shape[-2:] != image.shape[-2:]:
        return _wrong(exercise, f"start {tuple(start.shape[-2:])} and result {tuple(image.shape[-2:])} differ in "
                      "size: pass the image the run started from")
    if problem := _copy_or_flat(image, **{"the painting": style_image, "the start": start}):
        return _wrong(exercise, problem)
    before, after = (gram_losses(x, style_image, layers, extractor) for x in (start, image))
    worse = [layer for layer in layers if after[layer] >= before[layer]]
    return _say(exercise, not worse, "every E_l fell: " + ", ".join(
                f"{layer} x{after[layer] / before[layer]:.2g}" for layer in layers),
                f"E_l did not fall at {', '.join(worse)}: was the texture made from this painting and this start?")


@_check("deep_only", "with_low")
def check_low_layers_matter(exercise: int, deep_only: Result | None, with_low: Result | None,
                            style_image: Tensor, extractor: VGG19Features | None = None) -> bool:
    """Does the texture made without relu1_1 miss the painting's relu1_1 statistics more than the one made with it?"""
    runs = {"the deep-only texture": deep_only, "the other": with_low}
    if problem := _not_runs("synthesize_texture", runs, ["layers", "layer_weights"]):
        return _wrong(exercise, problem)
    if "relu1_1" in deep_only.settings["layers"] or "relu1_1" not in with_low.settings["layers"]:
        return _wrong(exercise, f"the layers were {deep_only.settings['layers']} and {with_low.settings['layers']}: "
                      "pass the texture made without relu1_1 (e.g. ['relu5_1'] alone) first, then one made with it")
    deep, low = (gram_losses(_image(r), style_image, ["relu1_1"], extractor)["relu1_1"] for r in (deep_only, with_low))
    return _say(exercise, deep > low, f"E_relu1_1 without relu1_1 {deep:.3g}, with it {low:.3g} "
                f"(x{deep / low:.2g}): the colours and fine strokes go unmatched",
                f"E_relu1_1 {deep:.3g} (deep only) is not above {low:.3g}: were both made from this painting?")


@_check("low_weighted", "high_weighted")
def check_weights_steer(exercise: int, low_weighted: Result | None, high_weighted: Result | None,
                        style_image: Tensor, extractor: VGG19Features | None = None) -> bool:
    """Weight on relu1_1 vs weight on relu5_1: does each texture match its heavy layer better, relative to the other?

    Compared: E_relu1_1 itself (the weighted layer carries the loss), and the
    balance E_relu5_1 / E_relu1_1, which must tip towards relu5_1 when it
    carries the weight (absolute deep-layer losses need long runs to separate).
    """
    runs = {"the first texture": low_weighted, "the second": high_weighted}
    if problem := _not_runs("synthesize_texture", runs, ["layer_weights"]):
        return _wrong(exercise, problem)
    layers = ["relu1_1", "relu5_1"]
    for run, heavy in ((low_weighted, "relu1_1"), (high_weighted, "relu5_1")):
        weights = run.settings.get("layer_weights") or {}
        if not set(layers) <= set(run.settings["layers"]) or max(weights, key=weights.get, default=None) != heavy:
            return _wrong(exercise, f"a texture was made with layer_weights={weights or None} on "
                          f"{run.settings['layers']}: all five layers, most of the weight on {heavy}")
    low, high = (gram_losses(_image(run), style_image, layers, extractor) for run in (low_weighted, high_weighted))
    tilt_low, tilt_high = low["relu5_1"] / low["relu1_1"], high["relu5_1"] / high["relu1_1"]
    ok = low["relu1_1"] < high["relu1_1"] and tilt_high < tilt_low
    measured = (f"E_relu1_1 {low['relu1_1']:.3g} vs {high['relu1_1']:.3g}; E_relu5_1 / E_relu1_1 "
                f"{tilt_low:.3g} vs {tilt_high:.3g}")
    return _say(exercise, ok, f"{measured}: the weights choose which statistics are matched first",
                f"{measured}: pass the relu1_1-weighted texture first; were both made from this painting?")


# Notebook 04: style transfer (and the lab, notebook 05)


@_check("shallow", "full")
def check_deep_layers_matter(exercise: int, shallow: Result | None, full: Result | None,
                             style_image: Tensor, extractor: VGG19Features | None = None) -> bool:
    """Does the transfer without relu5_1 miss the painting's relu5_1 statistics more than the one with all five?"""
    runs = {"the result with fewer layers": shallow, "the full result": full}
    if problem := _not_runs("transfer", runs, ["style_layers", "layer_weights"]):
        return _wrong(exercise, problem)
    few, five = shallow.settings["style_layers"], full.settings["style_layers"]
    if "relu5_1" in few or "relu5_1" not in five:
        return _wrong(exercise, f"the style layers were {few} and {five}: pass the result without relu5_1 first, "
                      "then the one with all five")
    a, b = (gram_losses(_image(run), style_image, ["relu5_1"], extractor)["relu5_1"] for run in (shallow, full))
    return _say(exercise, a > b, f"E_relu5_1: {a:.3g} with fewer style layers, {b:.3g} with all five: the large "
                "structures of the painting go unmatched",
                f"E_relu5_1 {a:.3g} (fewer layers) is not above {b:.3g} (all five): were both made with this painting?")


@_check("reference", "tried", "answer")
def check_content_share(exercise: int, reference: Result | None, tried: Sequence[Result | None] | None = None,
                        answer: float | None = None) -> bool:
    """Is ``answer`` the alpha/beta at which content from relu2_2 takes the content share of ``reference`` (relu4_2)?

    The share is alpha L_content / (alpha L_content + beta L_style) at the returned image. ``tried``: relu2_2
    transfers otherwise as ``reference``, at three or more ratios over two decades or more. ``answer``: a ratio
    between two tried ones whose shares straddle the reference's, or the tried ratio whose share is nearest it
    (the share need not grow with alpha, nor reach every value).
    """
    runs = {f"tried run {k}": run for k, run in enumerate(tried)}
    if problem := (_not_runs("transfer", {"the reference": reference}, content_layer="relu4_2")
                   or _not_runs("transfer", runs, content_layer="relu2_2")
                   or _not_runs("transfer", {"the reference": reference, **runs}, ["content_layer", "alpha", "beta"])):
        return _wrong(exercise, problem)
    def share(run: Result) -> float:
        return _terms(run)[0] / sum(_terms(run))
    target, rows = share(reference), sorted({_ratio(run): share(run) for run in tried}.items())
    listed = ", ".join(f"{ratio:.2g}: {value:.3f}" for ratio, value in rows)
    if len(rows) < 3 or rows[-1][0] < 100 * rows[0][0] * (1 - 1e-6):
        return _wrong(exercise, f"relu2_2 tried at {listed or 'no ratio'}: try three ratios or more, over two decades")
    nearest = min(rows, key=lambda row: abs(row[1] - target))[0]
    between = [(r0, r1) for (r0, s0), (r1, s1) in zip(rows, rows[1:]) if (s0 - target) * (s1 - target) <= 0]
    ok = math.isclose(float(answer), nearest, rel_tol=1e-6) or any(r0 <= float(answer) <= r1 for r0, r1 in between)
    found = " or ".join([f"{nearest:.2g} (the nearest share)"] + [f"between {a:.2g} and {b:.2g}" for a, b in between])
    return _say(exercise, ok, f"relu4_2's share is {target:.3f}; relu2_2's by alpha/beta: {listed}: {found}",
                f"{answer} is not where relu2_2's share ({listed}) is nearest relu4_2's {target:.3f}: {found}; "
                "answer with alpha/beta, not a share")


def _ratio_row(exercise: int, results: Sequence[Result]) -> bool:
    """Along a row of transfers differing only in alpha/beta, does L_content fall and L_style rise as it grows?"""
    runs = {f"run {k} of the row": run for k, run in enumerate(results)}
    if problem := _not_runs("transfer", runs, ["alpha", "beta"]):
        return _wrong(exercise, problem)
    runs = sorted({_ratio(run): run for run in results}.items())
    if len(runs) < 3:
        return _wrong(exercise, f"{len(runs)} different ratios: make at least three, a decade apart")
    rows = [(ratio, _terms(run)[0] / run.settings["alpha"], _terms(run)[1] / run.settings["beta"])
            for ratio, run in runs]
    listed = "; ".join(f"{ratio:.1g}: {content:.3g}, {style:.3g}" for ratio, content, style in rows)
    ok = all(b[1] < a[1] and b[2] > a[2] for a, b in zip(rows, rows[1:]))
    return _say(exercise, ok, f"(alpha/beta: L_content, L_style) {listed}: each decade buys content with style",
                f"(alpha/beta: L_content, L_style) {listed}: L_content should fall and L_style rise; "
                "are the ratios a decade apart?")


@_check("results")
def check_ratio_row(exercise: int, results: Sequence[Result | None]) -> bool:
    """Along a row of transfers differing only in alpha/beta, does L_content fall and L_style rise as alpha/beta grows?

    For exact minimisers of eq. 7 this must hold (more weight on a term never
    leaves it larger); short runs follow it too when the ratios are far enough apart.
    """
    return _ratio_row(exercise, results)


@_check("results")
def check_paper_row(exercise: int, results: Sequence[Result | None],
                    paper: Sequence[float] = (1e-4, 1e-3, 1e-2)) -> bool:
    """``check_ratio_row`` for the paper's ratios ``paper``: the normalised network, at ``paper_ratio(r, size)``."""
    if problem := _not_runs("transfer", {f"run {k} of the row": run for k, run in enumerate(results)}, normalize=True):
        return _wrong(exercise, problem + ": load_vgg19(normalize=True) is the paper's network")
    size = max(results[0].settings["size"])
    found = sorted(_ratio(run) / paper_ratio(1.0, size) for run in results)
    if any(not any(math.isclose(r, want, rel_tol=1e-3) for r in found) for want in paper):
        return _wrong(exercise, f"the runs are at the paper's {', '.join(f'{r:.2g}' for r in found)}: make them at "
                      f"paper_ratio(r, {size}) for r = {', '.join(f'{r:g}' for r in paper)}")
    return _ratio_row(exercise, results)


@_check("results")
def check_smoother(exercise: int, results: Mapping[float, Result | None]) -> bool:
    """Does the total variation of transfers differing only in smoothing fall as its weight (the keys) grows?"""
    weights = sorted(results)
    runs = {f"the result for {w:g}": results[w] for w in weights}
    if problem := _not_runs("transfer", runs, ["tv_weight"]) or "".join(_copy_or_flat(run) for run in runs.values()):
        return _wrong(exercise, problem)
    made = [results[w].settings.get("tv_weight", 0.0) for w in weights]  # none recorded: no Smoothing in extras
    if any(b <= a for a, b in zip(made, made[1:])) or (weights[0] == 0) != (made[0] == 0):
        return _wrong(exercise, f"the results under {weights} were made with smoothing weights {made}: put each under "
                      "the weight it was made with (extras=[Smoothing(weight)]; extras=() for 0)")
    tv = [float(total_variation(_image(results[w]))) for w in weights]
    listed = ", ".join(f"{w:.2g}: {v:.3g}" for w, v in zip(weights, tv))
    return _say(exercise, all(later < earlier for earlier, later in zip(tv, tv[1:])),
                f"L_tv falls as the smoothing weight grows ({listed})",
                f"L_tv by smoothing weight: {listed}; it should fall: are the weights far enough apart?")


@_check("closer", "farther")
def check_closer_to_photo(exercise: int, closer: Result | None, farther: Result | None, photo: Tensor) -> bool:
    """Of two transfers differing only in their content layer, is ``closer`` nearer the photo (higher PSNR)?"""
    runs = {"the first result": closer, "the second result": farther}
    if problem := _not_runs("transfer", runs, ["content_layer"]) or _copy_or_flat(closer, **{"the photo": photo}):
        return _wrong(exercise, problem)
    layers = closer.settings["content_layer"], farther.settings["content_layer"]
    if layers[0] == layers[1]:
        return _wrong(exercise, f"both were made from {layers[0]}: make one from relu2_2 and one from relu4_2")
    a, b = psnr(_image(closer), photo), psnr(_image(farther), photo)
    return _say(exercise, a > b, f"PSNR against the photo {a:.1f} dB ({layers[0]}) vs {b:.1f} dB ({layers[1]})",
                f"PSNR {a:.1f} dB ({layers[0]}) is not above {b:.1f} dB ({layers[1]}): pass the result you expect "
                "nearer the photo first")


# Notebook 06: style statistics


@_check("mean", "covariance")
def check_gram_decomposition(exercise: int, features: Tensor, mean: Tensor | None, covariance: Tensor | None) -> bool:
    """Are ``mean`` (N,) and ``covariance`` (N, N) those of ``features`` (1, N, H, W), so that G/M = Sigma + mu mu^T?

    The covariance divides by M, not M - 1: the two differ by M / (M - 1), below a plain tolerance at any real
    size, so the answer's scale against Sigma is fitted and must be nearer 1 than M / (M - 1).
    """
    f = features.detach().double().cpu()[0].flatten(1)  # (N, M)
    m, mu = f.shape[1], f.mean(dim=1)
    sigma = (f - mu[:, None]) @ (f - mu[:, None]).T / m
    mean, covariance = mean.detach().double().cpu().reshape(-1), covariance.detach().double().cpu()
    if mean.shape != mu.shape or covariance.shape != sigma.shape:
        return _wrong(exercise, f"shapes {tuple(mean.shape)} and {tuple(covariance.shape)}; expected {tuple(mu.shape)} "
                      f"and {tuple(sigma.shape)}: one mean per channel, an N x N covariance")
    ok_mean = float((mean - mu).norm()) <= 1e-4 * float(mu.norm()) + 1e-12
    c = float((covariance * sigma).sum() / sigma.pow(2).sum())  # the answer's scale along Sigma
    shaped = float((covariance - c * sigma).norm() / sigma.norm()) < 1e-3
    ok_cov = shaped and abs(c - 1) < min(1e-3, abs(c - m / (m - 1)))
    by_m_1 = shaped and abs(c - m / (m - 1)) < abs(c - 1)
    cov_hint = (f"the covariance is divided by M - 1 = {m - 1}: divide by M = {m}, as G/M does" if by_m_1
                else "the covariance differs: subtract the mean, then (F - mu)(F - mu)^T / M")
    return _say(exercise, ok_mean and ok_cov, "G/M = Sigma + mu mu^T with your mean and covariance",
                ("the mean is right; " if ok_mean else "the mean differs: average each channel over the positions; ")
                + ("the covariance is right" if ok_cov else cov_hint))


@_check("answer")
def check_linear_mmd(exercise: int, extractor: VGG19Features, image: Tensor, style_image: Tensor, layer: str,
                     answer: float | None) -> bool:
    """Is ``answer`` the linear-kernel MMD^2 between the two images' feature vectors at ``layer``: ||mu_x - mu_y||^2?"""
    device = device_of(extractor)
    with torch.no_grad():
        fx, fy = (extractor(x.float().to(device), [layer])[layer] for x in (image, style_image))
    value = float((feature_mean(fx) - feature_mean(fy)).pow(2).sum())
    return _say(exercise, abs(float(answer) - value) <= 1e-3 * value, f"MMD^2 = ||mu_x - mu_y||^2 = {value:.6g}",
                f"{answer} is not {value:.6g}: with k(x, y) = x^T y each mean of kernel values is a product of means")


@_check("one_layer", "all_layers")
def check_more_layers_help(exercise: int, one_layer: Result | None, all_layers: Result | None,
                           style_image: Tensor, extractor: VGG19Features | None = None) -> bool:
    """Of mean/std textures from relu1_1 alone and from all five layers, is the second nearer the painting's Grams?

    Nearer at the deeper layers: the geometric mean over relu2_1 ... relu5_1 of E_l(all_layers) / E_l(one_layer)
    is below 1.
    """
    if problem := (_not_runs("synthesize_texture", {"one_layer": one_layer}, layers=["relu1_1"])
                   or _not_runs("synthesize_texture", {"all_layers": all_layers}, layers=list(STYLE_LAYERS))
                   or _not_runs("synthesize_texture", {"one_layer": one_layer, "all_layers": all_layers},
                                ["layers", "layer_weights", "style_scale"])):
        return _wrong(exercise, problem)
    if (made := one_layer.settings.get("style_statistic", "Gram matrices")) != "mean_std":
        return _wrong(exercise, f"the textures matched {made}: synthesize Statistic(painting, 'mean_std')")
    if problem := "".join(_copy_or_flat(run, **{"the painting": style_image}) for run in (one_layer, all_layers)):
        return _wrong(exercise, problem)
    deeper = list(STYLE_LAYERS[1:])
    one, five = (gram_losses(_image(run), style_image, deeper, extractor) for run in (one_layer, all_layers))
    ratio = math.exp(sum(math.log(five[layer] / one[layer]) for layer in deeper) / len(deeper))
    listed = ", ".join(f"{layer} x{five[layer] / one[layer]:.2g}" for layer in deeper)
    return _say(exercise, ratio < 1, f"E_l with five layers, against relu1_1 alone: {listed}: the mean and spread "
                "of more layers carry more of the Gram matrices",
                f"E_l with five layers, against relu1_1 alone: {listed}; were both made from this painting?")


# Notebook 07: controlling perceptual factors


@_check("result", "limited")
def check_chroma_kept(exercise: int, result: Result | None, photo: Tensor,
                      limited: float | Tensor | None = None) -> bool:
    """Has the luminance-only ``result`` the photo's chroma (YIQ's I, Q), and is ``limited`` the number of pixels
    whose luminance was limited to keep R, G, B in [0, 1] (or an (H, W) mask of them)?

    A limited pixel has a channel at 0 or 1 exactly (``color.with_chroma_of``); another one only by chance.
    """
    if problem := _not_runs("transfer", {"the result": result}, preserve_color="luminance"):
        return _wrong(exercise, problem + " (extras=[Smoothing(), KeepColors('luminance')])")
    image = _image(result)
    worst = float((rgb_to_yiq(image) - rgb_to_yiq(photo.float().cpu()))[0, 1:].abs().max())
    if worst >= 1e-4:
        return _wrong(exercise, f"the chroma differs from the photo's by up to {worst:.3g}: pass the photo the result "
                      "was made from")
    count = int(((image.amin(dim=1) < 1e-5) | (image.amax(dim=1) > 1 - 1e-5)).sum())
    given = float(limited.sum()) if isinstance(limited, Tensor) and limited.numel() > 1 else float(limited)
    pixels = image.shape[-1] * image.shape[-2]
    return _say(exercise, abs(given - count) <= max(2, 0.02 * count),
                f"I and Q equal the photo's at every pixel; the luminance was limited at {count} of {pixels} pixels",
                f"{given:g} pixels, but {count} of {pixels} have R, G or B at the edge of [0, 1]: compare the "
                "luminance before and after limiting and count the pixels where it changed")


@_check("matched")
def check_color_moments(exercise: int, matched: Tensor | None, photo: Tensor, painting: Tensor) -> bool:
    """Is ``matched`` an affine map x -> A x + b of the ``painting``'s pixels, with the photo's colour moments?

    The moments are the mean and covariance; affine, since the photo itself (or a clamped match) has them too.
    """
    m, c = matched.detach().double().cpu().reshape(3, -1), photo.double().cpu().reshape(3, -1)
    s = painting.detach().double().cpu().reshape(3, -1)
    if m.shape != s.shape:
        return _wrong(exercise, f"{m.shape[1]} pixels; the painting has {s.shape[1]}: map the painting's pixels")
    design = torch.cat([s, torch.ones_like(s[:1])]).T  # (P, 4): each pixel's R, G, B and 1
    residual = float((design @ torch.linalg.lstsq(design, m.T).solution - m.T).abs().max())
    if residual > 1e-4:
        return _wrong(exercise, f"not an affine map of the painting's pixels (off by up to {residual:.2g}): map each "
                      "of its pixels x to A (x - mu_s) + mu_c, and do not clamp")
    mean_gap = float((m.mean(1) - c.mean(1)).abs().max())
    cov_gap = float((torch.cov(m, correction=0) - torch.cov(c, correction=0)).abs().max())
    return _say(exercise, mean_gap < 1e-4 and cov_gap < 1e-4, "the matched painting has the photo's colour mean and "
                "covariance", f"mean off by {mean_gap:.2g}, covariance by {cov_gap:.2g}: map x -> A (x - mu_s) + mu_c "
                "with A = Sigma_c^(1/2) Sigma_s^(-1/2), before clamping")
