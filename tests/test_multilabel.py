"""Multi-label tasks: label-set cells, scores, strategies, the round, suspects and set agreement."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from selector import SelectConfig, run_round
from selector.errors import ConfigError, DataError
from selector.labelsets import LabelSpace, detect_multi_label, parse_label_set, resolve_task
from selector.quality.multilabel_agreement import exact_set_agreement, masi_alpha, masi_distance, per_label_agreement
from selector.round.multilabel import build_multilabel_context, multilabel_out_of_fold, multilabel_problem
from selector.round.multilabel_suspects import find_label_suspects, listed_pairs
from selector.round.pool import prepare_pool
from selector.scoring import as_label_proba, label_entropy, label_margin
from selector.strategies import make_strategy, strategies_for
from selector.strategies.multilabel import cvirs_scores, label_vector_distance, max_loss_scores, mmc_scores

LABELS = ("joy", "anger", "fear", "surprise")


def _multilabel_data(n: int = 400, seed: int = 0, d: int = 24):
    """Rows near one or two of four label centres; the indicator says which."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(LABELS), d))
    Y = np.zeros((n, len(LABELS)), dtype=np.int8)
    first = rng.integers(0, len(LABELS), n)
    Y[np.arange(n), first] = 1
    second = rng.random(n) < 0.3
    Y[np.flatnonzero(second), (first[second] + 1) % len(LABELS)] = 1
    X = Y @ centres + 0.6 * rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), Y


def _table(n: int = 400, labeled: int = 150, seed: int = 0):
    X, Y = _multilabel_data(n, seed)
    space = LabelSpace(LABELS)
    cells = [space.join(s) for s in space.sets(Y)]
    cells = cells[:labeled] + [""] * (n - labeled)
    df = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": [f"text {i}" for i in range(n)], "label": cells})
    return df, X, Y


# --- label-set cells ---------------------------------------------------------------------------

def test_parse_label_set_cells():
    assert parse_label_set("anger;fear") == ("anger", "fear")
    assert parse_label_set(" anger ; fear ;anger ") == ("anger", "fear")
    assert parse_label_set("") is None and parse_label_set(None) is None and parse_label_set(float("nan")) is None
    assert parse_label_set("none") == ()  # labeled: none of these
    assert parse_label_set(["anger", "fear"]) == ("anger", "fear")
    assert parse_label_set([]) == ()
    assert parse_label_set("a|b", sep="|") == ("a", "b")
    assert parse_label_set("none;anger") == ("none", "anger")  # kept, so validate can report it
    with pytest.raises(DataError, match="delimiter"):
        parse_label_set(["anger;fear"])


def test_detection_needs_parts_that_are_labels_elsewhere():
    assert detect_multi_label(["anger", "fear", "anger;fear", ""])
    assert detect_multi_label([["anger"], None])
    # A single-label column whose values merely contain ';' (a reply, a sentence) is not label sets.
    assert not detect_multi_label(['{"a": 1; "b": 2}', "ok; fine", "yes"])
    assert not detect_multi_label(["pos", "neg"])
    assert resolve_task("auto", ["a", "b", "a;b"], ";") == ("multi_label", True)
    assert resolve_task("single_label", ["a", "b", "a;b"], ";") == ("single_label", False)


def test_label_space_round_trip_and_errors():
    space = LabelSpace.from_sets([("b", "a"), ("c",), None, ()], declared=["c"])
    assert space.names == ("c", "a", "b")
    Y = space.indicator([("b", "a"), ("c",), None, ()])
    assert Y.tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert [space.join(s) for s in space.sets(Y)] == ["a;b", "c", "none", "none"]
    with pytest.raises(ConfigError, match="'x;y'"):
        LabelSpace.from_sets([], declared=["x;y"])
    with pytest.raises(DataError, match="'zzz'"):
        space.indicator([("zzz",)])
    with pytest.raises(ConfigError):
        SelectConfig(label_sep=" ")
    with pytest.raises(ConfigError, match="none_label"):
        SelectConfig(label_sep="-", none_label="no-label")


def test_pool_keeps_unlabeled_apart_from_none_of_these():
    df = pd.DataFrame({"text": ["a", "b", "c", "d", "e"], "label": ["joy;fear", "", "none", "unsure", "fear"]})
    pool = prepare_pool(df, multi_label=True)
    assert pool.labeled.tolist() == [True, False, True, False, True]
    assert pool.space.names == ("fear", "joy")
    assert pool.Y.tolist() == [[1, 1], [0, 0], [0, 0], [0, 0], [1, 0]]
    assert pool.labels[0] == "fear;joy" and pool.labels[2] == "none"


