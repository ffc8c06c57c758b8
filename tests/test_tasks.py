"""Tests for nst_helpers.tasks: the paper's three tasks, transfer's small signature, recipes and extras."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

from nst_helpers import Extra, Options, Result, reconstruct_content, synthesize_texture, transfer
from nst_helpers.balance import DEFAULT_TV_WEIGHT, QUICK_FACTOR, balanced_ratio


def test_content_reconstruction_reduces_its_loss(smooth_image, small_run):
    result = reconstruct_content(smooth_image, "relu2_1", steps=15, **small_run)
    assert isinstance(result, Result) and result.stopped == "done" and result.steps == 15
    assert result.history["total"][-1] < 0.2 * result.history["total"][0]
    assert result.image.shape == smooth_image.shape and 0 <= result.image.min() and result.image.max() <= 1
    assert result.settings["task"] == "reconstruct_content" and result.settings["layer"] == "relu2_1"
    assert result.loss == min(result.history["total"])


def test_texture_synthesis_reduces_its_loss(smooth_image, small_run):
    result = synthesize_texture(smooth_image, ["relu1_1", "relu2_1"], size=(32, 32), steps=15, **small_run)
    assert result.image.shape == (1, 3, 32, 32)
    assert result.history["style"][-1] < 0.2 * result.history["style"][0]
    assert all(c == 0 for c in result.history["content"])
    assert set(result.history) == {"total", "content", "style"}  # no extras in a texture


def test_transfer_reduces_its_loss_and_records_parts(smooth_image, small_run):
    style = smooth_image.flip(-1).roll(7, dims=-2)
    result = transfer(smooth_image, style, alpha=1, beta=1e3, steps=12, **small_run)
    h = result.history
    assert len(h["total"]) == 12 and h["total"][-1] < h["total"][0]
    for t, c, s, tv in zip(h["total"], h["content"], h["style"], h["tv"]):
        assert t == pytest.approx(c + s + tv, rel=1e-5)
    assert result.settings["alpha"] == 1 and result.settings["beta"] == 1e3
    assert result.settings["content_layer"] == "relu4_2"


def test_transfer_takes_at_most_20_keywords_in_all():
    """Issue 27: transfer reached 31 keywords. Its own parameters plus the Options it forwards stay at 20 or fewer,
    and the two sets do not overlap (an option is never a second way to say a parameter)."""
    own = [name for name, p in inspect.signature(transfer).parameters.items() if p.kind is not p.VAR_KEYWORD]
    options = [f.name for f in dataclasses.fields(Options)]
    assert not set(own) & set(options)
    assert len(own) + len(options) <= 20, (own, options)
    assert "options" in inspect.signature(transfer).parameters  # the rest goes to Options, checked there


@pytest.mark.parametrize("removed", ["tv_weight", "preserve_color", "style_statistic", "style_weights", "masks",
                                     "scale_split", "content_colors", "flat_smoothing", "extractor", "device",
                                     "pooling", "weights", "normalize", "noise_std"])
def test_the_old_keywords_are_refused_with_the_list_of_options(smooth_image, removed):
    with pytest.raises(TypeError, match=f"Unknown option.*{removed}.*the options are"):
        transfer(smooth_image, smooth_image, **{removed: None})


def test_texture_synthesis_takes_another_statistic_as_a_style_term_not_a_keyword(smooth_image):
    with pytest.raises(TypeError, match="Unknown option.*style_statistic"):
        synthesize_texture(smooth_image, style_statistic="mmd_linear")


def test_no_size_switch_the_default_recipe_starts_from_white_noise_at_a_small_size(smooth_image, small_run):
    """48 px, far below the old 256 px threshold: the default is still white noise and the size rule."""
    style = smooth_image.flip(-1)
    for recipe in ("coarse_to_fine", "paper"):
        result = transfer(smooth_image, style, alpha=2.0, steps=2, recipe=recipe, **small_run)
        assert result.settings["recipe"] == recipe and result.settings["init"] == "noise"
        assert result.settings["beta"] == pytest.approx(2.0 / balanced_ratio(48))  # the image's long edge
        assert result.history["content"][0] > 0  # the first evaluation is at the noise, not at the photo
    assert transfer(smooth_image, style, steps=1, **small_run).settings["recipe"] == "coarse_to_fine"


def test_the_default_recipe_runs_half_its_steps_at_half_size_then_at_full_size(pair, small_run):
    content, style = pair  # 40x48: passes at 20x24, then 40x48
    result = transfer(content, style, alpha=1.0, beta=1e2, steps=12, **small_run)
    assert result.image.shape == content.shape and result.settings["size"] == [40, 48]
    assert result.settings["pass_steps"] == [6, 6] and result.steps == 12 and len(result.history["total"]) == 12
    fine = result.history["total"][6:]
    assert fine[-1] < fine[0]  # the full-size pass improves on its enlarged start
    assert result.best_step > 6 and result.loss == min(fine)
    assert 0 <= result.image.min() and result.image.max() <= 1 and result.image.std() > 0.01
    assert "tv" in result.history and len(result.history["tv"]) == 12  # the extras reach every pass
    # the paper's recipe is one pass; too few steps for two passes skip the half-size one
    assert "pass_steps" not in transfer(content, style, steps=3, recipe="paper", **small_run).settings
    assert "pass_steps" not in transfer(content, style, steps=1, **small_run).settings


def test_every_pass_keeps_the_balance_of_the_full_size(pair, small_run, monkeypatch):
    """L_content sums over positions and L_style (eq. 4) does not: a pass with a quarter of the positions gets a
    quarter of beta, so that it solves the full size's problem."""
    from nst_helpers import tasks

    seen = []
    real = tasks.objective

    def spy(vgg, p, style, a, alpha, beta, *args, **kwargs):
        seen.append((tuple(next(iter(p.values())).shape[-2:]), alpha, beta))
        return real(vgg, p, style, a, alpha, beta, *args, **kwargs)

    monkeypatch.setattr(tasks, "objective", spy)
    content, style = pair
    transfer(content, style, alpha=1.0, beta=1e2, steps=4, **small_run)
    (small_hw, _, small_beta), (big_hw, _, big_beta) = seen
    assert big_beta == 1e2 and small_beta == pytest.approx(1e2 * (20 * 24) / (40 * 48))
    # The balance itself: the content and style losses of one image, shrunk with its targets, keep their ratio.
    from nst_helpers import content_loss, gram_matrix, style_layer_loss
    from nst_helpers.images import resize

    vgg = small_run["network"]

    def parts(image, photo, painting):
        feats = vgg(image, ["relu2_1"])["relu2_1"]
        photo_f, painting_f = vgg(photo, ["relu2_1"])["relu2_1"], vgg(painting, ["relu2_1"])["relu2_1"]
        return float(content_loss(feats, photo_f)), float(style_layer_loss(feats, gram_matrix(painting_f)))

    g = torch.Generator().manual_seed(3)
    big = [torch.rand(1, 3, 8, 8, generator=g).repeat_interleave(8, -1).repeat_interleave(8, -2) for _ in range(3)]
    small = [resize(x, (32, 32)) for x in big]
    (c_big, s_big), (c_small, s_small) = parts(*big), parts(*small)
    assert (c_small / s_small) / (c_big / s_big) == pytest.approx(1 / 4, rel=0.2)


