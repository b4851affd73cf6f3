"""selector: active-learning sample selection with a model in the loop.

One labeling round is :func:`run_round` (plan, compute, commit; :func:`select` returns its queue,
:func:`select_batch` works on arrays). Choose what to label next with a strategy registry
(:mod:`selector.strategies`) and embedders/classifiers (:mod:`selector.models`).
"""

from __future__ import annotations

import os as _os
import signal as _signal
import sys as _sys


def _interrupted_while_starting(signum, frame) -> None:  # pragma: no cover - exercised in a subprocess
    _sys.stderr.write("error: interrupted while starting; nothing was read or written\n")
    _sys.stderr.flush()
    _os._exit(130)


# Ctrl-C during the first second of `selector ...` lands in these imports (torch, pandas, sklearn);
# the command line ends with one line instead of an import traceback. selector.cli.app.main restores
# Python's own handler before any work starts. A library import leaves SIGINT alone.
_COMMAND_LINE = _os.path.basename(_sys.argv[0] if _sys.argv else "") in ("selector", "selector.exe") or (
    bool(_sys.argv) and _sys.argv[0].endswith(_os.path.join("selector", "__main__.py")))
if _COMMAND_LINE and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)

from selector.config import SelectConfig, load_config  # noqa: E402
from selector.errors import (  # noqa: E402
    ConfigError,
    DataError,
    EmptyPoolError,
    ModelError,
    SelectorError,
    UnknownStrategyError,
)
from selector.labels import DEFAULT_UNSURE_LABELS  # noqa: E402
from selector.labelsets import LabelSpace  # noqa: E402
from selector.loop.export import export_records  # noqa: E402
from selector.loop.ingest import ingest_rows  # noqa: E402
from selector.loop.ledger import read_ledger  # noqa: E402
from selector.loop.merge import merge_labels, read_labels  # noqa: E402
from selector.quality.adjudicate import Adjudication, adjudicate, prepare_decisions  # noqa: E402
from selector.quality.agreement import (  # noqa: E402
    AgreementReport,
    agreement,
    dawid_skene,
    majority_vote,
)
from selector.quality.card import DataCard, data_card  # noqa: E402
from selector.quality.consensus import ConsensusResult, consensus  # noqa: E402
from selector.quality.gold import (  # noqa: E402
    DriftReport,
    GoldInjection,
    GoldReport,
    gold_drift,
    gold_report,
    inject_gold,
    prepare_gold,
    read_gold,
    split_gold,
)
from selector.quality.multilabel_agreement import masi_alpha, multilabel_agreement  # noqa: E402
from selector.quality.review import ReviewQueue, review  # noqa: E402
from selector.quality.stats import wilson_interval  # noqa: E402
from selector.quality.unsure import UnsureReport, unsure_items, unsure_report  # noqa: E402
from selector.quality.validate import ValidationReport, validate  # noqa: E402
from selector.round.compute import select_batch  # noqa: E402
from selector.round.multilabel import build_multilabel_context  # noqa: E402
from selector.round.multilabel_suspects import LabelSuspects, find_label_suspects  # noqa: E402
from selector.round.run import RoundResult, run_round, select  # noqa: E402
from selector.round.suspects import SuspectResult, find_suspects, suspects  # noqa: E402
from selector.strategies import (  # noqa: E402
    Selection,
    SelectionContext,
    available_strategies,
    make_strategy,
    register,
)
from selector.textnorm import normalise_text  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "adjudicate",
    "Adjudication",
    "agreement",
    "AgreementReport",
    "available_strategies",
    "build_multilabel_context",
    "ConfigError",
    "consensus",
    "ConsensusResult",
    "data_card",
    "DataCard",
    "DataError",
    "dawid_skene",
    "DEFAULT_UNSURE_LABELS",
    "DriftReport",
    "EmptyPoolError",
    "export_records",
    "find_label_suspects",
    "find_suspects",
    "gold_drift",
    "gold_report",
    "GoldInjection",
    "GoldReport",
    "ingest_rows",
    "inject_gold",
    "LabelSpace",
    "LabelSuspects",
    "load_config",
    "majority_vote",
    "make_strategy",
    "masi_alpha",
    "merge_labels",
    "ModelError",
    "multilabel_agreement",
    "normalise_text",
    "prepare_decisions",
    "prepare_gold",
    "read_gold",
    "read_labels",
    "read_ledger",
    "register",
    "review",
    "ReviewQueue",
    "RoundResult",
    "run_round",
    "select",
    "select_batch",
    "SelectConfig",
    "Selection",
    "SelectionContext",
    "SelectorError",
    "split_gold",
    "SuspectResult",
    "suspects",
    "UnknownStrategyError",
    "unsure_items",
    "unsure_report",
    "UnsureReport",
    "validate",
    "ValidationReport",
    "wilson_interval",
]
