"""Leave-one-setting-out choice between consensus variants, from `bench_consensus.py` result files.

Each variant is one run of ``scripts/bench_consensus.py --out FILE`` with the code of that variant.
For each setting held out, the variant that passes more targets (accuracy at or above majority vote
and CROWDLAB within the spread, ECE <= 0.05) on the *other* settings is chosen (ties: the larger
summed accuracy margin), and its figures on the held-out setting are printed.

Run: python scripts/consensus_lodo.py NAME=results.json NAME=results.json ...
"""

from __future__ import annotations

import json
import sys


def score(table: dict, name: str) -> tuple[int, float]:
    """(targets passed, accuracy margin over the better of majority and CROWDLAB net of the spread)."""
    acc, spread = table[name]["accuracy"], table[name]["spread_vs"]
    margin = min(acc["selector_default"] - acc[base] + spread[base] for base in ("majority", "cleanlab_crowdlab"))
    return int(margin >= -1e-12) + int(table[name]["ece"]["selector_default"] <= 0.05), margin


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        raise SystemExit(__doc__)
    variants = {a.split("=", 1)[0]: json.load(open(a.split("=", 1)[1]))["table"] for a in argv}
    names = list(next(iter(variants.values())))
    print(f"{'held-out setting':<22}{'chosen':>10}  {'accuracy':>9}{'margin':>8}{'ECE':>7}   in-sample per variant")
    for held in names:
        passes = {k: sum(score(t, n)[0] for n in names if n != held) for k, t in variants.items()}
        margins = {k: sum(score(t, n)[1] for n in names if n != held) for k, t in variants.items()}
        pick = max(variants, key=lambda k: (passes[k], margins[k]))
        t = variants[pick][held]
        inside = "  ".join(f"{k}: {v[held]['accuracy']['selector_default']:.3f}/{score(v, held)[1]:+.3f}/"
                           f"{v[held]['ece']['selector_default']:.3f}" for k, v in variants.items())
        print(f"{held:<22}{pick:>10}  {t['accuracy']['selector_default']:>9.3f}{score(variants[pick], held)[1]:>+8.3f}"
              f"{t['ece']['selector_default']:>7.3f}   {inside}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
