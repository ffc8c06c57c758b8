r"""The alpha/beta balance of eq. 7, in one place.

Eq. 7 weighs content against style, ``alpha L_content + beta L_style``, and
only the ratio alpha/beta matters. Which ratio gives a balanced picture is not
a constant of the method:

* **It moves with the image size.** Eq. 1 sums the squared errors of the N M
  responses at relu4_2, so it grows with the number of positions M, while
  eq. 4 divides by N^2 M^2 and the Gram (eq. 3) sums over M, so a style term
  is per position. The same picture at S px instead of S_0 px needs the ratio
  times ``(S_0 / S)^2`` (``ratio_at``; checked by tiling: ``benchmarks/PAPER_RATIO.md``).
* **It depends on the loss's conventions and the network's scale.** Other
  codes divide the Gram by M or N M and use mean squared errors
  (``losses``: the conversions), and the raw Caffe VGG-19 has responses
  hundreds of times larger at conv5_1 than at conv1_1, where the paper's
  network was rescaled to a mean activation of one per filter. The paper's
  printed ratios (1e-5 .. 1e-2) hold for its own conventions only.

Two measured anchors, each a ratio at a reference size, and that one rule:

* ``balanced_ratio(size)``: the package's default network (raw Caffe
  VGG-19, average pooling, eqs. 1-7 as printed, plus the default
  total-variation term). ``BALANCED_RATIO`` at ``REFERENCE_SIZE`` = 256 px was
  chosen from a grid of ratios x sizes x three paintings, looked at, and from
  the content and style terms' shares of the loss at the end
  (``benchmarks/balance.py``, ``benchmarks/RESULTS.md``).
* ``paper_ratio(r, size)``: the paper's ratio r (Fig. 2, 3) for the
  *normalised* network ``make figures`` uses: ``r x PAPER_FACTOR`` at
  ``PAPER_REFERENCE_SIZE`` = 128 px, measured by matching the paper's
  pictures by eye (``benchmarks/PAPER_RATIO.md``).

A transfer's **recipe** (``RECIPES``) says where it starts, at which sizes it
runs and for how many evaluations; a caller names it (``transfer(recipe=...)``,
``Preset.recipe``, the command line's ``--recipe``), and nothing is switched by size:

* ``"paper"``: the paper's algorithm, one pass from white noise at the size rule.
* ``"coarse_to_fine"``, the default: the same loss and start, but the first half of the
  evaluations at half the size, then the rest at full size. At 256 px it reaches
  within 8 % of the paper recipe's loss in about a third of its time, with the
  same painting and photo to the eye (``benchmarks/class_speed.py``, ``RESULTS.md``).
* ``"quick"``: previews of ~100 evaluations at small sizes (the lab on a CPU).
  From white noise the photo does not come back that soon under a strong
  painting, so it starts from the photo and weighs content ``QUICK_FACTOR`` times
  more than the size rule (chosen at 144 px, 100 evaluations, four paintings:
  ``benchmarks/PICTURES.md``, section 4).

**Every network.** The ratios above were chosen on the raw Caffe VGG-19. Another
network (the paper's normalised one, torchvision's, a file) gives the two terms
other scales: the normalised network's content term is about 1e-5 of the raw
one's and its style term about 1e-9. ``objective.term_scales`` measures both on
the network itself, at white noise with the run's images, against the raw
network, and ``default_beta`` carries the balance over (beta times c/s).

The total-variation term (``losses.total_variation``, not in the paper) has
its own balance, against the content term: its weight is per unit of alpha,
``alpha (L_content + tv_weight L_tv) + beta L_style``. L_tv sums over pixels
as L_content sums over positions, so one weight holds at every size; for
another network it is scaled by the content term's measured scale
(``default_tv_weight``). ``make figures`` fixes its own (``NORMALISED_TV_WEIGHT``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Preset",
    "REFERENCE_SIZE",
    "BALANCED_RATIO",
    "PAPER_REFERENCE_SIZE",
    "PAPER_FACTOR",
    "DEFAULT_TV_WEIGHT",
    "NORMALISED_TV_WEIGHT",
    "default_tv_weight",
    "ratio_at",
    "balanced_ratio",
    "QUICK_FACTOR",
    "RECIPES",
    "Recipe",
    "recipe",
    "default_ratio",
    "default_beta",
    "paper_ratio",
]

#: Long edge (px) at which ``BALANCED_RATIO`` was chosen.
REFERENCE_SIZE = 256
#: alpha/beta for a balanced picture at ``REFERENCE_SIZE`` with the default network and loss: the most
#: stylised of 1e-3, 3e-3, 1e-2 at which the houses and the church read in all three paintings (measured).
BALANCED_RATIO = 3e-3
#: Long edge (px) at which ``PAPER_FACTOR`` was measured (``benchmarks/PAPER_RATIO.md``).
PAPER_REFERENCE_SIZE = 128
#: Our alpha/beta over the paper's for the same picture, normalised network, at ``PAPER_REFERENCE_SIZE``: the paper's
#: strong texture with the town clear on Fig. 2's five paintings, with the smoothing term (``benchmarks/PAPER_RATIO.md``).
PAPER_FACTOR = 3e-4


#: tv_weight for the raw network: grain 0.58 at 3e4, 0.30 at 1e5 at 256 px; 5e4 left the Scream at
#: 128 px above 0.8 (the issue's figure; ``benchmarks/PICTURES.md``).
DEFAULT_TV_WEIGHT = 1e5
#: The raw network's relu4_2 content loss over the normalised one's (Tübingen against a transfer, 144 px).
_CONTENT_SCALE = 6.2e4
#: The same smoothing for the normalised network (``make figures``): its content term is that much smaller.
NORMALISED_TV_WEIGHT = DEFAULT_TV_WEIGHT / _CONTENT_SCALE


def default_tv_weight(content_scale: float = 1.0) -> float:
    """The default ``tv_weight`` of ``transfer`` for a network whose content term is ``content_scale`` times the
    raw Caffe VGG-19's (``objective.term_scales``): the weight is per unit of alpha, against the content term."""
    return DEFAULT_TV_WEIGHT * content_scale


