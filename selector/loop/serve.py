"""``selector serve``: a Label Studio ML backend (the label-studio-ml protocol) around one data file.

Label Studio calls an ML backend over HTTP (``label_studio/ml/api_connector.py`` in LS 1.23):

- ``GET /health`` -> ``{"status": "UP", "model_class", "model_version"}``;
- ``POST /setup`` ``{"project", "schema", "hostname", "access_token", "extra_params"}`` -> ``{"model_version"}``;
  the labeling config (``schema``) is parsed for its ``Choices`` control and the object it labels;
- ``POST /predict`` ``{"tasks": [...], "project", "label_config", "params"}`` ->
  ``{"results": [{"result": [choices], "score", "model_version"}, ...]}``, one per task. ``score``
  is the model's confidence in the pre-selected choice (LS's uncertainty sampling serves the
  lowest first, so the rows selector's uncertainty would pick come first);
- ``POST /webhook`` (created by LS for every ML backend; ``ANNOTATION_CREATED``,
  ``ANNOTATION_UPDATED``, ``ANNOTATIONS_CREATED``) ``{"action", "annotation"(s), "task", "project"}``:
  the label is recorded in ``.selector/<data>.serve-labels.jsonl`` (append-only, mergeable with
  ``selector merge DATA that-file``), the classifier is refitted on every label so far (cached
  embeddings: a refit is one logistic regression), and the refit is a round in the data file's
  ledger (``command: "selector serve"``), so ``selector status`` shows it.

The data file is never modified. A task is matched to its row by ``data.selector_id`` (tasks
made by ``selector export``); other tasks are embedded from their text and predicted all the same.
:class:`BackendState` is the logic (no HTTP); :func:`make_app` wraps it in a FastAPI app.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' ``Request`` annotations
# at runtime, and they are imported inside make_app (FastAPI is an optional extra).
import datetime as _dt
import json
import threading
import urllib.error
import urllib.request
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selector.chat import read_data
from selector.config import SelectConfig, cache_dir_for
from selector.errors import ConfigError, DataError
from selector.io import file_sha256, read_table
from selector.labels import normalise_label
from selector.loop.export import model_version as version_name
from selector.loop.ledger import (
    append_record,
    ledger_path,
    next_round_number,
    read_ledger,
    round_records,
)
from selector.loop.merge import annotator_name
from selector.models import CachedEmbedder, make_embedder
from selector.models.classifiers import fit_classifier
from selector.round.embed import embed_pool
from selector.round.model import (
    classifier_template,
    cv_figures,
    labels_problem,
    out_of_fold,
)
from selector.round.pool import prepare_pool
from selector.round.record import round_record

__all__ = ["BackendState", "make_app", "LabelTarget", "parse_label_config", "served_labels_path", "ANNOTATION_ACTIONS"]

ANNOTATION_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")


@dataclass(frozen=True)
class LabelTarget:
    """Where predictions go in a labeling config: the ``Choices`` control, the object it labels, and
    the task data key that object shows (``$text`` -> ``text``)."""

    from_name: str
    to_name: str
    data_key: str
    choices: tuple


def parse_label_config(config_xml: str, from_name: str | None = None) -> LabelTarget:
    """The single-choice target of a Label Studio labeling config.

    Raises
    ------
    ConfigError
        Unparsable XML, no ``Choices`` control (or none named ``from_name``), or a ``toName`` object
        missing from the config.
    """
    try:
        root = ET.fromstring(config_xml)
    except ET.ParseError as exc:
        raise ConfigError(f"labeling config is not valid XML ({exc})") from None
    controls = [c for c in root.iter("Choices") if from_name is None or c.get("name") == from_name]
    if not controls:
        raise ConfigError("labeling config has no <Choices> control" + (f" named {from_name!r}" if from_name else "")
                          + "; selector serve pre-annotates single-choice classification")
    control = controls[0]
    to_name = control.get("toName", "").split(",")[0]
    objects = {el.get("name"): el for el in root.iter() if el.get("name") and el.get("value")}
    if to_name not in objects:
        raise ConfigError(f"labeling config: <Choices name={control.get('name')!r}> points at {to_name!r}, "
                          "which is not an object in the config")
    value = objects[to_name].get("value", "")
    return LabelTarget(from_name=control.get("name"), to_name=to_name, data_key=value.lstrip("$"),
                       choices=tuple(c.get("value") for c in control.iter("Choice")))


def served_labels_path(data: str | Path) -> Path:
    """``.selector/<data name>.serve-labels.jsonl`` beside the data: the labels Label Studio sent."""
    data = Path(data).resolve()
    return data.parent / ".selector" / f"{data.name}.serve-labels.jsonl"


def _annotation_label(annotation: dict, target: LabelTarget | None) -> str | None:
    """The single choice of an LS annotation (None when cancelled or without a choice)."""
    if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
        return None
    choices = [c for r in annotation.get("result") or [] if isinstance(r, dict) and r.get("type") == "choices"
               and (target is None or r.get("from_name") == target.from_name)
               for c in (r.get("value") or {}).get("choices") or []]
    return choices[0] if len(choices) == 1 else None


@dataclass(frozen=True)
class ProjectLink:
    """Where the Label Studio project behind ``/setup`` lives: base URL, API token, project id."""

    hostname: str
    access_token: str
    project: int


class BackendState:
    """The model behind ``selector serve``: the data's embeddings, the labels so far, the fitted classifier.

    Parameters
    ----------
    data : path
        The data file (table or chat JSONL); never modified.
    config : SelectConfig
    embedder : object, optional
        Default: the configured model, cached in ``cache_dir``.
    cache_dir : path, optional
        Default: ``.selector`` beside the data.
    """

    def __init__(self, data: str | Path, config: SelectConfig | None = None, *, embedder=None,
                 cache_dir: str | Path | None = None) -> None:
        self.data = Path(data)
        self.config = config or SelectConfig()
        df, _ = read_data(self.data, self.config)
        self.pool = prepare_pool(df, text_col=self.config.text_col, label_col=self.config.label_col,
                                 id_col=self.config.id_col, source=str(self.data),
                                 require_id_col=self.config.id_col != "id", unsure_labels=self.config.unsure_labels)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_dir_for(self.data, self.config)
        base = embedder or make_embedder(self.config.model, device=self.config.device,
                                         batch_size=self.config.batch_size, backend=self.config.backend)
        self.embedder = base if isinstance(base, CachedEmbedder) else CachedEmbedder(
            base, self.cache_dir, dtype=self.config.cache_dtype)
        self.X, _ = embed_pool(self.pool, self.config, embedder=self.embedder, cache_dir=self.cache_dir)
        self.position = {str(i): k for k, i in enumerate(self.pool.ids)}
        self.labels_file = served_labels_path(self.data)
        self.ledger = ledger_path(self.data)
        self.target: LabelTarget | None = None
        self._lock = threading.Lock()
        self.extra: dict[str, str] = {}  # id -> label sent by Label Studio (replayed from the labels file)
        if self.labels_file.is_file() and self.labels_file.stat().st_size:
            sent = read_table(self.labels_file)
            for i, lab in zip(sent["id"], sent["label"]):
                self.extra[str(i)] = str(lab)
        self.round = next_round_number(read_ledger(self.ledger)) - 1
        self.model = None
        self.classes = None
        self.project: ProjectLink | None = None
        self._fit()

    # -- the model
    def training_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (n,) and labels (n,) to train on: the data's labels, overridden by Label Studio's."""
        labels = self.pool.labels.copy()
        for i, lab in self.extra.items():
            if i in self.position:
                labels[self.position[i]] = lab
        rows = np.flatnonzero([v is not None for v in labels])
        return rows, labels[rows].astype(str)

    def _fit(self) -> None:
        rows, y = self.training_labels()
        if labels_problem(y) is None:
            self.model = fit_classifier(classifier_template(self.config), self.X[rows], y)
            self.classes = np.asarray(self.model.classes_).astype(str)
        else:
            self.model, self.classes = None, None

    @property
    def model_version(self) -> str:
        return version_name("serve", self.round or None)

    def setup(self, schema: str | None, *, hostname: str | None = None, access_token: str | None = None,
              project: Any = None) -> str:
        """Read the project's labeling config; remember where the project lives (Label Studio sends its
        ``hostname``, an ``access_token`` and the ``project`` id), so a refit can tell the project its new
        model version."""
        if schema:
            self.target = parse_label_config(schema)
        if isinstance(hostname, str) and hostname.strip() and isinstance(access_token, str) and access_token.strip():
            project_id = str(project).split(".", 1)[0] if project is not None else ""
            if project_id.isdigit():
                self.project = ProjectLink(hostname.rstrip("/"), access_token, int(project_id))
        return self.model_version

    def announce_version(self) -> str | None:
        """PATCH the project's ``model_version`` to this backend's, so Label Studio sorts and shows the
        latest refit's predictions rather than the imported round's. Returns the version set, or None
        without a project link; a failure is a warning (labeling goes on), never silent."""
        link = self.project
        if link is None:
            return None
        version = self.model_version
        request = urllib.request.Request(
            f"{link.hostname}/api/projects/{link.project}", method="PATCH",
            data=json.dumps({"model_version": version}).encode("utf-8"),
            headers={"Content-Type": "application/json", "Authorization": f"Token {link.access_token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            warnings.warn(f"could not set project {link.project}'s model_version to {version} at {link.hostname} "
                          f"({exc}); Label Studio keeps sorting by its current model version", stacklevel=2)
            return None
        return version

    def _target(self, label_config: str | None) -> LabelTarget:
        if label_config:
            return parse_label_config(label_config, self.target.from_name if self.target else None)
        if self.target is None:
            raise DataError("no labeling config yet: Label Studio sends it with /setup and /predict")
        return self.target

    def _vectors(self, tasks: list[dict], target: LabelTarget) -> np.ndarray:
        rows, texts, where = [], [], []
        for n, task in enumerate(tasks):
            data = task.get("data") or {}
            sid = normalise_label(data.get("selector_id"))
            if sid is not None and sid in self.position:
                rows.append((n, self.position[sid]))
            else:
                text = data.get(target.data_key)
                if not isinstance(text, str) or not text.strip():
                    raise DataError(f"task {task.get('id')} has no text in data.{target.data_key}")
                texts.append(text)
                where.append(n)
        X = np.empty((len(tasks), self.X.shape[1]), dtype=np.float32)
        for n, k in rows:
            X[n] = self.X[k]
        if texts:
            X[where] = self.embedder.encode(texts)
        return X

    def predict(self, tasks: list[dict], label_config: str | None = None) -> list[dict[str, Any]]:
        """One prediction per task: ``{"result", "score", "model_version"}`` (an empty result without a model)."""
        target = self._target(label_config)
        with self._lock:
            model, classes, version = self.model, self.classes, self.model_version
        if model is None:
            return [{"result": [], "score": 0.0, "model_version": version} for _ in tasks]
        proba = model.predict_proba(self._vectors(tasks, target))
        best = proba.argmax(axis=1)
        out = []
        for p, b in zip(proba, best):
            out.append({"result": [{"from_name": target.from_name, "to_name": target.to_name, "type": "choices",
                                    "value": {"choices": [str(classes[b])]}}],
                        "score": round(float(p[b]), 6), "model_version": version})
        return out

    def learn(self, payload: dict) -> dict[str, Any]:
        """Record the labels of an annotation webhook, refit, and write the refit as a ledger round."""
        action = payload.get("action")
        if action not in ANNOTATION_ACTIONS:
            return {"status": "ignored", "action": action, "model_version": self.model_version}
        annotations = payload.get("annotation") or payload.get("annotations")
        annotations = annotations if isinstance(annotations, list) else [annotations]
        tasks = payload.get("task") or payload.get("tasks")
        tasks = tasks if isinstance(tasks, list) else [tasks] * len(annotations)
        project = payload.get("project")
        config = project.get("label_config") if isinstance(project, dict) else None
        target = parse_label_config(config) if config else self.target
        new = []
        for ann, task in zip(annotations, tasks):
            label = _annotation_label(ann, target)
            sid = normalise_label(((task or {}).get("data") or {}).get("selector_id"))
            if label is None or sid is None or sid not in self.position:
                continue
            who = annotator_name(ann.get("completed_by"))
            new.append({"id": sid, "label": label, "annotator": None if who is None else str(who),
                        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                        "source": f"label-studio {action}"})
        if not new:
            return {"status": "no label", "model_version": self.model_version}
        with self._lock:
            self.labels_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.labels_file, "a", encoding="utf-8") as fh:
                for rec in new:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            for rec in new:
                self.extra[rec["id"]] = rec["label"]
            self._fit()
            self._record_round(new)
        announced = self.announce_version()
        return {"status": "refitted", "n_labels": len(new), "model_version": self.model_version,
                "project_model_version": announced}

    def _record_round(self, new: list[dict]) -> None:
        rows, y = self.training_labels()
        names, counts = np.unique(y, return_counts=True)
        cv = None
        if self.model is not None:
            cv = cv_figures(out_of_fold(classifier_template(self.config), self.X[rows], y,
                                        random_state=self.config.seed), y)
        records = round_records(read_ledger(self.ledger))
        self.round = next_round_number(records)
        stats = {"n_rows": self.pool.n, "n_labeled": int(rows.size), "n_unlabeled": int(self.pool.n - rows.size),
                 "n_classes": int(names.size), "n_selected": 0, "n_new_labels": len(new),
                 "model_fingerprint": self.embedder.fingerprint, "cold_start": self.model is None}
        record = round_record(round_number=self.round, config=self.config.to_dict(), stats=stats,
                              data_path=str(self.data.resolve()), data_sha256=file_sha256(self.data),
                              queue_ids=[], queue_path=None, class_counts=dict(zip(map(str, names), map(int, counts))),
                              cv=cv, stop_set=None, outputs={"labels": str(self.labels_file)},
                              command="selector serve")
        record["serve"] = {"model_version": self.model_version, "new_label_ids": [r["id"] for r in new]}
        append_record(self.ledger, record)