def test_the_settings_of_a_two_pass_run_run_it_again(pair, small_run):
    content, style = pair
    result = transfer(content, style, alpha=1.0, beta=1e2, steps=8, **small_run)
    s = result.settings
    assert s["init"] == "noise" and s["steps"] == 8 and s["beta"] == 1e2 and s["recipe"] == "coarse_to_fine"
    again = transfer(content, style, alpha=s["alpha"], beta=s["beta"], steps=s["steps"], recipe=s["recipe"],
                     init=s["init"], **small_run)
    torch.testing.assert_close(again.image, result.image)


def test_an_interrupted_first_pass_returns_its_image_at_full_size(pair, small_run):
    content, style = pair
    result = transfer(content, style, steps=10, callback=lambda p: p.step >= 2, every=1, **small_run)
    assert result.stopped == "stopped" and result.image.shape == content.shape and result.steps < 5


def test_guided_masks_follow_the_half_size_pass(pair, small_run):
    from nst_helpers.control import Guided

    content, style = pair
    left = torch.zeros(40, 48)
    left[:, :24] = 1
    result = transfer(content, Guided([style, style.flip(-1)], [left, 1 - left]), steps=4, **small_run)
    assert result.settings["pass_steps"] == [2, 2] and result.image.shape == content.shape


def test_the_quick_recipe_starts_from_the_photo_with_more_content(smooth_image, small_run):
    style = smooth_image.flip(-1)
    result = transfer(smooth_image, style, alpha=2.0, steps=1, recipe="quick", **small_run)
    assert result.settings["recipe"] == "quick" and result.settings["init"] == "content"
    assert result.settings["beta"] == pytest.approx(2.0 / (QUICK_FACTOR * balanced_ratio(48)))
    assert result.history["content"][0] == 0  # the first evaluation is at the photo itself: eq. 1 is zero
    # an init option overrides the recipe's start; the balance stays the recipe's
    noisy = transfer(smooth_image, style, alpha=2.0, steps=1, recipe="quick", init="noise", **small_run)
    assert noisy.settings["init"] == "noise" and noisy.settings["beta"] == result.settings["beta"]
    assert noisy.history["content"][0] > 0


