"""Choosing the default alpha/beta: a grid of ratios x sizes x three paintings, and the terms' shares.

    python benchmarks/balance.py            # runs what is missing, then writes balance_grid.png, prints the table

Rows: painting x size; columns: the ratios RATIOS_256 at 256 px, moved to each size by the package's
rule (balance.ratio_at), so each column also tests that rule. With the package's
defaults otherwise (raw Caffe VGG-19, average pooling, quiet-noise start, L-BFGS, the default
total-variation term). Printed per run: the content and style terms' shares of the final loss
(alpha L_content and beta L_style over their sum) and how far each fell from the start (final / first),
and the grain figure. Runs are saved under benchmarks/grain_runs/ (git-ignored) and reused.
The criterion (benchmarks/RESULTS.md): the smallest ratio at which the photo's houses and church
stay readable in every painting, with both terms well below their start values.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw

import nst_helpers as nst
from nst_helpers.balance import ratio_at
from nst_helpers.stats import grain

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grain_study import RUNS, image_path  # noqa: E402  (the sibling benchmark's run folder and image paths)

HERE = Path(__file__).resolve().parent
PAINTINGS = ["starry_night", "the_scream", "composition_vii"]
SIZES = {128: 150, 256: 300}  # long edge (px): evaluations
RATIOS_256 = [1e-3, 3e-3, 1e-2]  # alpha/beta at 256 px; 1e-2 was the default before this study


def run(style: str, size: int, ratio_256: float) -> dict:
    out = RUNS / f"balance_{style}_{size}_{ratio_256:g}.json"
    photo = nst.load_image("tubingen", size)
    painting = nst.load_image(image_path(style), size)
    if not out.exists():
        ratio = ratio_at(ratio_256, size)
        result = nst.transfer(photo, painting, alpha=ratio, beta=1.0, steps=SIZES[size], recipe="paper", progress=False)
        nst.save_image(result.image, out.with_suffix(".png"))
        h, i = result.history, result.best_step - 1
        out.write_text(json.dumps({
            "style": style, "size": size, "ratio_256": ratio_256, "ratio": ratio, "png": out.with_suffix(".png").name,
            "seconds": round(result.seconds, 1), "tv_weight": result.settings["tv_weight"], "steps": result.steps,
            "content_share": h["content"][i] / (h["content"][i] + h["style"][i]),
            "content_fell_to": h["content"][i] / h["content"][0], "style_fell_to": h["style"][i] / h["style"][0],
        }, indent=1))
    record = json.loads(out.read_text())
    record["grain"] = grain(nst.load_image(RUNS / record["png"]), photo, painting)
    return record


def main() -> None:
    RUNS.mkdir(exist_ok=True)
    rows = [[run(style, size, r) for r in RATIOS_256] for style in PAINTINGS for size in SIZES]
    print("| painting | px | alpha/beta | content share | content / start | style / start | grain |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        for r in row:
            print(f"| {r['style']} | {r['size']} | {r['ratio']:.2g} ({r['ratio_256']:g} at 256) | {r['content_share']:.2f} | "
                  f"{r['content_fell_to']:.3f} | {r['style_fell_to']:.4f} | {r['grain']:.2f} |")
    cell, label_h = 256, 18
    tiles = [[Image.open(RUNS / r["png"]).convert("RGB") for r in row] for row in rows]
    tiles = [[im.resize((cell, round(cell * im.height / im.width)), Image.LANCZOS) for im in row]  # 128 px enlarged
             for row in tiles]
    heights = [max(im.height for im in row) + label_h for row in tiles]
    sheet = Image.new("RGB", (cell * len(RATIOS_256), sum(heights)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (row, images) in enumerate(zip(rows, tiles)):
        y = sum(heights[:i])
        for j, (r, im) in enumerate(zip(row, images)):
            sheet.paste(im, (j * cell, y))
            draw.text((j * cell + 4, y + im.height + 3),
                      f"{r['style']} {r['size']} px, a/b {r['ratio']:.2g}, grain {r['grain']:.2f}", fill="black")
    sheet.save(HERE / "balance_grid.png")


if __name__ == "__main__":
    main()
