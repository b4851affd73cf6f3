"""Agreement figures vs reference implementations, and consensus accuracy vs gold.

For every multi-annotator set in ../shared/datasets (snow2008_rte, lewidi_hs_brexit,
lewidi_md_agreement): Fleiss' kappa vs statsmodels, Krippendorff's alpha vs the ``krippendorff``
package, Cohen's kappa of every pair (up to 300 sampled) vs scikit-learn — largest absolute
difference and time for each side. On snow2008_rte: majority-vote and Dawid-Skene accuracy against
``gold_label`` next to the source paper's 0.897 for majority vote.

Targets (exit 1 when missed): every difference <= 1e-9; majority vote (expected accuracy under
random tie-breaking) within 0.005 of 0.897; Dawid-Skene at least as accurate as majority vote.

Usage: python scripts/bench_agreement.py [--out bench_out/agreement_bench.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
SETS = ["snow2008_rte", "lewidi_hs_brexit", "lewidi_md_agreement"]
PAPER_MV = 0.897


def main() -> int:
    import krippendorff
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    from selector.quality.agreement import (
        agreement,
        encode_ratings,
        fleiss_kappa,
        krippendorff_alpha,
        pairwise_agreement,
    )
    from selector.quality.annotations import prepare_annotations

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(REPO / "bench_out" / "agreement_bench.json"))
    args = parser.parse_args()

    rows, ok = [], True
    for name in SETS:
        df = pd.read_csv(DATASETS / name / "data.csv", dtype=str, keep_default_na=False)
        ann = prepare_annotations(df)
        codes = encode_ratings(ann)
        t = time.perf_counter()
        report = agreement(df)
        t_full = time.perf_counter() - t
        t = time.perf_counter()
        fk = fleiss_kappa(codes)
        alpha = krippendorff_alpha(codes)
        pw = pairwise_agreement(codes, min_shared=2)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        ref_fk = sm_fleiss(codes.counts[codes.n_ratings_per_item == fk.raters_per_item])
        rel = np.full((codes.annotators.size, codes.items.size), np.nan)
        rel[codes.annotator, codes.item] = codes.label
        ref_alpha = krippendorff.alpha(reliability_data=rel, level_of_measurement="nominal")
        sample = pw if len(pw) <= 300 else pw.sample(300, random_state=0)
        wide = ann.pivot(index="item_id", columns="annotator", values="label")
        kdiff = 0.0
        for a, b, kappa in sample[["annotator_a", "annotator_b", "cohen_kappa"]].itertuples(index=False):
            both = wide[[a, b]].dropna()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = cohen_kappa_score(both[a], both[b])
            if np.isnan(ref) != np.isnan(kappa):
                kdiff = float("inf")
            elif not np.isnan(ref):
                kdiff = max(kdiff, abs(ref - kappa))
        t_ref = time.perf_counter() - t
        row = {"dataset": name, "ratings": int(codes.item.size), "items": int(codes.items.size),
               "annotators": int(codes.annotators.size), "fleiss": fk.kappa, "d_fleiss": abs(fk.kappa - ref_fk),
               "alpha": alpha, "d_alpha": abs(alpha - ref_alpha), "pairs_checked": int(len(sample)),
               "d_cohen_max": kdiff, "s_ours": t_ours, "s_reference": t_ref, "s_full_report": t_full}
        ok &= max(row["d_fleiss"], row["d_alpha"], row["d_cohen_max"]) <= 1e-9
        rows.append(row)

    print(f"{'dataset':<22}{'ratings':>8}{'items':>7}{'annot':>6}{'fleiss':>8}{'|d|':>9}{'alpha':>8}{'|d|':>9}"
          f"{'pairs':>6}{'max|d| cohen':>13}{'ours s':>8}{'ref s':>8}{'report s':>9}")
    for r in rows:
        print(f"{r['dataset']:<22}{r['ratings']:>8}{r['items']:>7}{r['annotators']:>6}{r['fleiss']:>8.4f}"
              f"{r['d_fleiss']:>9.1e}{r['alpha']:>8.4f}{r['d_alpha']:>9.1e}{r['pairs_checked']:>6}"
              f"{r['d_cohen_max']:>13.1e}{r['s_ours']:>8.3f}{r['s_reference']:>8.3f}{r['s_full_report']:>9.3f}")

    snow = pd.read_csv(DATASETS / "snow2008_rte" / "data.csv", dtype=str, keep_default_na=False)
    g = agreement(snow, gold_col="gold_label").gold_accuracy
    print()
    print(f"snow2008_rte consensus accuracy vs gold_label ({g['n_items_with_gold']} items, {g['n_ties']} ties)")
    print(f"  {'method':<44}{'accuracy':>9}")
    print(f"  {'paper (Snow et al. 2008), majority vote':<44}{PAPER_MV:>9.3f}")
    print(f"  {'majority vote, expected over random ties':<44}{g['majority_vote_expected']:>9.3f}")
    print(f"  {'majority vote, one seeded tie-break (seed 0)':<44}{g['majority_vote_random_ties']:>9.3f}")
    print(f"  {'majority vote, untied items only':<44}{g['majority_vote_untied_only']:>9.3f}")
    print(f"  {'Dawid-Skene (EM)':<44}{g['dawid_skene']:>9.3f}")
    mv_ok = abs(g["majority_vote_expected"] - PAPER_MV) <= 0.005
    ds_ok = g["dawid_skene"] >= g["majority_vote_expected"]
    ok &= mv_ok and ds_ok
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"reference_checks": rows, "snow2008_rte_gold": g, "paper_majority_vote": PAPER_MV,
                               "targets_met": bool(ok)}, indent=2) + "\n")
    print(f"\ntargets: diffs <= 1e-9 {'ok' if all(max(r['d_fleiss'], r['d_alpha'], r['d_cohen_max']) <= 1e-9 for r in rows) else 'MISSED'}; "
          f"majority vote within 0.005 of {PAPER_MV} {'ok' if mv_ok else 'MISSED'}; "
          f"Dawid-Skene >= majority vote {'ok' if ds_ok else 'MISSED'} -> {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