def test_an_unknown_recipe_is_a_clear_error(smooth_image, small_run):
    with pytest.raises(ValueError, match="Unknown recipe 'fast'; use one of paper, coarse_to_fine, quick"):
        transfer(smooth_image, smooth_image, recipe="fast", steps=1, **small_run)


def test_no_extras_is_the_papers_eq_7_and_the_default_adds_the_smoothing(smooth_image, small_run):
    style = smooth_image.flip(-1).roll(5, dims=-1)
    kw = dict(alpha=1.0, beta=1e3, steps=4, **small_run)
    paper = transfer(smooth_image, style, extras=(), **kw)
    h = paper.history
    assert set(h) == {"total", "content", "style"} and "tv_weight" not in paper.settings
    assert len(h["total"]) == 4
    for t, c, s in zip(h["total"], h["content"], h["style"]):
        assert t == pytest.approx(c + s, rel=1e-6)
    default = transfer(smooth_image, style, **kw)
    assert set(default.history) == {"total", "content", "style", "tv"}
    assert default.settings["tv_weight"] == DEFAULT_TV_WEIGHT
    assert default.history["tv"][0] > 0
    # the same start (the same noise): the two runs differ at the first evaluation by the tv term alone
    assert default.history["total"][0] == pytest.approx(h["total"][0] + default.history["tv"][0], rel=1e-6)


def test_settings_record_the_recipe_the_extras_and_the_network(smooth_image, small_run):
    result = transfer(smooth_image, smooth_image.flip(-1), steps=1, **small_run)
    s = result.settings
    assert s["task"] == "transfer" and s["recipe"] == "coarse_to_fine" and s["tv_weight"] == DEFAULT_TV_WEIGHT
    assert (s["weights"], s["pooling"], s["normalize"], s["device"]) == ("caffe", "avg", False, "cpu")
    assert s["size"] == [40, 48] and s["steps"] == 1 and "network" not in s and "callback" not in s


def test_several_paintings_must_say_how_they_are_used(smooth_image, small_run):
    with pytest.raises(TypeError, match=r"Blend\(.*Guided\(.*ScaleMix\("):
        transfer(smooth_image, [smooth_image, smooth_image.flip(-1)], steps=1, **small_run)


class Pull(Extra):
    """A custom extra: pulls every pixel towards grey, ``alpha * weight * sum (x - 0.5)^2``."""

    name = "pull"

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def term(self, photo, alpha, content_scale):
        return lambda image: alpha * self.weight * (image - 0.5).pow(2).sum()

    def settings(self, content_scale):
        return {"pull": self.weight}


def test_a_custom_extras_term_appears_in_the_history_under_its_name(pair, small_run):
    photo, painting = pair
    result = transfer(photo, painting, alpha=2.0, beta=1e3, steps=3, init=photo, extras=[Pull(0.25)], recipe="paper",
                      **small_run)
    h = result.history
    assert set(h) == {"total", "content", "style", "pull"} and result.settings["pull"] == 0.25
    assert h["pull"][0] == pytest.approx(2.0 * 0.25 * float((photo - 0.5).pow(2).sum()), rel=1e-5)  # at the start
    for t, c, s, p in zip(h["total"], h["content"], h["style"], h["pull"]):
        assert t == pytest.approx(c + s + p, rel=1e-5)


def test_style_image_of_another_size_and_aspect(smooth_image, small_run):
    style = torch.rand(1, 3, 70, 30, generator=torch.Generator().manual_seed(1))
    result = transfer(smooth_image, style, steps=3, **small_run)
    assert result.image.shape == smooth_image.shape


def test_same_seed_same_result(smooth_image, small_run):
    a = reconstruct_content(smooth_image, "relu3_1", steps=4, seed=5, **small_run)
    b = reconstruct_content(smooth_image, "relu3_1", steps=4, seed=5, **small_run)
    c = reconstruct_content(smooth_image, "relu3_1", steps=4, seed=6, **small_run)
    torch.testing.assert_close(a.image, b.image)
    assert not torch.equal(a.image, c.image)


@pytest.mark.parametrize("init", ["content", "style"])
def test_init_from_an_image(smooth_image, small_run, init):
    style = smooth_image.flip(-1)
    result = transfer(smooth_image, style, beta=1e2, steps=1, init=init, **small_run)
    start = smooth_image if init == "content" else style
    # the first evaluation is at the starting image
    assert result.history["total"][0] == pytest.approx(
        transfer(smooth_image, style, beta=1e2, steps=1, init=start, **small_run).history["total"][0], rel=1e-5)


def test_init_content_is_refused_where_there_is_no_content_image(smooth_image, small_run):
    with pytest.raises(ValueError, match="needs a content image"):
        synthesize_texture(smooth_image, ["relu1_1"], steps=1, init="content", **small_run)


