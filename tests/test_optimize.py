"""Tests for nst_helpers.optimize: each task reduces its loss; nothing is lost on failure."""

from __future__ import annotations

import math

import pytest
import torch

from nst_helpers import Options, Result, optimize_image, reconstruct_content, synthesize_texture, transfer


@pytest.fixture
def quick(caffe_vgg):
    """Options for a small, fast run with the real network."""
    return {"extractor": caffe_vgg, "progress": False}


def test_content_reconstruction_reduces_its_loss(smooth_image, quick):
    result = reconstruct_content(smooth_image, "relu2_1", steps=15, **quick)
    assert isinstance(result, Result) and result.stopped == "done" and result.steps == 15
    assert result.history["total"][-1] < 0.2 * result.history["total"][0]
    assert result.image.shape == smooth_image.shape and 0 <= result.image.min() and result.image.max() <= 1
    assert result.settings["task"] == "reconstruct_content" and result.settings["layer"] == "relu2_1"
    assert result.loss == min(result.history["total"])


def test_texture_synthesis_reduces_its_loss(smooth_image, quick):
    result = synthesize_texture(smooth_image, ["relu1_1", "relu2_1"], size=(32, 32), steps=15, **quick)
    assert result.image.shape == (1, 3, 32, 32)
    assert result.history["style"][-1] < 0.2 * result.history["style"][0]
    assert all(c == 0 for c in result.history["content"])


def test_transfer_reduces_its_loss_and_records_parts(smooth_image, quick):
    style = smooth_image.flip(-1).roll(7, dims=-2)
    result = transfer(smooth_image, style, alpha=1, beta=1e3, steps=12, **quick)
    h = result.history
    assert len(h["total"]) == 12 and h["total"][-1] < h["total"][0]
    for t, c, s, tv in zip(h["total"], h["content"], h["style"], h["tv"]):
        assert t == pytest.approx(c + s + tv, rel=1e-5)
    assert result.settings["alpha"] == 1 and result.settings["beta"] == 1e3
    assert result.settings["content_layer"] == "relu4_2"


def test_adam_also_reduces_the_loss(smooth_image, quick):
    result = reconstruct_content(smooth_image, "relu1_1", steps=20, optimizer="adam", lr=0.05, **quick)
    assert result.history["total"][-1] < 0.5 * result.history["total"][0]


def test_style_image_of_another_size_and_aspect(smooth_image, quick):
    style = torch.rand(1, 3, 70, 30, generator=torch.Generator().manual_seed(1))
    result = transfer(smooth_image, style, steps=3, **quick)
    assert result.image.shape == smooth_image.shape


def test_same_seed_same_result(smooth_image, quick):
    a = reconstruct_content(smooth_image, "relu3_1", steps=4, seed=5, **quick)
    b = reconstruct_content(smooth_image, "relu3_1", steps=4, seed=5, **quick)
    c = reconstruct_content(smooth_image, "relu3_1", steps=4, seed=6, **quick)
    torch.testing.assert_close(a.image, b.image)
    assert not torch.equal(a.image, c.image)


@pytest.mark.parametrize("init", ["content", "style"])
def test_init_from_an_image(smooth_image, quick, init):
    style = smooth_image.flip(-1)
    result = transfer(smooth_image, style, beta=1e2, steps=1, init=init, **quick)
    start = smooth_image if init == "content" else style
    # the first evaluation is at the starting image
    assert result.history["total"][0] == pytest.approx(
        transfer(smooth_image, style, beta=1e2, steps=1, init=start, **quick).history["total"][0], rel=1e-5)


def test_init_noise_is_refused_for_content_images_missing(smooth_image, quick):
    with pytest.raises(ValueError, match="needs a content image"):
        synthesize_texture(smooth_image, ["relu1_1"], steps=1, init="content", **quick)


