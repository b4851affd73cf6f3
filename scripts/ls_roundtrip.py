"""A labeling round trip through a real Label Studio server and `selector serve`, scripted.

    python scripts/ls_roundtrip.py --label-studio /path/to/venv/bin/label-studio [--work DIR]

What it does (every step is a command or a documented Label Studio API call a user could run):

1. builds ``data.csv`` (300 banking77 messages of 10 intents, 60 labeled; seeded) and runs
   ``selector select`` and ``selector export --format label-studio`` (tasks + labeling config);
2. starts Label Studio on 127.0.0.1 (fresh data folder, a legacy API token) and ``selector serve``
   on 127.0.0.1 (recording the requests Label Studio sends);
3. creates a project with the exported config, imports the tasks, connects the ML backend
   (``POST /api/ml``) and asks it for predictions of every task (data manager action
   ``retrieve_tasks_predictions``);
4. annotates 12 tasks through the API with their true intents (each ``ANNOTATION_CREATED``
   webhook makes ``selector serve`` refit and write a ledger round);
5. exports the project as Label Studio JSON and runs ``selector merge`` on it.

It checks: the imported predictions carry the queue position as ``score`` (the class probability on the
choice) and a per-round ``model_version``; Label Studio's uncertainty sampling then serves queue ranks
1, 2, 3; the backend's predictions reach every task; the webhooks refit the model and point the
project's ``model_version`` at the backend as a live model; the merge puts the annotated labels on the right rows. It prints
each step and writes ``report.json`` and the recorded requests into the work folder, and exits 1 when a
check fails. Label Studio 1.23 refuses an ML backend URL on a local address ("URL resolves to a reserved network address (block: 127.0.0.0/8)");
the script starts it with ``ML_BLOCK_LOCAL_IP=false SSRF_PROTECTION_ENABLED=false`` so it may call the
backend on 127.0.0.1, as a user running both on one machine must too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# Committed (300 banking77 questions, 30 for each of 10 intents; tests/data/SOURCE.md): runs on a fresh clone.
FIXTURE = ROOT / "tests" / "data" / "banking77_10_intents.csv"
TOKEN = "selector-roundtrip-token"


def label_studio_env() -> dict[str, str]:
    """Label Studio's environment for a local, offline run.

    LATEST_VERSION_CHECK=false and an empty SENTRY_DSN / FRONTEND_SENTRY_DSN keep it from calling out
    (version check, error reporting); the ML backend on 127.0.0.1 needs local addresses allowed. The
    legacy token (``--user-token`` with ``--enable-legacy-api-token``: without the flag Label Studio
    1.23 answers 401 to a plain token) is passed on the command line.
    """
    return dict(os.environ, ML_BLOCK_LOCAL_IP="false", SSRF_PROTECTION_ENABLED="false",
                LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true", LATEST_VERSION_CHECK="false",
                SENTRY_DSN="", FRONTEND_SENTRY_DSN="")


def start_label_studio(executable: str, port: int, work: Path) -> subprocess.Popen:
    """Label Studio on 127.0.0.1:``port`` with a fresh data folder in ``work``, an admin user and the
    legacy API token :data:`TOKEN`; its log goes to ``work/label-studio.log``."""
    return subprocess.Popen([executable, "start", "--no-browser", "--port", str(port),
                             "--internal-host", "127.0.0.1", "--data-dir", str(work / "ls-data"),
                             "--username", "admin@example.com", "--password", "roundtrip-pass",
                             "--user-token", TOKEN, "--enable-legacy-api-token", "--log-level", "WARNING"],
                            stdout=open(work / "label-studio.log", "w"), stderr=subprocess.STDOUT,
                            env=label_studio_env(), start_new_session=True)


def selector(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("selector")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "selector"]
    res = subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    print(f"$ selector {' '.join(args)}\n{res.stderr.strip()}")
    if res.returncode != 0:
        raise SystemExit(f"selector {args[0]} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def wait_for(url: str, timeout: float, what: str, proc: subprocess.Popen) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"{what} not ready after {timeout:.0f}s ({url})")


def build_data(work: Path, seed: int = 0) -> pd.DataFrame:
    df = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    df.insert(0, "id", [f"b{i:03d}" for i in range(len(df))])
    gold = df[["id", "label"]].copy()
    df.loc[60:, "label"] = ""
    df[["id", "text", "label"]].to_csv(work / "data.csv", index=False)
    return gold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label-studio", required=True, help="the label-studio executable (its own venv)")
    ap.add_argument("--work", type=Path, default=None, help="work folder [default: a new temp folder]")
    ap.add_argument("--ls-port", type=int, default=8089)
    ap.add_argument("--backend-port", type=int, default=9091)
    ap.add_argument("--annotate", type=int, default=12)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ls-roundtrip-"))
    work.mkdir(parents=True, exist_ok=True)
    gold = build_data(work)
    gold_of = dict(zip(gold["id"], gold["label"]))
    problems, report = [], {"work": str(work)}

    selector("select", "data.csv", "--budget", "20", "-o", "queue.csv", cwd=work)
    selector("export", "queue.csv", "--format", "label-studio", "-o", "tasks.json", "--data", "data.csv", cwd=work)
    tasks = json.loads((work / "tasks.json").read_text())
    config = (work / "tasks.label_config.xml").read_text()

    ls = start_label_studio(args.label_studio, args.ls_port, work)
    exe = Path(sys.executable).with_name("selector")
    serve = subprocess.Popen([str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "selector"]),
                              "serve", "data.csv", "--port", str(args.backend_port), "--record", "requests"],
                             cwd=work, stdout=open(work / "serve.log", "w"), stderr=subprocess.STDOUT,
                             env=dict(os.environ, HF_HUB_OFFLINE="1"), start_new_session=True)
    try:
        ls_url, be_url = f"http://127.0.0.1:{args.ls_port}", f"http://127.0.0.1:{args.backend_port}"
        wait_for(f"{be_url}/health", 300, "selector serve", serve)
        wait_for(f"{ls_url}/health", 600, "Label Studio", ls)
        api = httpx.Client(base_url=ls_url, headers={"Authorization": f"Token {TOKEN}"}, timeout=120)
        version = api.get("/api/version").json().get("release")
        print(f"Label Studio {version} on {ls_url}; selector serve on {be_url}")
        report["label_studio_version"] = version

        project = api.post("/api/projects", json={"title": "selector round trip", "label_config": config})
        project.raise_for_status()
        pid = project.json()["id"]
        imported = api.post(f"/api/projects/{pid}/import", json=tasks)
        imported.raise_for_status()
        print(f"imported {imported.json().get('task_count')} tasks into project {pid}")
        ls_tasks = api.get("/api/tasks", params={"project": pid, "page_size": 1000, "fields": "all"}).json()["tasks"]
        # Each imported prediction: model_version per round, score = the queue position rank / (n + 1),
        # the class probability on the choice.
        first = ls_tasks[0]
        preds = api.get("/api/predictions", params={"task": first["id"]}).json()
        queue = pd.read_csv(work / "queue.csv", dtype=str, keep_default_na=False).set_index("id")
        row = queue.loc[first["data"]["selector_id"]]
        imported_pred = next((p for p in preds if p["model_version"].startswith("selector-r1")), None)
        report["imported_prediction"] = imported_pred and {k: imported_pred[k] for k in ("model_version", "score")}
        want = int(row["rank"]) / (len(queue) + 1)
        if imported_pred is None or abs(float(imported_pred["score"]) - want) > 1e-6:
            problems.append(f"imported prediction score {imported_pred and imported_pred['score']} != rank score {want}")
        choice_score = ((imported_pred or {}).get("result") or [{}])[0].get("score")
        if choice_score is None or abs(float(choice_score) - float(row["predicted_proba"])) > 1e-6:
            problems.append(f"the pre-selected choice's score {choice_score} != predicted_proba {row['predicted_proba']}")

        # Label Studio's own "uncertainty sampling" (lowest prediction score first) serves selector's queue
        # order: ask for the next task three times, annotating each, before any backend is connected.
        api.patch(f"/api/projects/{pid}", json={"sampling": "Uncertainty sampling",
                                                 "model_version": imported_pred["model_version"]}).raise_for_status()
        gold_choices = parse_from_name(config)
        served_ranks = []
        for _ in range(3):
            nxt = api.get(f"/api/projects/{pid}/next")
            nxt.raise_for_status()
            t = nxt.json()
            served_ranks.append(int(queue.loc[t["data"]["selector_id"], "rank"]))
            body = {"result": [{"from_name": gold_choices[0], "to_name": gold_choices[1], "type": "choices",
                                "value": {"choices": [gold_of[t["data"]["selector_id"]]]}}], "task": t["id"]}
            api.post(f"/api/tasks/{t['id']}/annotations", json=body).raise_for_status()
        print(f"uncertainty sampling served queue ranks {served_ranks}")
        report["uncertainty_sampling_ranks"] = served_ranks
        if served_ranks != [1, 2, 3]:
            problems.append(f"Label Studio's uncertainty sampling served ranks {served_ranks}, not 1, 2, 3")

        ml = api.post("/api/ml", json={"url": be_url, "project": pid, "title": "selector"})
        ml.raise_for_status()
        print(f"connected the ML backend: {ml.json().get('state')} ({ml.json().get('model_version')})")
        action = api.post("/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": pid},
                          json={"selectedItems": {"all": True, "excluded": []}, "project": pid})
        action.raise_for_status()
        served = []
        for t in ls_tasks:
            for p in api.get("/api/predictions", params={"task": t["id"]}).json():
                if p["model_version"].endswith("-serve"):
                    served.append(p)
        print(f"{len(served)} of {len(ls_tasks)} tasks got a prediction from selector serve")
        report["served_predictions"] = len(served)
        if len(served) < len(ls_tasks):
            problems.append(f"only {len(served)} of {len(ls_tasks)} tasks got a backend prediction")

        choices = parse_from_name(config)
        annotated = []
        done_ids = {t["id"] for t in api.get("/api/tasks", params={"project": pid, "page_size": 1000,
                                                                    "fields": "all"}).json()["tasks"]
                    if t.get("total_annotations")}
        for t in [t for t in ls_tasks if t["id"] not in done_ids][: args.annotate]:
            sid = t["data"]["selector_id"]
            body = {"result": [{"from_name": choices[0], "to_name": choices[1], "type": "choices",
                                "value": {"choices": [gold_of[sid]]}}], "task": t["id"]}
            r = api.post(f"/api/tasks/{t['id']}/annotations", json=body)
            r.raise_for_status()
            annotated.append(sid)
        time.sleep(3)  # webhooks are sent after the response
        health = httpx.get(f"{be_url}/health").json()
        print(f"after {len(annotated)} annotations the backend reports {health}")
        report["backend_after_annotations"] = health
        # A refit pointed the project at the backend as a live model (the connection's title), so Label
        # Studio uses the latest refit rather than the imported round.
        project_version = api.get(f"/api/projects/{pid}").json().get("model_version")
        print(f"project model_version after the refits: {project_version} (the backend's connection: selector)")
        report["project_model_version"] = project_version
        if project_version != "selector":
            problems.append(f"project model_version {project_version!r}, not the live backend 'selector'")
        labels_file = work / ".selector" / "data.csv.serve-labels.jsonl"
        got = [json.loads(x) for x in labels_file.read_text().splitlines()] if labels_file.exists() else []
        if sorted({g["id"] for g in got}) != sorted(annotated):
            problems.append(f"the backend recorded {len(got)} labels for {len({g['id'] for g in got})} ids, "
                            f"expected {len(annotated)}")

        export = api.get(f"/api/projects/{pid}/export", params={"exportType": "JSON"})
        export.raise_for_status()
        (work / "ls_export.json").write_bytes(export.content)
        selector("merge", "data.csv", "ls_export.json", "-o", "merged.csv", cwd=work)
        merged = pd.read_csv(work / "merged.csv", dtype=str, keep_default_na=False).set_index("id")
        right = sum(merged.loc[i, "label"] == gold_of[i] for i in annotated)
        print(f"merge: {right} of {len(annotated)} annotated rows carry their true label")
        report["merged_right"] = f"{right}/{len(annotated)}"
        if right != len(annotated):
            problems.append(f"merge put {right} of {len(annotated)} labels right")
        ledger = [json.loads(x) for x in (work / ".selector" / "data.csv.rounds.jsonl").read_text().splitlines()]
        refits = [r for r in ledger if r.get("command") == "selector serve"]
        print(f"ledger: {len(ledger)} rounds, {len(refits)} of them refits by selector serve")
        report["ledger_rounds"], report["serve_refits"] = len(ledger), len(refits)
        if not refits:
            problems.append("no refit round in the ledger")
    finally:
        stop(serve, ls)
    finish(report, problems, work)
    if args.work is None:
        shutil.rmtree(work / "ls-data", ignore_errors=True)


def stop(*procs: subprocess.Popen) -> None:
    """SIGTERM each server's process group, then SIGKILL what is still there after 20 s."""
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def finish(report: dict, problems: list, work: Path) -> None:
    """Write and print ``report.json``; exit 1 when a check failed."""
    report["problems"] = problems
    (work / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if problems:
        print("FAILED: " + "; ".join(problems))
        raise SystemExit(1)
    print(f"round trip OK (work folder {work})")


def parse_from_name(config: str) -> tuple[str, str]:
    import xml.etree.ElementTree as ET

    choices = next(ET.fromstring(config).iter("Choices"))
    return choices.get("name"), choices.get("toName")


if __name__ == "__main__":
    main()
