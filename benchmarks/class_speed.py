"""Class-time speed: which levers give a finished 256 px picture in less time on a CPU.

    python benchmarks/class_speed.py --out benchmarks/class_speed   # ~10 min on 2 cores

For two pairs (the paper's Tübingen + Starry Night, and Grace Hopper from matplotlib's sample
data + The Scream) it runs today's default transfer (300 evaluations from white noise, ``precision="auto"``)
and the candidates below, and prints for each: wall seconds, evaluations by size, the final
picture's loss under the 256 px default objective (fp32, the same for every candidate, so the
numbers compare), and the grain figure (``stats.grain``). The pictures go to ``--out`` with a
contact sheet per pair; the table and what was chosen are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from PIL import Image
from two_pass import two_pass

import nst_helpers as nst
from nst_helpers.stats import grain

SIZE = 256


def load(name: str, size: int) -> torch.Tensor:
    if name == "grace_hopper":
        import matplotlib.cbook

        name = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return nst.load_image(name, size)


def candidates(size: int) -> dict[str, dict]:
    """name -> how to run it: ``scale_steps`` for two passes of any split (``two_pass.py``), else ``transfer``'s keywords."""
    return {
        "today: 300": {"steps": 300, "recipe": "paper"},
        "120": {"steps": 120, "recipe": "paper"},
        "c2f 90+90": {"recipe": "coarse_to_fine"},  # the recipe: 180 steps split evenly
        "c2f 100+100": {"scale_steps": (100, 100)},
        "c2f 80+80": {"scale_steps": (80, 80)},
        "c2f 150+60": {"scale_steps": (150, 60)},
        "c2f 200+80": {"scale_steps": (200, 80)},
        "c2f 200+50": {"scale_steps": (200, 50)},
    }


def final_loss(photo: torch.Tensor, painting: torch.Tensor, image: torch.Tensor) -> float:
    """The default 256 px objective (fp32) at ``image``: one evaluation started there."""
    return nst.transfer(photo, painting, init=image, steps=1, recipe="paper", precision="fp32",
                        progress=False).history["total"][0]


def arguments(doc: str, out: str) -> argparse.Namespace:
    """The studies' command line: ``--out`` (made if missing), ``--only`` some runs, ``--pairs`` of photo:painting."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--only", default="", help="comma-separated run names (default all)")
    parser.add_argument("--pairs", default="tubingen:starry_night,grace_hopper:the_scream")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def main() -> None:
    args = arguments(__doc__, "/tmp/class_speed")
    out = args.out
    rows = []
    chosen = candidates(SIZE)
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    nst.Options().vgg()  # warm the network cache (the engine's default network): not part of any candidate's time
    for pair in args.pairs.split(","):
        content, style = pair.split(":")
        photo, painting = load(content, SIZE), load(style, SIZE)
        tiles = []
        for name, how in chosen.items():
            how = dict(how)
            start = time.perf_counter()
            if "scale_steps" in how:
                result = two_pass(photo, painting, how.pop("scale_steps"), progress=False, **how)
            else:
                result = nst.transfer(photo, painting, progress=False, **how)
            seconds = time.perf_counter() - start
            row = {"pair": pair, "candidate": name, "seconds": round(seconds, 1), "steps": result.steps,
                   "loss": final_loss(photo, painting, result.image), "grain": round(grain(result.image, photo, painting), 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            file = out / f"{content}_{name.replace(' ', '_').replace(':', '').replace('+', '-')}.png"
            nst.save_image(result.image, file)
            tiles.append((file, name))
        sheet = Image.new("RGB", (len(tiles) * (SIZE + 8), SIZE + 8), "white")
        for i, (file, _) in enumerate(tiles):
            sheet.paste(Image.open(file), (i * (SIZE + 8), 0))
        sheet.save(out / f"sheet_{content}.png")
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    base = {r["pair"]: r for r in rows if r["candidate"].startswith("today")}
    print("\n| pair | candidate | s | evaluations | loss / today's | grain |\n|---|---|---|---|---|---|")
    for r in rows:
        ref = base.get(r["pair"])
        rel = f"{r['loss'] / ref['loss']:.3f}" if ref else "-"
        print(f"| {r['pair']} | {r['candidate']} | {r['seconds']} | {r['steps']} | {rel} | {r['grain']} |")


if __name__ == "__main__":
    main()
