"""Tests for nst_helpers.runs: batches equal runs one by one, coarse-to-fine keeps the final balance."""

from __future__ import annotations

import pytest
import torch

from nst_helpers import STYLE_LAYERS, coarse_to_fine, runs, transfer, transfer_batch


@pytest.fixture
def vgg(random_vgg):
    """The shared random-weight network: runs never change a network they are given."""
    return random_vgg


def test_batched_adam_equals_runs_one_by_one(vgg, pair):
    content, style = pair
    runs = [
        {"alpha": 1.0, "beta": 1e2},
        {"alpha": 1e-2, "beta": 1.0, "style_layers": STYLE_LAYERS[:2]},
        {"alpha": 1.0, "beta": 10.0, "style_layers": ["relu1_1", "relu3_1"], "layer_weights": {"relu1_1": 0.9, "relu3_1": 0.1}},
        {"alpha": 1.0, "beta": 1e2, "style_layers": []},  # content only, beside runs with style layers
    ]
    kw = dict(steps=4, optimizer="adam", init="noise", extractor=vgg, progress=False, seed=3)
    batched = transfer_batch(content, style, runs, **kw)
    alone = [transfer(content, style, **run, **kw) for run in runs]
    assert len(batched) == len(runs)
    for b, a in zip(batched, alone):
        assert b.image.shape == a.image.shape == content.shape
        assert b.best_step == a.best_step
        for key in ("total", "content", "style"):
            torch.testing.assert_close(b.history[key], a.history[key], rtol=1e-4, atol=1e-6)
        # Pixels whose gradient is ~0 get Adam steps of +-lr from rounding alone: compare on average.
        assert (b.image - a.image).abs().mean() < 1e-3
        assert b.settings["batched"] == len(runs)


def test_batched_in_chunks_equals_one_batch(vgg, pair):
    content, style = pair
    runs = [{"alpha": a, "beta": 1.0} for a in (1e-3, 1e-2, 1e-1)]
    # tv_weight 0: Adam's first steps are +-lr wherever a gradient is ~0, so the smoothing term's rounding at
    # another batch size moves a few pixels a whole step (the batched tv term is checked above, per run)
    kw = dict(steps=2, optimizer="adam", extractor=vgg, progress=False, tv_weight=0.0)
    whole = transfer_batch(content, style, runs, **kw)
    chunks = transfer_batch(content, style, runs, batch_size=2, **kw)
    for w, c in zip(whole, chunks):
        torch.testing.assert_close(w.history["total"], c.history["total"], rtol=1e-4, atol=0)


def test_lbfgs_batch_runs_one_by_one(vgg, pair):
    content, style = pair
    runs = [{"alpha": 1.0, "beta": 1e2}, {"alpha": 1e-2, "beta": 1.0}]
    kw = dict(steps=2, extractor=vgg, progress=False)
    batched = transfer_batch(content, style, runs, **kw)
    alone = [transfer(content, style, **run, **kw) for run in runs]
    for b, a in zip(batched, alone):
        assert b.history["total"] == a.history["total"]
        assert "batched" not in b.settings


def test_batch_rejects_unknown_settings(vgg, pair):
    with pytest.raises(ValueError, match="Unknown run setting"):
        transfer_batch(*pair, [{"gamma": 1.0}], optimizer="adam", extractor=vgg)


def test_batched_adam_with_smoothing_equals_runs_one_by_one(vgg, pair):
    content, style = pair
    runs = [{"alpha": 1.0, "beta": 1e2}, {"alpha": 1e-2, "beta": 1.0, "style_layers": STYLE_LAYERS[:2]}]
    kw = dict(steps=3, optimizer="adam", init="noise", extractor=vgg, progress=False, seed=3, tv_weight=0.5)
    batched = transfer_batch(content, style, runs, **kw)
    alone = [transfer(content, style, **run, **kw) for run in runs]
    for b, a in zip(batched, alone):
        assert b.settings["tv_weight"] == a.settings["tv_weight"] == 0.5
        for key in ("total", "content", "style", "tv"):
            torch.testing.assert_close(b.history[key], a.history[key], rtol=1e-4, atol=1e-6)
        assert a.history["tv"][0] > 0


