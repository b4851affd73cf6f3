"""selector: active-learning sample selection with a model in the loop.

Choose what to label next (:func:`select`, :func:`select_batch`), with a strategy registry
(:mod:`selector.strategies`) and embedders/classifiers (:mod:`selector.models`).
"""

from __future__ import annotations

from selector.adjudicate import Adjudication, adjudicate, prepare_decisions
from selector.agreement import AgreementReport, agreement, dawid_skene, majority_vote
from selector.api import select
from selector.card import DataCard, data_card
from selector.config import SelectConfig, load_config
from selector.errors import (
    ConfigError,
    DataError,
    EmptyPoolError,
    ModelError,
    SelectorError,
    UnknownStrategyError,
)
from selector.export import export_records
from selector.gold import (
    DriftReport,
    GoldInjection,
    GoldReport,
    gold_drift,
    gold_report,
    inject_gold,
    prepare_gold,
    read_gold,
    split_gold,
    wilson_interval,
)
from selector.ingest import ingest_rows
from selector.ledger import read_ledger
from selector.merge import merge_labels, read_labels
from selector.pipeline import select_batch
from selector.review import ReviewQueue, review
from selector.strategies import Selection, SelectionContext, available_strategies, make_strategy, register
from selector.unsure import DEFAULT_UNSURE_LABELS, UnsureReport, unsure_items, unsure_report
from selector.validate import ValidationReport, validate
from selector.suspects import SuspectResult, find_suspects, suspects
from selector.textnorm import normalise_text

__version__ = "0.1.0"

__all__ = [
    "adjudicate",
    "Adjudication",
    "agreement",
    "AgreementReport",
    "available_strategies",
    "ConfigError",
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
