"""Rehearse the shipped GPU configs' data path at the sizes people train on, on this CPU machine.

Writes synthetic sets in the shapes the configs read (one group of ``--rows`` rows in data_gen's JSONL
layout, a BEIR folder of ``--beir-rows`` pairs, a ``--small-rows`` set beside them for the mix, every
other source ``--other-rows``), points each shipped config (coder-1.5b, c2llm-0.5b, codexembed-2stage)
at them with a tiny random decoder, and runs its data path phase by phase: reading and caching the
sources, each stage's rows, mix repeats and plan, its training datasets, and one optimizer step on
them. Mining and the stage-3 embedder filter embed and search every row, so they are rehearsed on
``--search-rows`` rows of one group (exact search: time grows with the square of a group, memory with
the group). Prints time and peak memory per phase (the process's own, and its RSS with the mapped
files' cached pages), and per stage the rows, repeats, batches and steps. Figures: docs/benchmarks.md.

    python benchmarks/scale_rehearsal.py                       # 1M rows (about 15 minutes, 2 cores)
    python benchmarks/scale_rehearsal.py --rows 20000 --beir-rows 10000 --search-rows 4000   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = ("coder-1.5b", "c2llm-0.5b", "codexembed-2stage")
BIG = {"coder-1.5b": "coder_pile", "c2llm-0.5b": "csn", "codexembed-2stage": "csn"}  # the one big group
BEIR = "msmarco"  # read from a BEIR folder where a config has it
SMALL = "trans_dl"  # CoIR's CodeTransOcean-DL train split: a few hundred rows


def _anonymous_bytes() -> int:
    """Memory only this process holds (RssAnon): resident pages of memory-mapped Arrow files are the
    page cache's, which the kernel drops under pressure, so they are left out here."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return psutil.Process().memory_info().rss


class PeakMemory:
    """This process's anonymous memory (and its whole RSS), sampled every 20 ms: peaks since
    :meth:`reset`, in GB."""

    def __init__(self) -> None:
        self.process, self.peak, self.peak_rss = psutil.Process(), 0, 0
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            self.peak = max(self.peak, _anonymous_bytes())
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
            time.sleep(0.02)

    def reset(self) -> None:
        self.peak, self.peak_rss = _anonymous_bytes(), self.process.memory_info().rss

    def gb(self) -> float:
        return max(self.peak, _anonymous_bytes()) / 1e9

    def rss_gb(self) -> float:
        return max(self.peak_rss, self.process.memory_info().rss) / 1e9


METER: PeakMemory | None = None
ROWS: list[dict] = []


@contextmanager
def phase(config: str, name: str, detail: str = ""):
    METER.reset()
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    ROWS.append({"config": config, "phase": name, "seconds": round(seconds, 1), "peak_gb": round(METER.gb(), 2),
                 "peak_rss_gb": round(METER.rss_gb(), 2), "detail": detail})
    print(f"  {config:18s} {name:32s} {seconds:7.1f} s   peak {METER.gb():5.2f} GB (rss {METER.rss_gb():5.2f})   {detail}",
          flush=True)


def _code(i: int) -> str:
    return f"def handler_{i}(request, limit={i % 50}):\n    items = load_{i % 997}(request)\n" \
           f"    return [item for item in items if item.size < limit]  # {i}\n"


def write_group_jsonl(path: Path, rows: int, task: str, negatives: int = 7) -> None:
    """One group (task x Python x English) in data_gen's row layout, negatives included."""
    with path.open("w") as handle:
        for i in range(rows):
            row = {"query": f"filter the items of request {i} below a size limit", "positive": _code(i),
                   "task": task, "language": "English", "code_language": "Python"}
            row.update({f"negative_{j + 1}": _code(i + 7919 * (j + 1)) for j in range(negatives)})
            handle.write(json.dumps(row) + "\n")


def write_beir(folder: Path, rows: int) -> None:
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as corpus, (folder / "queries.jsonl").open("w") as queries, \
            (folder / "qrels" / "train.tsv").open("w") as qrels:
        qrels.write("query-id\tcorpus-id\tscore\n")
        for i in range(rows):
            corpus.write(json.dumps({"_id": f"d{i}", "title": "", "text": f"passage {i} about topic {i % 313}"}) + "\n")
            queries.write(json.dumps({"_id": f"q{i}", "text": f"what is topic {i % 313} number {i}"}) + "\n")
            qrels.write(f"q{i}\td{i}\t1\n")


def rehearsal_config(name: str, files: dict[str, Path], base: str, out: Path) -> dict:
    """The shipped config with its sources pointed at the synthetic files and the tiny model; mining
    off (the sets carry their negatives; mining is rehearsed on its own), evaluation off."""
    from st_code.training.command import load_raw

    data = load_raw(name)
    for source, spec in data["data"]["sources"].items():
        role = "big" if source == BIG[name] else "beir" if source == BEIR else "small" if source == SMALL else "other"
        spec.update(path=str(files[role]), split="train")
        spec.pop("columns", None)
        if spec.get("code_language") == "detect":
            spec.pop("code_language")
    data["data"]["hard_negatives"] = {"enabled": False}
    data["model"] = {"base": base, "pooling": data["model"]["pooling"], "max_seq_length": 64, "dtype": "float32",
                     **({"embedding_dim": 32} if data["model"]["pooling"] == "pma" else {}),
                     **({"lora": {"r": 4, "alpha": 8}} if data["model"].get("lora") else {})}
    for stage in data["stages"]:
        stage.update(filters=[], max_steps=1, batch_size=8, mini_batch_size=4)
        stage.pop("pack_sequences", None)
    data.update(output_dir=str(out / name), evaluation={"sets": []}, bf16=False)
    return data