def test_coarse_to_fine_output_and_progress(vgg, pair):
    content, style = pair  # 40x48: passes at 24x20 -> 48x40 px
    kw = dict(alpha=1.0, beta=1e2, extractor=vgg, progress=False)
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
    result = coarse_to_fine(content, style, (24, 48), (3, 2), extractor=vgg, progress=False)
    assert result.settings["scale_steps"] == [3, 2] and result.steps == 5
    with pytest.raises(ValueError, match="increasing"):
        coarse_to_fine(content, style, (48, 24), extractor=vgg, progress=False)
    with pytest.raises(ValueError, match="one positive count per scale"):
        coarse_to_fine(content, style, (24, 48), (3,), extractor=vgg, progress=False)


def test_coarse_to_fine_keeps_the_final_balance_at_every_pass(vgg, pair, monkeypatch):
    # L_content sums over positions and L_style (eq. 4) does not: a pass with a quarter of the
    # positions needs a quarter of beta to solve the same problem as the final size.
    passes = []

    def spy(content, style, **kwargs):  # each pass is a public transfer call
        passes.append((tuple(content.shape[-2:]), kwargs["alpha"], kwargs["beta"]))
        return transfer(content, style, **kwargs)

    monkeypatch.setattr(runs, "transfer", spy)
    content, style = pair  # 40x48
    coarse_to_fine(content, style, (24, 48), alpha=1.0, beta=1e2, steps=4, extractor=vgg, progress=False)
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
    result = coarse_to_fine(content, style, (24, 48), alpha=1.0, beta=1e2, steps=12, init="noise", extractor=vgg,
                            progress=False)
    settings = result.settings
    assert settings["init"] == "noise" and settings["steps"] == 12 and settings["beta"] == 1e2
    assert settings["scales"] == [24, 48] and settings["size"] == [40, 48]
    again = coarse_to_fine(content, style, settings["scales"], settings["scale_steps"], alpha=settings["alpha"],
                           beta=settings["beta"], init=settings["init"], extractor=vgg, progress=False)
    torch.testing.assert_close(again.image, result.image)


def test_batch_stopped_before_its_first_evaluation_returns_one_result_per_run(vgg, pair, monkeypatch):
    """An Adam batch interrupted at once still returns a list (bug: one Result, then a failed assert)."""
    content, style = pair

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    runs_ = [{"alpha": 1.0, "beta": 1e2}, {"alpha": 1e-2, "beta": 1.0}]
    targets = vgg(content, ["relu1_1"])  # the network works before the patch (targets are computed first)
    assert targets
    original = vgg.forward
    calls = []

    def forward_then_interrupt(image, layers):  # targets (no grad) pass; the first evaluation is interrupted
        calls.append(1)
        if torch.is_grad_enabled():
            interrupt()
        return original(image, layers)

    monkeypatch.setattr(vgg, "forward", forward_then_interrupt)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        results = transfer_batch(content, style, runs_, steps=3, optimizer="adam", extractor=vgg, progress=False)
    assert isinstance(results, list) and len(results) == 2
    for result in results:
        assert result.stopped == "interrupted" and result.steps == 0 and result.history["total"] == []
        assert result.image.shape == content.shape


def test_coarse_to_fine_checks_the_final_size_before_the_first_pass(vgg, pair, monkeypatch):
    from nst_helpers import memory

    passes = []
    monkeypatch.setattr(runs, "transfer", lambda *a, **k: passes.append(1))
    monkeypatch.setattr(memory, "available", lambda device="cpu": 400 * 2**20)  # 400 MiB free
    content = torch.rand(1, 3, 600, 800)
    with pytest.raises(MemoryError, match="use a long edge of at most"):
        coarse_to_fine(content, pair[1], (200, 800), extractor=vgg, progress=False)
    assert passes == []  # not even the small pass ran


def test_a_batch_that_cannot_fit_is_refused_before_it_starts(vgg, pair, monkeypatch):
    """The Adam batch path checks the whole batch's memory, as transfer does for one run."""
    from nst_helpers import memory

    monkeypatch.setattr(memory, "available", lambda device="cpu": 400 * 2**20)  # 400 MiB free
    content = torch.rand(1, 3, 600, 800)
    with pytest.raises(MemoryError, match="use a long edge of at most"):
        transfer_batch(content, pair[1], [{"alpha": 1.0}, {"alpha": 1e-2}], steps=2, optimizer="adam",
                       extractor=vgg, progress=False)
