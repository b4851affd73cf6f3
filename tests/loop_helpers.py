"""Small seeded data for the labeling-loop tests (texts the hashing embedder can separate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

VOCAB = {
    "sports": "goal match team score league coach player stadium referee season".split(),
    "weather": "rain storm cloud sunny forecast wind snow humid cold thunder".split(),
    "finance": "stock market bank loan interest price trader bond credit profit".split(),
}
SHARED = "the a today news report about some very".split()


def make_texts(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows ``id, text, gold`` with three classes of topical word salad."""
    rng = np.random.default_rng(seed)
    classes = sorted(VOCAB)
    rows = []
    for i in range(n):
        c = classes[i % 3]
        words = list(rng.choice(VOCAB[c], size=5)) + list(rng.choice(SHARED, size=3))
        rng.shuffle(words)
        rows.append({"id": f"r{i:04d}", "text": " ".join(words) + f" {i}", "gold": c})
    return pd.DataFrame(rows)


def write_data(path: Path, n: int = 150, n_labeled: int = 0, seed: int = 0) -> pd.DataFrame:
    """A CSV with ``id, text, gold, label`` where only the first ``n_labeled`` rows are labeled."""
    df = make_texts(n, seed)
    df["label"] = ""
    df.loc[: n_labeled - 1, "label"] = df.loc[: n_labeled - 1, "gold"]
    df.to_csv(path, index=False)
    return df


def label_studio_export(tasks: list[dict], gold: dict[str, str], annotator: int = 7) -> list[dict]:
    """What Label Studio's JSON export gives for imported tasks once each was annotated with its gold label."""
    out = []
    for n, task in enumerate(tasks, start=1):
        t = json.loads(json.dumps(task))
        t["id"] = n
        t["annotations"] = [{
            "id": 1000 + n, "completed_by": annotator, "was_cancelled": False, "ground_truth": False,
            "result": [{"from_name": "label", "to_name": "text", "type": "choices", "id": f"r{n}",
                        "value": {"choices": [gold[t["data"]["selector_id"]]]}}],
        }]
        out.append(t)
    return out
