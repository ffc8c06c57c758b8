"""The exercises' self-checks: each passes a right answer, fails a wrong one, and waits on None.

The worked solutions (``solutions/``) run at the smoke preset in a real kernel,
assert every check, and must cover every exercise of their lesson.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import is_appendix, run_notebook

from nst_helpers import exercises as ex
from nst_helpers import load_vgg19
from nst_helpers.features import receptive_field
from nst_helpers.optimize import Result

ROOT = Path(__file__).resolve().parents[1]
LESSONS = [path for path in sorted((ROOT / "notebooks").glob("0[1-9]_*.ipynb")) if not is_appendix(path)]  # with exercises
SOLUTIONS = ROOT / "solutions"


@pytest.fixture
def features():
    """The notebook's 4x4x8 example shape: 8 maps of 16 positions, small integers."""
    return torch.randint(0, 5, (8, 16), generator=torch.Generator().manual_seed(0)).float()


@pytest.fixture(scope="module")
def tiny_vgg():
    return load_vgg19(weights="random", pooling="avg")


def result(image, content, style, alpha=1.0, beta=1.0):
    return Result(image=image, history={"total": [content + style], "content": [content], "style": [style]},
                  steps=1, seconds=0.0, settings={"alpha": alpha, "beta": beta}, best_step=1)


def test_an_unanswered_check_waits_and_a_wrong_one_says_what_to_do(capsys, features):
    assert not ex.check_gram_entry(1, features, 2, 3, None)
    assert "not answered yet" in capsys.readouterr().out
    assert not ex.check_gram_entry(1, features, 2, 3, float(features[2] @ features[3]) + 1)
    out = capsys.readouterr().out
    assert out.startswith("✗ exercise 1") and "row 2 of F by row 3" in out


def test_gram_entry_against_the_matrix_product(features):
    gram = features @ features.T
    assert ex.check_gram_entry(1, features, 2, 3, float(gram[2, 3]))
    assert ex.check_gram_entry(1, features, 4, 4, float(gram[4, 4]))
    assert not ex.check_gram_entry(1, features, 4, 4, float(gram[4, 3]))


def test_shuffling_one_map_changes_its_row_and_column_but_not_its_diagonal(features):
    order = torch.arange(15, -1, -1)  # reversed positions
    row = 3
    expected = [(i, j) for i in range(8) for j in range(8) if (i == row) != (j == row)]
    shuffled = features.clone()
    shuffled[row] = features[row, order]
    truly = {(i, j) for i in range(8) for j in range(8)
             if float(shuffled[i] @ shuffled[j]) != float(features[i] @ features[j])}
    assert truly <= set(expected)  # the closed form: nothing outside row and column 3 can change
    assert ex.check_changed_by_shuffle(2, features, row, order, sorted(truly))
    assert not ex.check_changed_by_shuffle(2, features, row, order, sorted(truly | {(row, row)}))


def test_gram_of_a_sum_has_the_two_cross_terms(features):
    other = features.flip(1)
    assert ex.check_gram_of_sum(3, features, other, features @ other.T + other @ features.T)
    assert not ex.check_gram_of_sum(3, features, other, torch.zeros(8, 8))


def test_a_constant_map_puts_the_sums_in_its_row(features):
    wider = torch.cat([features, torch.ones(1, 16)])
    gram = wider @ wider.T
    assert ex.check_constant_map(5, features, gram, 8)
    assert float(gram[8, 8]) == 16  # M
    assert not ex.check_constant_map(5, features, gram, 0)
    assert not ex.check_constant_map(5, features, features @ features.T, 8)


def test_layer_size_is_filters_times_positions():
    # relu4_2 of a 128 x 96 image: 512 filters on a 16 x 12 grid (three poolings)
    assert ex.check_layer_size(1, "relu4_2", 128, 96, 512 * 16 * 12)
    assert ex.check_layer_size(1, "pool4", 128, 96, 512 * 8 * 6)
    assert not ex.check_layer_size(1, "pool4", 128, 96, 512 * 16 * 12)


def test_receptive_fields_are_the_known_ones():
    # the standard VGG values: each 3x3 conv adds 2 steps, each 2x2 pool 1 and doubles the step
    known = {"conv1_1": 3, "relu1_2": 5, "pool1": 6, "conv2_1": 10, "pool2": 16, "relu3_1": 24, "relu4_2": 84,
             "pool4": 124, "relu5_1": 156}
    assert {layer: receptive_field(layer) for layer in known} == known
    assert ex.check_receptive_field(1, "relu3_1", 24)
    assert not ex.check_receptive_field(1, "relu3_1", 20)
    with pytest.raises(ValueError, match="conv6_1"):
        receptive_field("conv6_1")


def test_max_pooling_is_above_average_pooling():
    x = torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    high, mean = torch.nn.functional.max_pool2d(x, 2), torch.nn.functional.avg_pool2d(x, 2)
    assert ex.check_max_above_average(2, high, mean)
    assert not ex.check_max_above_average(2, mean, high)
    assert not ex.check_max_above_average(2, mean, mean)


