r"""Style as a statistic: the Gram matrix (eq. 4) beside the other statistics people match.

A layer's responses are M_l feature vectors f_k in R^{N_l}, one per position
(the columns of F^l). Every style loss compares the *distribution* of these
vectors in the generated image with the painting's, through a statistic that
forgets where each vector sits (notebook 06):

* **Gram per position** ``G/M = (1/M) sum_k f_k f_k^T = Sigma + mu mu^T``: the
  covariance *plus* the outer product of the mean. The mean is in it, and at
  relu1_1 the mean is largely colour. Eq. 4 is
  ``E_l = ||G/M - A/M'||_F^2 / (4 N_l^2)`` (``gram_per_position``).
* **Squared MMD with the kernel k(x, y) = (x^T y)^2** (Li, Wang, Liu & Hou,
  "Demystifying Neural Style Transfer", IJCAI 2017). The biased estimate,
  ``mean_kk' k(x_k, x_k') + mean_ll' k(y_l, y_l') - 2 mean_kl k(x_k, y_l)``,
  equals ``||G_x/M - G_y/M'||_F^2``, because ``sum_kk' (x_k^T x_k')^2 =
  ||F^T F||_F^2 = ||G||_F^2``; so ``E_l = MMD^2 / (4 N_l^2)`` (``mmd2``).
* **Mean and standard deviation per channel** (``"mean_std"``): what instance
  normalisation and AdaIN (Huang & Belongie, ICCV 2017) match.
* **Linear-kernel MMD** (``"mmd_linear"``): k(x, y) = x^T y gives
  ``MMD^2 = ||mu_x - mu_y||^2``, the means only.
* **Optimal transport.** ``gaussian_w2``: the Wasserstein-2 distance between
  Gaussians fitted to the features, ``||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2
  (S_2^{1/2} S_1 S_2^{1/2})^{1/2})`` (a closed form; an eigen-decomposition of an
  N x N matrix per layer, too slow to optimise through on a CPU at 512 filters).
  The engine's ``"sliced_w2"`` is the sliced Wasserstein-2 distance (Rabin,
  Peyre, Delon & Bernot 2011; for textures Heitz et al., CVPR 2021): the
  features projected on fixed random directions, each projection's sorted values
  (its quantiles) compared with the painting's. Unlike every statistic above, it
  matches whole one-dimensional distributions, not only their first two moments.

``style_statistic(features, kind)`` summarises the painting's responses once;
``statistic_loss(features, target, kind)`` is one layer's loss against it. ``Statistic`` is the
style term that matches one of them, for the engine:
``synthesize_texture(Statistic(painting, "sliced_w2"))``, the same for ``transfer``.
Each non-Gram loss is divided by N_l (a mean over channels); their units are not eq. 4's, so
``Statistic`` scales its term to equal the Gram's at the start image (``gram_units``): the same
alpha/beta then gives a comparable balance whichever statistic is matched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .features import VGG19Features
from .images import as_batch
from .losses import style_loss
from .objective import Style, features_of, style_targets

__all__ = [
    "STATISTICS",
    "Statistic",
    "check_statistic",
    "feature_covariance",
    "feature_mean",
    "feature_std",
    "gaussian_w2",
    "gram_per_position",
    "linear_kernel",
    "mmd2",
    "quadratic_kernel",
    "sliced_w2",
    "slice_directions",
    "sqrtm_psd",
    "statistic_loss",
    "style_statistic",
]

#: The style statistics the engine can match; "gram" is the paper's (eq. 4).
STATISTICS = ("gram", "mean_std", "mmd_linear", "sliced_w2")
#: Seed of the sliced Wasserstein directions: the same directions for the painting and every evaluation.
SLICE_SEED = 0
#: Added to a variance before its square root, so the gradient stays finite on a flat channel.
STD_EPS = 1e-8


def check_statistic(kind: str) -> str:
    """``kind`` if it is one of ``STATISTICS``, else a clear error."""
    if kind not in STATISTICS:
        raise ValueError(f"unknown style statistic {kind!r}; choose one of {', '.join(STATISTICS)}")
    return kind


def _vectors(features: Tensor) -> Tensor:
    """(B, N, H, W) responses -> (B, N, M), half precision raised to fp32: column k is the vector at position k."""
    b, n = features.shape[:2]
    f = features if features.dtype in (torch.float32, torch.float64) else features.float()
    return f.reshape(b, n, -1)


def feature_mean(features: Tensor) -> Tensor:
    """Mean feature vector mu, (B, N): each channel's mean over the M positions."""
    return _vectors(features).mean(dim=2)


