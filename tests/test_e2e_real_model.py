"""End to end with the real bundled model and the real console script, on a slice of trec."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATASETS, trec_sample

pytestmark = pytest.mark.slow

def selector_cmd():
    exe = Path(sys.executable).with_name("selector")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "selector"]


@pytest.fixture(scope="module")
def trec_slice(tmp_path_factory) -> Path:
    # The committed fixture, so this real-model test runs on a fresh clone without ../shared.
    df = trec_sample().head(400).reset_index(drop=True)
    rng = np.random.default_rng(0)
    df.loc[rng.random(len(df)) < 0.8, "label"] = ""
    df.insert(0, "id", [f"q{i}" for i in range(len(df))])
    path = tmp_path_factory.mktemp("trec") / "trec.csv"
    df[["id", "text", "label"]].to_csv(path, index=False)
    return path


def run_select(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([*selector_cmd(), "select", str(data), "--budget", "25", "--out", str(out), *extra],
                          capture_output=True, text=True, env=env, timeout=600)


def test_real_model_round_then_cached_round(trec_slice, tmp_path):
    out = tmp_path / "queue.csv"
    first = run_select(trec_slice, out)
    assert first.returncode == 0, first.stderr
    record = json.loads(out.with_name("queue.round.json").read_text())
    assert record["counts"]["n_embedded"] == 400 and record["counts"]["n_cached"] == 0
    assert record["model_fingerprint"].startswith("st-all-MiniLM-L6-v2")
    queue = pd.read_csv(out, keep_default_na=False)
    assert len(queue) == 25 and queue["id"].is_unique
    assert set(queue["predicted_label"]) <= {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    assert (trec_slice.parent / ".selector").is_dir()  # default cache beside the data

    second = run_select(trec_slice, out)
    assert second.returncode == 0, second.stderr
    record2 = json.loads(out.with_name("queue.round.json").read_text())
    assert record2["counts"]["n_embedded"] == 0 and record2["counts"]["n_cached"] == 400
    pd.testing.assert_frame_equal(queue, pd.read_csv(out, keep_default_na=False))


def test_real_embeddings_are_normalised_and_meaningful():
    from selector.models import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder(device="cpu")
    X = emb.encode(["How far is the moon from the earth?", "What is the distance to the moon?",
                    "Who wrote Hamlet?"])
    assert X.shape == (3, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert X[0] @ X[1] > X[0] @ X[2] + 0.2


def test_real_model_consensus_and_suspects_with_votes(tmp_path):
    """`selector consensus` (votes x real-model out-of-fold probabilities) and `suspects --annotations`
    on 150 RTE items with their real MTurk votes, against the expert gold label."""
    snow = DATASETS / "snow2008_rte" / "data.csv"
    if not snow.exists():
        pytest.skip(f"shared dataset not found at {snow}")
    df = pd.read_csv(snow, dtype=str, keep_default_na=False)
    keep = sorted(df["item_id"].unique())[:150]
    ann = df[df["item_id"].isin(keep)][["item_id", "annotator", "label", "text", "gold_label"]]
    ann_path = tmp_path / "votes.csv"
    ann.to_csv(ann_path, index=False)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = tmp_path / "consensus.csv"
    res = subprocess.run(selector_cmd() + ["consensus", str(ann_path), "--out", str(out)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    cons = pd.read_csv(out, dtype={"item_id": str}).set_index("item_id")
    gold = ann.drop_duplicates("item_id").set_index("item_id")["gold_label"]
    assert (cons["consensus_label"] == gold.reindex(cons.index)).mean() >= 0.85
    # One worker's label per item as the data; the votes say which are wrong.
    rng = np.random.default_rng(0)
    one = ann.iloc[rng.permutation(len(ann))].drop_duplicates("item_id")
    data = pd.DataFrame({"id": one["item_id"], "text": one["text"], "label": one["label"]})
    data_path = tmp_path / "data.csv"
    data.to_csv(data_path, index=False)
    sus = tmp_path / "suspects.csv"
    res = subprocess.run(selector_cmd() + ["suspects", str(data_path), "--annotations", str(ann_path), "--out", str(sus)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "rows judged with annotators' votes" in res.stderr
    listed = pd.read_csv(sus, dtype={"id": str})
    given = data.set_index("id")["label"]
    wrong = (given != gold.reindex(given.index)).reindex(listed["id"])
    assert len(listed) > 0 and wrong.mean() >= 0.7


EXAMPLES = Path(__file__).parent / "data"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([*selector_cmd(), *args], capture_output=True, text=True, env=env, timeout=600)


def test_real_model_on_chat_format_data(tmp_path):
    """select, suspects, validate and card on the chat-format banking77 example with the real model."""
    data = tmp_path / "chat.jsonl"
    data.write_bytes((EXAMPLES / "chat_banking77.jsonl").read_bytes())
    # A realistic defect: one prompt answered twice with different intents, one reply cut off.
    lines = data.read_text().splitlines()
    first = json.loads(lines[0])
    twin = json.loads(lines[0])
    twin["id"] = "twin"
    twin["messages"][-1]["content"] = json.dumps({"intent": "a_different_intent"})
    data.write_text("\n".join(lines + [json.dumps(twin), '{"messages": "oops"}']) + "\n")
    flags = ["--label-from", "json:intent", "--skip-invalid"]

    sel = run_cli("select", str(data), "--budget", "20", "-o", str(tmp_path / "q.csv"), *flags)
    assert sel.returncode == 0, sel.stderr
    assert "skipped 1 malformed line(s)" in sel.stderr
    queue = pd.read_csv(tmp_path / "q.csv", keep_default_na=False)
    assert len(queue) == 20 and queue["conversation"].str.contains('"role": "user"').all()
    record = json.loads((tmp_path / "q.round.json").read_text())
    assert record["model_fingerprint"].startswith("st-all-MiniLM-L6-v2") and record["chat"]["skipped_lines"] == [242]

    sus = run_cli("suspects", str(data), "-o", str(tmp_path / "s.csv"), *flags)
    assert sus.returncode == 0, sus.stderr
    suspects = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    assert {first["id"], "twin"} <= set(suspects["id"])  # the contradiction is listed

    val = run_cli("validate", str(data), "--json", *flags)
    assert val.returncode == 1  # the contradiction blocks
    report = json.loads(val.stdout)
    assert report["findings"][0]["check"] == "contradiction"
    assert sorted(report["findings"][0]["row_ids"]) == sorted([first["id"], "twin"])

    card = run_cli("card", str(data), "-o", str(tmp_path / "card.md"), *flags)
    assert card.returncode == 0, card.stderr
    assert json.loads((tmp_path / "card.json").read_text())["counts"]["n_labels"] == 11


def test_real_model_on_a_ratings_file(tmp_path):
    """agreement and card on the HS-Brexit panel ratings (0-3) with the real model."""
    ratings = pd.read_csv(EXAMPLES / "ratings_hs_brexit.csv")
    items = ratings.groupby("item_id").agg(text=("text", "first"), mean=("rating", "mean")).reset_index()
    data, ann = tmp_path / "tweets.csv", tmp_path / "ratings.csv"
    pd.DataFrame({"id": items["item_id"], "text": items["text"],
                  "label": np.where(items["mean"] >= 1, "hateful", "not_hateful")}).to_csv(data, index=False)
    ratings.rename(columns={"rating": "label"}).to_csv(ann, index=False)
    agree = run_cli("agreement", str(ann), "--level", "ordinal", "--json")
    assert agree.returncode == 0, agree.stderr
    alpha = json.loads(agree.stdout)["label"]["alpha"]
    assert alpha["ordinal"] > alpha["nominal"]
    card = run_cli("card", str(data), "--annotations", str(ann), "--level", "ordinal", "-o", str(tmp_path / "card.md"))
    assert card.returncode == 0, card.stderr
    doc = json.loads((tmp_path / "card.json").read_text())
    assert doc["ratings"]["label"]["alpha"]["ordinal"] == pytest.approx(alpha["ordinal"])
    assert doc["provenance"]["model_fingerprint"].startswith("st-all-MiniLM-L6-v2")


def test_readme_multilabel_example_with_the_real_model(tmp_path):
    """The README's multi-label commands, on the committed goemotions fixture, with the bundled model."""
    data = tmp_path / "goemotions_sample.csv"
    data.write_bytes((Path(__file__).parent / "data" / "goemotions_sample.csv").read_bytes())
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    sel = subprocess.run([*selector_cmd(), "select", str(data), "--multi-label", "--budget", "20", "-o",
                          str(tmp_path / "ml_queue.csv")], capture_output=True, text=True, env=env, timeout=600)
    assert sel.returncode == 0, sel.stderr
    queue = pd.read_csv(tmp_path / "ml_queue.csv", keep_default_na=False)
    assert len(queue) == 20 and {"predicted_labels", "label_probas"} <= set(queue.columns)
    probas = json.loads(queue["label_probas"][0])
    assert len(probas) == 27 and abs(max(probas.values()) - list(probas.values())[0]) < 1e-12  # 27 of the 28 occur
    sus = subprocess.run([*selector_cmd(), "suspects", str(data), "-o", str(tmp_path / "ml_suspects.csv")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert sus.returncode == 0, sus.stderr
    assert "holds label sets" in sus.stderr  # detected, and said so
    listed = pd.read_csv(tmp_path / "ml_suspects.csv", keep_default_na=False)
    assert set(listed["kind"]) <= {"wrong", "missing"} and listed["p_wrong"].between(0, 1).all()
    assert 0 < listed["id"].nunique() < 300
