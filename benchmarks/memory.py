"""The memory estimate (``nst_helpers.memory.estimate``) against the measured peak of real runs.

    python benchmarks/memory.py                  # 256, 384 and 512 px on this machine's CPU
    python benchmarks/memory.py --sizes 256,512 --steps 110

Each size runs in a fresh process: the resident memory after importing torch and the package is the
baseline, the peak resident memory (``ru_maxrss``) after a transfer of ``--steps`` L-BFGS evaluations
(110 by default, so that L-BFGS's 100-pair history is full; fewer: the estimate counts as many pairs)
minus that baseline is what the run used. Also prints
the estimate's table for 256-2048 px.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, os, resource, sys
import torch
import nst_helpers as nst
from nst_helpers.memory import estimate
size, steps = int(sys.argv[1]), int(sys.argv[2])
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
photo = nst.load_image("tubingen", size); painting = nst.load_image("starry_night", size)
torch.set_num_threads(2)
base = rss()
result = nst.transfer(photo, painting, steps=steps, init="noise", recipe="paper", progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
h, w = photo.shape[-2:]
print(json.dumps({"size": size, "hw": [h, w], "used": peak - base, "estimate": estimate(h, w, history=min(100, steps)).total,
                  "steps": result.steps}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256,384,512")
    parser.add_argument("--steps", type=int, default=110)
    args = parser.parse_args()
    print("| size | image | estimate | measured peak - baseline | estimate / measured |\n|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, "-c", CHILD, str(size), str(args.steps)], capture_output=True,
                             text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"| {size} px | {r['hw'][1]}x{r['hw'][0]} | {r['estimate'] / 2**20:.0f} MiB | "
              f"{r['used'] / 2**20:.0f} MiB | {r['estimate'] / r['used']:.2f} |", flush=True)
    from nst_helpers.memory import estimate

    print("\n| long edge (4:3) | estimate, L-BFGS | of which L-BFGS history | estimate, Adam |\n|---|---|---|---|")
    for size in (256, 512, 768, 1024, 1536, 2048):
        h = round(size * 0.75)
        lbfgs, adam = estimate(h, size), estimate(h, size, optimizer="adam")
        history = 200 * 3 * h * size * 4
        print(f"| {size} px | {lbfgs.total / 2**30:.2f} GiB | {history / 2**30:.2f} GiB | {adam.total / 2**30:.2f} GiB |")


if __name__ == "__main__":
    main()
