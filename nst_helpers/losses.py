r"""The losses of Gatys, Ecker & Bethge, exactly as the paper writes them.

Equation numbers are those of "A Neural Algorithm of Artistic Style" (arXiv
1508.06576, 2015), which the CVPR 2016 paper "Image Style Transfer Using
Convolutional Neural Networks" keeps: both print eqs. 1-7 in the same order
(content loss, its gradient, Gram matrix, layer loss, style loss, its gradient,
total loss).

Notation: a layer l has N_l filters, each with a feature map of M_l = H_l W_l
positions. F^l is the (N_l, M_l) matrix of the generated image's responses,
P^l the content image's, A^l the style image's Gram matrix.

* eq. 1  L_content = 1/2 sum_ij (F_ij - P_ij)^2
* eq. 3  G_ij = sum_k F_ik F_jk                   (Gram matrix)
* eq. 4  E_l = 1/(4 N_l^2 M_l^2) sum_ij (G_ij - A_ij)^2
* eq. 5  L_style = sum_l w_l E_l
* eq. 7  L_total = alpha L_content + beta L_style

Not in the paper (``total_variation``, used by ``transfer`` by default, off
with ``tv_weight=0``):

* L_tv = sum_c sum_ij (x_{c,i+1,j} - x_{c,ij})^2 + (x_{c,i,j+1} - x_{c,ij})^2,
  the squared differences of neighbouring pixels of the image x in [0, 1].
  The paper's loss sees the image only through VGG responses, and a pixel
  checker at the sampling limit barely changes them (see notebook 04): L_tv
  is the term that sees it. Mahendran & Vedaldi (2015) and Johnson et al.
  (2016) use the same regulariser (with exponent 1 or 2).
* The same with a weight per pixel, ``sum w_ij (...)``: ``total_variation(x,
  weight=1 + k flat_regions(photo))`` smooths more where the photo is flat (the
  sky), where the paper's loss leaves a lattice of specks (``figures``, Fig. 3).

All functions take batches ``(B, C, H, W)`` and return the loss summed over the
batch, so that each image's gradient is the gradient of its own loss: a batch
is a set of independent problems.

Relation to other conventions (tested in ``tests/test_losses.py``):

* "Mean MSE" content loss, ``mse_loss(F, P)`` = mean over N M entries:
  ``L_content = (N M / 2) * mse``.
* Gram matrix divided by M (the author's PyTorch code) or by N M (the PyTorch
  tutorial): ``G/M`` and ``G/(N M)``. The mean-MSE of Grams divided by M is
  ``mean((G - A)^2) / M^2 = sum (G - A)^2 / (N^2 M^2) = 4 E_l``.
* The author's published code weights each layer's mean-MSE of (Gram / M) by
  ``1e3 / N_l^2``, i.e. its per-layer term is ``4e3 E_l / N_l^2``: in the
  paper's terms, ``w_l = 4e3 / N_l^2`` instead of ``1/5``, which favours the
  low layers by (512/64)^2 = 64 over the high ones. Its content term is the
  mean-MSE, ``2 L_content / (N M)``.
* The tutorial's Gram / (N M) with mean-MSE gives ``4 E_l / N_l^2``; so do
  Johnson's neural-style (its weights 5 and 100 are alpha and beta) and d2l's
  (Dive into Deep Learning), whose content terms are the mean-MSE too. d2l keeps
  outputs of torchvision's VGG-19, whose in-place ReLUs rectify them: its layers
  are relu4_4 and relu1_1 ... relu4_1, with conv5_1 before the ReLU (notebook 08).
* pystiche's Gram / M with mean-MSE, averaged over its five layers, gives
  ``4 E_l / 5`` per layer: the paper's equal w_l.
* CS231n's Gram / (N M) with a plain sum of squares gives ``4 E_l`` (times its
  hand-set ``w_l``), and its content term ``sum (F - P)^2`` is ``2 L_content``
  (on SqueezeNet's layers, not VGG-19's: the forms carry over, the layers do not).

These factors matter when one compares alpha/beta ratios across codes: the
same picture needs very different ratios under different conventions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .speed import autocast_off

__all__ = ["check_weights", "content_loss", "flat_regions", "gram_matrix", "rescale_gram", "style_layer_loss", "style_loss",
    "total_loss", "total_variation"]

Reduction = Literal["sum", "none"]


def _reduce(per_image: Tensor, reduction: Reduction) -> Tensor:
    if reduction == "sum":
        return per_image.sum()
    if reduction == "none":
        return per_image
    raise ValueError(f"Unknown reduction {reduction!r}; use 'sum' or 'none'")


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix of a layer's responses, a plain sum over positions (eq. 3).

    Args:
        features: (B, N, H, W) responses of N filters.

    Returns:
        (B, N, N) with ``G[b, i, j] = sum_k F[b, i, k] F[b, j, k]``.
    """
    b, n, h, w = features.shape
    f = features.reshape(b, n, h * w)  # (B, N, M)
    return f @ f.transpose(1, 2)  # (B, N, N)


