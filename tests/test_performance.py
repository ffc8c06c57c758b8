"""The fast paths of ``optimize.py`` give the same answers as the plain ones (CPU, small sizes).

Speed is measured by ``benchmarks/bench.py``, not here: these tests only check
that each shortcut (bf16 autocast, channels_last, batching, coarse-to-fine,
keeping CPU memory between steps) does not change what is computed beyond
rounding, and that the memory setting is undone.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

from nst_helpers import STYLE_LAYERS, optimize, transfer
from nst_helpers.optimize import Options, _keep_cpu_memory, _prepare_network, optimize_image, transfer_batch


@pytest.fixture(scope="module")
def vgg():
    """A private random-weight network: these tests change its memory layout."""
    from nst_helpers import load_vgg19

    return load_vgg19("random", pooling="avg", device="cpu")


@pytest.fixture
def pair(smooth_image):
    """A 40x48 'photo' and a 32x32 'painting' with different statistics."""
    g = torch.Generator().manual_seed(1)
    style = (torch.rand(1, 3, 32, 32, generator=g) * 0.6 + smooth_image[..., :32, :32] * 0.4).clamp(0, 1)
    return smooth_image, style


def test_channels_last_gives_the_same_features(vgg, smooth_image):
    layers = ["relu1_1", "relu3_1", "relu5_1"]
    plain = vgg(smooth_image, layers)
    fast = copy.deepcopy(vgg).to(memory_format=torch.channels_last)
    nhwc = fast(smooth_image.contiguous(memory_format=torch.channels_last), layers)
    assert nhwc["relu1_1"].is_contiguous(memory_format=torch.channels_last)
    for layer in layers:
        torch.testing.assert_close(nhwc[layer], plain[layer], rtol=1e-4, atol=1e-5)


def test_prepare_network_sets_and_restores_the_layout(vgg):
    assert _prepare_network(vgg, Options(channels_last=True, extractor=vgg)) is True
    assert vgg.conv("conv2_1").weight.is_contiguous(memory_format=torch.channels_last)
    assert _prepare_network(vgg, Options(channels_last=False, extractor=vgg)) is False
    assert vgg.conv("conv2_1").weight.is_contiguous()
    assert _prepare_network(vgg, Options(extractor=vgg)) is True  # the default on CPU and CUDA: NHWC
    assert vgg.conv("conv2_1").weight.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_transfer_matches_nchw(vgg, pair):
    content, style = pair
    kw = dict(alpha=1.0, beta=1e2, steps=3, optimizer="adam", extractor=vgg, progress=False)
    plain = transfer(content, style, channels_last=False, **kw)
    fast = transfer(content, style, channels_last=True, **kw)
    torch.testing.assert_close(fast.history["total"], plain.history["total"], rtol=1e-3, atol=0)


def test_bf16_autocast_loss_is_close_to_fp32(caffe_vgg, pair):
    """bf16 features with fp32 Grams and losses: the same optimisation to within a few %."""
    content, style = pair
    # Adam: its path is smooth in the loss, so it shows the precision, not L-BFGS's line-search branching.
    kw = dict(alpha=1.0, beta=1e2, steps=15, optimizer="adam", extractor=caffe_vgg, progress=False)
    fp32 = transfer(content, style, precision="fp32", **kw)
    bf16 = transfer(content, style, precision="bf16", **kw)
    assert bf16.loss == pytest.approx(fp32.loss, rel=0.05)
    assert bf16.history["total"][0] == pytest.approx(fp32.history["total"][0], rel=0.02)


def test_bf16_objective_keeps_losses_in_fp32(caffe_vgg, pair):
    content, style = pair
    result = transfer(content, style, precision="bf16", steps=2, extractor=caffe_vgg, progress=False)
    assert result.image.dtype == torch.float32
    assert all(isinstance(v, float) for v in result.history["total"])


def test_batched_adam_equals_runs_one_by_one(vgg, pair):
    content, style = pair
    runs = [
        {"alpha": 1.0, "beta": 1e2},
        {"alpha": 1e-2, "beta": 1.0, "style_layers": STYLE_LAYERS[:2]},
        {"alpha": 1.0, "beta": 10.0, "style_layers": ["relu1_1", "relu3_1"], "layer_weights": {"relu1_1": 0.9, "relu3_1": 0.1}},
        {"alpha": 1.0, "beta": 1e2, "style_layers": []},  # content only, beside runs with style layers
    ]
    kw = dict(steps=4, optimizer="adam", extractor=vgg, progress=False, seed=3)
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
    kw = dict(steps=2, optimizer="adam", extractor=vgg, progress=False)
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


def test_per_image_losses_match_a_scalar_objective(pair):
    """optimize_image with (B,) losses: each image is scaled and tracked on its own."""
    target = torch.full((2, 3, 8, 8), 0.3)

    def objective(x):
        per = 0.5 * (x - target).pow(2).flatten(1).sum(1) * torch.tensor([1.0, 100.0])
        return per, {"content": per, "style": torch.zeros_like(per)}

    init = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)).expand(2, -1, -1, -1)
    results = optimize_image(objective, init, Options(steps=30, optimizer="adam", lr=0.05, progress=False))
    assert isinstance(results, list) and len(results) == 2
    for result in results:
        assert len(result.history["total"]) == 30
        assert result.history["total"][-1] < 0.5 * result.history["total"][0]
    # The same path despite the 100x weight: each image's loss is scaled by its own start.
    torch.testing.assert_close(results[0].image, results[1].image)
    assert results[1].history["total"][-1] == pytest.approx(100 * results[0].history["total"][-1], rel=1e-5)


def test_coarse_to_fine_output_and_progress(vgg, pair):
    content, style = pair  # 40x48: passes at 24x20 -> 48x40 px
    kw = dict(alpha=1.0, beta=1e2, extractor=vgg, progress=False)
    result = transfer(content, style, scales=(24, 48), steps=12, **kw)
    assert result.image.shape == content.shape
    assert result.settings["scales"] == [24, 48] and result.settings["scale_steps"] == [6, 6]
    assert result.steps == 12 and len(result.history["total"]) == 12
    fine = result.history["total"][6:]
    assert fine[-1] < fine[0]  # the fine pass improves on its upsampled start
    assert result.best_step > 6 and result.loss == min(fine)
    assert 0 <= result.image.min() and result.image.max() <= 1 and result.image.std() > 0.01


def test_coarse_to_fine_explicit_steps_and_errors(vgg, pair):
    content, style = pair
    result = transfer(content, style, scales=(24, 48), scale_steps=(3, 2), extractor=vgg, progress=False)
    assert result.settings["scale_steps"] == [3, 2] and result.steps == 5
    with pytest.raises(ValueError, match="increasing"):
        transfer(content, style, scales=(48, 24), extractor=vgg, progress=False)
    with pytest.raises(ValueError, match="one positive count per scale"):
        transfer(content, style, scales=(24, 48), scale_steps=(3,), extractor=vgg, progress=False)


def test_coarse_to_fine_keeps_the_final_balance_at_every_pass(vgg, pair, monkeypatch):
    # L_content sums over positions and L_style (eq. 4) does not: a pass with a quarter of the
    # positions needs a quarter of beta to solve the same problem as the final size.
    passes = []
    real_run = optimize._run

    def spy(content, style, content_layers, style_layers, alpha, beta, *args, **kwargs):
        passes.append((tuple(content.shape[-2:]), alpha, beta))
        return real_run(content, style, content_layers, style_layers, alpha, beta, *args, **kwargs)

    monkeypatch.setattr(optimize, "_run", spy)
    content, style = pair  # 40x48
    transfer(content, style, alpha=1.0, beta=1e2, scales=(24, 48), steps=4, extractor=vgg, progress=False)
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


class _FakeLibc:
    """Records mallopt/malloc_trim calls instead of changing this process's allocator."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_cpu_memory_is_kept_during_runs_and_given_back_after(monkeypatch, pair):
    libc = _FakeLibc()
    monkeypatch.setattr(optimize, "_glibc", lambda: libc)
    keep = [("mallopt", -4, 0), ("mallopt", -1, 2**31 - 1)]  # M_MMAP_MAX = 0, M_TRIM_THRESHOLD = 2 GiB
    # mmap allowed again above 32 MiB, trim above 64 MiB (where glibc's sliding thresholds go), memory back
    restore = [("mallopt", -4, 65536), ("mallopt", -3, 32 * 2**20), ("mallopt", -1, 64 * 2**20), ("malloc_trim", 0)]
    with _keep_cpu_memory():
        assert libc.calls == keep
        with _keep_cpu_memory():  # nested (or a second thread): no change until the last one ends
            pass
        assert libc.calls == keep
    assert libc.calls == keep + restore
    libc.calls.clear()
    with pytest.raises(KeyError), _keep_cpu_memory():
        raise KeyError("an error inside the run")
    assert libc.calls == keep + restore  # restored on errors too
    libc.calls.clear()
    with _keep_cpu_memory(active=False):  # off the CPU: untouched
        pass
    assert libc.calls == []
    content, style = pair
    transfer(content, style, steps=2, optimizer="adam", weights="random", progress=False)
    assert libc.calls == keep + restore  # the engine uses it around a CPU run