def feature_covariance(features: Tensor) -> Tensor:
    """Covariance Sigma of the feature vectors, (B, N, N), normalised by M (not M - 1)."""
    f = _vectors(features)
    centred = f - f.mean(dim=2, keepdim=True)
    return centred @ centred.transpose(1, 2) / f.shape[2]


def feature_std(features: Tensor) -> Tensor:
    """Standard deviation of each channel over the positions, (B, N) (normalised by M)."""
    f = _vectors(features)
    return (f.var(dim=2, unbiased=False) + STD_EPS).sqrt()


def gram_per_position(features: Tensor) -> Tensor:
    """G/M, (B, N, N): the Gram matrix (eq. 3) divided by the number of positions; equals Sigma + mu mu^T."""
    f = _vectors(features)
    return f @ f.transpose(1, 2) / f.shape[2]


def quadratic_kernel(x: Tensor, y: Tensor) -> Tensor:
    """k(x, y) = (x^T y)^2 for sets x (K, N) and y (L, N) -> (K, L)."""
    return (x @ y.T).pow(2)


def linear_kernel(x: Tensor, y: Tensor) -> Tensor:
    """k(x, y) = x^T y for sets x (K, N) and y (L, N) -> (K, L)."""
    return x @ y.T


def mmd2(x: Tensor, y: Tensor, kernel: Callable[[Tensor, Tensor], Tensor] = quadratic_kernel) -> Tensor:
    """Squared maximum mean discrepancy (biased estimate) between sets x (K, N) and y (L, N).

    ``mean k(x, x') + mean k(y, y') - 2 mean k(x, y)``, from all pairs: O(K L) memory, for
    teaching and tests on small layers. With ``quadratic_kernel`` it equals
    ``||G_x/K - G_y/L||_F^2`` (Li et al. 2017), so eq. 4 is ``mmd2 / (4 N^2)``.
    """
    return kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean()


def sqrtm_psd(matrix: Tensor) -> Tensor:
    """Symmetric square root of symmetric positive semi-definite matrices (..., N, N), by eigh.

    Eigenvalues below zero (rounding) are clamped to zero. Used for the fixed target
    only: its gradient is not needed.
    """
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt().unsqueeze(-2)) @ vectors.transpose(-1, -2)


def gaussian_w2(mean_1: Tensor, cov_1: Tensor, mean_2: Tensor, cov_2: Tensor,
                cov_2_sqrt: Tensor | None = None) -> Tensor:
    """Squared Wasserstein-2 distance between N(mean_1, cov_1) and N(mean_2, cov_2), per batch entry.

    ``||m_1 - m_2||^2 + tr(C_1) + tr(C_2) - 2 tr((C_2^{1/2} C_1 C_2^{1/2})^{1/2})``. The last
    trace is the sum of the square roots of the eigenvalues of ``C_2^{1/2} C_1 C_2^{1/2}``
    (``eigvalsh``, whose gradient is well defined even for repeated eigenvalues); pass
    ``cov_2_sqrt`` when the second Gaussian is a fixed target, to compute its root once.

    Shapes: means (B, N), covariances (B, N, N) (the second pair may have B = 1). Returns (B,).
    """
    root = sqrtm_psd(cov_2) if cov_2_sqrt is None else cov_2_sqrt
    middle = root @ cov_1 @ root
    middle = (middle + middle.transpose(-1, -2)) / 2  # exactly symmetric for eigvalsh
    cross = torch.linalg.eigvalsh(middle).clamp_min(STD_EPS).sqrt().sum(dim=-1)  # clamped: no infinite gradient at 0
    trace = cov_1.diagonal(dim1=-2, dim2=-1).sum(-1) + cov_2.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (mean_1 - mean_2).pow(2).sum(-1) + trace - 2 * cross


