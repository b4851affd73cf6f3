import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loop_helpers import make_texts, write_data
from selector.cli.app import app
from selector.errors import ConfigError, DataError
from selector.loop.ingest import ingest_rows
from selector.textnorm import normalise_text
from selector.models import HashingEmbedder

runner = CliRunner()


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def lookup_embed(table):
    """An embedder that returns fixed vectors per text, so similarities are exactly controlled."""
    return lambda texts: np.stack([table[t] for t in texts])


def test_exact_and_near_duplicates_are_dropped_and_counted():
    data = pd.DataFrame({"id": ["a", "b"], "text": ["Where is Paris ?", "What is a bond ?"], "label": ["LOC", ""]})
    new = pd.DataFrame({"text": ["where is   PARIS ?", "Wherever is Paris?", "Who wrote Hamlet ?", "Who did write Hamlet ?",
                                 "How tall is K2 ?"],
                        "failure": ["geo", "geo", "lit", "lit", "geo"]})
    e = {"Where is Paris ?": _unit([1, 0, 0, 0]), "What is a bond ?": _unit([0, 1, 0, 0]),
         "Wherever is Paris?": _unit([0.99, 0.05, 0, 0]),  # cos ~0.9987 with row a
         "Who wrote Hamlet ?": _unit([0, 0, 1, 0]), "Who did write Hamlet ?": _unit([0, 0.1, 0.99, 0]),  # within batch
         "How tall is K2 ?": _unit([0.7, 0, 0, 0.7])}  # cos 0.707: kept
    res = ingest_rows(data, new, source="production", embed=lookup_embed(e), bucket_col="failure")
    assert (res.n_new, res.n_exact_duplicates, res.n_near_duplicates, res.n_added) == (5, 1, 2, 2)
    out = res.data
    assert out.iloc[:2].drop(columns=["source", "bucket"]).equals(data)  # old rows unchanged, in order
    added = out.iloc[2:]
    assert added["text"].tolist() == ["Who wrote Hamlet ?", "How tall is K2 ?"]
    assert added["label"].tolist() == ["", ""] and set(added["source"]) == {"production"}
    assert added["bucket"].tolist() == ["lit", "geo"] and out.loc[0, "source"] == ""
    assert added["id"].str.startswith("production-").all() and added["id"].is_unique
    d = res.dropped.set_index("row")
    assert d.loc[1, "reason"] == "exact duplicate" and d.loc[1, "duplicate_of"] == "a"
    assert d.loc[2, "reason"] == "near duplicate" and d.loc[2, "duplicate_of"] == "a"
    assert d.loc[4, "duplicate_of"] == out.loc[2, "id"] and d.loc[4, "similarity"] >= 0.95
    # An exact copy of a row dropped as a near duplicate points at the row that one duplicated.
    new2 = pd.DataFrame({"text": ["Wherever is Paris?", "wherever is paris"]})
    res2 = ingest_rows(data, new2, source="production", embed=lookup_embed(e))
    assert res2.dropped["duplicate_of"].tolist() == ["a", "a"]


def test_threshold_is_respected():
    data = pd.DataFrame({"id": ["a"], "text": ["x"], "label": [""]})
    new = pd.DataFrame({"text": ["y"]})
    e = {"x": _unit([1, 0]), "y": _unit([0.96, 0.28])}  # cos 0.96
    assert ingest_rows(data, new, source="s", embed=lookup_embed(e)).n_near_duplicates == 1
    assert ingest_rows(data, new, source="s", embed=lookup_embed(e), threshold=0.97).n_added == 1
    with pytest.raises(ConfigError):
        ingest_rows(data, new, source="s", embed=lookup_embed(e), threshold=1.5)


def test_bad_new_rows_are_refused():
    data = pd.DataFrame({"id": ["a"], "text": ["x"], "label": [""]})
    embed = HashingEmbedder(32).encode
    with pytest.raises(DataError, match="no text column"):
        ingest_rows(data, pd.DataFrame({"body": ["y"]}), source="s", embed=embed)
    with pytest.raises(DataError, match="row 2 has no text"):
        ingest_rows(data, pd.DataFrame({"text": ["y", " "]}), source="s", embed=embed)
    with pytest.raises(DataError, match="reuse ids"):
        ingest_rows(data, pd.DataFrame({"id": ["a"], "text": ["something else"]}), source="s", embed=embed)
    with pytest.raises(DataError, match="no bucket column"):
        ingest_rows(data, pd.DataFrame({"text": ["y"]}), source="s", embed=embed, bucket_col="kind")


def test_normalise_text():
    assert normalise_text("  Ｗhere\tIS  paris ? ") == "where is paris"
    assert normalise_text("The U.S. isn't big.") == normalise_text("the US isnt big")


def test_cli_ingest_then_bucket_priority_reserves_budget(tmp_path):
    data = tmp_path / "data.csv"
    write_data(data, n=90, n_labeled=30)
    extra = make_texts(30, seed=5)
    new = pd.DataFrame({"text": [t + " failure" for t in extra["text"]],
                        "kind": ["rare"] * 3 + ["common"] * 27})
    new.loc[29, "text"] = pd.read_csv(data)["text"][40].upper()  # an exact duplicate of a pool row
    new_path = tmp_path / "new.csv"
    new.to_csv(new_path, index=False)
    before = data.read_bytes()
    out = tmp_path / "grown.csv"
    res = runner.invoke(app, ["ingest", str(data), str(new_path), "--source", "production", "--bucket", "kind",
                              "--out", str(out), "--model", "hashing", "--dropped", str(tmp_path / "dropped.csv")])
    assert res.exit_code == 0, res.output
    assert "ingested 29 of 30" in res.output and "dropped 1 exact" in res.output
    assert data.read_bytes() == before
    grown = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(grown) == 119 and (grown["bucket"] == "rare").sum() == 3
    q = tmp_path / "q.csv"
    res = runner.invoke(app, ["select", str(out), "--budget", "10", "--bucket-priority", "0.3", "--model", "hashing",
                              "--out", str(q), "-q"])
    assert res.exit_code == 0, res.output
    queue = pd.read_csv(q, dtype=str, keep_default_na=False)
    assert len(queue) == 10 and queue["id"].is_unique
    rare_ids = set(grown.loc[grown["bucket"] == "rare", "id"])
    # 3 reserved slots, spread evenly over the buckets from the rarest: rare, common, rare.
    assert [i in rare_ids for i in queue["id"][:3]] == [True, False, True]
    assert queue["reason"][0].startswith("bucket priority: failure bucket 'rare' (3 rows)")
    assert queue["reason"][1].startswith("bucket priority: failure bucket 'common' (26 rows)")
    assert not queue["reason"][3:].str.startswith("bucket priority").any()
    res = runner.invoke(app, ["select", str(data), "--budget", "5", "--bucket-priority", "0.3", "--model", "hashing",
                              "--out", str(tmp_path / "q2.csv"), "-q"])
    assert res.exit_code == 1 and "needs a 'bucket' column" in res.output


def test_cli_ingest_in_place_keeps_backup(tmp_path):
    data = tmp_path / "data.csv"
    write_data(data, n=20)
    new_path = tmp_path / "new.jsonl"
    new_path.write_text('{"text": "a brand new failing request"}\n')
    before = data.read_bytes()
    res = runner.invoke(app, ["ingest", str(data), str(new_path), "--source", "prod", "--in-place", "--model", "hashing"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "data.csv.bak").read_bytes() == before
    assert len(pd.read_csv(data)) == 21
