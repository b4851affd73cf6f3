"""``selector select``: one labeling round (queue, suspects, round record, ledger line)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, command_line, default_cache_dir, handle_errors, info
from selector.errors import ConfigError


@app.command("select")
@handle_errors
def select_command(
    data: Optional[Path] = typer.Argument(None, help="Table of texts (CSV, Parquet or JSONL); empty label = unlabeled."),
    budget: Optional[int] = typer.Option(None, "--budget", "-b", help="Rows to queue for labeling [default: 100]."),
    strategy: Optional[str] = typer.Option(None, "--strategy", "-s", help="Query strategy (see `selector strategies`)."),
    out: Path = typer.Option(Path("queue.csv"), "--out", "-o", help="Queue file; format by extension (.csv, .parquet, .jsonl)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed [default: 0]; same data + config + seed = same queue."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="YAML config (see configs/default.yaml)."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="Text column [default: text]."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="Label column [default: label]."),
    id_col: Optional[str] = typer.Option(None, "--id-col", help="Id column [default: id]; generated when absent."),
    model: Optional[str] = typer.Option(None, "--model", help="Local sentence-transformers folder [default: bundled all-MiniLM-L6-v2]."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda [default: auto]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Texts per forward pass [default: 64 on CPU, more on CUDA]."),
    backend: Optional[str] = typer.Option(None, "--backend", help="torch, onnx or onnx-int8 [default: onnx on CPU, torch on CUDA]."),
    engine: Optional[str] = typer.Option(None, "--engine", help="local or ray: where missing embeddings are computed [default: local]."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address for --engine ray [default: local Ray]."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Embedding cache [default: .selector/ beside the data]."),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help=".npy of embeddings aligned with the rows; skips the model."),
    example: bool = typer.Option(False, "--example", help="Run on the bundled example (a banking77 sample) instead of DATA."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summary."),
    gold_file: Optional[Path] = typer.Option(None, "--gold", help="Gold file (item_id, gold_label[, text]) to mix into the queue."),
    gold_rate: Optional[float] = typer.Option(None, "--gold-rate", help="Share of the queue that is gold, with --gold [default: 0.05]."),
    bucket_priority: Optional[float] = typer.Option(None, "--bucket-priority", help="Share of the budget (0-1) reserved for unlabeled rows of the rarest failure buckets (`bucket` column, see `selector ingest`)."),
    no_suspects: bool = typer.Option(False, "--no-suspects", help="Skip the mislabel-suspect list beside the queue."),
) -> None:
    """Choose the next rows to label and write them as a ranked queue (+ a mislabel-suspect list)."""
    from selector.config import load_config
    from selector.io import file_sha256, read_table, write_json, write_table
    from selector.round.compute import run_round
    from selector.round.record import record_path_for, round_record

    if example == (data is not None):
        raise ConfigError("give either a DATA file or --example (not both, not neither)")
    if example:
        from selector.examples import example_path

        data = example_path()
        if cache_dir is None:
            cache_dir = Path(".selector")
    if out.resolve() == data.resolve():
        raise ConfigError(f"--out {out} is the input file; choose another path (inputs are never modified)")
    config = load_config(config_file).replace(
        budget=budget, strategy=strategy, seed=seed, text_col=text_col, label_col=label_col, id_col=id_col,
        model=model, device=device, batch_size=batch_size, backend=backend, engine=engine, ray_address=address,
        cache_dir=str(cache_dir) if cache_dir is not None else None,
    )
    gold_table = None
    if gold_file is not None or gold_rate is not None:
        from selector.quality.gold import check_gold_rate, read_gold

        if gold_file is None:
            raise ConfigError("--gold-rate needs --gold GOLD_FILE (item_id, gold_label[, text])")
        gold_rate = check_gold_rate(0.05 if gold_rate is None else gold_rate)
        gold_table = read_gold(gold_file)
    t0 = time.perf_counter()
    df = read_table(data)
    input_hash = file_sha256(data)
    cache = Path(config.cache_dir) if config.cache_dir else default_cache_dir(data)
    result = run_round(df, config, source=str(data), embeddings=embeddings, cache_dir=cache,
                       show_progress=not quiet)
    if bucket_priority is not None:
        from selector.loop.ingest import prioritise_buckets

        result = prioritise_buckets(result, df, share=bucket_priority, strategy=config.strategy,
                                    random_state=config.seed)
    queue, outputs, gold_ids = result.queue, {"queue": str(out)}, None
    if gold_table is not None:  # gold goes in unmarked; the key file and the round record say which rows
        from selector.quality.gold import gold_for_round

        mixed = gold_for_round(result, gold_table, gold_rate, random_state=config.seed)
        queue, gold_ids, outputs["gold_key"] = mixed.queue, mixed.gold_ids, str(out.with_name(f"{out.stem}.key{out.suffix}"))
        write_table(mixed.key, outputs["gold_key"])
    write_table(queue, out)
    if not no_suspects:
        from selector.round.suspects import write_round_suspects

        suspects_file, note = write_round_suspects(result, out, random_state=config.seed)
        if suspects_file is not None:
            outputs["suspects"] = str(suspects_file)
        info(note, quiet)
    record_file = record_path_for(out)
    record = round_record(config=config.to_dict(), stats=result.stats, input_path=str(data),
                          input_sha256=input_hash, outputs=outputs, command=command_line())
    if gold_ids is not None:
        record["gold_ids"] = gold_ids
        record["gold"] = {"path": str(gold_file), "sha256": file_sha256(gold_file), "rate": gold_rate}
        info(f"mixed {len(gold_ids)} gold items into the queue (ids in {record_file}, answer key {outputs['gold_key']})", quiet)
    write_json(record, record_file)
    from selector.loop.ledger import record_round

    record_round(data, result, config, queue_path=out, data_sha256=input_hash, command=command_line(),
                 queue=queue, gold_ids=gold_ids, ledger_file=Path(".selector/rounds.jsonl") if example else None)
    s = result.stats
    info(f"queued {s['n_selected']} of {s['n_unlabeled']} unlabeled rows ({s['n_labeled']} labeled) "
         f"with {config.strategy!r} -> {out} ; embedded {s['n_embedded']} new texts, {s['n_cached']} from cache; "
         f"{time.perf_counter() - t0:.1f}s", quiet)