def slice_directions(n: int, count: int | None = None, seed: int = SLICE_SEED,
                     device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
    """``count`` (default ``n``) random unit directions in R^n, (count, n), the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(count or n, n, generator=generator, dtype=torch.float64)
    return (directions / directions.norm(dim=1, keepdim=True)).to(device=device, dtype=dtype)


def _quantiles(sorted_values: Tensor, count: int) -> Tensor:
    """Sorted values (B, K, L) read at ``count`` evenly spaced levels (B, K, count).

    The empirical quantile function is a step function: level (i + 1/2) / count takes the
    value of rank floor((i + 1/2) L / count). A painting tiled 2 x 2 thus gives exactly its
    own quantiles, each four times.
    """
    length = sorted_values.shape[-1]
    if length == count:
        return sorted_values
    ranks = ((torch.arange(count, device=sorted_values.device) + 0.5) * length / count).long().clamp_max(length - 1)
    return sorted_values[..., ranks]


def sliced_w2(x: Tensor, y_sorted: Tensor, directions: Tensor) -> Tensor:
    """Sliced Wasserstein-2 (squared) between feature vectors ``x`` (B, N, M) and a target, per batch entry.

    ``mean_k W2^2(d_k^T x, d_k^T y)``: along each direction d_k (rows of ``directions``,
    (K, N)) the one-dimensional W2^2 is the mean squared difference of sorted values.
    ``y_sorted`` (1 or B, K, L) holds the target's sorted projections; it is resampled to
    M quantiles when L != M, so the painting may have another size. Returns (B,).
    """
    projected = torch.einsum("kn,bnm->bkm", directions.to(x.dtype), x).sort(dim=-1).values
    target = _quantiles(y_sorted.to(x.dtype), projected.shape[-1])
    return (projected - target).pow(2).mean(dim=(1, 2))


def style_statistic(features: Tensor, kind: str = "gram") -> dict[str, Tensor]:
    """The painting's summary at one layer, computed once: what ``statistic_loss`` compares against.

    ``"gram"``: ``{"gram": G/M}``; ``"mean_std"``: ``{"mean", "std"}``; ``"mmd_linear"``:
    ``{"mean"}``; ``"sliced_w2"``: ``{"directions", "sorted"}``. All per position, so the
    painting may have another size than the result.
    """
    check_statistic(kind)
    with torch.no_grad():
        if kind == "gram":
            return {"gram": gram_per_position(features)}
        if kind == "mean_std":
            return {"mean": feature_mean(features), "std": feature_std(features)}
        if kind == "mmd_linear":
            return {"mean": feature_mean(features)}
        f = _vectors(features)
        directions = slice_directions(f.shape[1], device=f.device, dtype=f.dtype)
        return {"directions": directions, "sorted": torch.einsum("kn,bnm->bkm", directions, f).sort(dim=-1).values}


def statistic_loss(features: Tensor, target: dict[str, Tensor], kind: str = "gram") -> Tensor:
    """One layer's style loss between ``features`` (B, N, H, W) and a ``style_statistic`` target, summed over B.

    ``"gram"``: eq. 4, ``||G/M - A/M'||^2 / (4 N^2)``; ``"mean_std"``:
    ``(||mu - mu'||^2 + ||sigma - sigma'||^2) / N``; ``"mmd_linear"``: ``||mu - mu'||^2 / N``;
    ``"sliced_w2"``: ``sliced_w2`` with N directions (a mean over them).
    """
    check_statistic(kind)
    n = features.shape[1]
    if kind == "gram":
        per_image = (gram_per_position(features) - target["gram"]).pow(2).sum(dim=(1, 2)) / (4 * n**2)
    elif kind == "mean_std":
        per_image = ((feature_mean(features) - target["mean"]).pow(2).sum(-1)
                     + (feature_std(features) - target["std"]).pow(2).sum(-1)) / n
    elif kind == "mmd_linear":
        per_image = (feature_mean(features) - target["mean"]).pow(2).sum(-1) / n
    else:
        per_image = sliced_w2(_vectors(features), target["sorted"], target["directions"])
    return per_image.sum()


@torch.no_grad()
def gram_units(vgg: VGG19Features, image: Tensor, grams: Mapping[str, Tensor], targets: Mapping[str, Any],
               kind: str, layer_weights: Mapping[str, float] | None = None, precision: str = "fp32") -> float:
    """L_style with the Gram (eq. 5) over L_style with ``kind``, both at ``image``: the factor that puts
    another statistic's style term in the Gram's units.

    The statistics' losses differ by orders of magnitude (a Gram entry is a product of two
    responses, a mean is one), so the same beta would weigh them very differently. Scaling
    by this factor, measured at the start image of each run, makes their style terms equal
    there: alpha/beta then means roughly the same balance whichever statistic is matched. The responses are
    computed in the run's ``precision``, so that the two terms are equal at the start as the run computes them.
    """
    feats = features_of(vgg, image, list(grams), precision)
    weights = layer_weights or {k: 1.0 / len(grams) for k in grams}
    gram_part = float(style_loss(feats, grams, weights))
    other = float(sum(weights[k] * statistic_loss(feats[k], t, kind) for k, t in targets.items()))
    if not other > 0:
        raise ValueError(f"the start image already matches the painting's {kind!r} statistics: start elsewhere")
    return gram_part / other


@dataclass(frozen=True, eq=False)
class Statistic(Style):
    """A style term that matches another statistic of one painting's responses than the Gram (eq. 5 with
    ``statistic_loss`` for E_l), in the Gram's units (``gram_units`` at the start image; ``settings["style_scale"]``)."""

    painting: Tensor
    kind: str = "mean_std"
    layer_weights: Mapping[str, float] | None = None  # only for the units; the run's layer_weights weigh the loss

    def __post_init__(self) -> None:
        check_statistic(self.kind)
        object.__setattr__(self, "painting", as_batch(self.painting, "style_image"))

    @property
    def paintings(self) -> tuple[Tensor, ...]:  # type: ignore[override]
        return (self.painting,)

    def targets(self, vgg: VGG19Features, layers: Sequence[str], start: Tensor, precision: str) -> dict[str, Any]:
        summaries = {k: style_statistic(f, self.kind) for k, f in features_of(vgg, self.painting, layers, precision).items()}
        if self.kind == "gram":
            return {k: {**t, "scale": 1.0} for k, t in summaries.items()}
        grams = style_targets(vgg, self.painting, layers, tuple(start.shape[-2:]), precision)
        scale = gram_units(vgg, start, grams, summaries, self.kind, self.layer_weights, precision)
        return {k: {**t, "scale": scale} for k, t in summaries.items()}

    def loss(self, features: Mapping[str, Tensor], targets: Mapping[str, Any],
             layer_weights: Mapping[str, float] | None) -> Tensor:
        weights = layer_weights or {k: 1.0 / len(targets) for k in targets}
        return sum(weights[k] * t["scale"] * statistic_loss(features[k], t, self.kind) for k, t in targets.items())

    def with_paintings(self, paintings: Sequence[Tensor]) -> Statistic:
        return Statistic(paintings[0], self.kind, self.layer_weights)

    def settings(self, targets: Mapping[str, Any] | None = None) -> dict[str, Any]:
        scale = {"style_scale": next(iter(targets.values()))["scale"]} if targets else {}
        return {"style_statistic": self.kind, **scale}
