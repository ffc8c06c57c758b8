"""The exercises' self-checks: each passes a right answer, fails the obvious wrong ones, and waits on None.

Every check is tried twice over: ``RIGHT`` holds one right answer per check (so that a check cannot pass the
wrong-answer tests by failing everything), ``WRONG`` the obvious wrong answers (the photo, the painting, the
start, a copy of an input, zeros, a flat image, another run, None) with the words the ✗ line must say.
Runs are "forged" where the check only reads a ``Result``: real settings (from one-step runs on the random
network) with synthetic images and losses, so the tests take seconds; the real runs are the solutions'.

The worked solutions (``solutions/``) run at the smoke preset in a real kernel,
assert every check, and must cover every exercise of their lesson.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import torch
from conftest import is_appendix, run_notebook

from nst_helpers import (
    KeepColors,
    Smoothing,
    Statistic,
    color,
    load_vgg19,
    paper_ratio,
    synthesize_texture,
    white_noise,
)
from nst_helpers import exercises as ex
from nst_helpers.features import receptive_field
from nst_helpers.optimize import Result
from nst_helpers.tasks import reconstruct_content, transfer

ROOT = Path(__file__).resolve().parents[1]
LESSONS = [path for path in sorted((ROOT / "notebooks").glob("0[1-9]_*.ipynb")) if not is_appendix(path)]  # with exercises
SOLUTIONS = ROOT / "solutions"
LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
PX = 16  # the test images' side: the smallest that reaches relu5_1, so that the random network runs in milliseconds


@pytest.fixture(scope="module")
def tiny_vgg():
    return load_vgg19(weights="random", pooling="avg")


@pytest.fixture(scope="module")
def kit(tiny_vgg):
    """Small images, the random network, one real texture, and the engine's own settings for each task."""
    gen = torch.Generator().manual_seed(6)
    y, x = torch.linspace(0, 1, PX).view(PX, 1), torch.linspace(0, 1, PX).view(1, PX)
    photo = torch.stack([0.5 + 0.45 * torch.sin(6 * x + 3 * y), 0.5 + 0.45 * torch.cos(5 * y - 2 * x),
                         (x + y) / 2])[None]  # smooth and saturated: its luminance must be limited somewhere
    painting = torch.rand(1, 3, PX, PX, generator=gen).cumsum(-1) / PX  # a smooth, coloured "painting"
    start = white_noise(painting)
    quick = {"steps": 1, "network": tiny_vgg, "progress": False, "precision": "fp32"}
    settings = {"reconstruct_content": reconstruct_content(photo, "relu1_1", init=start, **quick).settings,
                "synthesize_texture": synthesize_texture(painting, ["relu1_1"], init=start, **quick).settings,
                "transfer": transfer(photo, painting, alpha=1.0, beta=1.0, init=photo, extras=(), **quick).settings}

    def run(task, image, /, content=1.0, style=1.0, steps=1, loss=None, **changes):
        """A Result as ``task`` returns it, with this image, these weighted terms and these settings changed."""
        history = {"total": [loss if loss is not None else content + style], "content": [content], "style": [style]}
        return Result(image, history, steps, 0.0, {**settings[task], "steps": steps, **changes}, best_step=1)

    made = synthesize_texture(painting, ["relu1_1", "relu2_1"], init=start, **{**quick, "steps": 15})
    pool_input = torch.rand(1, 4, 8, 8, generator=gen)
    return SimpleNamespace(
        vgg=tiny_vgg, photo=photo, painting=painting, start=start, run=run, made=made,
        grey=painting.mean(1, keepdim=True).expand(-1, 3, -1, -1),
        features=torch.randint(0, 5, (8, 16), generator=torch.Generator().manual_seed(0)).float(),
        high=torch.nn.functional.max_pool2d(pool_input, 2), mean=torch.nn.functional.avg_pool2d(pool_input, 2),
        zeros=torch.zeros(1, 3, PX, PX), flat=torch.full((1, 3, PX, PX), 0.5), gradients={})


# Right answers, one per check (the wrong-answer tests would pass a check that fails everything)