def test_lbfgs_is_independent_of_the_loss_scale():
    # The engine divides by the initial loss: a problem scaled by 1e-12 or 1e12 follows the same path.
    target = torch.linspace(-1, 1, 48).view(1, 3, 4, 4)

    def make(scale):
        def objective(x):
            value = scale * ((x - target) ** 4 + (x - target) ** 2).sum()
            return value, {"content": value, "style": torch.zeros(())}
        return objective

    init = torch.zeros(1, 3, 4, 4)
    runs = [optimize_image(make(s), init, Options(steps=30, progress=False)) for s in (1e-12, 1.0, 1e12)]
    for run in runs:
        assert run.stopped == "done" and run.steps == 30
        torch.testing.assert_close(run.image, runs[1].image, atol=1e-4, rtol=0)
    assert runs[1].loss < 1e-6 * runs[1].history["total"][0]


def test_keyboard_interrupt_returns_the_best_image(smooth_image, quick):
    seen = {}

    def callback(progress):
        seen["step"] = progress.step
        if progress.step >= 6:
            raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="interrupted after 6 of 50 steps"):
        result = reconstruct_content(smooth_image, "relu1_1", steps=50, callback=callback, every=3, **quick)
    assert result.stopped == "interrupted" and result.steps == 6
    assert result.loss == min(result.history["total"]) < result.history["total"][0]


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_callback_sees_progress_and_can_stop(smooth_image, quick, optimizer):
    calls = []

    def callback(progress):
        calls.append((progress.step, progress.losses["total"], progress.image.shape))
        return progress.step >= 4

    result = reconstruct_content(smooth_image, "relu1_1", steps=40, callback=callback, every=2,
                                 optimizer=optimizer, **quick)
    assert result.stopped == "stopped" and result.steps == 4
    assert [c[0] for c in calls] == [2, 4] and calls[0][2] == smooth_image.shape


def test_nan_loss_stops_with_the_best_image_and_a_warning():
    target = torch.full((1, 3, 4, 4), 0.5)
    count = {"n": 0}

    def objective(x):
        count["n"] += 1
        value = ((x - target) ** 2).sum()
        if count["n"] >= 5:
            value = value * float("nan")
        return value, {"content": value, "style": torch.zeros(())}

    init = torch.zeros(1, 3, 4, 4)
    with pytest.warns(RuntimeWarning, match="diverged"):
        result = optimize_image(objective, init, Options(steps=50, optimizer="adam", lr=0.1, every=1, progress=False))
    assert result.stopped == "diverged"
    assert math.isfinite(result.loss) and result.best_step == 4
    assert (result.image - target).abs().max() < 0.5  # moved towards the target, not NaN
    assert torch.isfinite(result.image).all()