def test_single_label_read_of_label_sets_warns():
    df = pd.DataFrame({"text": ["a", "b", "c"], "label": ["joy", "fear", "joy;fear"]})
    with pytest.warns(UserWarning, match="label sets"):
        prepare_pool(df)


# --- scores and strategies ---------------------------------------------------------------------

def test_multilabel_scores_bounds_and_extremes():
    P = np.array([[0.5, 0.5], [0.0, 1.0], [0.9, 0.2]])
    h, m = label_entropy(P), label_margin(P)
    assert h[0] == pytest.approx(1.0) and h[1] == pytest.approx(0.0, abs=1e-9)
    assert m[0] == pytest.approx(1.0) and m[1] == pytest.approx(0.0)
    assert ((0 <= h) & (h <= 1)).all() and ((0 <= m) & (m <= 1)).all()
    assert ((0 <= max_loss_scores(P)) & (max_loss_scores(P) <= 1)).all()
    listed = [np.array([[0.2, 0.8], [0.6, 0.4]]), np.array([[0.9, 0.1], [0.3, 0.7]])]
    np.testing.assert_allclose(as_label_proba(listed, 2), [[0.8, 0.1], [0.4, 0.7]])
    with pytest.raises(ValueError, match="one probability per label"):
        as_label_proba(np.zeros((2, 3)), 2)


def test_label_vector_distance():
    A = np.array([[1, 0, 1, 0], [1, 1, 1, 0]])
    D = label_vector_distance(A, np.array([[1, 0, 1, 0], [0, 1, 0, 1]]))
    assert D[0, 0] == pytest.approx(0.0) and D[0, 1] == pytest.approx(1.0)
    assert 0 < D[1, 0] < 1


def test_mmc_and_cvirs_prefer_uncertain_rows():
    P = np.array([[0.5, 0.5, 0.5], [0.99, 0.01, 0.01], [0.6, 0.45, 0.1]])
    Y_lab = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    mmc = mmc_scores(P, np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.8, 0.7, 0.1]]), Y_lab)
    assert mmc.argmin() == 1
    cv = cvirs_scores(P, Y_lab)
    assert ((0 <= cv) & (cv <= 1)).all() and cv.argmin() == 1


def test_task_checks_name_the_strategies_that_serve():
    X, Y = _multilabel_data(200)
    space = LabelSpace(LABELS)
    ctx = build_multilabel_context(X[:60], Y[:60], X[60:], space, random_state=0)
    assert ctx.multi_label and ctx.proba_pool.shape == (140, 4)
    with pytest.raises(ConfigError, match="does not serve multi-label.*label_entropy"):
        make_strategy("margin").select(ctx, 5, random_state=0)
    from selector.round.compute import build_context

    single = build_context(X[:60], np.array(["a", "b"] * 30, dtype=object), X[60:], random_state=0)
    with pytest.raises(ConfigError, match="does not serve single-label"):
        make_strategy("mmc").select(single, 5, random_state=0)
    assert {"auto", "random", "typiclust", "mmc", "cvirs", "max_loss", "label_entropy"} <= set(strategies_for("multi_label"))


@pytest.mark.parametrize("name", ["auto", "label_entropy", "label_margin", "mmc", "cvirs", "max_loss", "label_kmeans"])
def test_multilabel_strategies_pick_uncertain_rows_deterministically(name):
    X, Y = _multilabel_data(300, seed=1)
    space = LabelSpace(LABELS)
    ctx = build_multilabel_context(X[:80], Y[:80], X[80:], space, random_state=0)
    a = make_strategy(name).select(ctx, 20, random_state=3)
    b = make_strategy(name).select(ctx, 20, random_state=3)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert np.unique(a.indices).size == 20
    # The picks are more uncertain than the pool on average (mean per-label entropy).
    h = label_entropy(ctx.proba_pool)
    assert h[a.indices].mean() > h.mean()


def test_multilabel_cold_start_is_diverse():
    X, Y = _multilabel_data(200)
    space = LabelSpace(LABELS)
    ctx = build_multilabel_context(X[:2], Y[:2], X[2:], space, random_state=0)
    assert not ctx.has_model and "2 labeled rows" in ctx.cold_start_reason
    sel = make_strategy("auto").select(ctx, 10, random_state=0)
    assert sel.info["branch"] == "diverse"
    assert multilabel_problem(np.ones((5, 2))) is not None