def _record_traffic(app, folder: Path) -> None:
    from starlette.responses import Response

    folder.mkdir(parents=True, exist_ok=True)
    counter = [0]

    @app.middleware("http")
    async def record(request, call_next):
        body = await request.body()
        response = await call_next(request)
        chunks = [chunk async for chunk in response.body_iterator]
        payload = b"".join(chunks)
        counter[0] += 1
        name = request.url.path.strip("/") or "root"
        entry = {"method": request.method, "path": request.url.path,
                 "request": json.loads(body) if body else None, "status": response.status_code,
                 "response": json.loads(payload) if payload else None}
        (folder / f"{counter[0]:03d}-{name}.json").write_text(json.dumps(entry, indent=1, ensure_ascii=False) + "\n",
                                                             encoding="utf-8")
        return Response(content=payload, status_code=response.status_code, headers=dict(response.headers),
                        media_type=response.media_type)


def make_app(state: BackendState, *, record_dir: str | Path | None = None):
    """The FastAPI app speaking Label Studio's ML backend protocol for ``state``.

    With ``record_dir`` every request and its response are written there as
    ``NNN-<endpoint>.json`` (``{"method", "path", "request", "status", "response"}``): real Label
    Studio traffic, for debugging and for test fixtures.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI(title="selector ML backend for Label Studio")
    if record_dir is not None:
        _record_traffic(app, Path(record_dir))

    @app.exception_handler(DataError)
    @app.exception_handler(ConfigError)
    async def user_error(request: Request, exc: Exception):  # one line back to Label Studio, no traceback
        return JSONResponse(status_code=400, content={"error": str(exc)})

    @app.get("/health")
    @app.get("/")
    def health() -> dict:
        return {"status": "UP", "model_class": "selector", "model_version": state.model_version,
                "n_labeled": int(state.training_labels()[0].size)}

    @app.post("/setup")
    async def setup(request: Request) -> dict:
        body = await request.json()
        return {"model_version": state.setup(body.get("schema"), hostname=body.get("hostname"),
                                             access_token=body.get("access_token"), project=body.get("project"))}

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        body = await request.json()
        tasks = body.get("tasks") or []
        return {"results": state.predict(tasks, body.get("label_config")), "model_version": state.model_version}

    @app.post("/webhook")
    async def webhook(request: Request) -> dict:
        return state.learn(await request.json())

    @app.post("/train")
    async def train(request: Request) -> dict:
        # The legacy "train" call sends every annotated task; learn them as one batch.
        body = await request.json()
        tasks = body.get("annotations") or []
        payload = {"action": "ANNOTATIONS_CREATED", "annotations": [], "tasks": []}
        for task in tasks:
            for ann in task.get("annotations") or []:
                payload["annotations"].append(ann)
                payload["tasks"].append(task)
        return state.learn(payload)

    return app
