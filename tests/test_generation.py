"""The generation-set checks of `selector validate` (chat-format replies as outputs)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.cli import app
from selector.quality.generation import is_refusal, parses_as_json
from selector.quality.validate import validate


def _gen_table(rows):
    """rows: (input, output[, system]); every row has a reply."""
    df = pd.DataFrame([{"id": f"g{i}", "text": r[0], "label": "", "output": r[1],
                        "system": r[2] if len(r) > 2 else "Be helpful.", "has_reply": True} for i, r in enumerate(rows)])
    return df


def _check(df, **kw):
    return validate(df, near_duplicates=False, output_col="output", system_col="system", **kw)


BASE = [(f"How do I do task {i}?", f"Open the menu, choose option {i}, then press save.") for i in range(30)]


def test_clean_generation_set_has_no_generation_findings():
    report = _check(_gen_table(BASE + [("Can you hack my neighbour's wifi?", "I can't help with that.")]))
    assert report.passed and [f.check for f in report.findings] == []


def test_each_generation_check_finds_its_rows():
    rows = list(BASE)
    rows.append(("How do I do task 0?", "Bananas are yellow."))                       # contradiction with g0
    rows.append(("Tell me a story", "Once upon a time a small fox lived at the edge of a very large forest and "
                 "every single morning he would walk down to the river and"))             # cut off mid-sentence
    rows.append(("Show code", "```python\nprint('hi')\n"))                                 # unclosed fence
    rows.append(("Say nothing", ""))                                                      # empty reply
    rows.append(("Summarise the report", "x" * 4000 + "."))                               # length outlier
    rows.append(("How do I do task 99?", "Open the menu, choose option 99, then press save.",
                 "You are a helpfull assistant!"))                                        # another system prompt
    report = _check(_gen_table(rows))
    by = {f.check: f for f in report.findings}
    assert by["output_contradiction"].row_ids == ["g0", "g30"] and by["output_contradiction"].severity == "blocker"
    assert set(by["truncated_output"].row_ids) == {"g31", "g32"}
    assert by["empty_output"].row_ids == ["g33"]
    assert "g34" in by["length_outlier"].row_ids
    assert by["system_prompt_drift"].row_ids == ["g35"]
    assert by["missing_negatives"].details["n_refusal_replies"] == 0
    assert not report.passed


def test_json_replies_that_do_not_parse_block_and_differing_json_contradicts():
    rows = [(f"ticket {i}", json.dumps({"category": "billing", "urgent": i % 2 == 0})) for i in range(20)]
    rows.append(("ticket 21", '{"category": "billing", "urgent": tru'))
    rows.append(("ticket 0", json.dumps({"urgent": True, "category": "fraud"})))
    rows.append(("ticket 1", json.dumps({"urgent": False, "category": "billing"})))  # same object, keys reordered
    report = _check(_gen_table(rows))
    by = {f.check: f for f in report.findings}
    assert by["unparsable_output"].row_ids == ["g20"] and by["unparsable_output"].severity == "blocker"
    assert by["output_contradiction"].row_ids == ["g0", "g21"]
    assert "truncated_output" not in by or "g20" in by["truncated_output"].row_ids


def test_duplicates_are_same_input_and_reply():
    rows = BASE + [BASE[3], ("How do I do task 3?", "Open the menu, choose option 3, then press save!")]
    by = {f.check: f for f in _check(_gen_table(rows)).findings}
    assert by["exact_duplicate"].row_ids == ["g3", "g30", "g31"]
    assert "output_contradiction" not in by  # the same reply up to punctuation is no contradiction


def test_reply_agreement_uses_embeddings_of_the_replies():
    rows = [("What is 2+2?", "It is four."), ("What is 2+2?", "The answer is 4."), ("Capital of France?", "Paris."),
            ("Capital of France?", "Berlin is the capital of Germany.")] + BASE[:20]
    df = _gen_table(rows)

    class PairEmbedder:
        """Replies 0/1 are close (same answer), 2/3 far apart; the rest spread out."""
        name = "pairs"
        fingerprint = "pairs-v1"

        def encode(self, texts, **kw):
            out = []
            for t in texts:
                v = np.zeros(8, np.float32)
                v[0 if ("four" in t or "4" in t) else 1 if "Paris" in t else 2 if "Berlin" in t else 3] = 1.0
                out.append(v)
            return np.stack(out)

    report = validate(df, output_col="output", system_col="system", embedder=PairEmbedder(),
                      embeddings=np.eye(len(df), 8, dtype=np.float32) * 0 + 1 / np.sqrt(8))
    by = {f.check: f for f in report.findings}
    assert by["output_contradiction"].row_ids == ["g2", "g3"]
    assert by["output_contradiction"].details["groups"][0]["min_cosine"] == 0.0


@pytest.mark.parametrize("reply, refusal", [
    ("I can't help with that.", True), ("I'm sorry, but I cannot assist with this request.", True),
    ("I am unable to provide medical advice.", True), ("That is outside my scope.", True),
    ("Sure, here is how to reset it.", False), ("I can help you with that!", False),
])
def test_refusal_style_replies(reply, refusal):
    assert is_refusal(reply) is refusal


def test_refusals_satisfy_missing_negatives_and_json_parsing():
    rows = BASE + [("Help me cheat on a test", "I'm sorry, but I can't help with that.")]
    assert _check(_gen_table(rows)).finding("missing_negatives") is None
    assert parses_as_json("```json\n{\"a\": 1}\n```") == {"a": 1} and parses_as_json("plain") is None


def test_cli_validate_generation_set_exits_1_on_blockers(tmp_path):
    path = tmp_path / "gen.jsonl"
    lines = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in BASE]
    lines.append({"messages": [{"role": "user", "content": BASE[0][0]}, {"role": "assistant", "content": "No."}]})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = CliRunner().invoke(app, ["validate", str(path), "--no-embed", "--json"])
    assert res.exit_code == 1
    report = json.loads(res.stdout[res.stdout.index("{"):])
    assert [f["check"] for f in report["findings"] if f["severity"] == "blocker"] == ["output_contradiction"]
