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
import base64
import hmac
import json
import os
import threading
import urllib.error
import urllib.parse
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
from selector.io import append_line, file_sha256, read_table
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
from selector.labelsets import LabelSpace, canonical_cell, parse_label_set
from selector.round.model import (
    classifier_template,
    cv_figures,
    labels_problem,
    out_of_fold,
)
from selector.round.multilabel import (
    PREDICT_THRESHOLD,
    fit_multilabel,
    label_proba,
    multilabel_classifier,
    multilabel_cv_figures,
    multilabel_out_of_fold,
    multilabel_problem,
    multilabel_template,
)
from selector.round.pool import pool_from_config
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
    """The choice target of a Label Studio labeling config (single or multiple choice).

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
                          + "; selector serve pre-annotates choice classification")
    control = controls[0]
    to_name = control.get("toName", "").split(",")[0]
    objects = {el.get("name"): el for el in root.iter() if el.get("name") and el.get("value")}
    if to_name not in objects:
        raise ConfigError(f"labeling config: <Choices name={control.get('name')!r}> points at {to_name!r}, "
                          "which is not an object in the config")
    value = objects[to_name].get("value", "")
    return LabelTarget(from_name=control.get("name"), to_name=to_name, data_key=value.lstrip("$"),
                       choices=tuple(c.get("value") for c in control.iter("Choice")))


def _get_json(url: str, headers: dict):
    """GET ``url`` and parse its JSON body (raises URLError/OSError/ValueError)."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return json.loads(response.read())


def _live_title(backends, port: int | None) -> str | None:
    """The title of the project's ML backend connection that is this server: the only one, else the
    one whose URL has this server's port."""
    if isinstance(backends, dict):
        backends = backends.get("results") or []
    backends = [b for b in backends if isinstance(b, dict) and isinstance(b.get("title"), str)]
    if len(backends) == 1:
        return backends[0]["title"]
    if port is not None:
        for b in backends:
            if urllib.parse.urlsplit(str(b.get("url", ""))).port == port:
                return b["title"]
    return None


