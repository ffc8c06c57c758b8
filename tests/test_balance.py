"""Tests for nst_helpers.balance: the one alpha/beta rule, its anchors, and that nothing else restates it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nst_helpers import balance
from nst_helpers.balance import balanced_ratio, default_beta, paper_ratio, ratio_at

ROOT = Path(__file__).resolve().parents[1]


def test_ratio_falls_with_the_number_of_positions():
    assert ratio_at(1e-2, 256) == pytest.approx(1e-2)
    assert ratio_at(1e-2, 512) == pytest.approx(1e-2 / 4)  # 4x the positions
    assert ratio_at(1e-2, 128) == pytest.approx(4e-2)
    assert ratio_at(3e-3, 100, reference_size=50) == pytest.approx(3e-3 / 4)
    for bad in ((0.0, 128), (1e-2, 0), (-1e-2, 128)):
        with pytest.raises(ValueError, match="positive"):
            ratio_at(*bad)


def test_balanced_ratio_and_default_beta_are_the_measured_anchor():
    assert balanced_ratio(balance.REFERENCE_SIZE) == pytest.approx(balance.BALANCED_RATIO)
    assert balanced_ratio(2 * balance.REFERENCE_SIZE) == pytest.approx(balance.BALANCED_RATIO / 4)
    assert default_beta(256) == pytest.approx(1 / balanced_ratio(256))
    assert 3.0 / default_beta(512, alpha=3.0) == pytest.approx(balanced_ratio(512))  # alpha/beta, whatever alpha
    assert 3.0 / default_beta(128, alpha=3.0, recipe_name="paper") == pytest.approx(balanced_ratio(128))


def test_no_size_switch_the_recipe_alone_sets_the_start_and_the_balance():
    """The paper's recipe at every size (white noise, the size rule); "quick" from the photo with QUICK_FACTOR
    more content, at every size too: no threshold changes either."""
    assert balance.recipe("paper") == balance.Recipe(init="noise", content_factor=1.0, steps=300)
    assert balance.recipe("coarse_to_fine") == balance.Recipe(init="noise", content_factor=1.0, steps=160,
                                                              passes=(0.5, 1.0))
    assert balance.recipe("quick") == balance.Recipe(init="content", content_factor=balance.QUICK_FACTOR, steps=100)
    assert set(balance.RECIPES) == {"paper", "coarse_to_fine", "quick"}
    for size in (64, 128, 255, 256, 512, 1024):
        assert balance.default_ratio(size) == pytest.approx(balanced_ratio(size))
        assert balance.default_ratio(size, "quick") == pytest.approx(balance.QUICK_FACTOR * balanced_ratio(size))
        assert default_beta(size, 2.0, "quick") == pytest.approx(2.0 / (balance.QUICK_FACTOR * balanced_ratio(size)))
    assert not hasattr(balance, "QUICK_BELOW") and not hasattr(balance, "default_init")


def test_an_unknown_recipe_names_the_recipes():
    with pytest.raises(ValueError, match="Unknown recipe 'fast'; use one of paper, coarse_to_fine, quick"):
        balance.recipe("fast")
    with pytest.raises(ValueError, match="Unknown recipe"):
        default_beta(128, recipe_name="noise")  # the old init name is not a recipe
    with pytest.raises(ValueError, match="Unknown recipe 'fast'"):
        balance.Preset(128, 100, recipe="fast")


def test_a_preset_follows_its_recipe():
    paper, quick = balance.Preset(128, 300), balance.Preset(128, 100, "cpu", recipe="quick")
    assert paper.init == "noise" and quick.init == "content"
    assert paper.ratio == pytest.approx(balanced_ratio(128))
    assert quick.ratio == pytest.approx(balance.QUICK_FACTOR * balanced_ratio(128))
    assert quick.ratio_at(256) == pytest.approx(balance.QUICK_FACTOR * balanced_ratio(256))


def test_paper_ratio_maps_the_papers_ratios_for_the_normalised_network():
    r = paper_ratio(1e-3, balance.PAPER_REFERENCE_SIZE)
    assert r == pytest.approx(1e-3 * balance.PAPER_FACTOR)
    assert paper_ratio(1e-3, 2 * balance.PAPER_REFERENCE_SIZE) == pytest.approx(r / 4)
    assert paper_ratio(1e-2, balance.PAPER_REFERENCE_SIZE) == pytest.approx(10 * r)
    with pytest.raises(ValueError, match="positive"):
        paper_ratio(0.0, 128)


def test_the_rule_is_written_once():
    """No module, notebook or the CLI scales a ratio by a size squared itself: they call ``balance``."""
    rule = re.compile(r"\(\s*\w+\s*/\s*\w+\s*\)\s*\*\*\s*2")  # e.g. (256 / size) ** 2
    sources = [p for p in (ROOT / "nst_helpers").glob("*.py") if p.name != "balance.py"]
    sources += sorted((ROOT / "notebooks").glob("*.ipynb"))
    offenders = [f"{p.name}: {m.group(0)}" for p in sources for m in rule.finditer(p.read_text())]
    assert not offenders, f"the alpha/beta rule restated outside nst_helpers/balance.py: {offenders}"
    assert rule.search((ROOT / "nst_helpers" / "balance.py").read_text())


def test_defaults_carry_to_another_network_by_its_term_scales():
    assert balance.default_tv_weight() == balance.DEFAULT_TV_WEIGHT  # the raw network's
    assert balance.default_tv_weight(1e-5) == pytest.approx(1e-5 * balance.DEFAULT_TV_WEIGHT)
    raw = balance.default_beta(256, 1.0, "paper")
    assert raw == 1.0 / balance.balanced_ratio(256)
    # content 1e-5, style 1e-9 of the raw network's: beta x 1e4 keeps alpha L_content : beta L_style
    assert balance.default_beta(256, 1.0, "paper", (1e-5, 1e-9)) == pytest.approx(1e4 * raw)
