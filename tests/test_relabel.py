"""One budget for new rows and second opinions (`select --relabel`), and its votes through export and merge."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from selector import SelectConfig, run_round, select
from selector.cli.app import app
from selector.errors import ConfigError, DataError, EmptyPoolError
from selector.models import HashingEmbedder
from selector.round.relabel import RELABEL_COLUMNS, choose_mix, evidence_from_suspects, vote_gain
from selector.round.suspects import find_suspects

from conftest import make_table

runner = CliRunner()
TOPICS = ["finance", "sports", "weather"]


def uniform_errors(k: int) -> np.ndarray:
    q = (1.0 - np.eye(k)) / (k - 1)
    return q


def test_vote_gain_is_the_rise_in_the_chance_of_the_right_label():
    # Two classes at 50/50: one vote right 90% of the time makes the best label right 90% of the time.
    assert vote_gain(np.array([[0.5, 0.5]]), 0.9, uniform_errors(2))[0] == pytest.approx(0.4)
    # A settled row gains nothing; so does a vote that cannot overturn a strong belief.
    assert vote_gain(np.array([[1.0, 0.0, 0.0]]), 0.9, uniform_errors(3))[0] == pytest.approx(0.0)
    assert vote_gain(np.array([[0.95, 0.05]]), 0.7, uniform_errors(2))[0] == pytest.approx(0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=2, max_size=6), st.floats(0.2, 0.99))
def test_vote_gain_bounds(weights, accuracy):
    p = np.array(weights) / np.sum(weights)
    k = p.size
    g = vote_gain(p[None], accuracy, uniform_errors(k))[0]
    assert 0.0 <= g <= 1.0 - p.max() + 1e-12
    # A better voter is worth at least as much.
    assert vote_gain(p[None], min(0.999, accuracy + 0.05), uniform_errors(k))[0] >= g - 1e-12


def test_choose_mix_takes_the_highest_gains_ties_to_new_rows():
    new, old = choose_mix(np.array([0.5, 0.2, 0.1]), np.array([0.3, 0.2, 0.0]), 4)
    assert new.tolist() == [0, 1] and old.tolist() == [0, 1]


def noisy_table(seed: int = 0) -> pd.DataFrame:
    df = make_table(150, labeled_frac=0.5, seed=seed)
    labeled = df.index[df["label"] != ""]
    flip = labeled[2:8]
    df.loc[flip, "label"] = [TOPICS[(TOPICS.index(v) + 1) % 3] for v in df.loc[flip, "label"]]
    return df


def test_evidence_from_suspects_keeps_the_given_label_unless_it_looks_wrong():
    df = noisy_table()
    lab = df[df["label"] != ""]
    X = HashingEmbedder(64).encode(lab["text"].tolist())
    found = find_suspects(X, lab["label"].to_numpy(), random_state=0)
    ev = evidence_from_suspects(found)
    assert ev.posterior.shape == (len(lab), 3)
    np.testing.assert_allclose(ev.posterior.sum(axis=1), 1.0)
    col = {c: j for j, c in enumerate(ev.classes)}
    given_p = ev.posterior[np.arange(len(lab)), [col[v] for v in lab["label"]]]
    np.testing.assert_allclose(given_p, 1.0 - found.p_mislabeled)
    assert 0.0 < ev.accuracy <= 1.0
    np.testing.assert_allclose(np.diag(ev.error_matrix), 0.0)


def test_relabel_queue_mixes_new_rows_and_second_opinions():
    df = noisy_table()
    q = select(df, 30, embedder=HashingEmbedder(64), random_state=0, relabel=True)
    assert len(q) == 30 and q["id"].is_unique and q["rank"].tolist() == list(range(1, 31))
    assert set(RELABEL_COLUMNS) <= set(q.columns)
    labeled = set(df.loc[df["label"] != "", "id"])
    kinds = dict(zip(q["id"], q["kind"]))
    assert {i for i, k in kinds.items() if k == "relabel"} <= labeled
    assert not {i for i, k in kinds.items() if k == "new"} & labeled
    assert set(q["kind"]) == {"new", "relabel"}
    assert q["gain"].is_monotonic_decreasing
    again = select(df, 30, embedder=HashingEmbedder(64), random_state=0, relabel=True)
    pd.testing.assert_frame_equal(q, again)
    # The second opinions carry the row's current label and votes; new rows carry none.
    rel = q[q["kind"] == "relabel"]
    current = dict(zip(df["id"], df["label"]))
    assert (rel["current_label"] == rel["id"].map(current)).all()
    assert (q.loc[q["kind"] == "new", "current_label"] == "").all()


def test_without_relabel_the_queue_is_new_rows_only():
    df = noisy_table()
    q = select(df, 30, embedder=HashingEmbedder(64), random_state=0)
    assert "kind" not in q.columns
    assert not set(q["id"]) & set(df.loc[df["label"] != "", "id"])


def test_fully_labeled_table_gets_second_opinions_only_with_relabel():
    df = noisy_table()
    full = df[df["label"] != ""].reset_index(drop=True)
    with pytest.raises(EmptyPoolError):
        select(full, 5, embedder=HashingEmbedder(64), random_state=0)
    q = select(full, 5, embedder=HashingEmbedder(64), random_state=0, relabel=True)
    assert len(q) == 5 and (q["kind"] == "relabel").all()


def votes_for(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for _, r in df[df["label"] != ""].iterrows():
        for a in rng.choice(5, size=int(rng.integers(1, 4)), replace=False):
            rows.append((r["id"], f"a{a}", r["label"] if rng.random() < 0.8 else str(rng.choice(TOPICS))))
    return pd.DataFrame(rows, columns=["item_id", "annotator", "label"])


def test_annotations_label_the_voted_rows_by_their_consensus():
    df = make_table(150, labeled_frac=0.5)
    ann = votes_for(df)
    blank = df.assign(label="")
    res = run_round(blank, SelectConfig(budget=20, relabel=True, seed=0), embedder=HashingEmbedder(64),
                    annotations=ann, suspects=False)
    voted = set(ann["item_id"])
    assert set(res.pool.ids[res.pool.labeled]) == voted
    assert res.consensus is not None and res.consensus.items.size == len(voted)
    rel = res.queue[res.queue["kind"] == "relabel"]
    assert len(rel) and set(rel["id"]) <= voted
    # Who already labeled a queued second opinion, so a tool can route it to someone else.
    who = ann.groupby("item_id")["annotator"].agg(lambda a: ";".join(sorted(a)))
    assert (rel["labeled_by"] == rel["id"].map(who)).all()
    assert res.record["relabel"]["ids"] == rel["id"].tolist()


def test_annotations_name_an_unknown_item():
    df = make_table(60)
    ann = pd.DataFrame({"item_id": ["r0001", "nope"], "annotator": ["a", "b"], "label": ["sports", "finance"]})
    with pytest.raises(DataError, match="'nope'"):
        run_round(df, SelectConfig(budget=5), embedder=HashingEmbedder(64), annotations=ann)


def test_relabel_refuses_gold_mixing():
    df = noisy_table()
    gold = pd.DataFrame({"item_id": ["g1"], "gold_label": ["sports"], "text": ["goal match team"]})
    with pytest.raises(ConfigError, match="--relabel"):
        run_round(df, SelectConfig(budget=5, relabel=True), embedder=HashingEmbedder(64), gold=gold)


def cli_select(data, tmp_path, *extra):
    out = tmp_path / "queue.csv"
    result = runner.invoke(app, ["select", str(data), "--budget", "20", "--out", str(out), "--model", "hashing",
                                 "--cache-dir", str(tmp_path / "cache"), "--relabel", *map(str, extra)])
    assert result.exit_code == 0, result.output
    return out, result


def test_relabel_round_trip_keeps_second_opinions_as_votes(tmp_path):
    df = noisy_table()
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    before = data.read_bytes()
    out, result = cli_select(data, tmp_path)
    assert "second opinion" in result.output
    queue = pd.read_csv(out, keep_default_na=False)
    rel, new = queue[queue["kind"] == "relabel"], queue[queue["kind"] == "new"]
    assert len(rel) and len(new)

    tasks = tmp_path / "tasks.json"
    r = runner.invoke(app, ["export", str(out), "--format", "label-studio", "--out", str(tasks)])
    assert r.exit_code == 0, r.output
    exported = {t["data"]["selector_id"]: t for t in json.loads(tasks.read_text())}
    some_rel = rel["id"].iloc[0]
    assert exported[some_rel]["data"]["kind"] == "relabel"
    # A second opinion is asked blind: no pre-selected label, no current label in the task.
    assert exported[some_rel]["predictions"][0]["result"] == []
    assert "current_label" not in exported[some_rel]["data"]

    # Every queued row comes back labeled by annotator "z"; second opinions disagree with the current label.
    current = dict(zip(df["id"], df["label"]))
    answers = []
    for i in queue["id"]:
        lab = TOPICS[(TOPICS.index(current[i]) + 1) % 3] if current[i] else "sports"
        answers.append({"id": i, "label": lab, "annotator": "z"})
    export = tmp_path / "export.csv"
    pd.DataFrame(answers).to_csv(export, index=False)

    refused = runner.invoke(app, ["merge", str(data), str(export), "--out", str(tmp_path / "merged.csv")])
    assert refused.exit_code == 1 and "--annotations" in refused.output
    assert not (tmp_path / "merged.csv").exists()

    votes = tmp_path / "votes.csv"
    ok = runner.invoke(app, ["merge", str(data), str(export), "--out", str(tmp_path / "merged.csv"),
                             "--annotations", str(votes)])
    assert ok.exit_code == 0, ok.output
    assert data.read_bytes() == before
    merged = pd.read_csv(tmp_path / "merged.csv", keep_default_na=False).set_index("id")
    # New rows got their label; a labeled row kept its own: never overwritten by a second opinion.
    assert (merged.loc[new["id"], "label"] == "sports").all()
    assert (merged.loc[rel["id"], "label"] == rel["id"].map(current).to_numpy()).all()
    v = pd.read_csv(votes, keep_default_na=False)
    assert set(v.columns) >= {"item_id", "annotator", "label", "label_round"}
    for i in rel["id"]:
        mine = v[v["item_id"] == i]
        # The row's earlier label is a vote too, beside the second opinion.
        assert sorted(mine["annotator"]) == ["(data)", "z"]
        assert set(mine["label"]) == {current[i], TOPICS[(TOPICS.index(current[i]) + 1) % 3]}
    # The next round weighs the votes.
    out2, result2 = cli_select(tmp_path / "merged.csv", tmp_path, "--annotations", votes, "--out",
                               tmp_path / "queue2.csv")
    assert "consensus" in result2.output


def test_merge_votes_need_an_export(tmp_path):
    data = tmp_path / "data.csv"
    make_table(30).to_csv(data, index=False)
    r = runner.invoke(app, ["merge", str(data), "--accept-corrections", str(data), "--annotations",
                            str(tmp_path / "v.csv"), "--out", str(tmp_path / "m.csv")])
    assert r.exit_code != 0 and "LABELED_FILE" in r.output


def test_thin_classes_get_second_opinions_only_on_strong_evidence():
    """Too few labels per class to judge them: only the suspect list's flagged rows are offered."""
    df = noisy_table()
    lab = df[df["label"] != ""]
    X = HashingEmbedder(64).encode(lab["text"].tolist())
    found = find_suspects(X, lab["label"].to_numpy(), random_state=0, min_class_labels=1000)
    ev = evidence_from_suspects(found)
    col = {c: j for j, c in enumerate(ev.classes)}
    given_p = ev.posterior[np.arange(len(lab)), [col[v] for v in lab["label"]]]
    assert (given_p[~found.flagged] == 1.0).all()
    assert vote_gain(ev.posterior[~found.flagged], ev.accuracy, ev.error_matrix).max() == 0.0
