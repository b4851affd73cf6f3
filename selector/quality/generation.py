"""Checks a fine-tuning team runs on a generation set (input -> reply) before every training job.

:func:`generation_findings` looks at the replies (``output``) beside the inputs; ``validate``
adds what it returns to its report. Each check returns ``(check, message, positions, details)``.

==========================  ===========================================================================
check                       what it finds
==========================  ===========================================================================
``output_contradiction``    the same normalised input (and system prompt) with replies that disagree:
                            different JSON values, or free-text replies whose embeddings have cosine
                            below ``reply_agreement`` (default 0.8)
``unparsable_output``       replies that are not JSON while most of the set's replies are
``empty_output``            empty or near-empty replies (< ``min_text_chars`` letters/digits)
``truncated_output``        an unclosed code fence or bracket, or a long reply (20+ words) that stops
                            mid-sentence (no closing punctuation)
``length_outlier``          inputs or replies whose log length is > 3.5 robust z-scores from the median
                            and that are 4x longer or shorter than the median
``system_prompt_drift``     several distinct system prompts (e.g. an edited prompt in part of the set)
==========================  ===========================================================================

Refusal-style replies ("I can't help with that", "I'm sorry, but I cannot ...") are recognised by
:func:`is_refusal`, so ``missing_negatives`` understands a set that teaches refusals without a label.
"""

from __future__ import annotations

import json
import re

import numpy as np

from selector.chat import parse_json_reply
from selector.textnorm import normalise_text

__all__ = ["generation_findings", "is_refusal", "parses_as_json", "REPLY_AGREEMENT", "LENGTH_Z", "GENERATION_CHECKS"]

GENERATION_CHECKS = ("output_contradiction", "unparsable_output", "empty_output", "truncated_output",
                     "length_outlier", "system_prompt_drift")
#: Cosine between two free-text replies below which replies to one input disagree. all-MiniLM-L6-v2
#: puts paraphrases of one answer above ~0.85 and different answers to one question well below 0.8.
REPLY_AGREEMENT = 0.8
#: Robust z-score (median / 1.4826 MAD of log length) beyond which a length is an outlier.
LENGTH_Z = 3.5
#: ... and at least this many times longer or shorter than the median.
LENGTH_RATIO = 4.0
#: A set is "JSON replies" when at least this share of its non-empty replies parses as JSON.
_JSON_SHARE = 0.8
_REFUSAL = re.compile(
    r"\b(i\s*(?:am|'m)\s+(?:sorry|afraid)|i\s+(?:can\s*not|can't|cannot|won't|will\s+not|am\s+unable|'m\s+unable|"
    r"am\s+not\s+able|'m\s+not\s+able)\s+(?:to\s+)?(?:help|assist|provide|answer|do|comply|share|discuss|support|"
    r"fulfil|fulfill)|i\s+(?:must|have\s+to)\s+decline|(?:that|this)\s+is\s+(?:outside|beyond)\s+(?:my|the)\s+scope|"
    r"not\s+something\s+i\s+can\s+help)", re.I)
_CLOSING = tuple(".!?\"')]}`*:;…>」。！？")


def is_refusal(reply: str) -> bool:
    """Whether ``reply`` reads as a refusal or an out-of-scope answer (English patterns)."""
    return bool(_REFUSAL.search(reply or ""))


def parses_as_json(reply: str):
    """The reply parsed as a JSON object or array (a surrounding code fence allowed), else None."""
    try:
        value = parse_json_reply(reply)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


def _robust_z(values: np.ndarray) -> np.ndarray:
    logs = np.log1p(values.astype(np.float64))
    med = np.median(logs)
    # Floored at 0.1 (about 10% in length): a set whose lengths barely vary must not make every
    # small difference an outlier, nor hide a 100x one behind a zero spread.
    mad = max(1.4826 * float(np.median(np.abs(logs - med))), 0.1)
    return (logs - med) / mad


def _truncated(reply: str) -> str | None:
    text = reply.rstrip()
    if text.count("```") % 2:
        return "unclosed code fence"
    if text[:1] in "{[" and text.count("{") + text.count("[") > text.count("}") + text.count("]"):
        return "unclosed bracket"
    if len(text.split()) >= 20 and not text.endswith(_CLOSING):
        return "stops mid-sentence"
    return None