def _resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(optimize._glibc() is None, reason="glibc only (and not with the user's MALLOC_* settings)")
def test_freed_memory_stays_during_a_run_and_goes_back_after():
    # The real allocator: a freed 256 MiB block is unmapped at once outside a run, kept inside one
    # (the next step reuses it without page faults), and handed back when the run ends.
    def touch_and_free() -> float:
        block = torch.ones(64 * 2**20)  # 256 MiB, written: resident
        del block
        return _resident_mib()

    base = _resident_mib()
    assert touch_and_free() < base + 64  # outside a run: given back at once
    with _keep_cpu_memory():
        assert touch_and_free() > base + 192  # kept for the next step
    assert _resident_mib() < base + 64  # given back at the end
    assert touch_and_free() < base + 64  # and large blocks are unmapped again after the run


def test_batched_adam_with_smoothing_equals_runs_one_by_one(vgg, pair):
    content, style = pair
    runs = [{"alpha": 1.0, "beta": 1e2}, {"alpha": 1e-2, "beta": 1.0, "style_layers": STYLE_LAYERS[:2]}]
    kw = dict(steps=3, optimizer="adam", extractor=vgg, progress=False, seed=3, tv_weight=0.5)
    batched = transfer_batch(content, style, runs, **kw)
    alone = [transfer(content, style, **run, **kw) for run in runs]
    for b, a in zip(batched, alone):
        assert b.settings["tv_weight"] == a.settings["tv_weight"] == 0.5
        for key in ("total", "content", "style", "tv"):
            torch.testing.assert_close(b.history[key], a.history[key], rtol=1e-4, atol=1e-6)
        assert a.history["tv"][0] > 0