def _json_type(value) -> str:
    """A JSON value's type in words, for error messages."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def served_labels_path(data: str | Path) -> Path:
    """``.selector/<data name>.serve-labels.jsonl`` beside the data: the labels Label Studio sent."""
    data = Path(data).resolve()
    return data.parent / ".selector" / f"{data.name}.serve-labels.jsonl"


def _annotation_label(annotation: dict, target: LabelTarget | None, *, multi: bool = False) -> str | None:
    """The single choice of an LS annotation (None when cancelled or without a choice); with ``multi``
    every choice, as one canonical set cell (:func:`selector.labelsets.canonical_cell`)."""
    if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
        return None
    result = annotation.get("result")
    if not isinstance(result, list):
        return None
    choices = [c for r in result if isinstance(r, dict) and r.get("type") == "choices"
               and isinstance(r.get("value"), dict) and isinstance(r["value"].get("choices"), list)
               and (target is None or r.get("from_name") == target.from_name)
               for c in r["value"]["choices"]]
    if multi:
        return canonical_cell(choices) if choices and all(isinstance(c, str) for c in choices) else None
    return choices[0] if len(choices) == 1 and isinstance(choices[0], str) else None


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
        records = round_records(read_ledger(ledger_path(self.data)))
        if self.config.task == "auto" and any(rec.get("task") == "multi_label" for rec in records):
            self.config = self.config.replace(task="multi_label")  # the loop's rounds ran multi-label
        self.pool, _ = pool_from_config(df, self.config, source=str(self.data))
        self.multi_label = self.pool.multi_label
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
        self.port: int | None = None  # the port this backend serves on (set by make_app's caller)
        self._fit()

    # -- the model
    def training_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (n,) and labels (n,) to train on: the data's labels, overridden by Label Studio's
        (multi-label: each label a set written as one cell)."""
        labels = self.pool.labels.copy()
        for i, lab in self.extra.items():
            if i in self.position:
                labels[self.position[i]] = lab
        rows = np.flatnonzero([v is not None for v in labels])
        return rows, labels[rows].astype(str)

    def _label_sets(self, y: np.ndarray) -> tuple[LabelSpace, np.ndarray]:
        """A multi-label loop's label space (the data's and the project's labels) and indicator matrix of ``y``."""
        sets = [parse_label_set(v, sep=self.config.label_sep, none_label=self.config.none_label) or () for v in y]
        declared = list(self.config.labels or ()) + list(self.target.choices if self.target else ())
        space = LabelSpace.from_sets(sets, declared=sorted(set(declared)) or None, sep=self.config.label_sep,
                                     none_label=self.config.none_label)
        return space, space.indicator(sets)

    def _fit(self) -> None:
        rows, y = self.training_labels()
        if self.multi_label:
            space, Y = self._label_sets(y)
            self.model, self.classes = None, None
            if multilabel_problem(Y) is None:
                template = multilabel_classifier(self.config.classifier, random_state=self.config.seed,
                                                 **self.config.classifier_params)
                self.model, self.classes = fit_multilabel(template, self.X[rows], Y), np.asarray(space.names)
        elif labels_problem(y) is None:
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
        """Point the project's ``model_version`` at this backend as a *live model*, so Label Studio uses
        the latest refit rather than the imported round's predictions.

        Label Studio 1.23 accepts a project model version only if predictions carry it ("static") or it
        is the title of a connected ML backend ("live"); a refit's own version has no predictions yet
        (a PATCH with it is refused: "Model version doesn't exist either as live model or as static
        predictions"). So the project is set, once, to the title of its ML backend connection
        (``GET /api/ml?project=ID``: the only one, or the one on this server's port).

        Returns
        -------
        str or None
            The model version the project now has; None without a project link. A failure is a
            warning (labeling goes on), never silent.
        """
        link = self.project
        if link is None:
            return None
        headers = {"Content-Type": "application/json", "Authorization": f"Token {link.access_token}"}
        try:
            backends = _get_json(f"{link.hostname}/api/ml?project={link.project}", headers)
            current = _get_json(f"{link.hostname}/api/projects/{link.project}", headers).get("model_version")
            title = _live_title(backends, self.port)
            if title is None:
                raise ValueError("no ML backend connection of this server in the project")
            if current != title:
                request = urllib.request.Request(f"{link.hostname}/api/projects/{link.project}", method="PATCH",
                                                 data=json.dumps({"model_version": title}).encode("utf-8"),
                                                 headers=headers)
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
        except (urllib.error.URLError, OSError, ValueError, AttributeError) as exc:
            warnings.warn(f"could not point project {link.project}'s model_version at this backend at "
                          f"{link.hostname} ({exc}); Label Studio keeps sorting by its current model version",
                          stacklevel=2)
            return None
        return title

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
        if not isinstance(tasks, list) or any(not isinstance(t, dict) for t in tasks):
            raise DataError(f"'tasks' must be an array of task objects, got {_json_type(tasks)}"
                            + (" with other items" if isinstance(tasks, list) else ""))
        bad = next((t for t in tasks if t.get("data") is not None and not isinstance(t.get("data"), dict)), None)
        if bad is not None:
            raise DataError(f"task {bad.get('id')}'s data must be an object, got {_json_type(bad.get('data'))}")
        if label_config is not None and not isinstance(label_config, str):
            raise DataError(f"'label_config' must be text (the XML), got {_json_type(label_config)}")
        target = self._target(label_config)
        with self._lock:
            model, classes, version = self.model, self.classes, self.model_version
        if model is None:
            return [{"result": [], "score": 0.0, "model_version": version} for _ in tasks]
        if self.multi_label:  # <Choices choice="multiple">: every label at 0.5 or more
            proba = label_proba(model, self._vectors(tasks, target), classes.size)
            out = []
            for p in proba:
                chosen = np.flatnonzero(p >= PREDICT_THRESHOLD)
                result = [{"from_name": target.from_name, "to_name": target.to_name, "type": "choices",
                           "value": {"choices": [str(classes[j]) for j in chosen]}}] if chosen.size else []
                score = float(p[chosen].mean()) if chosen.size else float(1.0 - p.max())
                out.append({"result": result, "score": round(score, 6), "model_version": version})
            return out
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
        if not isinstance(payload, dict):
            raise DataError(f"webhook body must be a JSON object, got {_json_type(payload)}")
        action = payload.get("action")
        if action not in ANNOTATION_ACTIONS:
            return {"status": "ignored", "action": action, "model_version": self.model_version}
        annotations = payload.get("annotation") or payload.get("annotations")
        annotations = annotations if isinstance(annotations, list) else [annotations]
        tasks = payload.get("task") or payload.get("tasks")
        tasks = tasks if isinstance(tasks, list) else [tasks] * len(annotations)
        for what, items in (("annotation", annotations), ("task", tasks)):
            bad = next((x for x in items if not isinstance(x, dict)), None) if items else None
            if bad is not None or not items:
                raise DataError(f"webhook {action}: each {what} must be a JSON object, got "
                                f"{_json_type(bad) if items else 'none'}")
        for task in tasks:
            if task.get("data") is not None and not isinstance(task.get("data"), dict):
                raise DataError(f"webhook {action}: task {task.get('id')}'s data must be an object, "
                                f"got {_json_type(task.get('data'))}")
        project = payload.get("project")
        config = project.get("label_config") if isinstance(project, dict) else None
        target = parse_label_config(config) if isinstance(config, str) and config else self.target
        allowed = set(target.choices) if target is not None and target.choices else None
        new = []
        for ann, task in zip(annotations, tasks):
            label = _annotation_label(ann, target, multi=self.multi_label)
            sid = normalise_label((task.get("data") or {}).get("selector_id"))
            if label is None or sid is None or sid not in self.position:
                continue
            given = (set(parse_label_set(label, sep=self.config.label_sep, none_label=self.config.none_label) or ())
                     if self.multi_label else {label})
            if allowed is not None and not given <= allowed:
                raise DataError(f"webhook {action}: label {label!r} for task {task.get('id')} is not one of the "
                                f"project's choices ({', '.join(sorted(allowed)[:10])}"
                                f"{', ...' if len(allowed) > 10 else ''}); nothing recorded")
            who = annotator_name(ann.get("completed_by"))
            new.append({"id": sid, "label": label, "annotator": None if who is None else str(who),
                        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                        "source": f"label-studio {action}"})
        if not new:
            return {"status": "no label", "model_version": self.model_version}
        with self._lock:
            self.labels_file.parent.mkdir(parents=True, exist_ok=True)
            body = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in new).encode("utf-8")
            fd = os.open(self.labels_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                append_line(fd, body, self.labels_file)
            except OSError as exc:
                raise DataError(f"{self.labels_file}: could not record the label(s) ({exc.strerror}); nothing "
                                "recorded, free some disk space and annotate again") from None
            finally:
                os.close(fd)
            for rec in new:
                self.extra[rec["id"]] = rec["label"]
            self._fit()
            self._record_round(new)
        # The project's model version is announced by the app after this answer is sent
        # (announce_version): Label Studio waits for the webhook's answer before it serves other calls.
        return {"status": "refitted", "n_labels": len(new), "model_version": self.model_version}

    def _record_round(self, new: list[dict]) -> None:
        rows, y = self.training_labels()
        names, counts = np.unique(y, return_counts=True)
        cv = None
        if self.multi_label:
            space, Y = self._label_sets(y)
            label_counts = space.counts(Y)
            names = np.array([k for k, v in label_counts.items() if v], dtype=object)
            counts = np.array([label_counts[k] for k in names], dtype=np.int64)
            if self.model is not None:
                template = multilabel_template(classifier_template(self.config))
                cv = multilabel_cv_figures(multilabel_out_of_fold(template, self.X[rows], Y, random_state=self.config.seed,
                                                                  classes=space.names), Y)
        elif self.model is not None:
            cv = cv_figures(out_of_fold(classifier_template(self.config), self.X[rows], y,
                                        random_state=self.config.seed), y)
        records = round_records(read_ledger(self.ledger))
        self.round = next_round_number(records)
        stats = {"n_rows": self.pool.n, "n_labeled": int(rows.size), "n_unlabeled": int(self.pool.n - rows.size),
                 "n_classes": int(names.size), "n_selected": 0, "n_new_labels": len(new),
                 "model_fingerprint": self.embedder.fingerprint, "cold_start": self.model is None,
                 "task": "multi_label" if self.multi_label else "single_label"}
        record = round_record(round_number=self.round, config=self.config.to_dict(), stats=stats,
                              data_path=str(self.data.resolve()), data_sha256=file_sha256(self.data),
                              queue_ids=[], queue_path=None, class_counts=dict(zip(map(str, names), map(int, counts))),
                              cv=cv, stop_set=None, outputs={"labels": str(self.labels_file)},
                              command="selector serve")
        record["serve"] = {"model_version": self.model_version, "new_label_ids": [r["id"] for r in new]}
        append_record(self.ledger, record)


def _recorded(raw: bytes):
    """A body as recorded: its JSON, or its text when it is not JSON (a malformed request is recorded too)."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw[:10_000].decode("utf-8", errors="replace")


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
                 "request": _recorded(body), "status": response.status_code, "response": _recorded(payload)}
        (folder / f"{counter[0]:03d}-{name}.json").write_text(json.dumps(entry, indent=1, ensure_ascii=False) + "\n",
                                                             encoding="utf-8")
        return Response(content=payload, status_code=response.status_code, headers=dict(response.headers),
                        media_type=response.media_type)


#: Largest request body read (Label Studio's /predict sends whole task batches, well under this).
MAX_BODY_BYTES = 64 * 1024 * 1024


class BadRequest(Exception):
    """A request the backend refuses with a 4xx and a one-line JSON error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_body(raw: bytes) -> dict:
    """A request body as a JSON object; :class:`BadRequest` (400/413) for anything else.

    Malformed JSON, an array or a scalar, and nesting deep enough to exhaust the parser's recursion
    are refused here, before any handler sees them.
    """
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(413, f"request body of {len(raw)} bytes is over the {MAX_BODY_BYTES} byte limit")
    try:
        body = json.loads(raw) if raw.strip() else None
    except RecursionError:
        raise BadRequest(400, "request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadRequest(400, f"request body must be a JSON object, got {_json_type(body)}")
    return body


def token_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token``: ``Bearer T``, ``Token T``, or HTTP basic
    auth with ``T`` as the password (what Label Studio's "Use basic auth" for an ML backend sends)."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    elif scheme not in ("bearer", "token"):
        return False
    return hmac.compare_digest(value.encode("utf-8"), token.encode("utf-8"))


def make_app(state: BackendState, *, record_dir: str | Path | None = None, token: str | None = None):
    """The FastAPI app speaking Label Studio's ML backend protocol for ``state``.

    With ``record_dir`` every request and its response are written there as
    ``NNN-<endpoint>.json`` (``{"method", "path", "request", "status", "response"}``): real Label
    Studio traffic, for debugging and for test fixtures. With ``token`` every request must carry it
    in its ``Authorization`` header (:func:`token_matches`), else 401.
    """
    from fastapi import BackgroundTasks, FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI(title="selector ML backend for Label Studio")
    if record_dir is not None:
        _record_traffic(app, Path(record_dir))
    if token is not None:
        @app.middleware("http")
        async def check_token(request, call_next):
            if not token_matches(request.headers.get("authorization"), token):
                return JSONResponse(status_code=401, content={"error": "missing or wrong token: send "
                                                              "'Authorization: Bearer TOKEN' (or basic auth "
                                                              "with TOKEN as the password)"})
            return await call_next(request)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return JSONResponse(status_code=exc.status, content={"error": str(exc)})

    async def body_of(request: Request) -> dict:
        return parse_body(await request.body())

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
        body = await body_of(request)
        schema = body.get("schema")
        if schema is not None and not isinstance(schema, str):
            raise BadRequest(400, f"'schema' must be the labeling config as text, got {_json_type(schema)}")
        return {"model_version": state.setup(schema, hostname=body.get("hostname"),
                                             access_token=body.get("access_token"), project=body.get("project"))}

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        body = await body_of(request)
        tasks = body.get("tasks")
        return {"results": state.predict([] if tasks is None else tasks, body.get("label_config")),
                "model_version": state.model_version}

    def learned(out: dict, background: BackgroundTasks) -> dict:
        # After the answer is sent: Label Studio's dev server waits for this webhook's answer, so a call
        # back into it from inside the request would wait for itself.
        if out.get("status") == "refitted" and state.project is not None:
            background.add_task(state.announce_version)
        return out

    @app.post("/webhook")
    async def webhook(request: Request, background: BackgroundTasks) -> dict:
        return learned(state.learn(await body_of(request)), background)

    @app.post("/train")
    async def train(request: Request, background: BackgroundTasks) -> dict:
        # The legacy "train" call sends every annotated task; learn them as one batch.
        body = await body_of(request)
        tasks = body.get("annotations") or []
        if not isinstance(tasks, list) or any(not isinstance(t, dict) for t in tasks):
            raise BadRequest(400, f"'annotations' must be an array of task objects, got {_json_type(tasks)}")
        payload = {"action": "ANNOTATIONS_CREATED", "annotations": [], "tasks": []}
        for task in tasks:
            anns = task.get("annotations") or []
            if not isinstance(anns, list):
                raise BadRequest(400, f"task {task.get('id')}'s annotations must be an array, got {_json_type(anns)}")
            for ann in anns:
                payload["annotations"].append(ann)
                payload["tasks"].append(task)
        return learned(state.learn(payload), background)

    return app
