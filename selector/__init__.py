"""selector: active-learning sample selection with a model in the loop.

One labeling round is :func:`run_round` (plan, compute, commit; :func:`select` returns its queue,
:func:`select_batch` works on arrays). Choose what to label next with a strategy registry
(:mod:`selector.strategies`) and embedders/classifiers (:mod:`selector.models`).
"""

from __future__ import annotations

from selector.config import SelectConfig, load_config
from selector.errors import (
    ConfigError,
    DataError,
    EmptyPoolError,
    ModelError,
    SelectorError,
    UnknownStrategyError,
)
from selector.labels import DEFAULT_UNSURE_LABELS
from selector.loop.export import export_records
from selector.loop.ingest import ingest_rows
from selector.loop.ledger import read_ledger
from selector.loop.merge import merge_labels, read_labels
from selector.quality.adjudicate import Adjudication, adjudicate, prepare_decisions
from selector.quality.agreement import (
    AgreementReport,
    agreement,
    dawid_skene,
    majority_vote,
)
from selector.quality.card import DataCard, data_card
from selector.quality.consensus import ConsensusResult, consensus
from selector.quality.gold import (
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
from selector.quality.review import ReviewQueue, review
from selector.quality.stats import wilson_interval
from selector.quality.unsure import UnsureReport, unsure_items, unsure_report
from selector.quality.validate import ValidationReport, validate
from selector.round.compute import select_batch
from selector.round.run import RoundResult, run_round, select
from selector.round.suspects import SuspectResult, find_suspects, suspects
from selector.strategies import (
    Selection,
    SelectionContext,
    available_strategies,
    make_strategy,
    register,
)
from selector.textnorm import normalise_text

__version__ = "0.1.0"

__all__ = [
    "adjudicate",
    "Adjudication",
    "agreement",
    "AgreementReport",
    "available_strategies",
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
    "find_suspects",
    "gold_drift",
    "gold_report",
    "GoldInjection",
    "GoldReport",
    "ingest_rows",
    "inject_gold",
    "load_config",
    "majority_vote",
    "make_strategy",
    "merge_labels",
    "ModelError",
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