def content_loss(features: Tensor, target: Tensor, reduction: Reduction = "sum") -> Tensor:
    """Squared-error content loss, ``1/2 sum (F - P)^2`` (eq. 1).

    Its gradient is ``F - P`` with respect to F; through a ReLU layer it is zero
    where the response is not positive (the paper's derivative, eq. 2).

    Args:
        features: (B, N, H, W) responses F of the generated image.
        target: P, the content image's responses, broadcastable to F.
        reduction: ``"sum"`` over the batch, or ``"none"`` for one loss per image.
    """
    diff = features - target
    return _reduce(0.5 * diff.pow(2).flatten(1).sum(1), reduction)


def style_layer_loss(features: Tensor, target_gram: Tensor, reduction: Reduction = "sum") -> Tensor:
    """One layer's style loss, ``E_l = 1/(4 N^2 M^2) sum (G - A)^2`` (eq. 4).

    Its gradient with respect to F is ``1/(N^2 M^2) (G - A) F`` (eq. 6), again
    masked by the ReLU.

    Args:
        features: (B, N, H, W) responses of the generated image.
        target_gram: (B or 1, N, N) (or (N, N)) target Gram matrix A, summed over
            the same number of positions M as ``features`` (see ``rescale_gram``).
        reduction: ``"sum"`` over the batch, or ``"none"``.

    Note:
        The Gram is computed in float32 even when the features are bf16/fp16
        (autocast), since its sum over M positions loses precision otherwise.
        The gradient is eq. 6 written out (``_GramDistance``): one product
        instead of autograd's two plus a sum.
    """
    _, n, h, w = features.shape
    m = h * w
    f = features.flatten(2)  # (B, N, M): a view for NCHW and for channels_last alike
    target = target_gram if target_gram.dim() == 3 else target_gram.unsqueeze(0)  # (N, N) -> (1, N, N)
    per_image = _GramDistance.apply(f, target) / (4 * n**2 * m**2)
    return _reduce(per_image, reduction)


class _GramDistance(torch.autograd.Function):
    """``sum_ij (G_ij - A_ij)^2`` per image, with ``G = F F^T`` (eq. 3), in float32 at least.

    Forward: one product for G. Backward: ``d/dF = 2 (R + R^T) F`` with
    ``R = G - A``, i.e. ``4 (G - A) F`` for a symmetric target (the derivative
    behind eq. 6): one more product, written in F's own memory layout.
    Autograd through ``F @ F^T`` computes ``dG F`` and ``(F^T dG)^T``
    separately and adds them, one of them in transposed layout: at relu1_1
    (256 px) two 20 ms products and a 20 ms strided add, where this takes
    6 ms (``benchmarks/RESULTS.md``).
    """

    @staticmethod
    def forward(ctx: Any, f: Tensor, target: Tensor) -> Tensor:  # f: (B, N, M), target: (B or 1, N, N)
        with autocast_off(f.device.type):  # the Gram in fp32 even under autocast
            f32 = f.to(torch.promote_types(f.dtype, torch.float32))  # bf16/fp16 -> fp32; fp64 stays
            residual = torch.bmm(f32, f32.transpose(1, 2)) - target.to(f32.dtype)  # (B, N, N)
        ctx.save_for_backward(f32, residual)
        ctx.dtype, ctx.target_dtype, ctx.target_batch = f.dtype, target.dtype, target.shape[0]
        return residual.pow(2).sum((1, 2))  # (B,)

    @staticmethod
    @once_differentiable  # the backward is not itself differentiable: second derivatives raise, not mislead
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:  # grad: (B,)
        f32, residual = ctx.saved_tensors
        with autocast_off(f32.device.type):
            scaled = residual * (2 * grad).view(-1, 1, 1)  # (B, N, N)
            grad_f = grad_target = None
            if ctx.needs_input_grad[0]:
                sym = scaled + scaled.transpose(1, 2)  # grad * 2 (R + R^T); grad * 4 R for a symmetric target
                if f32.stride(1) == 1 and f32.stride(2) != 1:  # positions-first (channels_last) memory
                    grad_f = torch.bmm(f32.transpose(1, 2), sym.transpose(1, 2)).transpose(1, 2)  # F's layout
                else:
                    grad_f = torch.bmm(sym, f32)
                grad_f = grad_f.to(ctx.dtype)
            if ctx.needs_input_grad[1]:  # a target that requires grad (rare): d/dA = -2 (G - A)
                grad_target = -scaled.sum(0, keepdim=True) if ctx.target_batch == 1 else -scaled
                grad_target = grad_target.to(ctx.target_dtype)
        return grad_f, grad_target