def test_out_of_memory_suggests_a_smaller_size(smooth_image):
    def objective(x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(MemoryError, match="Use a smaller size"):
        optimize_image(objective, smooth_image, Options(steps=3, progress=False))


def test_bad_options_are_refused(smooth_image, quick):
    with pytest.raises(ValueError, match="non-negative"):
        transfer(smooth_image, smooth_image, alpha=1, beta=-1, steps=1, **quick)
    with pytest.raises(ValueError, match="non-negative"):
        transfer(smooth_image, smooth_image, layer_weights={"relu1_1": -1.0}, steps=1, **quick)
    with pytest.raises(TypeError, match="Unknown option.*stepz"):
        transfer(smooth_image, smooth_image, stepz=3, **quick)
    with pytest.raises(ValueError, match="Unknown optimizer 'sgd'"):
        transfer(smooth_image, smooth_image, optimizer="sgd", **quick)
    with pytest.raises(ValueError, match="Unknown layer 'conv9_9'"):
        transfer(smooth_image, smooth_image, content_layer="conv9_9", **quick)
    with pytest.raises(ValueError, match="too small for relu5_1"):
        transfer(torch.rand(1, 3, 10, 10), smooth_image, steps=1, **quick)
    with pytest.raises(TypeError, match="load_image"):
        transfer("tubingen", smooth_image, **quick)


def test_conv_and_relu_layers_are_both_accepted(smooth_image, quick):
    pre = reconstruct_content(smooth_image, "conv1_1", steps=3, **quick)
    post = reconstruct_content(smooth_image, "relu1_1", steps=3, **quick)
    assert pre.settings["layer"] == "conv1_1" and post.settings["layer"] == "relu1_1"


def test_a_bound_method_holding_a_lock_can_be_the_callback(smooth_image, quick):
    import threading

    class Watcher:
        def __init__(self):
            self.lock = threading.Lock()
            self.steps = []

        def __call__(self, progress):
            with self.lock:
                self.steps.append(progress.step)

        def on_progress(self, progress):
            self(progress)

    watcher = Watcher()
    result = reconstruct_content(smooth_image, "relu1_1", steps=4, every=2, callback=watcher.on_progress, **quick)
    assert watcher.steps == [2, 4] and result.settings["steps"] == 4


def test_transfer_defaults_balance_for_the_size_and_add_the_smoothness_term(smooth_image, quick):
    from nst_helpers.balance import DEFAULT_TV_WEIGHT, balanced_ratio, quick_ratio
    from nst_helpers.losses import total_variation

    style = smooth_image.flip(-1)
    chosen = transfer(smooth_image, style, steps=1, **quick)  # 48 px: below 256 px, from the photo, more content
    assert chosen.settings["init"] == "content"
    assert chosen.settings["beta"] == pytest.approx(1 / quick_ratio(48))  # the image's long edge
    result = transfer(smooth_image, style, steps=2, init=smooth_image, **quick)  # an image given: the size rule
    assert result.settings["beta"] == pytest.approx(1 / balanced_ratio(48))
    assert result.settings["tv_weight"] == DEFAULT_TV_WEIGHT
    # the first evaluation is at the start image: its tv part is alpha * tv_weight * L_tv there
    assert result.history["tv"][0] == pytest.approx(DEFAULT_TV_WEIGHT * float(total_variation(smooth_image)), rel=1e-5)
    paper = transfer(smooth_image, style, steps=2, init=smooth_image, tv_weight=0, **quick)
    assert paper.history["tv"] == [0.0, 0.0]
    h = paper.history
    assert h["total"][0] == pytest.approx(h["content"][0] + h["style"][0], rel=1e-6)  # eq. 7 alone


def test_tv_weight_is_per_unit_of_alpha(smooth_image, quick):
    """Scaling alpha and beta together scales every part, TV included: only the ratios matter."""
    style = smooth_image.flip(-1)
    one = transfer(smooth_image, style, alpha=1.0, beta=1e3, tv_weight=10.0, steps=1, init=smooth_image, **quick)
    ten = transfer(smooth_image, style, alpha=10.0, beta=1e4, tv_weight=10.0, steps=1, init=smooth_image, **quick)
    for part in ("total", "content", "style", "tv"):
        assert ten.history[part][0] == pytest.approx(10 * one.history[part][0], rel=1e-5)
    with pytest.raises(ValueError, match="tv_weight"):
        transfer(smooth_image, style, tv_weight=-1.0, steps=1, **quick)


def test_a_normalised_extractor_gets_the_normalised_smoothing(smooth_image):
    from nst_helpers import load_vgg19
    from nst_helpers.balance import NORMALISED_TV_WEIGHT

    vgg = load_vgg19("caffe", pooling="avg", device="cpu", normalize=True)
    assert vgg.normalized
    result = transfer(smooth_image, smooth_image.flip(-1), steps=1, extractor=vgg, progress=False)
    # measured on these images (objective.term_scales): the normalised content term is ~1e-5 of the raw one's
    assert 0.1 * NORMALISED_TV_WEIGHT < result.settings["tv_weight"] < 10 * NORMALISED_TV_WEIGHT


def test_progress_bar_is_off_with_nst_progress_0(monkeypatch):
    from nst_helpers.optimize import progress_bar

    monkeypatch.delenv("NST_PROGRESS", raising=False)
    assert not progress_bar(3, "run").disable
    assert progress_bar(3, "run", enabled=False).disable
    monkeypatch.setenv("NST_PROGRESS", "0")  # what `make book` sets: no live bars in a page read later
    assert progress_bar(3, "run").disable


def test_per_image_losses_match_a_scalar_objective():
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


def test_divergence_is_measured_from_the_first_evaluation_with_adam():
    """Adam checks every ``every`` evaluations, but against the first loss, as L-BFGS (bug: against evaluation 10)."""
    calls = []

    def objective(x):  # 1 at the first evaluation, then 1e7: a millionfold growth
        calls.append(1)
        value = 1.0 if len(calls) == 1 else 1e7
        total = (x * 0).sum() + value
        return total, {"content": total, "style": torch.zeros(())}

    with pytest.warns(RuntimeWarning, match="diverged"):
        result = optimize_image(objective, torch.zeros(1, 3, 4, 4), Options(steps=30, optimizer="adam", progress=False))
    assert result.stopped == "diverged" and result.steps == 10  # caught at the first check


def test_a_stopped_run_warns_at_the_users_call(smooth_image):
    """The warning names the line that called the package, not a line inside it."""
    def interrupt(callback_progress):
        raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="interrupted") as record:
        transfer(smooth_image, smooth_image.flip(-1), steps=3, weights="random", callback=interrupt, every=1,
                 progress=False)
    assert record[0].filename == __file__