def grainy(k):
    return (k.photo + 0.1 * torch.randn(k.photo.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)


def reconstructions(k, first=None, second=None):
    return {"relu1_1": k.run("reconstruct_content", first if first is not None else k.photo, layer="relu1_1"),
            "relu5_1": k.run("reconstruct_content", second if second is not None else grainy(k), layer="relu5_1")}


def short_and_long(k, **changes):
    return (k.run("reconstruct_content", k.start, loss=2.0, steps=2, layer="relu5_1"),
            k.run("reconstruct_content", k.start, loss=1.0, steps=4, **{"layer": "relu5_1", **changes}))


def gradient(k, layer="relu2_1"):
    if layer not in k.gradients:
        x = k.start.clone().requires_grad_(True)
        with torch.no_grad():
            target = k.vgg(k.photo, [layer])[layer]
        (0.5 * (k.vgg(x, [layer])[layer] - target).pow(2).sum()).backward()  # eq. 1 written out
        k.gradients[layer] = x.grad
    return k.gradients[layer]


def check_gradient(k, answer):
    return ex.check_pixel_gradient(5, answer, k.start, k.photo, k.vgg, "relu2_1")


def changed_entries(row=3):
    return [(i, j) for i in range(8) for j in range(8) if (i == row) != (j == row)]


def truly_changed(k, row=3):
    """The entries that change when map ``row``'s positions are reversed (not those whose partner is constant)."""
    shuffled = k.features.clone()
    shuffled[row] = k.features[row].flip(0)
    return [(i, j) for i, j in changed_entries(row)
            if float(shuffled[i] @ shuffled[j]) != float(k.features[i] @ k.features[j])]


def cross_terms(k):
    f2 = k.features.roll(5, dims=1)
    return f2, k.features @ f2.T, f2 @ k.features.T


def textures(k, colour=None, grey=None, **grey_changes):
    texture = (grey if grey is not None else k.grey) + 0.02 * torch.randn(k.grey.shape, generator=torch.Generator())
    return (k.run("synthesize_texture", colour if colour is not None else k.painting),
            k.run("synthesize_texture", texture.clamp(0, 1), **grey_changes))


def nine_by_nine(k):
    wider = torch.cat([k.features, torch.ones(1, 16)])
    return wider @ wider.T


def texture_like(k, image, **changes):
    return k.run("synthesize_texture", image, **{**k.made.settings, **changes})


def check_matched(k, answer, layers=("relu1_1", "relu2_1"), start=None):
    return ex.check_statistics_matched(3, answer, k.start if start is None else start, k.painting, list(layers), k.vgg)


def check_low(k, deep_only, with_low):
    return ex.check_low_layers_matter(1, deep_only, with_low, k.painting, k.vgg)


@pytest.fixture(scope="module")
def weighted(kit):
    """Two real textures, most of the weight on relu1_1, then on relu5_1 (the random network, 10 steps)."""
    def on(heavy):
        return synthesize_texture(kit.painting, LAYERS, layer_weights={layer: 0.96 if layer == heavy else 0.01
                                  for layer in LAYERS}, steps=10, init=kit.start, network=kit.vgg, progress=False,
                                  precision="fp32")
    return on("relu1_1"), on("relu5_1")


def transfers(k, shallow_image=None, full_image=None, **changes):
    near_painting = (k.painting + 0.02 * torch.randn(k.painting.shape, generator=torch.Generator())).clamp(0, 1)
    return (k.run("transfer", k.photo if shallow_image is None else shallow_image, style_layers=LAYERS[:3],
                  layer_weights=None, **changes),
            k.run("transfer", near_painting if full_image is None else full_image, style_layers=LAYERS))


def shares(k, tried=((1e-4, 1.0, 1.0), (1e-3, 4.0, 1.0), (1e-2, 9.0, 1.0)), reference_layer="relu4_2", **changes):
    """A relu4_2 reference at alpha/beta 1e-2 with share 0.75, and relu2_2 runs (ratio, alpha L_c, beta L_s)."""
    reference = k.run("transfer", k.photo, content=3.0, style=1.0, alpha=1e-2, beta=1.0, content_layer=reference_layer)
    return reference, [k.run("transfer", k.photo, content=c, style=s, alpha=r, beta=1.0,
                             **{"content_layer": "relu2_2", **changes}) for r, c, s in tried]


def row(k, ratios=(1e-3, 1e-2, 1e-1), contents=(100.0, 30.0, 5.0), styles=(1.0, 2.0, 4.0), **changes):
    """Transfers at these alpha/beta with these unweighted L_content, L_style (weighted here by alpha, beta = 1)."""
    return [k.run("transfer", k.photo, content=r * c, style=s, alpha=r, beta=1.0, **changes)
            for r, c, s in zip(ratios, contents, styles)]


def paper_row(k, papers=(1e-4, 1e-3, 1e-2), **changes):
    ratios = [paper_ratio(p, PX) for p in papers]
    return row(k, ratios, **{"normalize": True, **changes})


def smoothed(k, weights=(0.0, 1.0, 10.0), made=None):
    gen = torch.Generator().manual_seed(4)
    images = [(0.5 + 0.2 / (1 + w) * torch.randn(1, 3, 16, 16, generator=gen)).clamp(0, 1) for w in weights]
    return {w: k.run("transfer", image, **({"tv_weight": m} if m else {}))
            for w, m, image in zip(weights, made or weights, images)}


def two_layers(k, closer=None, farther=None, first_layer="relu2_2", **changes):
    return (k.run("transfer", closer if closer is not None else 0.9 * k.photo + 0.05, content_layer=first_layer,
                  **changes),
            k.run("transfer", farther if farther is not None else k.grey, content_layer="relu4_2"))


def responses(size=64):
    return torch.rand(1, 8, size, size, generator=torch.Generator().manual_seed(8))


def moments(f, divide_by=None):
    flat = f[0].flatten(1)
    mu = flat.mean(1)
    return mu, (flat - mu[:, None]) @ (flat - mu[:, None]).T / (divide_by or flat.shape[1])


def linear_mmd(k):
    with torch.no_grad():
        x, y = (k.vgg(i, ["relu1_1"])["relu1_1"][0].flatten(1).T.double() for i in (k.start, k.painting))
    return float((x @ x.T).mean() + (y @ y.T).mean() - 2 * (x @ y.T).mean())  # from all pairs of positions


def mean_std(k, one_image=None, all_image=None, statistic="mean_std", **changes):
    near = (k.painting + 0.02 * torch.randn(k.painting.shape, generator=torch.Generator())).clamp(0, 1)
    stat = {"style_statistic": statistic} if statistic else {}
    return (k.run("synthesize_texture", k.start if one_image is None else one_image, layers=["relu1_1"], **stat,
                  **changes),
            k.run("synthesize_texture", near if all_image is None else all_image, layers=LAYERS, **stat))


def luminance_only(k, **changes):
    """A luminance-only result (the photo's chroma, a grey run's luminance limited per pixel) and its limited pixels."""
    grey = torch.rand(1, 1, PX, PX, generator=torch.Generator().manual_seed(9)).expand(-1, 3, -1, -1)
    kept = color.with_chroma_of(grey, k.photo)
    limited = (color.rgb_to_yiq(kept)[:, 0] - color.rgb_to_yiq(grey)[:, 0]).abs()[0] > 1e-4
    return k.run("transfer", kept, **{"preserve_color": "luminance", **changes}), limited


def check_chroma(k, limited="right", result=None, photo=None):
    run, mask = luminance_only(k)
    answer = int(mask.sum()) if limited == "right" else limited
    return ex.check_chroma_kept(1, run if result is None else result, k.photo if photo is None else photo, answer)


RIGHT = {
    "check_layer_size": lambda k: ex.check_layer_size(1, "relu4_2", 128, 96, 512 * 16 * 12),  # three poolings
    "check_max_above_average": lambda k: ex.check_max_above_average(2, k.high, k.mean),
    "check_noisier": lambda k: ex.check_noisier(3, reconstructions(k), "relu5_1"),
    "check_longer_run": lambda k: ex.check_longer_run(4, *short_and_long(k)),
    "check_pixel_gradient": lambda k: check_gradient(k, gradient(k)),
    "check_gram_entry": lambda k: ex.check_gram_entry(1, k.features, 2, 3, float(k.features[2] @ k.features[3])),
    "check_changed_by_shuffle": lambda k: ex.check_changed_by_shuffle(2, k.features, 3, torch.arange(15, -1, -1),
                                                                      truly_changed(k)),
    "check_gram_of_sum": lambda k: ex.check_gram_of_sum(3, k.features, cross_terms(k)[0], cross_terms(k)[2]),
    "check_more_colour": lambda k: ex.check_more_colour(4, *textures(k)),
    "check_constant_map": lambda k: ex.check_constant_map(5, k.features, nine_by_nine(k), 8),
    "check_receptive_field": lambda k: ex.check_receptive_field(5, "relu3_1", 24),
    "check_statistics_matched": lambda k: check_matched(k, k.made),
    "check_low_layers_matter": lambda k: check_low(k, texture_like(k, k.start, layers=["relu2_1"]), k.made),
    "check_weights_steer": lambda k: ex.check_weights_steer(3, *k.weighted, k.painting, k.vgg),
    "check_deep_layers_matter": lambda k: ex.check_deep_layers_matter(2, *transfers(k), k.painting, k.vgg),
    "check_content_share": lambda k: ex.check_content_share(3, *shares(k), 3e-4),  # between 1e-4 and 1e-3
    "check_ratio_row": lambda k: ex.check_ratio_row(1, row(k)),
    "check_paper_row": lambda k: ex.check_paper_row(4, paper_row(k)),
    "check_smoother": lambda k: ex.check_smoother(6, smoothed(k)),
    "check_closer_to_photo": lambda k: ex.check_closer_to_photo(3, *two_layers(k), k.photo),
    "check_gram_decomposition": lambda k: ex.check_gram_decomposition(1, responses(), *moments(responses())),
    "check_linear_mmd": lambda k: ex.check_linear_mmd(2, k.vgg, k.start, k.painting, "relu1_1", linear_mmd(k)),
    "check_more_layers_help": lambda k: ex.check_more_layers_help(3, *mean_std(k), k.painting, k.vgg),
    "check_chroma_kept": lambda k: check_chroma(k),
    "check_color_moments": lambda k: ex.check_color_moments(2, color.match_colors(k.painting, k.photo), k.photo,
                                                            k.painting),
}

# The obvious wrong answers: (check: what is wrong, the call, words its ✗ or · line must hold)
WAIT = "not answered yet"
NOT_A_RUN = "not a run: pass the Result"
WRONG = [
    # notebook 01
    ("check_layer_size: None", lambda k: ex.check_layer_size(1, "pool4", 128, 96, None), WAIT),
    ("check_layer_size: the filters only", lambda k: ex.check_layer_size(1, "pool4", 128, 96, 512), "N_l alone"),
    ("check_layer_size: the positions only", lambda k: ex.check_layer_size(1, "pool4", 128, 96, 48), "M_l alone"),
    ("check_layer_size: another layer's", lambda k: ex.check_layer_size(1, "pool4", 128, 96, 512 * 192), "poolings"),
    ("check_layer_size: a word", lambda k: ex.check_layer_size(1, "pool4", 128, 96, "many"), "cannot be used"),
    ("check_max_above_average: None", lambda k: ex.check_max_above_average(2, None, k.mean), WAIT),
    ("check_max_above_average: swapped", lambda k: ex.check_max_above_average(2, k.mean, k.high), "swapped"),
    ("check_max_above_average: one network twice", lambda k: ex.check_max_above_average(2, k.mean, k.mean),
     "identical"),
    ("check_max_above_average: zeros as the average", lambda k: ex.check_max_above_average(
        2, k.high, torch.zeros_like(k.mean)), "not pool1"),
    ("check_max_above_average: constants", lambda k: ex.check_max_above_average(
        2, torch.ones_like(k.mean), torch.full_like(k.mean, 0.5)), "not pool1"),
    ("check_max_above_average: max shifted up", lambda k: ex.check_max_above_average(2, k.high + 1, k.mean),
     "exceed 4 x"),
    ("check_max_above_average: other shapes", lambda k: ex.check_max_above_average(2, k.high[:, :2], k.mean),
     "shapes differ"),
    ("check_noisier: None", lambda k: ex.check_noisier(3, {"relu1_1": None, "relu5_1": None}, "relu5_1"), WAIT),
    ("check_noisier: the other layer", lambda k: ex.check_noisier(3, reconstructions(k), "relu1_1"), "top-band"),
    ("check_noisier: images, not runs", lambda k: ex.check_noisier(
        3, {"relu1_1": k.photo, "relu5_1": k.start}, "relu5_1"), NOT_A_RUN),
    ("check_noisier: the same image twice", lambda k: ex.check_noisier(
        3, reconstructions(k, k.photo, k.photo), "relu5_1"), "top-band"),
    ("check_noisier: runs under the wrong keys", lambda k: ex.check_noisier(
        3, dict(zip(["relu5_1", "relu1_1"], reconstructions(k).values())), "relu5_1"), "layer='relu1_1'"),
    ("check_noisier: not a layer of the two", lambda k: ex.check_noisier(3, reconstructions(k), "conv5_1"),
     "not one of"),
    ("check_longer_run: None", lambda k: ex.check_longer_run(4, short_and_long(k)[0], None), WAIT),
    ("check_longer_run: swapped", lambda k: ex.check_longer_run(4, *reversed(short_and_long(k))), "more steps"),
    ("check_longer_run: the short run twice", lambda k: ex.check_longer_run(
        4, short_and_long(k)[0], short_and_long(k)[0]), "more steps"),
    ("check_longer_run: another layer", lambda k: ex.check_longer_run(4, *short_and_long(k, layer="relu1_1")),
     "layer: 'relu5_1' vs 'relu1_1'"),
    ("check_longer_run: another start", lambda k: ex.check_longer_run(4, *short_and_long(k, init="noise")), "init"),
    ("check_longer_run: an image", lambda k: ex.check_longer_run(4, short_and_long(k)[0], k.start), NOT_A_RUN),
    ("check_pixel_gradient: None", lambda k: check_gradient(k, None), WAIT),
    ("check_pixel_gradient: twice", lambda k: check_gradient(k, 2 * gradient(k)), "relative error"),
    ("check_pixel_gradient: its negative", lambda k: check_gradient(k, -gradient(k)), "sign is flipped"),
    ("check_pixel_gradient: zeros", lambda k: check_gradient(k, torch.zeros_like(k.start)), "relative error"),
    ("check_pixel_gradient: the image", lambda k: check_gradient(k, k.start), "relative error"),
    ("check_pixel_gradient: another layer's", lambda k: check_gradient(k, gradient(k, "relu1_1")), "relative error"),
    ("check_pixel_gradient: one channel", lambda k: check_gradient(k, gradient(k)[:, :1]), "one value per pixel"),
    # notebook 02
    ("check_gram_entry: None", lambda k: ex.check_gram_entry(1, k.features, 2, 3, None), WAIT),
    ("check_gram_entry: a neighbour", lambda k: ex.check_gram_entry(1, k.features, 4, 4, float(nine_by_nine(k)[4, 3])),
     "count from 0"),
    ("check_gram_entry: counted from 1", lambda k: ex.check_gram_entry(
        1, k.features, 2, 3, float(k.features[1] @ k.features[2])), "count from 0"),
    ("check_gram_entry: zero", lambda k: ex.check_gram_entry(1, k.features, 2, 3, 0), "count from 0"),
    ("check_changed_by_shuffle: None", lambda k: ex.check_changed_by_shuffle(
        2, k.features, 3, torch.arange(15, -1, -1), None), WAIT),
    ("check_changed_by_shuffle: with the diagonal", lambda k: ex.check_changed_by_shuffle(
        2, k.features, 3, torch.arange(15, -1, -1), changed_entries() + [(3, 3)]), "sum of squares"),
    ("check_changed_by_shuffle: nothing", lambda k: ex.check_changed_by_shuffle(
        2, k.features, 3, torch.arange(15, -1, -1), []), "sum of squares"),
    ("check_changed_by_shuffle: not pairs", lambda k: ex.check_changed_by_shuffle(
        2, k.features, 3, torch.arange(15, -1, -1), [3, 4]), "cannot be used"),
    ("check_gram_of_sum: None", lambda k: ex.check_gram_of_sum(3, k.features, cross_terms(k)[0], None), WAIT),
    ("check_gram_of_sum: the difference computed", lambda k: ex.check_gram_of_sum(
        3, k.features, cross_terms(k)[0], nine_by_sum(k)), "whole difference"),
    ("check_gram_of_sum: half the difference", lambda k: ex.check_gram_of_sum(
        3, k.features, cross_terms(k)[0], nine_by_sum(k) / 2), "whole difference"),
    ("check_gram_of_sum: both terms", lambda k: ex.check_gram_of_sum(
        3, k.features, cross_terms(k)[0], cross_terms(k)[1] + cross_terms(k)[2]), "whole difference"),
    ("check_gram_of_sum: G(F1)", lambda k: ex.check_gram_of_sum(3, k.features, cross_terms(k)[0],
                                                                k.features @ k.features.T), "not an extra term"),
    ("check_gram_of_sum: zeros", lambda k: ex.check_gram_of_sum(3, k.features, cross_terms(k)[0], torch.zeros(8, 8)),
     "not an extra term"),
    ("check_gram_of_sum: a formula as text", lambda k: ex.check_gram_of_sum(3, k.features, cross_terms(k)[0],
                                                                            "F1 @ F2.T"), "cannot be used"),
    ("check_more_colour: None", lambda k: ex.check_more_colour(4, textures(k)[0], None), WAIT),
    ("check_more_colour: the grey painting", lambda k: ex.check_more_colour(4, textures(k)[0], k.grey), NOT_A_RUN),
    ("check_more_colour: the grey painting as a run", lambda k: ex.check_more_colour(
        4, textures(k)[0], k.run("synthesize_texture", k.grey)), "no colour at all"),
    ("check_more_colour: swapped", lambda k: ex.check_more_colour(4, *reversed(textures(k))), "colour painting's"),
    ("check_more_colour: the colour texture twice", lambda k: ex.check_more_colour(4, textures(k)[0], textures(k)[0]),
     "colour painting's"),
    ("check_more_colour: another start", lambda k: ex.check_more_colour(4, *textures(k, seed=3)), "seed"),
    ("check_more_colour: other layers", lambda k: ex.check_more_colour(4, *textures(k, layers=["relu2_1"])), "layers"),
    ("check_more_colour: a transfer", lambda k: ex.check_more_colour(4, textures(k)[0], k.run("transfer", k.grey)),
     "made by transfer"),
    ("check_constant_map: None", lambda k: ex.check_constant_map(5, k.features, None, 8), WAIT),
    ("check_constant_map: row 0", lambda k: ex.check_constant_map(5, k.features, nine_by_nine(k), 0), "row 0"),
    ("check_constant_map: counted from 1", lambda k: ex.check_constant_map(5, k.features, nine_by_nine(k), 9), "row 9"),
    ("check_constant_map: the 8x8 Gram", lambda k: ex.check_constant_map(5, k.features, k.features @ k.features.T, 8),
     "stack the ones"),
    ("check_constant_map: zeros", lambda k: ex.check_constant_map(5, k.features, torch.zeros(9, 9), 8),
     "stack the ones"),
    # notebook 03
    ("check_receptive_field: None", lambda k: ex.check_receptive_field(5, "relu3_1", None), WAIT),
    ("check_receptive_field: too small", lambda k: ex.check_receptive_field(5, "relu3_1", 20), "doubles the step"),
    ("check_receptive_field: relu1_1's", lambda k: ex.check_receptive_field(5, "relu3_1", 3), "doubles the step"),
    ("check_receptive_field: with a unit", lambda k: ex.check_receptive_field(5, "relu3_1", "24 px"), "cannot be used"),
    ("check_statistics_matched: None", lambda k: check_matched(k, None), WAIT),
    ("check_statistics_matched: the painting", lambda k: check_matched(k, k.painting), NOT_A_RUN),
    ("check_statistics_matched: the painting as a run", lambda k: check_matched(k, texture_like(k, k.painting)),
     "the painting itself"),
    ("check_statistics_matched: the start as a run", lambda k: check_matched(k, texture_like(k, k.start)),
     "the start itself"),
    ("check_statistics_matched: zeros as a run", lambda k: check_matched(k, texture_like(k, k.zeros)), "flat"),
    ("check_statistics_matched: a flat image as a run", lambda k: check_matched(k, texture_like(k, k.flat)), "flat"),
    ("check_statistics_matched: the photo", lambda k: check_matched(k, k.photo), NOT_A_RUN),
    ("check_statistics_matched: other layers", lambda k: check_matched(k, k.made, layers=LAYERS), "layers="),
    ("check_statistics_matched: a transfer", lambda k: check_matched(k, k.run("transfer", k.made.image)),
     "made by transfer"),
    ("check_statistics_matched: another start's size", lambda k: check_matched(
        k, k.made, start=k.start[..., : PX // 2]), "differ in size"),
    ("check_low_layers_matter: None", lambda k: check_low(k, None, k.made), WAIT),
    ("check_low_layers_matter: the start", lambda k: check_low(k, k.start, k.made), NOT_A_RUN),
    ("check_low_layers_matter: swapped", lambda k: check_low(
        k, k.made, texture_like(k, k.start, layers=["relu2_1"])), "the layers were"),
    ("check_low_layers_matter: one texture twice", lambda k: check_low(k, k.made, k.made), "the layers were"),
    ("check_low_layers_matter: another start", lambda k: check_low(
        k, texture_like(k, k.start, layers=["relu2_1"], seed=3), k.made), "seed"),
    ("check_low_layers_matter: the painting as the deep-only run", lambda k: check_low(
        k, texture_like(k, k.painting, layers=["relu2_1"]), k.made), "not above"),
    ("check_weights_steer: None", lambda k: ex.check_weights_steer(3, None, k.weighted[1], k.painting, k.vgg), WAIT),
    ("check_weights_steer: swapped", lambda k: ex.check_weights_steer(
        3, *reversed(k.weighted), k.painting, k.vgg), "most of the weight on relu1_1"),
    ("check_weights_steer: the paper's equal weights", lambda k: ex.check_weights_steer(
        3, texture_like(k, k.made.image, **{**k.weighted[1].settings, "layer_weights": None}), k.weighted[1],
        k.painting, k.vgg),
     "layer_weights=None"),
    ("check_weights_steer: images", lambda k: ex.check_weights_steer(
        3, k.weighted[0].image, k.weighted[1].image, k.painting, k.vgg), NOT_A_RUN),
    ("check_weights_steer: another start", lambda k: ex.check_weights_steer(3, k.weighted[0], texture_like(
        k, k.weighted[1].image, **{**k.weighted[1].settings, "seed": 3}), k.painting, k.vgg), "seed"),
    # notebook 04 and the lab
    ("check_deep_layers_matter: None", lambda k: ex.check_deep_layers_matter(2, None, transfers(k)[1], k.painting),
     WAIT),
    ("check_deep_layers_matter: the photo", lambda k: ex.check_deep_layers_matter(
        2, k.photo, transfers(k)[1], k.painting, k.vgg), NOT_A_RUN),
    ("check_deep_layers_matter: swapped", lambda k: ex.check_deep_layers_matter(
        2, *reversed(transfers(k)), k.painting, k.vgg), "without relu5_1 first"),
    ("check_deep_layers_matter: the full run twice", lambda k: ex.check_deep_layers_matter(
        2, transfers(k)[1], transfers(k)[1], k.painting, k.vgg), "without relu5_1 first"),
    ("check_deep_layers_matter: another ratio", lambda k: ex.check_deep_layers_matter(
        2, *transfers(k, alpha=10.0), k.painting, k.vgg), "alpha"),
    ("check_deep_layers_matter: the full image as the shallow run", lambda k: ex.check_deep_layers_matter(
        2, *transfers(k, shallow_image=k.painting, full_image=k.painting), k.painting, k.vgg), "not above"),
    ("check_content_share: None", lambda k: ex.check_content_share(3, shares(k)[0], None, None), WAIT),
    ("check_content_share: the share, not a ratio", lambda k: ex.check_content_share(3, *shares(k), 0.75),
     "not a share"),
    ("check_content_share: the reference's ratio", lambda k: ex.check_content_share(3, *shares(k), 1e-2),
     "between"),
    ("check_content_share: a single run", lambda k: ex.check_content_share(
        3, shares(k)[0], shares(k)[1][:1], 1e-4), "three ratios"),
    ("check_content_share: one decade", lambda k: ex.check_content_share(
        3, *shares(k, ((1e-4, 1, 1), (2e-4, 3, 1), (5e-4, 4, 1))), 2e-4), "two decades"),
    ("check_content_share: relu4_2 runs tried", lambda k: ex.check_content_share(
        3, *shares(k, content_layer="relu4_2"), 3e-4), "content_layer='relu4_2'"),
    ("check_content_share: a relu2_2 reference", lambda k: ex.check_content_share(
        3, *shares(k, reference_layer="relu2_2"), 3e-4), "content_layer='relu2_2'"),
    ("check_content_share: other style layers", lambda k: ex.check_content_share(
        3, *shares(k, style_layers=LAYERS[:2]), 3e-4), "style_layers"),
    ("check_ratio_row: None", lambda k: ex.check_ratio_row(1, [None]), WAIT),
    ("check_ratio_row: no trade", lambda k: ex.check_ratio_row(1, row(k, contents=(100.0,) * 3, styles=(1.0,) * 3)),
     "should fall"),
    ("check_ratio_row: two runs", lambda k: ex.check_ratio_row(1, row(k)[:2]), "at least three"),
    ("check_ratio_row: one run thrice", lambda k: ex.check_ratio_row(1, [row(k)[0]] * 3), "at least three"),
    ("check_ratio_row: images", lambda k: ex.check_ratio_row(1, [k.photo, k.painting, k.start]), NOT_A_RUN),
    ("check_ratio_row: another content layer", lambda k: ex.check_ratio_row(
        1, row(k)[:2] + row(k, content_layer="relu2_2")[2:]), "content_layer"),
    ("check_paper_row: None", lambda k: ex.check_paper_row(4, [None]), WAIT),
    ("check_paper_row: the raw network", lambda k: ex.check_paper_row(4, paper_row(k, normalize=False)),
     "normalize=False"),
    ("check_paper_row: our ratios", lambda k: ex.check_paper_row(4, row(k, normalize=True)), f"paper_ratio(r, {PX})"),
    ("check_paper_row: two of the three", lambda k: ex.check_paper_row(4, paper_row(k)[:2]), f"paper_ratio(r, {PX})"),
    ("check_paper_row: no trade", lambda k: ex.check_paper_row(
        4, paper_row(k, contents=(100.0,) * 3, styles=(1.0,) * 3)), "should fall"),
    ("check_smoother: None", lambda k: ex.check_smoother(6, {0.0: None, 1.0: None}), WAIT),
    ("check_smoother: under the wrong keys", lambda k: ex.check_smoother(6, smoothed(k, made=(10.0, 1.0, 0.0))),
     "the weight it was made with"),
    ("check_smoother: zeros for the largest weight", lambda k: ex.check_smoother(
        6, {**smoothed(k), 10.0: k.zeros}), NOT_A_RUN),
    ("check_smoother: a flat image as the largest weight's run", lambda k: ex.check_smoother(
        6, {**smoothed(k), 10.0: k.run("transfer", k.flat, tv_weight=10.0)}), "flat"),
    ("check_smoother: one image thrice", lambda k: ex.check_smoother(
        6, {w: k.run("transfer", k.painting, **({"tv_weight": w} if w else {})) for w in (0.0, 1.0, 10.0)}),
     "should fall"),
    ("check_smoother: another ratio", lambda k: ex.check_smoother(
        6, {**smoothed(k), 10.0: k.run("transfer", k.painting, tv_weight=10.0, alpha=5.0)}), "alpha"),
    ("check_closer_to_photo: None", lambda k: ex.check_closer_to_photo(3, None, two_layers(k)[1], k.photo), WAIT),
    ("check_closer_to_photo: the photo", lambda k: ex.check_closer_to_photo(3, k.photo, two_layers(k)[1], k.photo),
     NOT_A_RUN),
    ("check_closer_to_photo: the photo as a run", lambda k: ex.check_closer_to_photo(
        3, *two_layers(k, closer=k.photo), k.photo), "the photo itself"),
    ("check_closer_to_photo: swapped", lambda k: ex.check_closer_to_photo(3, *reversed(two_layers(k)), k.photo),
     "not above"),
    ("check_closer_to_photo: one content layer", lambda k: ex.check_closer_to_photo(
        3, *two_layers(k, first_layer="relu4_2"), k.photo), "both were made from relu4_2"),
    ("check_closer_to_photo: another ratio", lambda k: ex.check_closer_to_photo(
        3, *two_layers(k, alpha=10.0), k.photo), "alpha"),
    # notebook 06
    ("check_gram_decomposition: None", lambda k: ex.check_gram_decomposition(1, responses(), None, None), WAIT),
    ("check_gram_decomposition: divided by M - 1", lambda k: ex.check_gram_decomposition(
        1, responses(), *moments(responses(), 64 * 64 - 1)), "divided by M - 1"),
    ("check_gram_decomposition: G/M, not centred", lambda k: ex.check_gram_decomposition(
        1, responses(), moments(responses())[0], responses()[0].flatten(1) @ responses()[0].flatten(1).T / 4096),
     "subtract the mean"),
    ("check_gram_decomposition: zeros", lambda k: ex.check_gram_decomposition(
        1, responses(), torch.zeros(8), torch.zeros(8, 8)), "the mean differs"),
    ("check_gram_decomposition: one mean for all", lambda k: ex.check_gram_decomposition(
        1, responses(), responses().mean(), moments(responses())[1]), "one mean per channel"),
    ("check_linear_mmd: None", lambda k: ex.check_linear_mmd(2, k.vgg, k.start, k.painting, "relu1_1", None), WAIT),
    ("check_linear_mmd: zero", lambda k: ex.check_linear_mmd(2, k.vgg, k.start, k.painting, "relu1_1", 0.0),
     "product of means"),
    ("check_linear_mmd: twice", lambda k: ex.check_linear_mmd(
        2, k.vgg, k.start, k.painting, "relu1_1", 2 * linear_mmd(k)), "product of means"),
    ("check_more_layers_help: None", lambda k: ex.check_more_layers_help(3, None, mean_std(k)[1], k.painting, k.vgg),
     WAIT),
    ("check_more_layers_help: Gram textures", lambda k: ex.check_more_layers_help(
        3, *mean_std(k, statistic=None), k.painting, k.vgg), "matched Gram matrices"),
    ("check_more_layers_help: swapped", lambda k: ex.check_more_layers_help(
        3, *reversed(mean_std(k)), k.painting, k.vgg), "layers="),
    ("check_more_layers_help: images", lambda k: ex.check_more_layers_help(
        3, k.start, k.painting, k.painting, k.vgg), NOT_A_RUN),
    ("check_more_layers_help: another start", lambda k: ex.check_more_layers_help(
        3, *mean_std(k, seed=3), k.painting, k.vgg), "seed"),
    ("check_more_layers_help: the start for all five", lambda k: ex.check_more_layers_help(
        3, *mean_std(k, one_image=0.98 * k.painting + 0.01, all_image=k.start), k.painting, k.vgg), "were both made"),
    ("check_more_layers_help: the painting as a run", lambda k: ex.check_more_layers_help(
        3, *mean_std(k, one_image=k.painting), k.painting, k.vgg), "the painting itself"),
    # notebook 07
    ("check_chroma_kept: None", lambda k: check_chroma(k, None), WAIT),
    ("check_chroma_kept: zero", lambda k: check_chroma(k, 0), "count the pixels"),
    ("check_chroma_kept: a fraction", lambda k: check_chroma(k, float(luminance_only(k)[1].float().mean())),
     "count the pixels"),
    ("check_chroma_kept: every pixel", lambda k: check_chroma(k, PX * PX), "count the pixels"),
    ("check_chroma_kept: the photo", lambda k: check_chroma(k, result=k.photo), NOT_A_RUN),
    ("check_chroma_kept: a transfer in colour", lambda k: check_chroma(
        k, result=luminance_only(k, preserve_color=None)[0]), "preserve_color"),
    ("check_chroma_kept: another photo", lambda k: check_chroma(k, photo=k.painting), "chroma differs"),
    ("check_color_moments: None", lambda k: ex.check_color_moments(2, None, k.photo, k.painting), WAIT),
    ("check_color_moments: the photo", lambda k: ex.check_color_moments(2, k.photo, k.photo, k.painting),
     "not an affine map"),
    ("check_color_moments: the painting", lambda k: ex.check_color_moments(2, k.painting, k.photo, k.painting),
     "mean off"),
    ("check_color_moments: zeros", lambda k: ex.check_color_moments(2, k.zeros, k.photo, k.painting), "mean off"),
    ("check_color_moments: clamped", lambda k: ex.check_color_moments(
        2, color.match_colors(k.painting, 0.5 + 2 * (k.photo - 0.5)).clamp(0, 1), 0.5 + 2 * (k.photo - 0.5),
        k.painting), "do not clamp"),
    ("check_color_moments: another painting", lambda k: ex.check_color_moments(
        2, color.match_colors(k.start, k.photo), k.photo, k.painting), "not an affine map"),
]


def nine_by_sum(k):
    """G(F1 + F2) - G(F1) - G(F2), computed."""
    f1, f2 = k.features, cross_terms(k)[0]
    return (f1 + f2) @ (f1 + f2).T - f1 @ f1.T - f2 @ f2.T


@pytest.fixture
def checks_kit(kit, weighted):
    kit.weighted = weighted
    return kit


def test_every_check_is_tried_right_and_wrong_and_never_raises():
    assert set(RIGHT) == set(ex.__all__), "every check needs a right answer in RIGHT"
    assert {name.split(":")[0] for name, _, _ in WRONG} == set(ex.__all__), "every check needs wrong answers"
    for name in ex.__all__:
        assert hasattr(getattr(ex, name), "__wrapped__"), f"{name} is not made a check by _check"
        assert any(name + ": None" == case for case, _, _ in WRONG), f"{name}: no None case"


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_a_right_answer_passes(name, checks_kit, capsys):
    assert RIGHT[name](checks_kit) is True
    out = capsys.readouterr().out
    assert out.startswith("✓") and out.count("\n") == 1, out


@pytest.mark.parametrize("call, says", [(call, says) for _, call, says in WRONG], ids=[name for name, _, _ in WRONG])
def test_an_obvious_wrong_answer_fails_and_says_why(call, says, checks_kit, capsys):
    assert call(checks_kit) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1, f"a check prints one line: {out}"
    assert out.startswith("· " if says == WAIT else "✗ ") and says in out, out


def test_receptive_fields_are_the_known_ones():
    # the standard VGG values: each 3x3 conv adds 2 steps, each 2x2 pool 1 and doubles the step
    known = {"conv1_1": 3, "relu1_2": 5, "pool1": 6, "conv2_1": 10, "pool2": 16, "relu3_1": 24, "relu4_2": 84,
             "pool4": 124, "relu5_1": 156}
    assert {layer: receptive_field(layer) for layer in known} == known
    with pytest.raises(ValueError, match="conv6_1"):
        receptive_field("conv6_1")


def test_the_engine_records_the_settings_the_checks_read(kit, tiny_vgg):
    """A renamed settings key must fail here, not in a student's notebook."""
    for task, keys in {"reconstruct_content": ["task", "layer", "init", "seed", "steps"],
                       "synthesize_texture": ["task", "layers", "layer_weights", "size"],
                       "transfer": ["task", "alpha", "beta", "content_layer", "style_layers", "normalize"]}.items():
        assert set(keys) <= set(kit.run(task, kit.photo).settings), task
    made = transfer(kit.photo, Statistic(kit.painting, "mean_std"), alpha=1.0, beta=1.0, steps=1, network=tiny_vgg,
                    extras=[Smoothing(), KeepColors("luminance")], progress=False, precision="fp32").settings
    assert made["tv_weight"] > 0 and made["preserve_color"] == "luminance" and made["style_statistic"] == "mean_std"


# The lessons and their solutions


def exercises_of(path: Path) -> int:
    """How many numbered exercises a lesson's Exercises cell lists."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown" and "## Exercises" in cell.source:
            return len(re.findall(r"^\d+\. ", cell.source.split("## Exercises", 1)[1], flags=re.M))
    raise AssertionError(f"{path.name}: no Exercises cell")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.name)
def test_every_lesson_has_a_self_check_cell_and_a_solution_for_each_exercise(lesson):
    count = exercises_of(lesson)
    cells = nbformat.read(lesson, as_version=4).cells
    checks = [cell for cell in cells if cell.cell_type == "code" and "exercises" in cell.source and "ex.check_" in cell.source]
    assert checks, f"{lesson.name}: no self-check cell (ex.check_... calls) after the exercises"
    solution = SOLUTIONS / lesson.name
    assert solution.exists(), f"solutions/{lesson.name} is missing"
    headings = [line for cell in nbformat.read(solution, as_version=4).cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if re.match(r"## Exercise \d+", line)]
    assert len(headings) == count, f"solutions/{lesson.name}: {len(headings)} exercise sections for {count} exercises"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.name)
def test_solutions_run_and_every_check_passes(lesson, smoke_environment):
    path = SOLUTIONS / lesson.name
    nb = nbformat.read(path, as_version=4)
    run_notebook(nb, SOLUTIONS, f"solutions/{lesson.name}")
    printed = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "✗" not in printed and "not answered yet" not in printed, f"solutions/{lesson.name}: a check did not pass"
    assert printed.count("✓") >= exercises_of(lesson) - _open_questions(nb), f"solutions/{lesson.name}: checks missing"


def _open_questions(nb) -> int:
    """Exercises whose solution says it has no measurable answer to check (marked 'open question')."""
    return sum("open question" in cell.source.lower() for cell in nb.cells if cell.cell_type == "markdown"
               and re.match(r"## Exercise \d+", cell.source))