def test_bad_options_are_refused(smooth_image, small_run):
    with pytest.raises(ValueError, match="non-negative"):
        transfer(smooth_image, smooth_image, alpha=1, beta=-1, steps=1, **small_run)
    with pytest.raises(ValueError, match="non-negative"):
        transfer(smooth_image, smooth_image, layer_weights={"relu1_1": -1.0}, steps=1, **small_run)
    with pytest.raises(TypeError, match="Unknown option.*stepz"):
        transfer(smooth_image, smooth_image, stepz=3, **small_run)
    with pytest.raises(ValueError, match="Unknown optimizer 'sgd'"):
        transfer(smooth_image, smooth_image, optimizer="sgd", **small_run)
    with pytest.raises(ValueError, match="Unknown layer 'conv9_9'"):
        transfer(smooth_image, smooth_image, content_layer="conv9_9", **small_run)
    with pytest.raises(ValueError, match="too small for relu5_1"):
        transfer(torch.rand(1, 3, 10, 10), smooth_image, steps=1, **small_run)
    with pytest.raises(TypeError, match="load_image"):
        transfer("tubingen", smooth_image, **small_run)


def test_settings_that_cannot_work_are_refused_at_the_call(smooth_image, pair, random_vgg):
    """A texture needs layers; layer_weights must weigh every style layer."""
    with pytest.raises(ValueError, match="layers must be a list of style layers"):
        synthesize_texture(smooth_image, layers=[], steps=1, network=random_vgg, progress=False)
    photo, painting = pair
    with pytest.raises(ValueError, match=r"no weight for \['relu2_1'\]"):
        transfer(photo, painting, style_layers=["relu1_1", "relu2_1"], layer_weights={"relu1_1": 1.0}, steps=1,
                 network=random_vgg, progress=False)


def test_conv_and_relu_layers_are_both_accepted(smooth_image, small_run):
    pre = reconstruct_content(smooth_image, "conv1_1", steps=3, **small_run)
    post = reconstruct_content(smooth_image, "relu1_1", steps=3, **small_run)
    assert pre.settings["layer"] == "conv1_1" and post.settings["layer"] == "relu1_1"


def test_a_run_that_cannot_fit_is_refused_before_it_starts(smooth_image, random_vgg, monkeypatch):
    from nst_helpers import memory

    kw = dict(steps=2, network=random_vgg, progress=False)
    monkeypatch.setattr(memory, "available", lambda device="cpu": 100 * 2**20)  # 100 MiB free
    with pytest.raises(MemoryError, match="not even a 16 px run fits"):
        transfer(smooth_image, smooth_image.flip(-1), **kw)
    monkeypatch.setattr(memory, "available", lambda device="cpu": 400 * 2**20)  # 400 MiB: small runs only
    with pytest.raises(MemoryError, match="use a long edge of at most"):
        transfer(torch.rand(1, 3, 600, 800), smooth_image, **kw)


def _town(size: int) -> torch.Tensor:
    """A photo that is not the paper's: a sky gradient over a row of houses with windows, (1, 3, 3/4 size, size)."""
    h, w = size * 3 // 4, size
    y = torch.linspace(0, 1, h)[:, None].expand(h, w)
    image = torch.stack([0.4 + 0.3 * y, 0.6 + 0.2 * y, 0.9 - 0.1 * y])  # sky, lighter towards the horizon
    for i, x0 in enumerate(range(0, w, w // 4)):
        top = h // 2 - (i % 2) * h // 8
        image[:, top:, x0:x0 + w // 5] = torch.tensor([0.7, 0.45, 0.3])[:, None, None] * (0.8 + 0.1 * i)
        image[:, top + h // 10:top + h // 6, x0 + w // 20:x0 + w // 10] = 0.1  # a window
    return image[None].clamp(0, 1)


@pytest.mark.slow
@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalised"])
@pytest.mark.parametrize("pair", [("tubingen", "starry_night"), ("town", "the_scream")])
def test_the_default_balance_stylises_with_the_raw_and_the_paper_network(data_dir, normalize, pair):
    """The default alpha/beta follows the network: the paper's normalised network stylises as the raw one does
    (it used to return the photo), on the paper's pair and on another photo, from the photo ("quick", the small
    CPU recipe) and from the paper's white noise."""
    from nst_helpers import load_image, load_vgg19

    photo = _town(64) if pair[0] == "town" else load_image(pair[0], 64)
    painting = load_image(pair[1], 64)
    vgg = load_vgg19("caffe", pooling="avg", device="cpu", normalize=normalize)
    for recipe in ("quick", "paper"):
        result = transfer(photo, painting, steps=40, recipe=recipe, network=vgg, progress=False)
        style = result.history["style"]
        assert style[result.best_step - 1] < 0.3 * style[0], f"{recipe}: the style loss must fall well below its start"
        assert (result.image - photo).abs().mean() > 0.05, f"{recipe}: the picture must differ from the photo"
