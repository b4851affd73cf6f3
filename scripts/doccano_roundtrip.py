"""A labeling round trip through a real doccano server, scripted.

    python scripts/doccano_roundtrip.py --doccano /path/to/venv/bin/doccano [--work DIR]

doccano 1.8.4 goes in its own venv: ``pip install doccano==1.8.4 'marshmallow<4' 'numpy<2'`` (its ``environs``
breaks on marshmallow 4 and its pandas 1.5 on numpy 2, which pip picks otherwise).

1. builds ``data.csv`` (300 banking77 messages of 10 intents, 60 labeled; seeded), runs
   ``selector select`` and ``selector export --format doccano`` (JSONL with ``"label": []``);
2. starts doccano (fresh SQLite database in the work folder, its task queue, the web server on
   127.0.0.1) with two annotators;
3. creates a single-label text classification project, its categories, uploads the export through
   doccano's own import (filepond upload + ``/v1/projects/ID/upload``, format JSONL);
4. has annotator ``alice`` label 8 examples and ``bob`` 6 (4 of them the same as alice's), with the
   true intents through the API;
5. exports the project as JSONL (doccano's zip, one ``<user>.jsonl`` per member) and runs
   ``selector merge`` on the zip.

Checks: the import takes every task (no "Column label not found"), the merged labels land on the
right rows with ``annotator`` from the file names (``alice;bob`` where both labeled). Prints each step,
writes ``report.json`` in the work folder and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ls_roundtrip import build_data, finish, selector, stop, wait_for  # noqa: E402


def loopback_webserver(doccano: str, port: int) -> list[str]:
    """doccano's WSGI app under gunicorn bound to 127.0.0.1 only.

    ``doccano webserver`` hard-codes gunicorn's bind to all interfaces; this runs the same app
    (``config.wsgi`` from doccano's ``backend`` folder, with the python of doccano's venv) on the
    loopback address, so nothing outside this machine can reach the test server.
    """
    python = str(Path(doccano).with_name("python"))
    backend = subprocess.run([python, "-c", "import backend, os; print(os.path.dirname(backend.__file__))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    return [python, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--chdir", backend,
            "config.wsgi:application"]


def poll(api: httpx.Client, task_id: str, what: str, timeout: float = 300) -> dict:
    t0 = time.time()
    while time.time() - t0 < timeout:
        status = api.get(f"/v1/tasks/status/{task_id}").json()
        if status.get("ready"):
            if status.get("error"):
                raise SystemExit(f"doccano {what} failed: {status['error']}")
            return status
        time.sleep(1)
    raise SystemExit(f"doccano {what} did not finish in {timeout:.0f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--doccano", required=True, help="the doccano executable (its own venv)")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--port", type=int, default=8001)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="doccano-roundtrip-"))
    work.mkdir(parents=True, exist_ok=True)
    gold = build_data(work)
    gold_of = dict(zip(gold["id"], gold["label"]))
    problems, report = [], {"work": str(work)}
    selector("select", "data.csv", "--budget", "20", "-o", "queue.csv", cwd=work)
    selector("export", "queue.csv", "--format", "doccano", "-o", "doccano.jsonl", cwd=work)

    env = dict(os.environ, DATABASE_URL=f"sqlite:///{work / 'doccano.db'}", MEDIA_ROOT=str(work / "media"),
               ALLOW_SIGNUP="False", DEBUG="False")
    subprocess.run([args.doccano, "init"], env=env, check=True, capture_output=True)
    for user in ("admin", "alice", "bob"):
        subprocess.run([args.doccano, "createuser", "--username", user, "--password", f"{user}-pass-1",
                        "--email", f"{user}@example.com"], env=env, check=True, capture_output=True)
    web = subprocess.Popen(loopback_webserver(args.doccano, args.port), env=env, start_new_session=True,
                           stdout=open(work / "doccano-web.log", "w"), stderr=subprocess.STDOUT)
    queue_worker = subprocess.Popen([args.doccano, "task", "--concurrency", "1"], env=env, start_new_session=True,
                                    stdout=open(work / "doccano-task.log", "w"), stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{args.port}"
        wait_for(f"{base}/v1/health/", 300, "doccano", web)

        def login(user: str) -> httpx.Client:
            r = httpx.post(f"{base}/v1/auth/login/", json={"username": user, "password": f"{user}-pass-1"})
            r.raise_for_status()
            return httpx.Client(base_url=base, headers={"Authorization": f"Token {r.json()['key']}"}, timeout=60)

        admin = login("admin")
        project = admin.post("/v1/projects", json={
            "name": "selector round trip", "description": "banking77 intents", "project_type": "DocumentClassification",
            "resourcetype": "TextClassificationProject", "guideline": "", "random_order": False,
            "collaborative_annotation": False, "single_class_classification": True})
        project.raise_for_status()
        pid = project.json()["id"]
        categories = {}
        for label in sorted(set(gold["label"])):
            r = admin.post(f"/v1/projects/{pid}/category-types", json={"text": label, "background_color": "#209cee",
                                                                       "text_color": "#ffffff"})
            r.raise_for_status()
            categories[label] = r.json()["id"]
        roles = {r["name"]: r["id"] for r in admin.get("/v1/roles").json()}
        users = {u["username"]: u["id"] for u in admin.get("/v1/users", params={"q": ""}).json()}
        for user in ("alice", "bob"):
            admin.post(f"/v1/projects/{pid}/members", json={"user": users[user], "role": roles["annotator"]}).raise_for_status()

        upload = admin.post("/v1/fp/process/", files={"filepond": ("doccano.jsonl", (work / "doccano.jsonl").read_bytes(),
                                                                    "application/octet-stream")})
        upload.raise_for_status()
        job = admin.post(f"/v1/projects/{pid}/upload", json={
            "format": "JSONL", "task": "DocumentClassification", "uploadIds": [upload.text.strip()],
            "column_data": "text", "column_label": "label", "delimiter": "", "encoding": "utf_8"})
        job.raise_for_status()
        status = poll(admin, job.json()["task_id"], "import")
        examples = admin.get(f"/v1/projects/{pid}/examples", params={"limit": 1000}).json()["results"]
        print(f"doccano imported {len(examples)} examples; import errors: {status.get('result', {}).get('error')}")
        report["imported"] = len(examples)
        report["import_errors"] = status.get("result", {}).get("error")
        if len(examples) != 20 or report["import_errors"]:
            problems.append(f"doccano imported {len(examples)} of 20 tasks ({report['import_errors']})")

        def sid(example: dict) -> str:
            return (example.get("meta") or {}).get("selector_id")

        plan = {"alice": examples[:8], "bob": examples[4:10]}
        for user, batch in plan.items():
            client = login(user)
            for ex in batch:
                r = client.post(f"/v1/projects/{pid}/examples/{ex['id']}/categories",
                                json={"label": categories[gold_of[sid(ex)]]})
                r.raise_for_status()
        print(f"alice labeled {len(plan['alice'])}, bob {len(plan['bob'])} (4 in common)")

        job = admin.post(f"/v1/projects/{pid}/download", json={"format": "JSONL", "exportApproved": False})
        job.raise_for_status()
        task_id = job.json()["task_id"]
        poll(admin, task_id, "export")
        zipped = admin.get(f"/v1/projects/{pid}/download", params={"taskId": task_id})
        zipped.raise_for_status()
        (work / "doccano_export.zip").write_bytes(zipped.content)
        selector("merge", "data.csv", "doccano_export.zip", "-o", "merged.csv", cwd=work)
        merged = pd.read_csv(work / "merged.csv", dtype=str, keep_default_na=False).set_index("id")
        labeled = {sid(ex) for batch in plan.values() for ex in batch}
        right = sum(merged.loc[i, "label"] == gold_of[i] for i in labeled)
        both = {sid(ex) for ex in plan["alice"]} & {sid(ex) for ex in plan["bob"]}
        who = {i: merged.loc[i, "annotator"] for i in labeled}
        print(f"merge: {right} of {len(labeled)} labeled rows carry their true label; annotators e.g. "
              f"{sorted(set(who.values()))}")
        report.update(merged_right=f"{right}/{len(labeled)}", annotators=sorted(set(who.values())))
        if right != len(labeled):
            problems.append(f"merge put {right} of {len(labeled)} labels right")
        if any(who[i] != "alice;bob" for i in both):
            problems.append(f"rows both annotators labeled carry {[who[i] for i in both]}, not alice;bob")
    finally:
        stop(queue_worker, web)
    finish(report, problems, work)
    if args.work is None:
        shutil.rmtree(work / "media", ignore_errors=True)


if __name__ == "__main__":
    main()