def test_a_run_that_cannot_fit_is_refused_before_it_starts(smooth_image, monkeypatch):
    from nst_helpers import memory

    monkeypatch.setattr(memory, "available", lambda device="cpu": 100 * 2**20)  # 100 MiB free
    with pytest.raises(MemoryError, match="not even a 16 px run fits"):
        transfer(smooth_image, smooth_image.flip(-1), steps=2, weights="random", progress=False)
    monkeypatch.setattr(memory, "available", lambda device="cpu": 400 * 2**20)  # 400 MiB: small runs only
    with pytest.raises(MemoryError, match="use a long edge of at most"):
        transfer(torch.rand(1, 3, 600, 800), smooth_image, steps=2, weights="random", progress=False)


@pytest.mark.parametrize("statistic", ["gram", "mean_std", "mmd_linear", "sliced_w2"])
def test_every_style_statistic_runs_through_the_engine(smooth_image, quick, statistic):
    result = synthesize_texture(smooth_image, ["relu1_1", "relu2_1"], size=(32, 32), steps=15,
                                style_statistic=statistic, **quick)
    assert result.history["style"][-1] < 0.5 * result.history["style"][0]
    assert result.settings["style_statistic"] == statistic


def test_another_statistic_is_weighed_in_the_grams_units(smooth_image, quick):
    """At the start image the mean/std style term equals the Gram's: alpha/beta keeps its meaning."""
    style = smooth_image.flip(-1).roll(7, dims=-2)
    kwargs = {"alpha": 1.0, "beta": 1e3, "steps": 1, "init": "content", **quick}
    gram = transfer(smooth_image, style, **kwargs)
    other = transfer(smooth_image, style, style_statistic="mean_std", **kwargs)
    assert other.history["style"][0] == pytest.approx(gram.history["style"][0], rel=1e-4)
    assert other.settings["style_scale"] > 0 and "style_scale" not in gram.settings


def test_an_unknown_style_statistic_is_refused(smooth_image, quick):
    with pytest.raises(ValueError, match="unknown style statistic 'gatys'; choose one of"):
        synthesize_texture(smooth_image, steps=1, style_statistic="gatys", **quick)


