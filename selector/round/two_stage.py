"""Two-stage rounds for cold pools: the static tier shortlists, the exact model selects.

The exact model costs 11-37 CPU s per 1,000 texts on a 2-core machine (``scripts/bench_embed.py``),
so a cold 1M-row pool is hours of embedding before the first queue. A two-stage round:

1. embeds every row with the static backend (:mod:`selector.models.static_backend`, ~0.3 CPU s per
   1,000 texts), through its own cache;
2. shortlists unlabeled rows on those vectors (:func:`shortlist`): the rows the classifier fitted
   on the static vectors of the labeled rows is least sure of (smallest margin), the rows nearest
   the centres of k-means clusters of the pool (coverage), the rows nearest labeled rows of rare
   classes, and a uniform sample; at cold start, a uniform sample;
3. embeds the shortlist, the labeled rows and the stop set exactly (the cache keeps them), and the
   strategy selects on exact vectors among the shortlist plus every unlabeled row the exact cache
   already holds (earlier rounds' shortlists).

Every queued row is exactly embedded, as in a one-stage round. Later rounds pay only for rows not
yet cached: each adds the rows the current model is least sure of, so the candidate set grows
where new labels changed the model's mind. The shortlist's size follows the budget
(:func:`shortlist_size`) and is recorded in the round record (``two_stage``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from selector.errors import ConfigError
from selector.kmeans import chunked_nearest, fit_kmeans
from selector.models.cache import CachedEmbedder, CacheRows, text_digests
from selector.models.embedders import make_embedder
from selector.models.onnx_backend import exportable
from selector.models.progress import Progress
from selector.models.classifiers import aligned_proba, fit_classifier
from selector.neighbors import nearest_in
from selector.round.model import labels_problem
from selector.scoring import margin

__all__ = ["TWO_STAGE_MIN_ROWS", "STREAM_MIN_ROWS", "SHORTLIST_PER_PICK", "SHORTLIST_MIN", "SHARES", "COLD_SHARES",
           "TWO_STAGE_MODES", "shortlist_size", "shortlist", "Shortlist", "TwoStageDecision", "why_not_shortlist",
           "why_not_two_stage", "decide_two_stage", "embed_two_stage", "refuse_two_stage"]

TWO_STAGE_MODES = ("auto", "on", "off")
#: ``two_stage: auto`` turns on when at least this many unlabeled rows are not in the exact cache.
TWO_STAGE_MIN_ROWS = 50_000
#: ... and a pool of at least this many unlabeled rows is shortlisted on its exact vectors, read from
#: the cache in chunks, when the static tier cannot shortlist it (the rows are cached, or the engine
#: or the embedder embeds every row). A one-stage round holds every vector, up to three copies while
#: the cache returns them: measured 3.9-4.2 GB peak at 1M cached rows (scripts/bench_select_scale.py),
#: so at 1.5M it would pass 6 GB.
STREAM_MIN_ROWS = 1_500_000
#: Shortlisted rows per row the round queues ...
SHORTLIST_PER_PICK = 10
#: ... and never fewer than this many.
SHORTLIST_MIN = 2_000
#: How a shortlist is made up when the labeled rows can train a classifier. The rare share goes to
#: the uncertain one when no class is rare.
SHARES = {"coverage": 0.3, "rare": 0.2, "uncertain": 0.4, "random": 0.1}
#: ... and at cold start (no classifier yet): a uniform sample, which keeps the pool's distribution for the
#: diverse picks of a first round. Chosen on scripts/bench_coldpool.py over coverage-heavy mixes (a
#: sample of rows nearest cluster centres crowds a typicality pick into the dense regions): in every
#: leave-one-setting-out fold, mean AULC gap -0.0055 against -0.0128 for 90% coverage.
COLD_SHARES = {"random": 1.0}
#: A class is rare when it has fewer labeled rows than this share of the median class.
RARE_RATIO = 0.5
#: Rows per coverage cluster: the ``ROWS_PER_CLUSTER`` rows nearest each centre.
ROWS_PER_CLUSTER = 4
#: Rows the coverage k-means is fitted on (every row is then assigned, in chunks).
KMEANS_FIT_ROWS = 50_000
_CHUNK = 65_536


def shortlist_size(budget: int) -> int:
    """Rows to shortlist for a round that queues ``budget`` rows: ``max(SHORTLIST_MIN, SHORTLIST_PER_PICK * budget)``."""
    return max(SHORTLIST_MIN, SHORTLIST_PER_PICK * int(budget))


@dataclass
class Shortlist:
    """Unlabeled rows to embed exactly.

    Attributes
    ----------
    positions : ndarray of int64, shape (m,)
        Sorted positions in the static pool array the shortlist was drawn from.
    sources : dict of str -> int
        Rows per source (``coverage``, ``rare``, ``uncertain``, ``random``).
    rare_classes : list of str
    """

    positions: np.ndarray
    sources: dict = field(default_factory=dict)
    rare_classes: list = field(default_factory=list)


def _margin_scores(model, S: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """:func:`selector.scoring.margin` of ``model`` on each row of ``S`` (shape (n, d)), in chunks so the
    (n, k) probabilities of a 1M-row pool are never held at once; shape (n,), 1 = the top two classes tie."""
    out = np.empty(S.shape[0], dtype=np.float64)
    for a in range(0, S.shape[0], _CHUNK):
        out[a : a + _CHUNK] = margin(aligned_proba(model, S[a : a + _CHUNK], classes))
    return out


def _coverage_order(S: np.ndarray, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of ``S`` (shape (n, d)) in coverage order: the nearest row to each k-means centre first,
    then the second nearest of each, and so on (``n_rows / ROWS_PER_CLUSTER`` centres)."""
    k = max(1, min(S.shape[0], -(-n_rows // ROWS_PER_CLUSTER)))
    centres = fit_kmeans(S, k, rng, max_fit=KMEANS_FIT_ROWS)
    labels, d2 = chunked_nearest(S, centres)
    by_cluster = np.lexsort((d2, labels))  # cluster, then distance to its centre
    starts = np.searchsorted(labels[by_cluster], np.arange(centres.shape[0]))
    rank = np.empty(S.shape[0], dtype=np.int64)
    rank[by_cluster] = np.arange(S.shape[0]) - np.repeat(starts, np.diff(np.r_[starts, S.shape[0]]))
    return np.lexsort((d2, rank))


def _rare_order(S: np.ndarray, S_lab: np.ndarray, y_lab: np.ndarray, rare: list[str]) -> np.ndarray:
    """Rows of ``S`` (shape (n, d), L2-normalised) by their best cosine to a labeled row of a rare class,
    the classes taking turns (each class's nearest row, then each one's second nearest, ...)."""
    best = np.empty((len(rare), S.shape[0]), dtype=np.float32)
    for a in range(0, S.shape[0], _CHUNK):
        block = np.asarray(S[a : a + _CHUNK], dtype=np.float32)
        for j, c in enumerate(rare):
            best[j, a : a + block.shape[0]] = nearest_in(S_lab[y_lab == c], block, 1)[1][:, 0]
    return np.stack([np.argsort(-b, kind="stable") for b in best], axis=1).ravel()


def shortlist(S_pool: np.ndarray, S_lab: np.ndarray, y_lab: np.ndarray, size: int, *, classifier=None,
              exclude: np.ndarray | None = None, uniform: bool = False, random_state: int | None = None,
              shares: dict | None = None, cold_shares: dict | None = None) -> Shortlist:
    """Choose ``size`` unlabeled rows to embed exactly, from their static vectors.

    Parameters
    ----------
    S_pool : ndarray or CacheRows of float32, shape (n_pool, d_static)
        Static (or exact) vectors of the unlabeled rows (L2-normalised); read in row chunks only, so
        a :class:`~selector.models.CacheRows` streams them from the cache.
    S_lab : ndarray of float32, shape (n_labeled, d_static)
    y_lab : ndarray of str, shape (n_labeled,)
    size : int
        Rows to shortlist (all of them when ``n_pool - excluded <= size``).
    classifier : unfitted scikit-learn estimator with predict_proba
        Fitted on the static vectors of the labeled rows for the uncertain share.
    exclude : ndarray of bool, shape (n_pool,), optional
        Rows that are candidates already (in the exact cache): never shortlisted.
    uniform : bool
        A uniform sample only (for the ``random`` strategy, whose picks must stay uniform over the pool).
    shares, cold_shares : dict of str -> float, optional
        Source shares with and without a classifier; default :data:`SHARES` and :data:`COLD_SHARES`.

    Returns
    -------
    Shortlist
    """
    n = S_pool.shape[0]
    rng = np.random.default_rng(random_state)
    free = np.ones(n, dtype=bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
    if free.sum() <= size:
        return Shortlist(np.flatnonzero(free).astype(np.int64), {"all": int(free.sum())})
    y_lab = np.asarray(y_lab, dtype=object).astype(str)
    taken = np.zeros(n, dtype=bool)
    sources: dict[str, int] = {}

    def take(order: np.ndarray, k: int, name: str) -> None:
        order = order[free[order] & ~taken[order]]
        # An order may list a row twice (the rare classes' turns); keep its first place.
        _, first = np.unique(order, return_index=True)
        chosen = order[np.sort(first)][:k]
        taken[chosen] = True
        sources[name] = sources.get(name, 0) + int(chosen.size)

    if uniform:
        take(rng.permutation(n), size, "random")
        return Shortlist(np.flatnonzero(taken).astype(np.int64), sources)
    model = None
    if labels_problem(y_lab) is None and classifier is not None:
        model = fit_classifier(classifier, S_lab, y_lab)
    shares = dict((shares or SHARES) if model is not None else (cold_shares or COLD_SHARES))
    rare: list[str] = []
    if model is not None:
        names, counts = np.unique(y_lab, return_counts=True)
        rare = [str(c) for c, k in zip(names, counts) if k < RARE_RATIO * np.median(counts)]
        if not rare and "rare" in shares:
            shares["uncertain"] = shares.get("uncertain", 0.0) + shares.pop("rare")
    quota = {name: int(round(share * size)) for name, share in shares.items()}
    if quota.get("coverage"):
        take(_coverage_order(S_pool, quota["coverage"], rng), quota["coverage"], "coverage")
    if quota.get("rare"):
        take(_rare_order(S_pool, S_lab, y_lab, rare), quota["rare"], "rare")
    if quota.get("uncertain"):
        take(np.argsort(-_margin_scores(model, S_pool, np.asarray(model.classes_, dtype=object)), kind="stable"),
             quota["uncertain"], "uncertain")
    # The uniform share also fills what rounding (or a source short of rows) left.
    take(rng.permutation(n), size - int(taken.sum()), "random")
    return Shortlist(np.flatnonzero(taken).astype(np.int64), sources, rare)


@dataclass
class TwoStageDecision:
    """Whether a round runs in two stages, and why.

    Attributes
    ----------
    use : bool
    reason : str
        One line for the round record.
    exact_cached : ndarray of bool, shape (pool.n,) or None
        Rows whose exact vectors the cache holds (looked up once, when the decision needed it).
    source : {"static", "exact"}
        What the shortlist is drawn from: the static tier's vectors of every row (a cold pool), or
        the exact vectors, every missing one embedded first, read from the cache in chunks (a pool of
        at least :data:`STREAM_MIN_ROWS` rows the static tier cannot shortlist).
    digests : ndarray of uint8, shape (pool.n, 32) or None
        The rows' text digests, when the decision hashed them to read the cache (the round reuses them).
    """

    use: bool
    reason: str
    exact_cached: np.ndarray | None = None
    source: str = "static"
    digests: np.ndarray | None = None


def why_not_shortlist(*, multi_label: bool, embeddings_given: bool, votes: bool, relabel: bool,
                      bucket_priority: bool) -> str | None:
    """Why this round cannot select from a shortlist at all, static or exact (None when it can)."""
    if multi_label:
        return "multi-label rounds run in one stage"
    if embeddings_given:
        return "the embeddings were given (--embeddings)"
    if votes or relabel or bucket_priority:
        what = "--annotations" if votes else "--relabel" if relabel else "--bucket-priority"
        return f"{what} reads every row"
    return None


def why_not_two_stage(*, multi_label: bool, embeddings_given: bool, engine: str, embedder, votes: bool,
                      relabel: bool, bucket_priority: bool) -> str | None:
    """Why this round cannot run in two stages on the static tier (None when it can).

    The static tier is distilled from the exact model, so it needs a sentence-transformers folder the
    ONNX backend reproduces, run on the CPU (a GPU embeds a cold pool in minutes anyway).
    """
    why = why_not_shortlist(multi_label=multi_label, embeddings_given=embeddings_given, votes=votes,
                            relabel=relabel, bucket_priority=bucket_priority)
    if why is not None:
        return why
    if engine != "local":
        return f"engine {engine} embeds the whole pool"
    backend = getattr(embedder, "backend", None)
    if backend is None:
        return "the embedder is not a sentence-transformers model the static tier can be distilled from (hashing " \
               "and custom embedders embed every row)"
    if getattr(embedder, "approximate", False):
        return f"backend {backend} is already the approximate tier"
    if getattr(embedder, "device", "cpu") != "cpu":
        return f"device {embedder.device} embeds a cold pool quickly"
    if not embedder.model_path.is_dir() or not exportable(embedder.model_path):
        return "the static tier is distilled through the ONNX export, which this model has not (a local folder " \
               "with Transformer + mean pooling)"
    return None


def refuse_two_stage(mode: str, why_not: str | None) -> None:
    """Raise when ``two_stage: on`` is asked of a round that cannot run in two stages (``why_not``).

    Raises
    ------
    ConfigError
    """
    if mode == "on" and why_not is not None:
        raise ConfigError(f"two_stage: on cannot run here: {why_not}; use two_stage: auto or off")


def decide_two_stage(mode: str, pool, *, embedder, cache_dir, cache_dtype: str, budget: int,
                     why_not: str | None, stream_why_not: str | None = None) -> TwoStageDecision:
    """Whether a round runs in two stages (``mode`` is the config's ``two_stage``).

    ``auto`` turns on when at least :data:`TWO_STAGE_MIN_ROWS` unlabeled rows are missing from the
    exact cache and the shortlist is at most half of them (the static tier shortlists); otherwise,
    with a cache and at least :data:`STREAM_MIN_ROWS` unlabeled rows, the exact vectors shortlist,
    streamed from the cache (``source="exact"``). ``on`` always runs on the static tier (an error
    where the round cannot, ``why_not``); ``off`` never.

    Parameters
    ----------
    pool : LabeledPool
    why_not : str or None
        :func:`why_not_two_stage` for this round.
    stream_why_not : str or None
        :func:`why_not_shortlist` for this round.
    """
    if mode not in TWO_STAGE_MODES:
        raise ConfigError(f"two_stage must be auto, on or off, got {mode!r}")
    if mode == "off":
        return TwoStageDecision(False, "two_stage: off")
    refuse_two_stage(mode, why_not)
    n_unlabeled = int((~pool.labeled).sum())
    stream = mode == "auto" and stream_why_not is None and cache_dir is not None and n_unlabeled >= STREAM_MIN_ROWS
    streamed = (f"{n_unlabeled} unlabeled rows (at least {STREAM_MIN_ROWS}): shortlisted on their exact vectors, "
                "read from the cache in chunks")
    if why_not is not None:
        return TwoStageDecision(True, f"{streamed} ({why_not})", None, "exact") if stream else \
            TwoStageDecision(False, why_not)
    if mode == "auto" and n_unlabeled < TWO_STAGE_MIN_ROWS and not stream:  # decided without reading the cache
        return TwoStageDecision(False, f"{n_unlabeled} unlabeled rows, under {TWO_STAGE_MIN_ROWS}")
    cached, digests = np.zeros(pool.n, dtype=bool), None
    if cache_dir is not None:
        exact = CachedEmbedder(embedder, cache_dir, dtype=cache_dtype)
        if len(exact.cache):
            digests = text_digests(list(pool.texts))
            cached = exact.cache.lookup(digests)[0]
    missing = int((~pool.labeled & ~cached).sum())
    size = shortlist_size(budget)
    if mode == "on":
        return TwoStageDecision(True, "two_stage: on", cached, digests=digests)
    if missing < TWO_STAGE_MIN_ROWS or 2 * size > missing:
        if stream:
            return TwoStageDecision(True, streamed, cached, "exact", digests)
        if missing < TWO_STAGE_MIN_ROWS:
            return TwoStageDecision(False, f"{missing} unlabeled rows to embed, under {TWO_STAGE_MIN_ROWS}", cached)
        return TwoStageDecision(False, f"the shortlist ({size} rows) would be over half of the {missing} rows to "
                                       "embed", cached)
    return TwoStageDecision(True, f"{missing} unlabeled rows to embed (at least {TWO_STAGE_MIN_ROWS})", cached,
                            digests=digests)


#: Texts per call to the static embedder: its cache returns each call's vectors with two temporary
#: copies, so a whole 1M-row pool in one call would hold three copies of 1 GB at once.
STATIC_CHUNK_ROWS = 65_536


def _embed_in_chunks(embedder, texts: np.ndarray, what: str, show_progress: bool, out: np.ndarray | None = None) -> int:
    """Embed ``texts`` (shape (n,)) chunk by chunk, into ``out`` (shape (n, d)) when given (else the
    vectors only go to the embedder's cache); returns how many texts were embedded, not read from a cache."""
    n_embedded = 0
    with Progress(texts.shape[0], what, unit="text", enabled=show_progress) as bar:
        for a in range(0, texts.shape[0], STATIC_CHUNK_ROWS):
            chunk = list(texts[a : a + STATIC_CHUNK_ROWS])
            vecs = embedder.encode(chunk)
            if out is not None:
                out[a : a + len(chunk)] = vecs
            n_embedded += (getattr(embedder, "last_stats", None) or {}).get("n_embedded", len(chunk))
            bar.update(len(chunk))
    return int(n_embedded)


def _static_vectors(static, texts: np.ndarray, show_progress: bool) -> tuple[np.ndarray, int]:
    """Static vectors of ``texts`` (shape (n,)), embedded chunk by chunk into one array of shape (n, d),
    and how many texts were embedded (not read from the cache)."""
    out = np.empty((texts.shape[0], static.dimension), dtype=np.float32)
    return out, _embed_in_chunks(static, texts, "static vectors", show_progress, out)


def _keep_rows(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``X[rows]`` for sorted ``rows`` (shape (m,)), moved to the front of ``X`` in place, chunk by chunk.

    Safe because ``rows[j] >= j``: every chunk reads rows at or after the ones it overwrites.

    Returns
    -------
    ndarray, shape (m, d): a view of ``X``, which is overwritten.
    """
    for a in range(0, rows.size, STATIC_CHUNK_ROWS):
        part = rows[a : a + STATIC_CHUNK_ROWS]
        X[a : a + part.size] = X[part]
    return X[: rows.size]


def embed_two_stage(pool, config, decision: TwoStageDecision, *, embedder, cache_dir, budget: int, classifier,
                    keep: np.ndarray, show_progress: bool = False, step=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Vectors for every row to shortlist on, a shortlist, exact vectors for the rows a round reads.

    The first stage reads the static tier's vectors (``decision.source == "static"``) or, for a pool
    the static tier cannot shortlist, the exact ones (``"exact"``: the missing rows are embedded
    first). With a cache, the unlabeled rows' vectors are read back from it in chunks
    (:class:`~selector.models.CacheRows`), never all at once.

    Parameters
    ----------
    pool : LabeledPool
    decision : TwoStageDecision
        ``use`` True; on the static tier its ``exact_cached`` rows join the candidates without being
        shortlisted.
    embedder : SentenceTransformerEmbedder
        The exact model.
    classifier : unfitted scikit-learn estimator
        Fitted on the static vectors of the labeled rows for the shortlist's uncertain share.
    keep : ndarray of int64
        Positions that must be exactly embedded whatever the shortlist (the stop set).

    Returns
    -------
    rows : ndarray of int64, shape (m,)
        Sorted positions of the rows embedded exactly: labeled, shortlisted, cached, ``keep``.
    X : ndarray of float32, shape (m, d)
        Their exact vectors.
    stats : dict
        ``model_fingerprint``, ``n_embedded``, ``n_cached`` (exact model) and ``two_stage``.
    """
    step = step or (lambda message: None)
    texts = pool.texts
    lab, unl = pool.labeled_positions, pool.pool_positions
    t0, c0 = time.perf_counter(), time.process_time()
    exact = embedder if cache_dir is None else CachedEmbedder(embedder, cache_dir, dtype=config.cache_dtype)
    # Hashed once a round: the decision's cache lookup, the fill and the streamed rows share them.
    digests = decision.digests
    if digests is None and cache_dir is not None:
        digests = text_digests(list(texts))
    static_fingerprint = None
    if decision.source == "exact":
        # Every unlabeled row is a candidate for the shortlist; its exact vectors come from the cache.
        step(f"two-stage round: exact vectors for the {pool.n} rows, read from the cache in chunks")
        n_first_embedded = _fill_exact(exact, texts, digests, config, cache_dir, show_progress,
                                       found=decision.exact_cached)
        S_lab, S = _streamed(exact, texts, digests, lab, unl)
        cached = np.zeros(pool.n, dtype=bool)
    else:
        static = make_embedder(config.model, device="cpu", batch_size=config.batch_size, backend="static")
        if cache_dir is not None:
            static = CachedEmbedder(static, cache_dir, dtype=config.cache_dtype)
        step(f"two-stage round: static vectors for {pool.n} rows")
        static_fingerprint = static.fingerprint
        if cache_dir is not None:  # read back from the cache in chunks: never the whole pool's vectors at once
            n_first_embedded = _fill_cache(static, texts, digests, "static vectors", show_progress)
            S_lab, S = _streamed(static, texts, digests, lab, unl)
        else:
            S, n_first_embedded = _static_vectors(static, texts, show_progress)
            S_lab = S[lab]
            S = _keep_rows(S, unl)  # in place: one copy of the pool's vectors, not two
        cached = decision.exact_cached if decision.exact_cached is not None else np.zeros(pool.n, dtype=bool)
    t1, c1 = time.perf_counter(), time.process_time()
    size = shortlist_size(budget)
    step(f"shortlisting {min(size, unl.size)} of {unl.size} unlabeled rows on the {decision.source} vectors")
    found = shortlist(S, S_lab, pool.labels[lab].astype(str), size, classifier=classifier,
                      exclude=cached[unl], uniform=config.strategy == "random", random_state=config.seed)
    del S, S_lab
    rows = np.unique(np.concatenate([lab, unl[found.positions], unl[cached[unl]], np.asarray(keep, dtype=np.int64)]))
    t2, c2 = time.perf_counter(), time.process_time()
    step(f"exact vectors for {rows.size} rows ({lab.size} labeled, {found.positions.size} shortlisted)")
    X = exact.encode(list(texts[rows]), show_progress=show_progress)
    t3, c3 = time.perf_counter(), time.process_time()
    exact_stats = getattr(exact, "last_stats", {}) or {"n_embedded": rows.size, "n_cached": 0}
    n_exact_embedded = int(exact_stats.get("n_embedded", rows.size))
    # The exact source's first stage embedded the missing rows exactly, then read them all back.
    first = "static" if decision.source == "static" else "first_stage"
    record = {
        "used": True, "reason": decision.reason, "source": decision.source, "static_fingerprint": static_fingerprint,
        "shortlist": int(found.positions.size), "shortlist_target": int(size), "sources": found.sources,
        "rare_classes": found.rare_classes, "cached_candidates": int(cached[unl].sum()),
        "candidates": int((~pool.labeled[rows]).sum()), "exact_rows": int(rows.size),
        "n_static_embedded": n_first_embedded if decision.source == "static" else 0,
        "seconds": {first: round(t1 - t0, 3), "shortlist": round(t2 - t1, 3), "exact": round(t3 - t2, 3)},
        "cpu_seconds": {first: round(c1 - c0, 3), "shortlist": round(c2 - c1, 3), "exact": round(c3 - c2, 3)},
    }
    if decision.source == "exact":
        n_exact_embedded += n_first_embedded
    stats = {"model_fingerprint": exact.fingerprint, "n_embedded": n_exact_embedded,
             "n_cached": int(exact_stats.get("n_cached", 0)), "two_stage": record}
    return rows, X, stats


def _fill_cache(cached: CachedEmbedder, texts: np.ndarray, digests: np.ndarray, what: str, show_progress: bool,
                found: np.ndarray | None = None) -> int:
    """Embed into ``cached``'s cache the ``texts`` (shape (n,), digests shape (n, 32)) it does not hold,
    chunk by chunk, keeping no vectors; returns how many texts were embedded. ``found`` (bool, shape
    (n,)): which texts the cache holds, when already looked up."""
    if found is None:
        found = cached.cache.lookup(digests)[0]
    missing = np.flatnonzero(~found)
    return _embed_in_chunks(cached, texts[missing], what, show_progress)


def _fill_exact(exact, texts: np.ndarray, digests: np.ndarray, config, cache_dir, show_progress: bool,
                found: np.ndarray | None = None) -> int:
    """Put every text's exact vector in the cache (on Ray with ``engine: ray``); returns how many were embedded."""
    if not isinstance(exact, CachedEmbedder):
        raise ConfigError("a shortlist on exact vectors reads them from the embedding cache; pass --cache-dir")
    if config.engine == "ray":
        from selector.ray_engine import embed_with_ray

        return int(embed_with_ray(texts, exact.embedder, cache_dir, model=config.model,
                                  backend=config.backend, batch_size=config.batch_size,
                                  cache_dtype=config.cache_dtype, address=config.ray_address)["n_sent"])
    return _fill_cache(exact, texts, digests, "exact vectors", show_progress, found)


def _streamed(cached: CachedEmbedder, texts: np.ndarray, digests: np.ndarray, lab: np.ndarray,
              unl: np.ndarray) -> tuple[np.ndarray, CacheRows]:
    """The labeled rows' vectors (shape (n_labeled, d), in memory) and the unlabeled rows' (a
    :class:`~selector.models.CacheRows` of shape (n_unlabeled, d), read from the cache on demand)."""
    S_lab = cached.encode(list(texts[lab])) if lab.size else np.zeros((0, cached.dimension), dtype=np.float32)
    return S_lab, CacheRows(cached.cache, digests[unl])