# --- the round ---------------------------------------------------------------------------------

def test_round_on_a_multilabel_table(tmp_path):
    df, X, _ = _table()
    out = tmp_path / "queue.csv"
    with pytest.warns(UserWarning, match="multi-label task with 4 labels"):
        result = run_round(df, SelectConfig(budget=12), embeddings=X, out=out, ledger=False)
    q = pd.read_csv(out)
    assert len(q) == 12 and {"predicted_labels", "label_probas"} <= set(q.columns)
    assert not set(q["id"]) & set(df["id"][:150])
    probas = json.loads(q["label_probas"][0])
    assert set(probas) == set(LABELS)
    assert list(probas.values()) == sorted(probas.values(), reverse=True)
    record = json.loads((tmp_path / "queue.round.json").read_text())
    assert set(record["class_counts"]) == set(LABELS)
    assert {"micro_f1", "macro_f1", "exact_set_accuracy"} <= set(record["cv"])
    sus = pd.read_csv(tmp_path / "queue.suspects.csv")
    assert list(sus.columns) == ["id", "text", "label", "kind", "p_wrong", "evidence", "given_labels", "suggested_labels"]
    assert result.stats["task"] == "multi_label"
    # Same data, config and seed: the same queue.
    again = run_round(df, SelectConfig(budget=12, task="multi_label"), embeddings=X, suspects=False)
    assert again.queue["id"].tolist() == q["id"].tolist()


def test_multilabel_round_refuses_what_it_cannot_do_yet():
    df, X, _ = _table()
    with pytest.raises(ConfigError, match="--relabel.*multi-label"):
        run_round(df, SelectConfig(budget=5, task="multi_label", relabel=True), embeddings=X)
    with pytest.raises(ConfigError, match="'margin' does not serve multi-label.*label_entropy"):
        run_round(df, SelectConfig(budget=5, task="multi_label", strategy="margin"), embeddings=X)


def test_single_label_declared_reads_cells_whole():
    df, X, _ = _table()
    result = run_round(df, SelectConfig(budget=5, task="single_label"), embeddings=X, suspects=False)
    assert "predicted_label" in result.queue.columns and result.stats.get("task") is None


# --- suspects ----------------------------------------------------------------------------------

def test_label_suspects_find_dropped_and_added_labels():
    X, Y = _multilabel_data(600, seed=2)
    rng = np.random.default_rng(0)
    noisy = Y.copy()
    changed = rng.choice(600, size=40, replace=False)
    for i in changed[:20]:
        noisy[i, np.flatnonzero(Y[i])[0]] = 0  # a true label dropped
    for i in changed[20:]:
        noisy[i, np.flatnonzero(Y[i] == 0)[0]] = 1  # a wrong label added
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oof = multilabel_out_of_fold(None, X, noisy, random_state=0).proba
    found = find_label_suspects(X, noisy, oof, random_state=0)
    truth = noisy != Y
    hits = (found.flagged & truth).sum()
    assert hits >= 0.6 * truth.sum()
    assert hits >= 0.6 * found.flagged.sum()
    fixed = found.suggested
    assert (fixed[changed] == Y[changed]).all(axis=1).mean() >= 0.6
    assert listed_pairs(found, top=5).sum() == 5


# --- agreement ---------------------------------------------------------------------------------

