"""How many evaluations the lab's CPU preset needs: its default run at 192 px with 80, 60 and 50.

    python benchmarks/lab_steps.py --out benchmarks/lab_steps_sheet.png   # ~1 min on 2 cores

The lab's run as ``lab.LabRunner`` makes it (the ``quick`` recipe: from the photo, three times the
content weight), on Tübingen + The Starry Night and Grace Hopper (matplotlib's sample) + The Scream.
Prints the engine's seconds, the lowest loss of the run and the grain figure (``stats.grain``), and
saves the pictures side by side at 2x (one row per pair, 80 | 60 | 50). Results: ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses

import matplotlib.cbook
from PIL import Image

from nst_helpers.images import load_image, to_pil
from nst_helpers.lab import LabRun, LabRunner, LabSettings, lab_preset
from nst_helpers.stats import grain

STEPS = (80, 60, 50)


class Keep:
    """A ``LabView`` that keeps the last finished run and shows nothing."""

    run: LabRun | None = None

    def started(self, settings) -> None: ...
    def progressed(self, *args) -> None: ...
    def finished(self, run: LabRun) -> None: self.run = run
    def failed(self, message: str, kind: str) -> None: raise RuntimeError(message)
    def idle(self) -> None: ...


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="/tmp/lab_steps_sheet.png")
    args = parser.parse_args()
    preset = lab_preset("cpu", smoke=False)
    view = Keep()
    runner = LabRunner(view, device="cpu")
    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    rows = []
    print("| pair | steps | engine s | lowest loss | loss / 80 steps' | grain |")
    print("|---|---|---|---|---|---|")
    for content, style, label in (("tubingen", "starry_night", "Tübingen + Starry Night"),
                                  (str(hopper), "the_scream", "Grace Hopper + The Scream")):
        row, first = [], None
        for steps in STEPS:
            settings = dataclasses.replace(LabSettings(), content=content, style=style, size=preset.size,
                                           steps=steps, init=preset.init, ratio=preset.ratio_at(preset.size))
            runner.start(settings)
            runner.wait()
            result = view.run.result
            lowest = min(result.history["total"])
            first = first or lowest
            g = grain(result.image, load_image(content, preset.size), load_image(style, preset.size))
            print(f"| {label} | {steps} | {result.seconds:.1f} | {lowest:.4g} | {lowest / first:.3f} | {g:.3f} |",
                  flush=True)
            picture = to_pil(result.image)
            row.append(picture.resize((2 * picture.width, 2 * picture.height), Image.NEAREST))
        rows.append(row)
    sheet = Image.new("RGB", (max(sum(p.width for p in r) for r in rows), sum(r[0].height for r in rows)), "white")
    y = 0
    for row in rows:
        x = 0
        for picture in row:
            sheet.paste(picture, (x, y))
            x += picture.width
        y += row[0].height
    sheet.save(args.out)


if __name__ == "__main__":
    main()