def rescale_gram(target_gram: Tensor, from_positions: int, to_positions: int) -> Tensor:
    """Rescale a target Gram A made over ``from_positions`` to ``to_positions``.

    Eq. 4 compares sums over M positions, so a style image larger than the
    generated one would have a proportionally larger Gram. Multiplying A by
    ``M_x / M_a`` compares the two per position, as intended.
    """
    return target_gram * (to_positions / from_positions)


def style_loss(
    features: Mapping[str, Tensor],
    target_grams: Mapping[str, Tensor],
    layer_weights: Mapping[str, float] | None = None,
    reduction: Reduction = "sum",
) -> Tensor:
    """Weighted sum of the layers' style losses, ``sum_l w_l E_l`` (eq. 5).

    Args:
        features: ``{layer: (B, N, H, W)}`` responses of the generated image.
        target_grams: ``{layer: (B or 1, N, N)}``; its keys choose the layers.
        layer_weights: ``{layer: w_l}``; default ``1/L`` for each of the L layers,
            as in the paper's figures.
        reduction: ``"sum"`` over the batch, or ``"none"``.
    """
    if not target_grams:
        raise ValueError("style_loss needs at least one style layer")
    weights = layer_weights or {layer: 1.0 / len(target_grams) for layer in target_grams}
    check_weights(weights.values(), "style layer weights")
    terms = [
        weights[layer] * style_layer_loss(features[layer], gram, reduction="none")
        for layer, gram in target_grams.items()
    ]
    return _reduce(torch.stack(terms).sum(0), reduction)


def total_loss(content: Tensor, style: Tensor, alpha: float, beta: float) -> Tensor:
    """``alpha L_content + beta L_style`` (eq. 7); only the ratio alpha/beta matters."""
    check_weights([alpha, beta], "alpha and beta")
    return alpha * content + beta * style


def total_variation(image: Tensor, reduction: Reduction = "sum", weight: Tensor | None = None) -> Tensor:
    """Squared differences of neighbouring pixels, ``L_tv`` (not in the paper; see the module docstring).

    ``sum_c sum_ij w_ij [(x[c, i+1, j] - x[c, i, j])^2 + (x[c, i, j+1] - x[c, i, j])^2]``,
    with ``w = 1`` unless ``weight`` is given. Its gradient at a pixel is
    ``2 (4 x_ij - sum of its 4 neighbours)`` inside the image for ``w = 1`` (a
    discrete Laplacian), so it pulls each pixel towards its neighbours' mean: it
    damps pixel-level checkers far more than strokes.

    Args:
        image: (B, C, H, W) pixels.
        reduction: ``"sum"`` over the batch, or ``"none"`` for one value per image.
        weight: (B or 1, 1, H, W), non-negative: how much each pixel's differences to
            its lower and right neighbours count (e.g. ``1 + k * flat_regions(photo)``:
            more smoothing where the photo is flat). ``None``: 1 everywhere.
    """
    down = (image[:, :, 1:, :] - image[:, :, :-1, :]).pow(2)  # (B, C, H-1, W)
    right = (image[:, :, :, 1:] - image[:, :, :, :-1]).pow(2)  # (B, C, H, W-1)
    if weight is not None:
        down, right = down * weight[..., :-1, :], right * weight[..., :, :-1]
    return _reduce(down.flatten(1).sum(1) + right.flatten(1).sum(1), reduction)


def flat_regions(image: Tensor, threshold: float = 0.08, reach: int = 9) -> Tensor:
    """(B, 1, H, W): 1 where ``image`` is flat (a clear sky, a wall), 0 elsewhere.

    A pixel is flat when, within the ``reach`` x ``reach`` window around it, no pixel
    differs from its lower or right neighbour by more than ``threshold`` (the
    absolute differences summed over R, G, B and both directions; the image in
    [0, 1]). The window keeps strokes near edges free. Used as the weight map of
    ``total_variation`` (``transfer(flat_smoothing=...)``).
    """
    if reach < 1 or reach % 2 == 0:
        raise ValueError(f"reach must be an odd number of pixels, got {reach}")
    step = ((image[:, :, 1:, :-1] - image[:, :, :-1, :-1]).abs()
            + (image[:, :, :-1, 1:] - image[:, :, :-1, :-1]).abs()).sum(1, keepdim=True)  # (B, 1, H-1, W-1)
    step = torch.nn.functional.pad(step, (0, 1, 0, 1), mode="replicate")
    return (torch.nn.functional.max_pool2d(step, reach, 1, reach // 2) <= threshold).to(image.dtype)


def check_weights(values, what: str) -> None:
    """Raise a clear error if any weight is negative or not finite."""
    for v in values:
        v = float(v)
        if not v >= 0 or v == float("inf"):
            raise ValueError(f"{what} must be finite and non-negative, got {v}")