def ratio_at(ratio: float, size: float, reference_size: float = REFERENCE_SIZE) -> float:
    """The alpha/beta at ``size`` px that balances like ``ratio`` at ``reference_size`` px.

    ``ratio * (reference_size / size) ** 2``: eq. 1 grows with the number of
    positions and eq. 4 does not, so twice the size needs a quarter of the ratio.
    """
    if not ratio > 0 or not size > 0 or not reference_size > 0:
        raise ValueError(f"ratio and sizes must be positive, got ratio={ratio}, size={size}, "
                         f"reference_size={reference_size}")
    return ratio * (reference_size / size) ** 2


def balanced_ratio(size: float) -> float:
    """A balanced alpha/beta for an image of ``size`` px (long edge) with the default network and loss."""
    return ratio_at(BALANCED_RATIO, size)


@dataclass(frozen=True)
class Recipe:
    """Where a transfer starts, its balance against the size rule (``balanced_ratio``), and its passes."""

    init: str  # the start: "noise" (the paper) or "content" (the photo)
    content_factor: float  # alpha/beta times this: how much more content than the size rule
    steps: int  # loss+gradient evaluations in all, split evenly between the passes
    passes: tuple[float, ...] = (1.0,)  # each pass's long edge as a fraction of the result's, each from the last


#: How much more content quick runs need than ``balanced_ratio``: at 144 px, 100 evaluations from the photo, x1
#: left the town unreadable under Starry Night and The Scream, x10 washed the paintings out (looked at, 4 paintings).
QUICK_FACTOR = 3.0
#: The named recipes ``transfer(recipe=...)`` takes (module docstring).
RECIPES = {
    # the paper: white noise (Fig. 1, 2); 300 L-BFGS evaluations converge at 256 px (measured; the paper does not say)
    "paper": Recipe(init="noise", content_factor=1.0, steps=300),
    # 80 at half size + 80 at full size: 15-18 s against the paper recipe's 55-56 s at 256 px, loss +4-10 % (2 pairs)
    "coarse_to_fine": Recipe(init="noise", content_factor=1.0, steps=160, passes=(0.5, 1.0)),
    # from the photo with more content, ~100 evaluations at small sizes
    "quick": Recipe(init="content", content_factor=QUICK_FACTOR, steps=100),
}


def recipe(name: str) -> Recipe:
    """The recipe called ``name``, or a clear error."""
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; use one of {', '.join(RECIPES)} (balance.RECIPES)")
    return RECIPES[name]


def default_ratio(size: float, recipe_name: str = "coarse_to_fine") -> float:
    """A balanced alpha/beta for a transfer of ``size`` px with the named recipe: ``balanced_ratio`` times its
    ``content_factor``.

    Note: the ``"quick"`` recipe differs from a converged run's ratio; see the module docstring.
    """
    return recipe(recipe_name).content_factor * balanced_ratio(size)


def default_beta(size: float, alpha: float = 1.0, recipe_name: str = "coarse_to_fine",
                 term_scales: tuple[float, float] = (1.0, 1.0)) -> float:
    """``transfer``'s default beta: with ``alpha``, the balance of ``default_ratio(size, recipe_name)`` on the raw
    Caffe VGG-19, carried to a network whose content and style terms are ``term_scales`` times the raw network's
    (``objective.term_scales``): beta times ``c / s``."""
    content_scale, style_scale = term_scales
    return alpha / default_ratio(size, recipe_name) * content_scale / style_scale


def paper_ratio(ratio: float, size: float) -> float:
    """Our alpha/beta (normalised network) for the paper's ``ratio`` at ``size`` px.

    Note: differs from the paper, whose ratios do not give its pictures with
    its printed equations and this network: see the module docstring.
    """
    if not ratio > 0:
        raise ValueError(f"ratio must be positive, got {ratio}")
    return ratio_at(ratio * PAPER_FACTOR, size, PAPER_REFERENCE_SIZE)


@dataclass(frozen=True)
class Preset:
    """An image size and an evaluation budget that suit a device, and the recipe for them.

    The lab (``lab.lab_preset``) and ``make figures`` (``figures.PRESETS``) each pick one.
    """

    size: int  # long edge of the result, px
    steps: int  # loss+gradient evaluations per run
    name: str = ""  # "gpu", "mps", "cpu" or "smoke"
    recipe: str = "paper"  # RECIPES: "quick" for ~100 evaluations at small sizes

    def __post_init__(self) -> None:
        recipe(self.recipe)

    @property
    def init(self) -> str:
        """Where runs start (the recipe's)."""
        return recipe(self.recipe).init

    @property
    def ratio(self) -> float:
        """A balanced alpha/beta for this preset's size and recipe."""
        return self.ratio_at(self.size)

    def ratio_at(self, size: int) -> float:
        """A balanced alpha/beta at ``size`` px with this preset's recipe (``default_ratio``)."""
        return default_ratio(size, self.recipe)
