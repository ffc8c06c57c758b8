"""The other speed levers, each measured alone on top of the default transfer (``coarse_to_fine``).

    python benchmarks/levers.py --out /tmp/levers   # ~10 min on 2 cores

For the two pairs of ``class_speed.py`` at 256 px it runs the default transfer (white noise, half the
evaluations at half size, half at full size, precision auto; 90 + 90 when the table in ``RESULTS.md`` was
measured, 80 + 80 since) and, one change at a time:

* ``tol 1e-3`` / ``tol 3e-3``: the convergence test (``Options.tol``): a pass stops once its best loss
  fell by less than that fraction over the last 20 evaluations;
* ``history 20``: L-BFGS keeping 20 past steps instead of 100;
* ``no line search``: L-BFGS with a fixed step of 1 instead of the strong-Wolfe search;
* ``from the photo``: ``init="content"`` at the default balance;
* ``fourier N``: a single pass of N evaluations at full size on the image parameterised as in Mordvintsev
  et al. 2018, "Differentiable Image Parameterizations": colour-decorrelated (the photo's colour
  covariance) and Fourier-scaled (each frequency's coefficient times 1/|f|) pixels, against the same
  pass on the pixels (``pixels N``).

Each picture is scored under one objective (``class_speed.final_loss``: the default 256 px objective, fp32), with
its grain figure, wall seconds and the evaluations at each size. The two L-BFGS settings replace
``torch.optim.LBFGS`` for their run only. The table and what was kept are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch
from class_speed import arguments, final_loss, load
from PIL import Image

import nst_helpers as nst
from nst_helpers import STYLE_LAYERS
from nst_helpers.balance import default_beta
from nst_helpers.images import to_pil
from nst_helpers.objective import Gram, build, white_noise
from nst_helpers.smoothing import Smoothing
from nst_helpers.stats import grain

SIZE = 256


@contextlib.contextmanager
def lbfgs_with(**changes) -> Iterator[None]:
    """``torch.optim.LBFGS`` with some settings changed, for the ``with`` block (the engine builds its own)."""
    original = torch.optim.LBFGS

    class Changed(original):  # type: ignore[misc, valid-type]
        def __init__(self, params, **kwargs):
            super().__init__(params, **{**kwargs, **changes})

    torch.optim.LBFGS = Changed
    try:
        yield
    finally:
        torch.optim.LBFGS = original


def fourier_transfer(photo: torch.Tensor, painting: torch.Tensor, steps: int, fourier: bool) -> tuple[torch.Tensor, int]:
    """One pass of ``steps`` L-BFGS evaluations at full size from white noise, on the pixels or on the
    decorrelated, Fourier-scaled parameterisation; the default objective (eq. 7 at the default balance, the
    smoothing term). Returns the best image and the evaluations made."""
    vgg = nst.Options().vgg()  # the engine's default network: raw Caffe VGG-19, average pooling
    start = white_noise(photo.shape)
    beta = default_beta(SIZE, 1.0, "paper", (1.0, 1.0))
    terms = {"tv": Smoothing().term(photo, 1.0, 1.0)}
    loss = build(vgg, photo, ["relu4_2"], Gram(painting), STYLE_LAYERS, None, 1.0, beta, start, "auto", terms)
    h, w = photo.shape[-2:]
    pixels = photo[0].reshape(3, -1)
    mean = pixels.mean(1).view(1, 3, 1, 1)
    colour = torch.linalg.cholesky(torch.cov(pixels) + 1e-4 * torch.eye(3))  # decorrelated -> RGB
    f = torch.sqrt(torch.fft.fftfreq(h).view(-1, 1) ** 2 + torch.fft.rfftfreq(w).view(1, -1) ** 2)
    scale = 1.0 / torch.clamp(f, min=1.0 / max(h, w))  # 1/|f|: every scale moves alike

    def image_of(u: torch.Tensor) -> torch.Tensor:
        if not fourier:
            return u
        y = torch.fft.irfft2(torch.view_as_complex(u) * scale, s=(h, w), norm="ortho")
        return mean + torch.einsum("ij,bjhw->bihw", colour, y)

    if fourier:  # the coefficients whose image is the white-noise start
        y = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(colour), start - mean)
        u = torch.view_as_real(torch.fft.rfft2(y, norm="ortho") / scale).contiguous()
    else:
        u = start.clone()
    u.requires_grad_(True)
    optimizer = torch.optim.LBFGS([u], lr=1.0, max_iter=steps, max_eval=steps + 25, tolerance_grad=0.0,
                                  tolerance_change=0.0, history_size=100, line_search_fn="strong_wolfe")
    state = {"evals": 0, "scale": None, "best": float("inf"), "image": start}

    class Done(Exception):
        pass

    def closure() -> torch.Tensor:
        if state["evals"] >= steps:
            raise Done
        optimizer.zero_grad()
        x = image_of(u)
        total, _ = loss(x)
        if state["scale"] is None:
            state["scale"] = float(total.detach())
        (total / state["scale"]).backward()
        state["evals"] += 1
        if float(total) < state["best"]:
            state["best"], state["image"] = float(total), x.detach().clone()
        return total.detach() / state["scale"]

    with contextlib.suppress(Done):
        while state["evals"] < steps:
            before = state["evals"]
            optimizer.step(closure)
            if state["evals"] == before:
                break
    return state["image"].clamp(0, 1), state["evals"]


def runs() -> dict[str, dict]:
    """name -> how: transfer's keywords, ``lbfgs`` changes, or ``fourier``/``pixels`` with a step count."""
    return {
        "default": {},  # coarse_to_fine as it stands (90 + 90 when RESULTS.md's table was made)
        "tol 1e-3": {"tol": 1e-3},
        "tol 3e-3": {"tol": 3e-3},
        "history 20": {"lbfgs": {"history_size": 20}},
        "no line search": {"lbfgs": {"line_search_fn": None}},
        "from the photo": {"init": "content"},
        "pixels 120": {"pixels": 120},
        "fourier 120": {"fourier": 120},
    }


