"""How a grid comparison depends on the seeds drawn: cells passed and mean gains of two rules on every
3-seed subset (and a few larger ones) of a grid results file from ``bench_selection.py --grid``.

    python scripts/grid_seed_subsets.py scripts/results/bench_selection_grid_8seeds_default.json auto auto:stability_pick=false

Each subset is judged as the grid judges the full run (:func:`bench_selection.grid_ok`: at or above the best
baseline within the seed spread, final round not below margin's beyond it), on the seeds it holds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_selection import curve_stats, grid_ok  # noqa: E402


def on_seeds(strategies: dict, idx: list[int]) -> dict:
    """Each strategy's per-seed accuracy curves reduced to the seeds at positions ``idx``: the fields
    :func:`grid_ok` reads (acc_mean, acc_std, aulc, aulc_std)."""
    return {spec: curve_stats(np.asarray(v["acc_per_seed"])[idx]) for spec, v in strategies.items()}


def score(cells: dict, rule: str, idx: list[int]) -> tuple[int, float, float]:
    """(cells passed, mean AULC gain over random, over margin) of ``rule`` on the seeds at ``idx``."""
    passed, over_random, over_margin = 0, [], []
    for cell in cells.values():
        st = on_seeds(cell["strategies"], idx)
        passed += grid_ok(st, rule)
        over_random.append(st[rule]["aulc"] - st["random"]["aulc"])
        over_margin.append(st[rule]["aulc"] - st["margin"]["aulc"])
    return passed, float(np.mean(over_random)), float(np.mean(over_margin))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="results JSON of bench_selection.py --grid")
    ap.add_argument("rule", help="strategy spec compared (e.g. auto)")
    ap.add_argument("other", help="the spec it is compared with")
    args = ap.parse_args(argv)
    cells = json.loads(Path(args.results).read_text())["datasets"]
    n_seeds = min(len(c["strategies"][s]["acc_per_seed"]) for c in cells.values() for s in (args.rule, args.other))
    half = n_seeds // 2
    named = [("first 3", list(range(3))), ("last 3", list(range(n_seeds - 3, n_seeds))),
             (f"first {half + 1}", list(range(half + 1))), (f"last {half + 1}", list(range(n_seeds - half - 1, n_seeds))),
             (f"all {n_seeds}", list(range(n_seeds)))]
    print(f"{'seeds':10s} {args.rule:>34s} {args.other:>34s}")
    for name, idx in named:
        a, b = score(cells, args.rule, idx), score(cells, args.other, idx)
        print(f"{name:10s} {a[0]:3d}/{len(cells)} {a[1]:+.4f} {a[2]:+.4f}            {b[0]:3d}/{len(cells)} {b[1]:+.4f} {b[2]:+.4f}")
    subsets = list(itertools.combinations(range(n_seeds), 3))
    a = np.array([score(cells, args.rule, list(s)) for s in subsets])
    b = np.array([score(cells, args.other, list(s)) for s in subsets])
    print(f"every 3-seed subset ({len(subsets)}), means: {args.rule} {a[:, 0].mean():.1f}/{len(cells)} cells "
          f"{a[:, 1].mean():+.4f} {a[:, 2].mean():+.4f}; {args.other} {b[:, 0].mean():.1f}/{len(cells)} "
          f"{b[:, 1].mean():+.4f} {b[:, 2].mean():+.4f}")
    more, fewer = int(np.sum(a[:, 0] > b[:, 0])), int(np.sum(a[:, 0] < b[:, 0]))
    print(f"{args.rule} passes more cells than {args.other} on {more} subsets, fewer on {fewer}, "
          f"as many on {len(subsets) - more - fewer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
