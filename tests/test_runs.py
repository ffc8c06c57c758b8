"""Tests for nst_helpers.runs: coarse-to-fine keeps the final balance and records what runs it again."""

from __future__ import annotations

import pytest
import torch

from nst_helpers import coarse_to_fine, runs, transfer
from nst_helpers.balance import QUICK_FACTOR, balanced_ratio


@pytest.fixture
def vgg(random_vgg):
    """The shared random-weight network: runs never change a network they are given."""
    return random_vgg


def test_coarse_to_fine_output_and_progress(vgg, pair):
    content, style = pair  # 40x48: passes at 24x20 -> 48x40 px
    kw = dict(alpha=1.0, beta=1e2, network=vgg, progress=False)
    result = coarse_to_fine(content, style, (24, 48), steps=12, **kw)
    assert result.image.shape == content.shape
    assert result.settings["scales"] == [24, 48] and result.settings["scale_steps"] == [6, 6]
    assert result.steps == 12 and len(result.history["total"]) == 12
    fine = result.history["total"][6:]
    assert fine[-1] < fine[0]  # the fine pass improves on its upsampled start
    assert result.best_step > 6 and result.loss == min(fine)
    assert 0 <= result.image.min() and result.image.max() <= 1 and result.image.std() > 0.01


def test_coarse_to_fine_explicit_steps_and_errors(vgg, pair):
    content, style = pair
    result = coarse_to_fine(content, style, (24, 48), (3, 2), network=vgg, progress=False)
    assert result.settings["scale_steps"] == [3, 2] and result.steps == 5
    with pytest.raises(ValueError, match="increasing"):
        coarse_to_fine(content, style, (48, 24), network=vgg, progress=False)
    with pytest.raises(ValueError, match="one positive count per scale"):
        coarse_to_fine(content, style, (24, 48), (3,), network=vgg, progress=False)


def test_coarse_to_fine_keeps_the_final_balance_at_every_pass(vgg, pair, monkeypatch):
    # L_content sums over positions and L_style (eq. 4) does not: a pass with a quarter of the
    # positions needs a quarter of beta to solve the same problem as the final size.
    passes = []

    def spy(content, style, **kwargs):  # each pass is a public transfer call
        passes.append((tuple(content.shape[-2:]), kwargs["alpha"], kwargs["beta"]))
        return transfer(content, style, **kwargs)

    monkeypatch.setattr(runs, "transfer", spy)
    content, style = pair  # 40x48
    coarse_to_fine(content, style, (24, 48), alpha=1.0, beta=1e2, steps=4, network=vgg, progress=False)
    assert passes == [((20, 24), 1.0, pytest.approx(1e2 * (20 * 24) / (40 * 48))), ((40, 48), 1.0, 1e2)]
    # The balance itself: the content and style losses of one image, shrunk with its targets, keep their ratio.
    from nst_helpers import content_loss, gram_matrix, style_layer_loss
    from nst_helpers.images import resize

    def parts(image, photo, painting):
        feats = vgg(image, ["relu2_1"])["relu2_1"]
        photo_f, painting_f = vgg(photo, ["relu2_1"])["relu2_1"], vgg(painting, ["relu2_1"])["relu2_1"]
        return float(content_loss(feats, photo_f)), float(style_layer_loss(feats, gram_matrix(painting_f)))

    g = torch.Generator().manual_seed(3)
    big = [torch.rand(1, 3, 8, 8, generator=g).repeat_interleave(8, -1).repeat_interleave(8, -2) for _ in range(3)]
    small = [resize(x, (32, 32)) for x in big]
    (c_big, s_big), (c_small, s_small) = parts(*big), parts(*small)
    assert (c_small / s_small) / (c_big / s_big) == pytest.approx(1 / 4, rel=0.2)


def test_coarse_to_fine_settings_run_it_again(vgg, pair):
    """The settings are the call's (start, total steps, beta), not the last pass's (bug: init "tensor", 6 steps)."""
    content, style = pair
    result = coarse_to_fine(content, style, (24, 48), alpha=1.0, beta=1e2, steps=12, init="noise", network=vgg,
                            progress=False)
    settings = result.settings
    assert settings["init"] == "noise" and settings["steps"] == 12 and settings["beta"] == 1e2
    assert settings["scales"] == [24, 48] and settings["size"] == [40, 48]
    again = coarse_to_fine(content, style, settings["scales"], settings["scale_steps"], alpha=settings["alpha"],
                           beta=settings["beta"], init=settings["init"], network=vgg, progress=False)
    torch.testing.assert_close(again.image, result.image)


def test_coarse_to_fine_checks_the_final_size_before_the_first_pass(vgg, pair, monkeypatch):
    from nst_helpers import memory

    passes = []
    monkeypatch.setattr(runs, "transfer", lambda *a, **k: passes.append(1))
    monkeypatch.setattr(memory, "available", lambda device="cpu": 400 * 2**20)  # 400 MiB free
    content = torch.rand(1, 3, 600, 800)
    with pytest.raises(MemoryError, match="use a long edge of at most"):
        coarse_to_fine(content, pair[1], (200, 800), network=vgg, progress=False)
    assert passes == []  # not even the small pass ran


def test_coarse_to_fine_takes_the_recipe_and_balances_for_the_final_size(pair, small_run):
    """recipe="quick": the first pass starts from the photo, beta is the quick balance of the final size."""
    content, style = pair  # 40x48: the final long edge is 48 px
    result = coarse_to_fine(content, style, (24, 48), (1, 1), recipe="quick", **small_run)
    assert result.settings["init"] == "content" and result.settings["recipe"] == "quick"
    assert result.settings["beta"] == pytest.approx(1.0 / (QUICK_FACTOR * balanced_ratio(48)))  # raw Caffe: (1, 1)
    paper = coarse_to_fine(content, style, (24, 48), (1, 1), **small_run)
    assert paper.settings["init"] == "noise" and paper.settings["recipe"] == "paper"
    assert paper.settings["beta"] == pytest.approx(1.0 / balanced_ratio(48))
    plain = coarse_to_fine(content, style, (24, 48), (1, 1), extras=(), **small_run)
    assert "tv" in paper.history and "tv" not in plain.history  # extras reach every pass