def main() -> None:
    args = arguments(__doc__, "/tmp/levers")
    out = args.out
    chosen = {k: v for k, v in runs().items() if not args.only or k in args.only.split(",")}
    nst.Options().vgg()  # the network cache warmed: not part of any run's time
    print(f"# {SIZE} px, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| pair | run | s | evaluations (half + full size) | loss / default's | grain |")
    print("|---|---|---|---|---|---|")
    for pair in args.pairs.split(","):
        content, style = pair.split(":")
        photo, painting = load(content, SIZE), load(style, SIZE)
        nst.transfer(photo, painting, steps=2, recipe="paper", progress=False)  # first-call costs, untimed
        base = None
        tiles = []
        for name, how in chosen.items():
            how = dict(how)
            begin = time.perf_counter()
            if "fourier" in how or "pixels" in how:
                steps = how.get("fourier", how.get("pixels"))
                image, evals = fourier_transfer(photo, painting, steps, "fourier" in how)
                counts = f"0 + {evals}"
            else:
                with lbfgs_with(**how.pop("lbfgs", {})):
                    result = nst.transfer(photo, painting, progress=False, **how)
                image = result.image
                full = len(result.history["total"])  # in full-size units; the passes' own counts:
                counts = " + ".join(str(p) for p in result.settings.get("pass_steps", [])) or str(full)
            seconds = time.perf_counter() - begin
            loss = final_loss(photo, painting, image)
            base = base or loss
            g = grain(image, photo, painting)
            print(f"| {content} + {style} | {name} | {seconds:.1f} | {counts} | {loss / base:.3f} | {g:.3f} |",
                  flush=True)
            nst.save_image(image, out / f"{content}_{name.replace(' ', '_').replace('(', '').replace(')', '')}.png")
            tiles.append(to_pil(image))
        sheet = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles)), "white")
        x = 0
        for tile in tiles:
            sheet.paste(tile, (x, 0))
            x += tile.width
        sheet.save(out / f"sheet_{content}.png")


if __name__ == "__main__":
    main()
