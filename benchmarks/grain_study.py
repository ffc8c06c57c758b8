"""Grain in transfers: our defaults, candidate fixes one at a time, and pastiche, measured and laid out.

    python benchmarks/grain_study.py candidates   # Tübingen x The Starry Night: each candidate alone
    python benchmarks/grain_study.py sheet        # every pair: old defaults, new defaults, pastiche
    python benchmarks/grain_study.py presets      # the lab's default run at its CPU preset (and with The Scream)
    python benchmarks/grain_study.py small --size 144 --steps 100  # fixes for the small CPU presets
    python benchmarks/grain_study.py table        # print both tables again from the saved runs
    python benchmarks/grain_study.py checker --size 144 --steps 100  # why: what the loss sees of grain

Each run is saved once under benchmarks/grain_runs/ (PNG + JSON; git-ignored) and
reused, so a second call only lays out and prints. The grain figure is
``nst_helpers.stats.grain`` (top-band power of the result over the larger of the
photo's and the painting's, both at the result's long edge). Also printed:
each style layer's share of beta L_style at the end (where the style loss looks)
and the content and style terms' shares of the total.
``checker`` takes the "old defaults" run (the paper's loss, from noise) and prints each term of the loss
(content, each style layer's w_l E_l, L_tv) and the grain figure with a +-0.05 pixel checker laid over
the result and with a 3x3 box blur, each over its value at the result: what eq. 7 sees of grain.
Needs NST_DATA_DIR (or the images downloaded once) and, for its column, the
``pastiche`` command (installed with the project).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from two_pass import two_pass

import nst_helpers as nst
from nst_helpers.losses import gram_matrix, rescale_gram, style_layer_loss
from nst_helpers.smoothing import Smoothing
from nst_helpers.stats import grain

HERE = Path(__file__).resolve().parent
RUNS = HERE / "grain_runs"
PHOTO = "tubingen"
#: The paper's five paintings (Fig. 2 / 2016 Fig. 3) with its photo, plus a pair that is not the paper's:
#: matplotlib's sample photo of Grace Hopper (US Navy, public domain) with The Scream.
PAIRS = [(PHOTO, "shipwreck"), (PHOTO, "starry_night"), (PHOTO, "the_scream"), (PHOTO, "seated_nude"),
         (PHOTO, "composition_vii"), ("grace_hopper", "the_scream")]
#: Still under copyright: measured and tabulated, but left out of the committed contact sheet.
NOT_ON_SHEET = {"seated_nude"}

OLD = dict(beta=1e2, extras=())  # the defaults before this study (alpha/beta = 1e-2 at 256 px, no TV)
GATYS_CODE_WEIGHTS = {layer: 4e3 / n**2 for layer, n in zip(nst.STYLE_LAYERS, (64, 128, 256, 512, 512))}
#: ``pooling`` and ``normalize`` name the run's network (``run_ours`` loads it: ``transfer(network=...)``).
CANDIDATES: dict[str, dict] = {
    "old defaults": OLD,
    "max pooling": {**OLD, "pooling": "max"},
    "photo start": {**OLD, "init": "content"},
    "600 evaluations": {**OLD, "steps": 600},
    "alpha/beta 1e-3": {**OLD, "beta": 1e3},
    "author's layer weights": {**OLD, "layer_weights": GATYS_CODE_WEIGHTS},
    "normalised network": {**OLD, "normalize": True, "beta": 1 / 2.5e-7},  # paper_ratio(1e-3, 256)
    "TV 1e4": {**OLD, "extras": [Smoothing(1e4)]},
    "TV 3e4": {**OLD, "extras": [Smoothing(3e4)]},
    "TV 1e5": {**OLD, "extras": [Smoothing(1e5)]},
}

#: The small presets (128-144 px, 100 evaluations): what brings the photo back. Each is a function of
#: (size, steps) so that the balanced ratio and the split follow the preset.
def BALANCED(size: int) -> float:  # noqa: N802 (reads as the constant it stands for)
    """beta for the size rule's alpha/beta (``balance.balanced_ratio``), alpha = 1."""
    return 1 / nst.balanced_ratio(size)


