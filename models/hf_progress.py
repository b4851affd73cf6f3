"""Hugging Face's weight-loading progress bar, silenced for one load and restored after."""

from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["quiet_weight_loading"]


@contextlib.contextmanager
def quiet_weight_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" bar inside the block (our own bar covers embedding).

    The switch is process-wide in transformers, so it is put back as it was on exit.
    """
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