def rehearse_config(name: str, files: dict[str, Path], base: str, out: Path) -> None:
    from accelerate import PartialState

    from st_code.training import config_from_dict
    from st_code.training.data_cache import prepare_data
    from st_code.training.models import build_training_model
    from st_code.training.stage_datasets import build_stage_datasets
    from st_code.training.stage_plan import plan_lines
    from st_code.training.stage_rows import stage_rows

    config = config_from_dict(rehearsal_config(name, files, base, out))
    state = PartialState(cpu=True)
    with phase(name, "read + cache sources"):
        sources, _ = prepare_data(out / name / "data", config, "rehearsal", state, lambda: None, lambda line: None)
    rows = sum(len(s) for s in sources.values())
    ROWS[-1]["detail"] = f"{rows:,} rows in {len(sources)} sources"
    print(f"  {'':18s} {'':28s} {rows:,} rows in {len(sources)} sources")
    model = build_training_model(config.model)
    for stage in config.stages:
        with phase(name, f"stage '{stage.name}': rows + plan"):
            lines = plan_lines(stage, sources, config.seed, 1)
            staged = stage_rows(stage, sources, config.seed)
        for line in lines:
            print(f"      {line}")
        ROWS[-1]["plan"] = lines
        with phase(name, f"stage '{stage.name}': datasets"):
            sets = build_stage_datasets(staged.samples, stage.num_negatives,
                                        repeat_of=staged.repeat_of if stage.mix else None)
            del staged
        with phase(name, f"stage '{stage.name}': 1 step"):
            one_step(model, sets, stage, out / name / stage.name)
        del sets


def one_step(model, sets, stage, folder: Path) -> None:
    from sentence_transformers import SentenceTransformerTrainingArguments

    from st_code.training.stage_loss import stage_loss
    from st_code.training.stage_trainer import StageTrainer, stage_schedule

    args = SentenceTransformerTrainingArguments(output_dir=str(folder), max_steps=1, per_device_train_batch_size=8,
                                                report_to=[], use_cpu=True, disable_tqdm=True, save_strategy="no",
                                                dataloader_drop_last=True)
    quota = sets.batches_per_epoch(8)
    trainer = StageTrainer(model=model, args=args, train_dataset=sets.datasets, loss=stage_loss(model, stage, False, print),
                           schedule=lambda steps: stage_schedule(1e-4, 0.0, 0, 0.0, steps),
                           batch_quota=quota if stage.mix else None)
    trainer.train()


def rehearse_search(rows: int, base: str) -> None:
    """Mining and the embedder filter on one group of ``rows`` rows, with the tiny model."""
    import st_code
    from st_code.data.records import Sample
    from st_code.training.config import HardNegativesConfig
    from st_code.training.filters import embedder_topk_filter
    from st_code.training.sources import mine_negatives

    model = st_code.build_model(base, pooling="lasttoken", device="cpu")
    samples = [Sample(f"filter the items of request {i} below a size limit", _code(i), [], "T", "English", "Python")
               for i in range(rows)]
    for n in (rows // 2, rows):
        with phase("search", f"mine 7 negatives, {n:,} rows"):
            mined = mine_negatives(samples[:n], model, 7, HardNegativesConfig(batch_size=256), lambda line: None)
        ROWS[-1]["detail"] = f"{len(mined):,} rows kept"
        with phase("search", f"embedder_topk k=3, {n:,} rows"):
            kept, report = embedder_topk_filter(samples[:n], model, k=3, batch_size=256)
        ROWS[-1]["detail"] = report.line()


def main(argv: list[str] | None = None) -> int:
    global METER
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the one big group (default 1M)")
    parser.add_argument("--beir-rows", type=int, default=500_000, help="pairs of the BEIR-shaped set (MS MARCO's role)")
    parser.add_argument("--small-rows", type=int, default=300, help="rows of the small set beside them in a mix")
    parser.add_argument("--other-rows", type=int, default=2_000, help="rows of every other source")
    parser.add_argument("--search-rows", type=int, default=50_000, help="rows mined and filtered (and half of them); 0: skip")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--workdir", type=Path, default=None, help="where the synthetic sets go (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    METER = PeakMemory()
    from st_code.testing import save_tiny_qwen2

    work = args.workdir or Path(tempfile.mkdtemp(prefix="st-code-rehearsal-"))
    work.mkdir(parents=True, exist_ok=True)
    base = save_tiny_qwen2(work / "tiny")
    files = {"big": work / "big.jsonl", "beir": work / "beir", "small": work / "small.jsonl", "other": work / "other.jsonl"}
    with phase("synthetic", "write sets", f"{args.rows:,} + {args.beir_rows:,} + {args.small_rows} rows"):
        write_group_jsonl(files["big"], args.rows, "Text2Code Retrieval")
        write_beir(files["beir"], args.beir_rows)
        write_group_jsonl(files["small"], args.small_rows, "Code2Code Retrieval")
        write_group_jsonl(files["other"], args.other_rows, "Code Summary Retrieval")
    for name in args.configs:
        rehearse_config(name, files, base, work / "runs")
    if args.search_rows:
        rehearse_search(args.search_rows, base)
    if args.json:
        args.json.write_text(json.dumps(ROWS, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