SMALL_PAINTINGS = ["starry_night", "the_scream", "composition_vii", "shipwreck"]
SMALL_CANDIDATES = {  # every start and beta given: recipe="quick" (balance.RECIPES) is the winner here
    "balanced": lambda size, steps: {"init": "noise", "beta": BALANCED(size)},
    "ratio x3": lambda size, steps: {"init": "noise", "beta": BALANCED(size) / 3},
    "ratio x10": lambda size, steps: {"init": "noise", "beta": BALANCED(size) / 10},
    "photo start": lambda size, steps: {"init": "content", "beta": BALANCED(size)},
    "coarse-to-fine": lambda size, steps: {"init": "noise", "beta": BALANCED(size), "scales": (size // 2, size),
                                           "scale_steps": (steps * 4 // 5, steps * 4 // 5)},
    "photo start, ratio x3": lambda size, steps: {"init": "content", "beta": BALANCED(size) / 3},
    "photo start, ratio x10": lambda size, steps: {"init": "content", "beta": BALANCED(size) / 10},
}


def image_path(name: str) -> Path:
    if name == "grace_hopper":
        import matplotlib.cbook

        return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return nst.sample_image(name)


def slug(*parts: str) -> str:
    return "_".join(p.replace("/", "").replace(" ", "-").replace("'", "") for p in parts)


def shares(result: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor, settings: dict) -> dict:
    """Each style layer's share of w_l E_l (eq. 5) at the result, on the run's own network and weights."""
    vgg = nst.load_vgg19("caffe", pooling=settings.get("pooling", "avg"), device="cpu",
                         normalize=settings.get("normalize", False))
    layers = list(nst.STYLE_LAYERS)
    weights = settings.get("layer_weights") or {k: 1 / len(layers) for k in layers}
    with torch.no_grad():
        fx, fs = vgg(result, layers), vgg(painting, layers)
        terms = {}
        for k in layers:
            m_x, m_s = fx[k].shape[-1] * fx[k].shape[-2], fs[k].shape[-1] * fs[k].shape[-2]
            terms[k] = weights[k] * float(style_layer_loss(fx[k], rescale_gram(gram_matrix(fs[k]), m_s, m_x)))
    total = sum(terms.values())
    return {k: v / total for k, v in terms.items()}


#: The script the issue's figures were first measured with (PIL thumbnails, total power), if it is here.
ISSUE_TOOL = HERE.parents[1] / "shared" / "tools" / "grain.py"


def issue_figure(record: dict) -> float | None:
    """The grain figure as ``../shared/tools/grain.py`` computes it, for comparison with the issue's numbers."""
    if not ISSUE_TOOL.exists():
        return None
    spec = importlib.util.spec_from_file_location("issue_grain", ISSUE_TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.grain(str(RUNS / record["png"]), str(image_path(record["content"])), str(image_path(record["style"])))


def with_grain(record: dict) -> dict:
    """The grain figures of a saved run, measured now from its PNG (as a viewer sees it)."""
    size = record["size"]
    photo = nst.load_image(image_path(record["content"]), size=size)
    painting = nst.load_image(image_path(record["style"]), size=size)
    return {**record, "grain": grain(nst.load_image(RUNS / record["png"]), photo, painting),
            "issue_grain": issue_figure(record)}


def run_ours(content: str, style: str, label: str, kwargs: dict, size: int, steps: int) -> dict:
    out = RUNS / f"{slug(content, style, label)}_{size}.json"
    if out.exists():
        return with_grain(json.loads(out.read_text()))
    photo, painting = nst.load_image(image_path(content), size=size), nst.load_image(image_path(style), size=size)
    kwargs = {"steps": steps, **kwargs}
    run = dict(kwargs)
    network = {k: run.pop(k) for k in ("pooling", "normalize") if k in run}
    if network:
        run["network"] = nst.load_vgg19("caffe", **network)
    if "scales" in run:  # two passes: half size, then full size (the studies' own splits)
        run.pop("scales")
        result = two_pass(photo, painting, tuple(run.pop("scale_steps")), progress=False, **run)
    else:
        result = nst.transfer(photo, painting, progress=False, **{"recipe": "paper", **run})
    png = out.with_suffix(".png")
    nst.save_image(result.image, png)
    h = result.history
    last = {k: h[k][result.best_step - 1] if k in h else 0.0 for k in ("total", "content", "style", "tv")}  # no tv: 0
    record = {"content": content, "style": style, "label": label, "size": size, "png": png.name,
              "seconds": round(result.seconds, 1), "steps": result.steps,
              "final": last, "style_layer_shares": shares(result.image, photo, painting, result.settings),
              "settings": kwargs}
    out.write_text(json.dumps(record, indent=1, default=repr))  # extras as written: Smoothing(weight=...)
    return with_grain(record)


def run_pastiche(content: str, style: str, size: int, steps: int) -> dict:
    out = RUNS / f"{slug(content, style, 'pastiche')}_{size}.json"
    if out.exists():
        return with_grain(json.loads(out.read_text()))
    command = shutil.which("pastiche") or str(Path(sys.executable).with_name("pastiche"))
    png = out.with_suffix(".png")
    start = time.perf_counter()
    subprocess.run([command, "--content", str(image_path(content)), "--styles", str(image_path(style)),
                    "--output", str(png), "--size", str(size), "--num-steps", str(steps), "--seed", "0",
                    "--no-verbose"], check=True)
    seconds = time.perf_counter() - start
    record = {"content": content, "style": style, "label": "pastiche", "size": size, "png": png.name,
              "seconds": round(seconds, 1), "steps": steps,
              "settings": "pastiche 1.6.0 defaults: photo start, max pooling, style ~500^2 px, 10/N^2, TV 0"}
    out.write_text(json.dumps(record, indent=1))
    return with_grain(record)


def contact_sheet(rows: list[list[dict]], columns: list[str], path: Path, size: int) -> None:
    """A grid: one row per pair (photo, painting, then each column's result with its grain figure)."""
    cell, label_h = size, 18

    def tiles(row: list[dict]) -> list[tuple[Image.Image, str]]:
        content, style = row[0]["content"], row[0]["style"]
        out = [(Image.open(image_path(content)), content), (Image.open(image_path(style)), style)]
        out += [(Image.open(RUNS / r["png"]), f"{r['label']}: {r['grain']:.2f} (issue's {r['issue_grain'] or 0:.2f})")
                for r in row]
        for im, _ in out:
            im.draft("RGB", (cell, cell))
        return [(im.convert("RGB"), text) for im, text in out]

    laid = []
    for row in rows:
        row_tiles = tiles(row)
        for im, _ in row_tiles:
            im.thumbnail((cell, cell), Image.LANCZOS)
        laid.append(row_tiles)
    heights = [max(im.height for im, _ in row) + label_h for row in laid]
    width = (2 + len(columns)) * cell
    sheet = Image.new("RGB", (width, sum(heights) + label_h), "white")
    draw = ImageDraw.Draw(sheet)
    for j, title in enumerate(["photo", "painting", *columns]):
        draw.text((j * cell + 4, 3), title, fill="black")
    for i, row in enumerate(laid):
        y = label_h + sum(heights[:i])
        for j, (im, text) in enumerate(row):
            sheet.paste(im, (j * cell + (cell - im.width) // 2, y))
            draw.text((j * cell + 4, y + heights[i] - label_h + 3), text, fill="black")
    sheet.save(path)


def print_table(rows: list[dict], title: str) -> None:
    print(f"\n{title}\n")
    print("| pair | run | grain | grain (issue's script) | content share | style share | tv share "
          "| relu1_1 / relu4_1 share of style | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pair = f"{r['content']} x {r['style']}"
        issue = "" if r["issue_grain"] is None else f"{r['issue_grain']:.2f}"
        if "final" in r:
            f = r["final"]
            parts = " | ".join(f"{f[k] / f['total']:.2f}" for k in ("content", "style", "tv"))
            layers = r["style_layer_shares"]
            print(f"| {pair} | {r['label']} | {r['grain']:.2f} | {issue} | {parts} | "
                  f"{layers['relu1_1']:.4f} / {layers['relu4_1']:.3f} | {r['seconds']:.0f} |")
        else:
            print(f"| {pair} | {r['label']} | {r['grain']:.2f} | {issue} | | | | | {r['seconds']:.0f} |")


def checker_probe(record: dict) -> None:
    """Each term of the paper's loss at a saved result, with a +-0.05 checker laid over it and with a 3x3 blur.

    The checker (pixels alternately 0.05 brighter and darker, the finest pattern the pixels hold) is grain by
    construction; the blur removes the finest detail. Terms: the content loss at relu4_2 (eq. 1), each style
    layer's w_l E_l (eq. 4, 5; w_l = 1/5, the painting's Gram moved to the result's positions) and L_tv, on the
    raw Caffe network with average pooling, as the run.
    """
    size = record["size"]
    photo = nst.load_image(image_path(record["content"]), size=size)
    painting = nst.load_image(image_path(record["style"]), size=size)
    result = nst.load_image(RUNS / record["png"])
    h, w = result.shape[-2:]
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    checker = (result + 0.05 * (-1.0) ** (rows + cols)).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(result, 3, stride=1, padding=1, count_include_pad=False)
    vgg = nst.load_vgg19("caffe", pooling="avg", device="cpu")
    layers = list(nst.STYLE_LAYERS)
    with torch.no_grad():
        target = vgg(photo, ["relu4_2"])["relu4_2"]
        fs = vgg(painting, layers)

        def terms(image: torch.Tensor) -> dict[str, float]:
            fx = vgg(image, ["relu4_2", *layers])
            out = {"content": float(nst.content_loss(fx["relu4_2"], target))}
            for k in layers:
                m_x, m_s = fx[k].shape[-1] * fx[k].shape[-2], fs[k].shape[-1] * fs[k].shape[-2]
                target_gram = rescale_gram(gram_matrix(fs[k]), m_s, m_x)
                out[k] = float(style_layer_loss(fx[k], target_gram)) / len(layers)
            return out | {"total variation": float(nst.total_variation(image))}

        base, with_checker, with_blur = terms(result), terms(checker), terms(blurred)
    style = sum(base[k] for k in layers)
    print(f"\nWhat the loss sees of grain: {record['label']}, {record['content']} x {record['style']}, {size} px, "
          f"{record['steps']} evaluations\n")
    print("| term | share of L_style | with the checker / without | blurred 3x3 / without |")
    print("|---|---|---|---|")
    for name in base:
        share = f"{base[name] / style:.4f}" if name in layers else ""
        print(f"| {name} | {share} | {with_checker[name] / base[name]:.3f} | {with_blur[name] / base[name]:.3f} |")
    print(f"| L_style | 1 | {sum(with_checker[k] for k in layers) / style:.3f} | "
          f"{sum(with_blur[k] for k in layers) / style:.3f} |")
    beta = record["settings"]["beta"]  # alpha = 1: the run's eq. 7, alpha L_content + beta L_style

    def total(t: dict[str, float]) -> float:
        return t["content"] + beta * sum(t[k] for k in layers)

    print(f"| eq. 7 (alpha/beta {1 / beta:g}) | | {total(with_checker) / total(base):.3f} | "
          f"{total(with_blur) / total(base):.3f} |")
    grains = [grain(image, photo, painting) for image in (result, checker, blurred)]
    print(f"| grain figure | | {grains[0]:.2f} -> {grains[1]:.2f} | {grains[0]:.2f} -> {grains[2]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["candidates", "sheet", "presets", "small", "table", "checker"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--no-pastiche", action="store_true")
    args = parser.parse_args()
    RUNS.mkdir(exist_ok=True)
    torch.manual_seed(0)
    if args.what in ("candidates", "table"):
        rows = [run_ours(PHOTO, "starry_night", label, kw, args.size, args.steps) for label, kw in CANDIDATES.items()]
        if not args.no_pastiche:
            rows.append(run_pastiche(PHOTO, "starry_night", args.size, args.steps))
        print_table(rows, f"Candidates, one at a time ({args.size} px, {args.steps} evaluations)")
        contact_sheet([rows[i:i + 4] for i in range(0, len(rows), 4)], ["grain (issue's)"] * 4,
                      HERE / "grain_candidates.png", 256)
    if args.what == "presets":
        from nst_helpers.lab import LabSettings, lab_preset

        preset = lab_preset("cpu", smoke=False)
        rows = []
        for content, style in [(PHOTO, "starry_night"), (PHOTO, "the_scream")]:  # the lab's default; the worst pair
            # as StyleLab starts: its preset's size and steps, the slider at the balanced ratio for that size
            kwargs = LabSettings(content=content, style=style, ratio=preset.ratio, size=preset.size,
                                 steps=preset.steps, init=preset.init).transfer_kwargs()
            rows.append(run_ours(content, style, f"lab default {preset.init} start", kwargs, preset.size, preset.steps))
        print_table(rows, f"The lab's default run at its CPU preset ({preset.size} px, {preset.steps} steps)")
    if args.what == "small":
        rows, sheet = [], []
        for style in SMALL_PAINTINGS:
            row = [run_ours(PHOTO, style, label, kw(args.size, args.steps), args.size, args.steps)
                   for label, kw in SMALL_CANDIDATES.items()]
            rows += row
            sheet.append(row)
        print_table(rows, f"Fixes for the small presets ({args.size} px, {args.steps} evaluations)")
        contact_sheet(sheet, list(SMALL_CANDIDATES), HERE / f"grain_small_{args.size}.png", 2 * args.size)
    if args.what == "checker":  # the old defaults are the paper's loss from noise (alpha/beta 1e-2)
        checker_probe(run_ours(PHOTO, "starry_night", "old defaults", OLD, args.size, args.steps))
    if args.what in ("sheet", "table"):
        table, sheet = [], []
        for content, style in PAIRS:
            row = [run_ours(content, style, "old defaults", OLD, args.size, args.steps),
                   run_ours(content, style, "new defaults", {}, args.size, args.steps)]
            if not args.no_pastiche:
                row.append(run_pastiche(content, style, args.size, args.steps))
            table += row
            if style not in NOT_ON_SHEET:
                sheet.append(row)
        print_table(table, f"Every pair ({args.size} px, {args.steps} evaluations)")
        for part, first in enumerate(range(0, len(sheet), 3), start=1):  # 3 pairs a file: each under 2 MB
            contact_sheet(sheet[first:first + 3], ["old defaults", "new defaults", "pastiche"][:len(sheet[0])],
                          HERE / f"grain_sheet_{part}.png", args.size)


if __name__ == "__main__":
    main()
