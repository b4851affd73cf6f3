"""Build the small example files under tests/data/ from ../shared/datasets (seeded, reproducible).

    python scripts/build_examples.py [--shared ../shared/datasets] [--out tests/data]

- ``chat_banking77.jsonl``: 240 banking77 customer messages of 10 intents (24 each, seeded sample)
  as chat-format fine-tuning data: a routing system prompt, the message as the user turn and the
  intent as a JSON reply ``{"intent": ...}``. Every 4th conversation has no reply yet (a prompt to
  label), so a round can select from it.
- ``ratings_hs_brexit.csv``: 400 HS-Brexit tweets (seeded sample of 1,120). The source has 6
  annotators per tweet in two panels of 3 (the target group and a control group). Each panel's
  rating of a tweet is how many of its 3 members called it hate: a 0-3 severity scale, real human
  judgements, two raters (the panels).
- ``preferences_hs_brexit.csv``: 150 pairs of HS-Brexit tweets (seeded, each pair holding at least
  one tweet some annotator called hate), prompt "Which tweet is more hateful?". Each of the 6
  annotators' preference follows their own labels: the tweet they called hate, or a tie when they
  labeled both alike. The control group's rows show the pair in swapped order (as a tool that
  randomises sides would), so consensus must flip them back.
- ``rubric_synthetic.csv``: a synthetic rubric (no shared set has one): 80 replies rated 1-5 on
  ``helpful``, ``correct`` and ``safe`` by 4 raters, each with a fixed bias; ``helpful`` is the vague
  criterion (more rater noise) and guideline ``v2`` halves the noise of ``v1``. Seeded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = ("You route customer messages for a bank's support desk. Reply with JSON "
          "{\"intent\": <one of the support intents>} and nothing else.")


def chat_banking77(shared: Path, out: Path, seed: int = 0) -> Path:
    df = pd.read_csv(shared / "banking77" / "data.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    intents = sorted(rng.choice(sorted(df["label"].unique()), size=10, replace=False))
    parts = [df[df["label"] == lab].sample(24, random_state=seed) for lab in intents]
    sample = pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    path = out / "chat_banking77.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i, row in sample.iterrows():
            messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": row["text"]}]
            if i % 4 != 3:
                messages.append({"role": "assistant", "content": json.dumps({"intent": row["label"]})})
            fh.write(json.dumps({"id": f"b77-{i:03d}", "messages": messages}, ensure_ascii=False) + "\n")
    return path


def ratings_hs_brexit(shared: Path, out: Path, seed: int = 0) -> Path:
    df = pd.read_csv(shared / "lewidi_hs_brexit" / "data.csv", dtype=str, keep_default_na=False)
    items = pd.Series(sorted(df["item_id"].unique())).sample(400, random_state=seed)
    df = df[df["item_id"].isin(set(items))]
    df = df.assign(hate=(df["label"] == "hate").astype(int))
    panels = (df.groupby(["item_id", "annotator_group"], sort=True)
              .agg(rating=("hate", "sum"), n=("hate", "size"), text=("text", "first")).reset_index())
    assert (panels["n"] == 3).all()
    panels = panels.rename(columns={"annotator_group": "annotator"})[["item_id", "annotator", "rating", "text"]]
    path = out / "ratings_hs_brexit.csv"
    panels.to_csv(path, index=False)
    return path


def preferences_hs_brexit(shared: Path, out: Path, seed: int = 0) -> Path:
    df = pd.read_csv(shared / "lewidi_hs_brexit" / "data.csv", dtype=str, keep_default_na=False)
    votes = df.pivot_table(index="item_id", columns="annotator", values="label", aggfunc="first")
    text = df.drop_duplicates("item_id").set_index("item_id")["text"]
    group = df.drop_duplicates("annotator").set_index("annotator")["annotator_group"]
    rng = np.random.default_rng(seed)
    some_hate = np.array(sorted(votes.index[(votes == "hate").any(axis=1)]))
    rest = np.array(sorted(votes.index.difference(some_hate)))
    rows = []
    for p in range(150):
        a = rng.choice(some_hate)
        b = rng.choice(rest if p % 3 else some_hate)
        if a == b:
            continue
        for ann in votes.columns:
            ha, hb = votes.loc[a, ann] == "hate", votes.loc[b, ann] == "hate"
            pref = "a" if ha and not hb else "b" if hb and not ha else "tie"
            shown_a, shown_b = text[a], text[b]
            if group[ann] == "control group":
                shown_a, shown_b = shown_b, shown_a
                pref = {"a": "b", "b": "a"}.get(pref, pref)
            rows.append({"pair": f"p{p:03d}", "annotator": ann, "prompt": "Which tweet is more hateful?",
                         "response_a": shown_a, "response_b": shown_b, "preferred": pref})
    path = out / "preferences_hs_brexit.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def rubric_synthetic(out: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    n_items, raters = 80, ["r1", "r2", "r3", "r4"]
    bias = {"r1": 0.0, "r2": 0.6, "r3": -0.5, "r4": 0.1}
    noise = {"helpful": 1.1, "correct": 0.5, "safe": 0.35}
    truth = {c: rng.uniform(1.5, 4.5, n_items) for c in noise}
    rows = []
    for i in range(n_items):
        version = "v1" if i < n_items // 2 else "v2"
        for r in raters:
            row = {"item_id": f"reply-{i:03d}", "annotator": r, "guideline_version": version}
            for c, sd in noise.items():
                sd = sd if version == "v1" else sd / 2
                row[c] = int(np.clip(np.rint(truth[c][i] + bias[r] + rng.normal(0, sd)), 1, 5))
            rows.append(row)
    path = out / "rubric_synthetic.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in (chat_banking77(args.shared, args.out), ratings_hs_brexit(args.shared, args.out),
                 preferences_hs_brexit(args.shared, args.out), rubric_synthetic(args.out)):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