def test_content_colors_painting_matches_the_photo_recoloured_to_the_painting(pair, quick):
    from nst_helpers.color import match_colors

    photo, painting = pair
    recoloured = match_colors(photo, painting).clamp(0, 1)
    kw = dict(alpha=1.0, beta=0.0, steps=1, tv_weight=0.0, **quick)
    # The content term's target P^l is the recoloured photo's: zero there, not at the photo itself.
    at_target = transfer(photo, painting, content_colors="painting", init=recoloured, **kw)
    at_photo = transfer(photo, painting, content_colors="painting", init=photo, **kw)
    paper = transfer(photo, painting, init=photo, **kw)
    assert at_target.history["content"][0] == 0 and paper.history["content"][0] == 0
    assert at_photo.history["content"][0] > 0 and at_photo.settings["content_colors"] == "painting"


def test_flat_smoothing_multiplies_the_smoothing_where_the_photo_is_flat(pair, quick):
    photo, painting = pair
    flat_photo = torch.full_like(photo, 0.5)  # flat everywhere: the weight is 1 + k on every pixel
    start = torch.rand_like(photo)
    kw = dict(alpha=1.0, beta=1.0, steps=1, tv_weight=0.1, init=start, **quick)
    plain = transfer(flat_photo, painting, **kw)
    more = transfer(flat_photo, painting, flat_smoothing=4.0, **kw)
    assert more.history["tv"][0] == pytest.approx(5 * plain.history["tv"][0], rel=1e-5)
    assert more.history["content"][0] == plain.history["content"][0]
    edgy = transfer(photo, painting, flat_smoothing=4.0, **kw)  # smooth_image has no flat region at reach 9
    assert edgy.history["tv"][0] == pytest.approx(transfer(photo, painting, **kw).history["tv"][0], rel=1e-5)


def test_content_colors_and_flat_smoothing_refuse_what_they_cannot_do(pair, quick):
    photo, painting = pair
    with pytest.raises(ValueError, match="Unknown content_colors 'grey'"):
        transfer(photo, painting, content_colors="grey", **quick)
    with pytest.raises(ValueError, match="give one painting"):
        transfer(photo, [painting, painting], content_colors="painting", **quick)
    with pytest.raises(ValueError, match="no preserve_color"):
        transfer(photo, painting, content_colors="painting", preserve_color="luminance", **quick)
    with pytest.raises(ValueError, match="needs tv_weight > 0"):
        transfer(photo, painting, flat_smoothing=3.0, tv_weight=0.0, **quick)
    with pytest.raises(ValueError, match="flat_smoothing must be finite and non-negative"):
        transfer(photo, painting, flat_smoothing=-1.0, **quick)


def test_settings_that_cannot_work_are_refused_at_the_call(smooth_image, pair):
    """lr=0 is not 'the default'; a texture needs layers; layer_weights must weigh every style layer."""
    with pytest.raises(ValueError, match="lr must be positive"):
        Options(lr=0)
    with pytest.raises(ValueError, match="layers must be a list of style layers"):
        synthesize_texture(smooth_image, layers=[], steps=1, weights="random", device="cpu", progress=False)
    photo, painting = pair
    with pytest.raises(ValueError, match=r"no weight for \['relu2_1'\]"):
        transfer(photo, painting, style_layers=["relu1_1", "relu2_1"], layer_weights={"relu1_1": 1.0}, steps=1,
                 weights="random", device="cpu", progress=False)


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalised"])
def test_the_default_balance_stylises_with_the_raw_and_the_paper_network(data_dir, normalize):
    """The default alpha/beta follows the network: the paper's normalised one no longer returns the photo."""
    from nst_helpers import load_image

    photo, painting = load_image("tubingen", 64), load_image("starry_night", 64)
    result = transfer(photo, painting, steps=40, normalize=normalize, device="cpu", progress=False)
    style = result.history["style"]
    assert style[result.best_step - 1] < 0.3 * style[0], "the style loss must fall well below its start"
    assert (result.image - photo).abs().mean() > 0.05, "the picture must differ from the photo"
