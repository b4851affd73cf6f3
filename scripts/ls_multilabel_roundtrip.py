"""A multi-label round trip through a real Label Studio server, scripted (issue 29).

    python scripts/ls_multilabel_roundtrip.py --label-studio /path/to/venv/bin/label-studio [--work DIR]

1. builds ``data.csv`` from the committed goemotions fixture (the 300 labeled rows: 100 keep their
   emotion sets, 200 are blanked and their sets kept as the truth), runs ``selector select
   --multi-label`` and ``selector export --format label-studio`` (tasks + a ``choice="multiple"``
   labeling config);
2. starts Label Studio on 127.0.0.1, creates a project with the exported config and imports the
   tasks with their predictions;
3. annotates tasks through the API with their true label sets (several choices in one result);
4. exports the project as Label Studio JSON and runs ``selector merge`` on it.

It checks: Label Studio accepts the config and the imported multi-choice predictions (every
pre-selected set arrives whole); the merge writes each annotated row's true set (compared as sets);
an annotation that disagrees with the row's merged set is a conflict that names the differing
labels. Writes ``report.json`` into the work folder; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ls_roundtrip import TOKEN, finish, parse_from_name, selector, start_label_studio, stop, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "goemotions_sample.csv"


def build_data(work: Path) -> dict[str, str]:
    """``data.csv`` (100 labeled, 200 to label) and the true set of each row to label."""
    df = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)
    df = df[df["label"] != ""].reset_index(drop=True)
    truth = dict(zip(df["id"][100:], df["label"][100:]))
    df.loc[100:, "label"] = ""
    df.to_csv(work / "data.csv", index=False)
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label-studio", required=True, help="the label-studio executable (its own venv)")
    ap.add_argument("--work", type=Path, default=None, help="work folder [default: a new temp folder]")
    ap.add_argument("--ls-port", type=int, default=8090)
    ap.add_argument("--annotate", type=int, default=10)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ls-multilabel-"))
    work.mkdir(parents=True, exist_ok=True)
    truth = build_data(work)
    problems, report = [], {"work": str(work)}

    selector("select", "data.csv", "--multi-label", "--budget", "20", "-o", "queue.csv", cwd=work)
    selector("export", "queue.csv", "--format", "label-studio", "-o", "tasks.json", "--data", "data.csv", cwd=work)
    tasks = json.loads((work / "tasks.json").read_text())
    config = (work / "tasks.label_config.xml").read_text()
    if 'choice="multiple"' not in config:
        problems.append("the exported labeling config is not multiple-choice")

    ls = start_label_studio(args.label_studio, args.ls_port, work)
    try:
        ls_url = f"http://127.0.0.1:{args.ls_port}"
        wait_for(f"{ls_url}/health", 600, "Label Studio", ls)
        api = httpx.Client(base_url=ls_url, headers={"Authorization": f"Token {TOKEN}"}, timeout=120)
        version = api.get("/api/version").json().get("release")
        print(f"Label Studio {version} on {ls_url}")
        report["label_studio_version"] = version
        project = api.post("/api/projects", json={"title": "selector multi-label", "label_config": config})
        project.raise_for_status()
        pid = project.json()["id"]
        imported = api.post(f"/api/projects/{pid}/import", json=tasks)
        imported.raise_for_status()
        ls_tasks = api.get("/api/tasks", params={"project": pid, "page_size": 1000, "fields": "all"}).json()["tasks"]
        print(f"imported {len(ls_tasks)} tasks into project {pid}")
        sent = {t["data"]["selector_id"]: (t["predictions"][0]["result"] or [{}])[0].get("value", {}).get("choices", [])
                for t in tasks}
        kept, multi = 0, 0
        for t in ls_tasks:
            preds = api.get("/api/predictions", params={"task": t["id"]}).json()
            got = (preds[0]["result"] or [{}])[0].get("value", {}).get("choices", []) if preds else []
            kept += sorted(got) == sorted(sent[t["data"]["selector_id"]])
            multi += len(got) > 1
        print(f"{kept} of {len(ls_tasks)} imported predictions carry the exported set ({multi} with several labels)")
        report["predictions_kept"] = f"{kept}/{len(ls_tasks)}"
        report["predictions_with_several_labels"] = multi
        if kept != len(ls_tasks):
            problems.append(f"only {kept} of {len(ls_tasks)} predictions arrived with their exported set")

        from_name, to_name = parse_from_name(config)
        annotated = []
        for t in ls_tasks[: args.annotate]:
            sid = t["data"]["selector_id"]
            body = {"result": [{"from_name": from_name, "to_name": to_name, "type": "choices",
                                "value": {"choices": truth[sid].split(";")}}], "task": t["id"]}
            api.post(f"/api/tasks/{t['id']}/annotations", json=body).raise_for_status()
            annotated.append(sid)
        report["annotated"] = len(annotated)
        report["annotated_with_several_labels"] = sum(";" in truth[s] for s in annotated)
        export = api.get(f"/api/projects/{pid}/export", params={"exportType": "JSON"})
        export.raise_for_status()
        (work / "ls_export.json").write_bytes(export.content)
        selector("merge", "data.csv", "ls_export.json", "-o", "merged.csv", cwd=work)
        merged = pd.read_csv(work / "merged.csv", dtype=str, keep_default_na=False).set_index("id")
        right = sum(set(merged.loc[i, "label"].split(";")) == set(truth[i].split(";")) for i in annotated)
        print(f"merge: {right} of {len(annotated)} annotated rows carry their true set")
        report["merged_right"] = f"{right}/{len(annotated)}"
        if right != len(annotated):
            problems.append(f"merge put {right} of {len(annotated)} sets right")

        # A second annotator disagrees on one label of the first annotated row: a conflict naming it.
        first = next(t for t in ls_tasks if t["data"]["selector_id"] == annotated[0])
        labels = truth[annotated[0]].split(";")
        other = [c for c in ("neutral", "joy") if c not in labels][0]
        body = {"result": [{"from_name": from_name, "to_name": to_name, "type": "choices",
                            "value": {"choices": labels + [other]}}], "task": first["id"]}
        api.post(f"/api/tasks/{first['id']}/annotations", json=body).raise_for_status()
        export = api.get(f"/api/projects/{pid}/export", params={"exportType": "JSON"})
        (work / "ls_export2.json").write_bytes(export.content)
        exe = Path(sys.executable).with_name("selector")
        res = subprocess.run([str(exe), "merge", "merged.csv", "ls_export2.json", "-o", "merged2.csv"], cwd=work,
                             capture_output=True, text=True)
        report["conflict_message"] = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""
        print(f"second merge (exit {res.returncode}): {report['conflict_message']}")
        if res.returncode == 0 or f"differ on {other}" not in res.stderr:
            problems.append(f"a disagreeing second annotation did not stop the merge naming {other!r}")
    finally:
        stop(ls)
    finish(report, problems, work)
    if args.work is None:
        shutil.rmtree(work / "ls-data", ignore_errors=True)


if __name__ == "__main__":
    main()