def _rated_sets(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(150):
        truth = set(rng.choice(LABELS, size=rng.integers(1, 3), replace=False))
        for a in rng.choice(8, size=rng.integers(1, 5), replace=False):
            s = set(truth)
            if rng.random() < 0.3:
                s ^= {str(rng.choice(LABELS))}
            rows.append((f"i{i}", f"a{a}", frozenset(s or {"joy"})))
    return pd.DataFrame(rows, columns=["item_id", "annotator", "labels"])


def test_masi_alpha_equals_nltk():
    nltk_agreement = pytest.importorskip("nltk.metrics.agreement")
    from nltk.metrics.distance import masi_distance as nltk_masi

    ann = _rated_sets()
    task = nltk_agreement.AnnotationTask(data=[(r.annotator, r.item_id, r.labels) for r in ann.itertuples()],
                                         distance=nltk_masi)
    assert masi_alpha(ann) == pytest.approx(task.alpha(), abs=1e-9)
    for a, b in [({"joy"}, {"joy", "fear"}), ({"joy", "anger"}, {"joy", "fear"}), ({"joy"}, {"fear"})]:
        assert masi_distance(a, b) == pytest.approx(nltk_masi(frozenset(a), frozenset(b)), abs=1e-12)


def test_exact_set_and_per_label_agreement():
    ann = pd.DataFrame({"item_id": ["x", "x", "y", "y", "z"], "annotator": ["a", "b", "a", "b", "a"],
                        "labels": [("joy",), ("joy",), ("joy", "fear"), ("fear",), ("anger",)]})
    assert exact_set_agreement(ann) == pytest.approx(0.5)
    table = per_label_agreement(ann, ["joy", "fear"]).set_index("label")
    assert table.loc["joy", "n_items_contested"] == 1 and table.loc["fear", "n_items_contested"] == 0
    assert masi_distance((), ()) == 0.0


# --- validate, agreement CLI, simulate, status ---------------------------------------------------

def test_validate_multilabel_checks():
    from selector import validate

    df = pd.DataFrame({"id": [str(i) for i in range(12)],
                       "text": ["I am so happy", "I am so happy", "a fright", "meh", "angry and glad", "nothing",
                                "wow", "ok", "grr", "yay", "eek", "all of it"],
                       "label": ["joy", "joy;surprise", "fear", "none;joy", "anger;joy", "none", "surprise", "",
                                 "anger", "joy", "fear", "anger;fear;joy;surprise"]})
    report = validate(df, multi_label=True, near_duplicates=False, labels=["joy", "fear", "anger", "surprise", "disgust"],
                      exclusive=[("anger", "joy")])
    found = {f.check: f for f in report.findings}
    assert found["contradiction"].row_ids == ["0", "1"] and "differ on surprise" in found["contradiction"].message
    assert found["contradiction"].details["groups"][0]["differing_labels"] == ["surprise"]
    assert found["none_with_labels"].row_ids == ["3"]
    assert found["exclusive_labels"].row_ids == ["4", "11"]
    assert found["unused_label"].details["unused_labels"] == ["disgust"]
    assert "invalid_label" not in found and "missing_negatives" not in found  # 'none' rows are the negative
    assert report.class_counts == {"anger": 3, "fear": 3, "joy": 6, "surprise": 3}
    with pytest.raises(ConfigError, match="two or more"):
        validate(df, multi_label=True, near_duplicates=False, exclusive=[("anger",)])


def test_agreement_cli_on_label_sets(tmp_path):
    from typer.testing import CliRunner

    from selector.cli import app

    ann = _rated_sets()
    path = tmp_path / "votes.csv"
    ann.assign(label=[";".join(sorted(s)) for s in ann["labels"]]).drop(columns="labels").to_csv(path, index=False)
    out = tmp_path / "consensus.csv"
    res = CliRunner().invoke(app, ["agreement", str(path), "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout[res.stdout.index("{"):res.stdout.rindex("}") + 1])
    assert report["krippendorff_alpha_masi"] == pytest.approx(masi_alpha(ann), abs=1e-12)
    cons = pd.read_csv(out, keep_default_na=False)
    assert {"majority_labels", "ds_labels", "majority_quality", "ds_quality"} <= set(cons.columns)
    assert cons["ds_quality"].is_monotonic_increasing  # least certain first
    single = CliRunner().invoke(app, ["agreement", str(path), "--single-label"])
    assert single.exit_code == 0 and "MASI" not in single.output


def test_simulate_and_status_read_label_sets(tmp_path):
    from selector.loop.simulate import simulate, verdicts

    X, Y = _multilabel_data(300, seed=4)
    result = simulate(X, Y, strategies=["random", "auto"], batch=20, rounds=3, seeds=1)
    assert result.metric == "micro_f1" and {"micro_f1", "macro_f1"} <= set(result.curves.columns)
    assert 0 < result.full_accuracy <= 1
    assert all("micro-F1" in line for line in verdicts(result).values())


def test_chat_replies_with_a_json_list_are_label_sets(tmp_path):
    lines = []
    for i in range(60):
        labs = [["billing"], ["billing", "refund"], ["shipping"], []][i % 4]
        reply = json.dumps({"topics": labs})
        lines.append(json.dumps({"messages": [{"role": "user", "content": f"message {i} about {labs}"},
                                              {"role": "assistant", "content": reply}]}))
    lines += [json.dumps({"messages": [{"role": "user", "content": f"new message {i}"}]}) for i in range(20)]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_round(path, SelectConfig(budget=5, label_from="json:topics", model="hashing"), suspects=False)
    assert res.stats["task"] == "multi_label" and res.pool.space.names == ("billing", "refund", "shipping")
    assert list(res.pool.labels[:4]) == ["billing", "billing;refund", "shipping", "none"]
    assert "conversation" in res.queue.columns and "predicted_labels" in res.queue.columns


def test_data_card_counts_rows_per_label():
    from selector import data_card

    df, X, Y = _table()
    card = data_card(df, embeddings=X, config=SelectConfig(task="multi_label"), model_agreement=False, n_clusters=8)
    balance = card.class_balance.set_index("label")["n_rows"].to_dict()
    assert balance == {name: int(Y[:150, j].sum()) for j, name in enumerate(LABELS)}
    assert card.counts["task"] == "multi_label" and card.counts["label_cardinality"] == pytest.approx(Y[:150].sum(1).mean(), abs=1e-4)
    assert card.counts["n_labels"] == 4


def test_review_queues_label_suspects_and_uncertain_rows():
    from selector import review

    df, X, Y = _table()
    df.loc[:9, "label"] = "fear"  # ten rows given a label set that is not theirs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rq = review(df, embeddings=X, config=SelectConfig(task="multi_label"), budget=30)
    q = rq.queue.set_index("id")
    wrong = [f"r{i}" for i in range(10) if Y[i, LABELS.index("fear")] == 0 or Y[i].sum() > 1]
    assert sum(i in q.index and "suspect" in q.loc[i, "sources"] for i in wrong) >= 0.6 * len(wrong)
    assert rq.candidates["uncertain"] > 0 and (q["sources"] == "uncertain").any()
    with pytest.raises(ConfigError, match="multi-label review"):
        review(df, embeddings=X, config=SelectConfig(task="multi_label"), annotations=pd.DataFrame(
            {"item_id": ["r1"], "annotator": ["a"], "label": ["joy"]}))


def test_consensus_with_the_model_on_label_sets(tmp_path):
    from typer.testing import CliRunner

    from selector.cli import app
    from selector.quality.multilabel_agreement import label_set_consensus, multilabel_consensus

    ann = _rated_sets()
    votes = ann.assign(label=[";".join(sorted(s)) for s in ann["labels"]],
                       text=[f"text of item {i}" for i in ann["item_id"]]).drop(columns="labels")
    path = tmp_path / "votes.csv"
    votes.to_csv(path, index=False)
    out = tmp_path / "c.csv"
    res = CliRunner().invoke(app, ["consensus", str(path), "--model", "hashing", "-o", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, keep_default_na=False)
    assert {"model_labels", "model_quality", "ds_labels", "majority_labels"} <= set(table.columns)
    assert table["model_quality"].is_monotonic_increasing and table["model_quality"].between(0.5, 1).all()
    # Embeddings that carry no information: where the votes are unanimous the model cannot overturn them.
    items = np.unique(ann["item_id"].astype(str))
    X = np.random.default_rng(0).normal(size=(items.size, 8)).astype(np.float32)
    both = label_set_consensus(ann, LabelSpace(tuple(sorted(LABELS))), X=X).set_index("item_id")
    n_votes = ann.groupby("item_id").size()
    unanimous = [i for i, g in ann.groupby("item_id") if len(g) >= 3 and g["labels"].map(frozenset).nunique() == 1]
    assert unanimous and all(both.loc[i, "model_labels"] == both.loc[i, "majority_labels"] for i in unanimous)
    assert set(both.index) == set(items) and (both["n_annotations"] == n_votes.reindex(both.index)).all()
    with pytest.raises(DataError, match="needs the items' texts"):
        multilabel_consensus(ann.assign(label=votes["label"]).drop(columns="labels"), method="model")


def test_per_label_cohen_kappa_is_the_mean_over_annotator_pairs():
    from itertools import combinations

    from sklearn.metrics import cohen_kappa_score

    ann = _rated_sets(seed=3)
    table = per_label_agreement(ann, LABELS, min_shared=5).set_index("label")
    by = {a: g.set_index("item_id")["labels"] for a, g in ann.groupby("annotator")}
    for label in LABELS:
        kappas = []
        for a, b in combinations(sorted(by), 2):
            shared = sorted(set(by[a].index) & set(by[b].index))
            if len(shared) < 5:
                continue
            x = [int(label in by[a][i]) for i in shared]
            y = [int(label in by[b][i]) for i in shared]
            if len(set(x)) == 1 and len(set(y)) == 1 and x[0] == y[0]:
                continue  # no chance-corrected agreement
            kappas.append(cohen_kappa_score(x, y))
        assert table.loc[label, "cohen_kappa"] == pytest.approx(np.mean(kappas), abs=1e-9)