def test_noisier_image_is_the_one_with_top_band_power():
    ramp = torch.linspace(0, 1, 32).expand(1, 3, 32, 32).contiguous()
    grainy = (ramp + 0.1 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    assert ex.check_noisier(3, {"relu1_1": ramp, "relu5_1": grainy}, "relu5_1")
    assert not ex.check_noisier(3, {"relu1_1": ramp, "relu5_1": grainy}, "relu1_1")


def test_a_longer_run_ends_no_higher():
    image = torch.zeros(1, 3, 4, 4)
    short = Result(image, {"total": [3.0, 2.0]}, 2, 0.0, {}, best_step=2)
    long = Result(image, {"total": [3.0, 2.0, 1.5, 1.0]}, 4, 0.0, {}, best_step=4)
    assert ex.check_longer_run(4, short, long)
    assert not ex.check_longer_run(4, long, short)


def test_pixel_gradient_against_autograd(tiny_vgg):
    gen = torch.Generator().manual_seed(3)
    image, photo = torch.rand(1, 3, 32, 32, generator=gen), torch.rand(1, 3, 32, 32, generator=gen)
    x = image.clone().requires_grad_(True)
    with torch.no_grad():
        target = tiny_vgg(photo, ["relu2_1"])["relu2_1"]
    (0.5 * (tiny_vgg(x, ["relu2_1"])["relu2_1"] - target).pow(2).sum()).backward()  # eq. 1 written out
    assert ex.check_pixel_gradient(5, x.grad, image, photo, tiny_vgg, "relu2_1")
    assert not ex.check_pixel_gradient(5, 2 * x.grad, image, photo, tiny_vgg, "relu2_1")
    assert not ex.check_pixel_gradient(5, x.grad[:, :1], image, photo, tiny_vgg, "relu2_1")


def test_content_share_of_the_returned_image():
    r = result(torch.zeros(1, 3, 4, 4), content=3.0, style=1.0)
    assert ex.check_content_share(3, r, 0.75)
    assert not ex.check_content_share(3, r, 0.25)


def test_a_ratio_row_trades_content_for_style():
    image = torch.zeros(1, 3, 4, 4)
    # weighted terms alpha L_c and beta L_s, with L_c falling and L_s rising as alpha/beta grows
    row = [result(image, 1e-3 * 100.0, 1.0, alpha=1e-3), result(image, 1e-2 * 30.0, 2.0, alpha=1e-2),
           result(image, 1e-1 * 5.0, 4.0, alpha=1e-1)]
    assert ex.check_ratio_row(1, row)
    flat = [result(image, 1e-3 * 100.0, 1.0, alpha=1e-3), result(image, 1e-2 * 100.0, 1.0, alpha=1e-2),
            result(image, 1e-1 * 100.0, 1.0, alpha=1e-1)]
    assert not ex.check_ratio_row(1, flat)
    assert not ex.check_ratio_row(1, row[:2])


def test_smoother_means_less_total_variation():
    gen = torch.Generator().manual_seed(4)
    images = {w: (0.5 + 0.2 / (1 + w) * torch.randn(1, 3, 16, 16, generator=gen)).clamp(0, 1) for w in (0.0, 1.0, 10.0)}
    assert ex.check_smoother(6, images)
    assert not ex.check_smoother(6, {0.0: images[10.0], 1.0: images[1.0], 10.0: images[0.0]})


def test_colour_and_closeness_measures():
    grey = torch.full((1, 3, 8, 8), 0.5)
    colour = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    assert ex.check_more_colour(4, colour, grey)
    assert not ex.check_more_colour(4, grey, colour)
    assert ex.check_closer_to_photo(3, colour * 0.9, grey, colour)
    assert not ex.check_closer_to_photo(3, grey, colour * 0.9, colour)


def test_gram_statistics_checks_on_a_texture_made_here(tiny_vgg):
    """A short synthesis with the random network: its E_l fall, and the weights steer them."""
    from nst_helpers import synthesize_texture, white_noise

    gen = torch.Generator().manual_seed(6)
    painting = torch.rand(1, 3, 32, 32, generator=gen).cumsum(-1) / 32  # a smooth, coloured "painting"
    start = white_noise(painting)
    layers = ["relu1_1", "relu2_1"]
    made = synthesize_texture(painting, layers, steps=15, init=start, network=tiny_vgg)
    assert ex.check_statistics_matched(3, made, start, painting, layers, tiny_vgg)
    assert not ex.check_statistics_matched(3, start, start, painting, layers, tiny_vgg)
    assert ex.check_low_layers_matter(1, start, made, painting, tiny_vgg)
    assert not ex.check_low_layers_matter(1, made, start, painting, tiny_vgg)


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


def test_chroma_and_colour_moment_checks():
    from nst_helpers import color

    gen = torch.Generator().manual_seed(7)
    photo, other = 0.2 + 0.6 * torch.rand(1, 3, 8, 8, generator=gen), 0.2 + 0.6 * torch.rand(1, 3, 8, 8, generator=gen)
    kept = color.with_chroma_of(other, photo)  # other's luminance, photo's chroma
    assert ex.check_chroma_kept(1, kept, photo)
    assert not ex.check_chroma_kept(1, other, photo)
    painting = torch.rand(1, 3, 10, 6, generator=gen)
    assert ex.check_color_moments(2, color.match_colors(painting, photo), photo)
    assert not ex.check_color_moments(2, painting, photo)
