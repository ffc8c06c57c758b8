"""Command line: ``python -m nst_helpers transfer CONTENT STYLE -o OUT.png`` and friends."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .features import STYLE_LAYERS

__all__ = ["build_parser", "main"]


def _add_common(p: argparse.ArgumentParser, size: int | None = 256, steps: int | None = 300,
                size_help: str = "long edge of the result in px (default 256)",
                steps_help: str = "loss+gradient evaluations (default 300)") -> None:
    """The options every command shares; a command whose size or steps default elsewhere passes None."""
    p.add_argument("--size", type=int, default=size, help=size_help)
    p.add_argument("--steps", type=int, default=steps, help=steps_help)
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--init", choices=["noise", "content", "style"], default=None,
                   help="where runs start (default: the paper's white noise; for transfer, the recipe's)")
    p.add_argument("--pooling", choices=["max", "avg"], default="avg")
    p.add_argument("--weights", default="caffe", help="caffe (offline), torchvision, random, or a .pth path")
    p.add_argument("--normalize", action="store_true", help="the paper's normalised network")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--seed", type=int, default=0)


def _transfer(args: argparse.Namespace) -> int:
    from .balance import recipe
    from .color import KeepColors
    from .control import Blend
    from .features import check_layers, pick_device
    from .images import check_output_path, load_image
    from .smoothing import Smoothing
    from .speed import cached_network
    from .tasks import transfer

    # Everything that can be checked is checked before the work starts, so that no run is lost at the end
    # (the memory too: transfer checks it before its first evaluation).
    output = check_output_path(args.output)
    recipe(args.recipe)
    check_layers([args.content_layer, *args.style_layers.split(",")])
    weights = [float(w) for w in args.style_weights.split(",")] if args.style_weights else None
    if weights is not None and len(weights) != len(args.style):
        raise ValueError(f"--style-weights gives {len(weights)} weights for {len(args.style)} STYLE images: "
                         "give one per painting")
    # The weights, checked now and loaded once (the network's cache keeps it for the run).
    network = cached_network(args.weights, args.pooling, str(pick_device(args.device)), args.normalize)
    content = load_image(args.content, args.size)
    styles = [load_image(source, args.size) for source in args.style]
    style = styles[0] if len(styles) == 1 else Blend(styles, weights)
    extras = [] if args.tv_weight == 0 else [Smoothing(args.tv_weight)]
    extras += [KeepColors(args.preserve_color)] if args.preserve_color else []
    common = dict(
        alpha=args.alpha, beta=args.beta, content_layer=args.content_layer, style_layers=args.style_layers.split(","),
        extras=extras, recipe=args.recipe, optimizer=args.optimizer, network=network, seed=args.seed,
        precision=args.precision, **{k: v for k, v in (("init", args.init), ("steps", args.steps)) if v is not None},
    )
    result = transfer(content, style, **common)
    path = _save_or_keep(result.image, output)
    h = result.history
    i = result.best_step - 1
    tv = f" + tv {h['tv'][i]:.4g}" if "tv" in h else ""
    print(
        f"saved {path} ({result.image.shape[-1]}x{result.image.shape[-2]}) after {result.steps} steps "
        f"in {result.seconds:.1f} s ({result.seconds / max(result.steps, 1):.2f} s/step, {result.settings['device']}); "
        f"loss {h['total'][i]:.4g} = content {h['content'][i]:.4g} + style {h['style'][i]:.4g}{tv}"
        + ("" if result.stopped == "done" else f"; stopped early: {result.stopped}")
    )
    return 0 if path == output else 1  # 1: saved elsewhere, as the error line says


def _save_or_keep(image, path: Path) -> Path:
    """Save the result; if that fails now (disk full, permissions changed), save it to a temporary file."""
    from .images import save_image

    try:
        return save_image(image, path)
    except (OSError, ValueError) as err:
        kept = Path(tempfile.mkstemp(prefix="nst-result-", suffix=".png")[1])
        save_image(image, kept)
        print(f"error: could not save {path} ({err}); the result is kept in {kept}", file=sys.stderr)
        return kept


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nst_helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("transfer", help="style transfer of CONTENT in the style of STYLE")
    t.add_argument("content", help="image path, URL or sample name (tubingen, starry_night, ...)")
    t.add_argument("style", nargs="+", help="image path, URL or sample name; several paintings are blended "
                   "(--style-weights)")
    t.add_argument("-o", "--output", required=True, help="where to save the result (PNG, JPEG)")
    t.add_argument("--alpha", type=float, default=1.0, help="content weight (eq. 7)")
    t.add_argument("--beta", type=float, default=None,
                   help="style weight (eq. 7); default: balanced for the size, recipe and network "
                        "(nst_helpers.balance.default_beta)")
    t.add_argument("--recipe", choices=["coarse_to_fine", "paper", "quick"], default="coarse_to_fine",
                   help="coarse_to_fine: white noise, 80 steps at half size then 80 at full size; paper: the "
                        "paper's single pass, 300 steps; quick: from the photo with more content, 100 steps, for "
                        "previews (nst_helpers.balance.RECIPES)")
    t.add_argument("--tv-weight", type=float, default=None,
                   help="total-variation weight, against the grain the paper's loss cannot see (default: "
                        "nst_helpers.balance.default_tv_weight for the network; 0 is the paper's loss)")
    t.add_argument("--style-weights", default=None,
                   help="with several STYLE images, their shares, comma-separated (default equal), e.g. 0.7,0.3")
    t.add_argument("--preserve-color", choices=["luminance", "histogram"], default=None,
                   help="keep the photo's colours (Gatys et al. 2017): style on the luminance only, or the "
                        "painting's colours first matched to the photo's (default: the painting's colours)")
    t.add_argument("--content-layer", default="relu4_2", help="the paper's conv4_2 (rectified)")
    t.add_argument("--style-layers", default=",".join(STYLE_LAYERS), help="comma-separated layer names")
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: bf16 features where the device has bf16 in hardware (CUDA 8.0+, CPUs with AVX512-BF16, AMX or Arm BF16), fp32 elsewhere")
    _add_common(t, steps=None, steps_help="loss+gradient evaluations in all (default: the recipe's)")
    t.set_defaults(run=_transfer)
    try:
        from .figure_files import add_cli

        add_cli(sub, _add_common)
    except ImportError:  # figures module not present
        pass
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, MemoryError, ImportError) as err:  # bad input or a missing resource: one line
        print(f"error: {err}", file=sys.stderr)
        return 2  # anything else is a bug and shows its traceback
    except KeyboardInterrupt:  # a single transfer keeps its best image and saves it; this ends `figures`
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
