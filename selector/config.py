"""Run configuration: a frozen dataclass loaded from YAML, with unknown keys rejected.

Precedence: these defaults, then the YAML file (``--config``), then CLI flags.
``default.yaml``, installed with the package (``selector/data/default.yaml``, :func:`default_config_path`;
``configs/default.yaml`` in the repository), documents every key with its default value.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selector.errors import ConfigError
from selector.models.embedders import BACKENDS

__all__ = ["SelectConfig", "default_config_path", "read_settings_text", "load_config", "cache_dir_for", "config_from_record", "DEFAULT_CACHE_NAME"]

#: The embedding cache and the round ledger live in this folder beside the data file.
DEFAULT_CACHE_NAME = ".selector"


@dataclass(frozen=True)
class SelectConfig:
    """Resolved settings of one selection round (recorded in the round record)."""

    budget: int = 100
    strategy: str = "auto"
    strategy_params: dict = field(default_factory=dict)
    seed: int | None = 0
    text_col: str = "text"
    label_col: str = "label"
    id_col: str = "id"
    model: str | None = None
    device: str = "auto"
    batch_size: int | None = None
    backend: str | None = None
    engine: str = "local"
    ray_address: str | None = None
    cache_dir: str | None = None
    cache_dtype: str = "float32"
    two_stage: str = "auto"
    classifier: str = "logistic_regression"
    classifier_params: dict = field(default_factory=dict)
    unsure_labels: tuple = ("unsure", "needs_review")
    labels: tuple | None = None
    data_format: str = "auto"
    label_from: str | None = None
    input_turns: str = "last"
    skip_invalid: bool = False
    relabel: bool = False
    task: str = "auto"
    label_sep: str = ";"
    none_label: str = "none"

    def __post_init__(self) -> None:
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 1:
            raise ConfigError(f"budget must be a positive integer, got {self.budget!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ConfigError(f"seed must be an integer or null, got {self.seed!r}")
        if self.batch_size is not None and (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                                            or self.batch_size < 1):
            raise ConfigError(f"batch_size must be a positive integer or null, got {self.batch_size!r}")
        if self.backend is not None and self.backend not in BACKENDS:
            raise ConfigError(f"backend must be {', '.join(BACKENDS)} or null, got {self.backend!r}")
        if self.engine not in ("local", "ray"):
            raise ConfigError(f"engine must be local or ray, got {self.engine!r}")
        if self.cache_dtype not in ("float32", "float16"):
            raise ConfigError(f"cache_dtype must be float32 or float16, got {self.cache_dtype!r}")
        if self.two_stage not in ("auto", "on", "off"):
            raise ConfigError(f"two_stage must be auto, on or off, got {self.two_stage!r}")
        for name in ("strategy_params", "classifier_params"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name} must be a mapping, got {getattr(self, name)!r}")
        if not isinstance(self.unsure_labels, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in self.unsure_labels):
            raise ConfigError(f"unsure_labels must be a list of non-empty strings, got {self.unsure_labels!r}")
        object.__setattr__(self, "unsure_labels", tuple(self.unsure_labels))
        if self.labels is not None:
            if not isinstance(self.labels, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in self.labels):
                raise ConfigError(f"labels must be null or a list of non-empty strings, got {self.labels!r}")
            object.__setattr__(self, "labels", tuple(self.labels))
        if self.data_format not in ("auto", "table", "chat"):
            raise ConfigError(f"data_format must be auto, table or chat, got {self.data_format!r}")
        if self.input_turns not in ("last", "all"):
            raise ConfigError(f"input_turns must be last or all, got {self.input_turns!r}")
        from selector.labelsets import TASKS, check_label_sep

        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        check_label_sep(self.label_sep, self.none_label)
        if not isinstance(self.relabel, bool):
            raise ConfigError(f"relabel must be true or false, got {self.relabel!r}")
        if not isinstance(self.skip_invalid, bool):
            raise ConfigError(f"skip_invalid must be true or false, got {self.skip_invalid!r}")
        if self.label_from is not None:
            from selector.chat import parse_label_from  # the one parser of the spec

            parse_label_from(self.label_from)
        for name in ("strategy", "text_col", "label_col", "id_col", "device", "classifier"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")

    def replace(self, **changes: Any) -> "SelectConfig":
        """A copy with ``changes`` applied; ``None`` values are ignored (flag not given)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def default_config_path() -> Path:
    """Path of the installed ``default.yaml``: every setting with its default value, documented."""
    from importlib import resources

    return Path(str(resources.files("selector.data").joinpath("default.yaml")))


def read_settings_text(path: str | os.PathLike, what: str, fix: str) -> str:
    """The UTF-8 text of a settings file (a config, a labels list); a ConfigError names the file, the
    bad byte or the OS error, and ``fix``."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the {what} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start}); {fix}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror})") from None


def load_config(path: str | os.PathLike | None = None) -> SelectConfig:
    """Defaults, overridden by the YAML file at ``path`` when given.

    Raises
    ------
    ConfigError
        Missing or unparsable file, a key that is not a setting, or an invalid value.
    """
    if path is None:
        return SelectConfig()
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = read_settings_text(path, "config", "a config is a YAML text file")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config; a config is a flat mapping of settings") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    known = {f.name for f in dataclasses.fields(SelectConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        import difflib

        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(hints)}; every key is documented in "
                          f"{default_config_path()}")
    try:
        return SelectConfig(**data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def cache_dir_for(data: str | os.PathLike | None, config: SelectConfig) -> Path | None:
    """The embedding cache folder: ``config.cache_dir`` (``--cache-dir``), else ``.selector/`` beside ``data``.

    The one place that decides where embeddings are cached; None when there is neither.
    """
    if config.cache_dir:
        return Path(config.cache_dir)
    if data is None:
        return None
    return Path(data).resolve().parent / DEFAULT_CACHE_NAME


def config_from_record(record: dict | None, **overrides: Any) -> SelectConfig:
    """The config a ledger record ran with (keys this version knows), with ``overrides`` (None = keep) applied."""
    known = {f.name for f in dataclasses.fields(SelectConfig)}
    base = {k: v for k, v in ((record or {}).get("config") or {}).items() if k in known}
    return SelectConfig(**base).replace(**overrides)