def generation_findings(inputs: np.ndarray, outputs: np.ndarray, has_output: np.ndarray, *,
                        systems: np.ndarray | None = None, ids: np.ndarray, embed=None,
                        reply_agreement: float = REPLY_AGREEMENT, min_text_chars: int = 3,
                        max_groups: int = 200, skip_groups: set | None = None) -> list[tuple]:
    """The generation checks (module docstring) on one set.

    Parameters
    ----------
    inputs, outputs : ndarray of object (str), shape (n,)
        The input text and the reply of each row (``""`` where there is no reply).
    has_output : ndarray of bool, shape (n,)
    systems : ndarray of object (str), shape (n,), optional
        The system prompt of each row (``""`` for none).
    ids : ndarray of object (str), shape (n,)
    embed : callable, optional
        ``embed(texts) -> ndarray (m, d)`` L2-normalised; compares free-text replies to one input.
        Without it, free-text replies are compared after text normalisation only.
    skip_groups : set of str, optional
        Normalised inputs already reported as label contradictions (not reported twice).

    Returns
    -------
    list of (check, message, positions, details)
    """
    n = len(ids)
    systems = np.full(n, "", dtype=object) if systems is None else systems
    found = []
    pos = np.flatnonzero(has_output)
    if pos.size == 0:
        return found
    out = outputs[pos]
    parsed = [parses_as_json(str(o)) for o in out]
    nonempty = np.array([bool(str(o).strip()) for o in out])
    is_json = np.array([p is not None for p in parsed])
    json_set = nonempty.any() and is_json[nonempty].mean() >= _JSON_SHARE

    # -- empty and truncated replies
    n_chars = np.array([sum(ch.isalnum() for ch in normalise_text(str(o))) for o in out])
    empty = pos[n_chars < min_text_chars]
    if empty.size:
        found.append(("empty_output", f"{empty.size} empty or near-empty reply/replies (< {min_text_chars} letters/digits); "
                      "a fine-tune learns to answer with nothing", empty,
                      {"examples": [{"row_id": str(ids[i]), "output": str(outputs[i])} for i in empty[:max_groups]]}))
    why = [(_truncated(str(o)) if not (json_set and p is not None) else None) for o, p in zip(out, parsed)]
    trunc = [(i, w) for i, w in zip(pos, why) if w is not None]
    if trunc:
        found.append(("truncated_output", f"{len(trunc)} reply/replies look cut off "
                      f"({', '.join(sorted({w for _, w in trunc}))})", [i for i, _ in trunc],
                      {"examples": [{"row_id": str(ids[i]), "why": w, "end": str(outputs[i])[-80:]}
                                    for i, w in trunc[:max_groups]]}))
    # -- JSON replies that do not parse
    if json_set:
        bad = pos[nonempty & ~is_json]
        if bad.size:
            found.append(("unparsable_output", f"{bad.size} reply/replies are not valid JSON while "
                          f"{int(is_json.sum())} of {int(nonempty.sum())} replies are", bad,
                          {"examples": [{"row_id": str(ids[i]), "output": str(outputs[i])[:200]} for i in bad[:max_groups]]}))
    # -- contradictions: one input, replies that disagree
    keys = np.array([normalise_text(str(s)) + "\x00" + normalise_text(str(t)) for s, t in zip(systems[pos], inputs[pos])],
                    dtype=object)
    order = np.argsort(keys, kind="stable")
    groups = np.split(order, np.flatnonzero(keys[order][1:] != keys[order][:-1]) + 1)
    contradictions = []
    for g in groups:
        if g.size < 2 or (skip_groups and normalise_text(str(inputs[pos[g[0]]])) in skip_groups):
            continue
        if json_set and all(parsed[k] is not None for k in g):
            canon = {json.dumps(parsed[k], sort_keys=True) for k in g}
            if len(canon) > 1:
                contradictions.append((pos[g], None))
            continue
        norm = {normalise_text(str(out[k])) for k in g}
        if len(norm) < 2:
            continue
        if embed is None:
            contradictions.append((pos[g], None))
            continue
        X = embed([str(out[k]) for k in g])
        sim = X @ X.T
        low = float(sim[np.triu_indices(g.size, k=1)].min())
        if low < reply_agreement:
            contradictions.append((pos[g], round(low, 4)))
    if contradictions:
        rows = np.concatenate([g for g, _ in contradictions])
        found.append(("output_contradiction", f"{len(contradictions)} input(s) appear with replies that disagree "
                      f"({rows.size} rows)", rows,
                      {"groups": [{"input": str(inputs[g[0]]), "row_ids": [str(x) for x in ids[g]],
                                   "outputs": [str(outputs[i])[:200] for i in g],
                                   **({"min_cosine": s} if s is not None else {})}
                                  for g, s in contradictions[:max_groups]],
                       "reply_agreement": reply_agreement if embed is not None else None}))
    # -- length outliers
    for what, texts, at in (("input", inputs, np.arange(n)), ("reply", outputs, pos)):
        lengths = np.array([len(str(t)) for t in texts[at]])
        if lengths.size < 20:
            continue
        z = _robust_z(lengths)
        # Both far out in the spread and far from the typical length: a robust z alone fires on
        # sets whose lengths take few values.
        ratio = np.abs(np.log((lengths + 1.0) / (np.median(lengths) + 1.0)))
        odd = at[(np.abs(z) > LENGTH_Z) & (ratio >= np.log(LENGTH_RATIO))]
        if odd.size:
            med = int(np.median(lengths))
            found.append(("length_outlier", f"{odd.size} {what}{'s' if odd.size > 1 else ''} of unusual length (median {med} characters; "
                          f"> {LENGTH_Z} robust z-scores of log length)", odd,
                          {"what": what, "median_chars": med,
                           "examples": [{"row_id": str(ids[i]), "chars": len(str(texts[i]))} for i in odd[:max_groups]]}))
    # -- system prompt drift
    prompts, counts = np.unique(systems.astype(str), return_counts=True)
    if prompts.size >= 2:
        order = np.argsort(-counts, kind="stable")
        minor = np.flatnonzero(systems.astype(str) != prompts[order[0]])
        found.append(("system_prompt_drift", f"{prompts.size} distinct system prompts "
                      f"(most common on {counts[order[0]]} of {n} rows); a fine-tune learns whichever it sees", minor,
                      {"prompts": [{"system": str(prompts[j])[:200], "rows": int(counts[j])} for j in order[:20]]}))
    return found
