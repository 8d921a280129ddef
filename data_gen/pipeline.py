"""The CodeR-Pile pipeline: stages that each read the previous stage's file under ``out`` and write
their own, chained by ``all``. Every LLM call is journaled in ``out/journal.jsonl``: kill a run at
any moment and rerun the same command to continue without repeating finished calls."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from data_gen.corpus import CodeFile, read_corpus, snippet
from st_code.errors import ServiceUnreachable, UsageError
from st_code.locking import LOCK_NAME, FolderLock
from st_code.outputs import check_output_folder
from st_code.llm import Journal, LLMClient
from data_gen.pairs import read_jsonl, read_pairs, write_jsonl

STAGES = ("brainstorm", "corpus", "generate", "annotate", "mine", "difficulty", "write")


@dataclass
class PipelineConfig:
    out: str
    corpus: list[str] = field(default_factory=list)
    tasks: list[str] | None = None  # None: all 47 registry tasks
    task_file: str | None = None  # extra registry-shaped YAML (e.g. reviewed brainstorm output)
    languages: list[str] | None = None  # programming languages; None: all found
    natural_languages: list[str] = field(default_factory=lambda: ["English"])
    model: str = "openai/gpt-4o-mini"
    api_bases: list[str] = field(default_factory=list)
    client: str = "auto"  # auto | litellm | openai-compatible (see st_code.llm.choose_client)
    concurrency: int = 16
    timeout: float = 60.0
    retries: int = 3
    max_samples: int | None = 10  # per task x natural language x code language
    max_files_per_language: int | None = 1000
    seed: int = 0
    embedder: str = "minilm"  # for mining: "minilm" (packaged) or any SentenceTransformer path / id
    embedder_dtype: str = "auto"  # auto (bf16 where the hardware has it) | float32 | bfloat16 | float16
    embed_batch_size: int | None = None  # None: 32 on CPU, 128 on a GPU
    num_negatives: int = 15
    relative_margin: float = 0.05
    brainstorm_rounds: int = 1
    skip_difficulty: bool = False

    def __post_init__(self) -> None:  # fail at once, not after hours of LLM calls when mining starts
        from st_code.mining import DTYPES
        from st_code.llm.client import check_call_settings

        check_call_settings(self.concurrency, self.timeout, self.retries)
        if self.embedder_dtype not in DTYPES:
            raise UsageError(f"embedder_dtype {self.embedder_dtype!r} is not one of {DTYPES}")
        for name in ("max_samples", "max_files_per_language", "embed_batch_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"{name} must be a whole number >= 1, or None for no limit (got {value!r})")
        for name in ("num_negatives", "brainstorm_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a whole number >= 1 (got {value!r})")
        if not 0 <= self.relative_margin < 1:
            raise UsageError(f"relative_margin must be in [0, 1) (got {self.relative_margin!r})")
        unknown = sorted(set(self.natural_languages) - {"English", "Chinese"})
        if unknown or not self.natural_languages:
            raise UsageError(f"natural_languages must be English and/or Chinese (got {self.natural_languages})")


@dataclass
class Summary:
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_cpu_seconds: dict[str, float] = field(default_factory=dict)  # this process's CPU per stage
    counts: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    corpus: list[str] = field(default_factory=list)
    llm: dict = field(default_factory=dict)

    def render(self) -> str:
        lines = ["", "== data_gen summary =="]
        lines += self.corpus
        for stage, seconds in self.stage_seconds.items():
            cpu = self.stage_cpu_seconds.get(stage, 0.0)
            lines.append(f"{stage:<11} {seconds:8.1f}s (CPU {cpu:.1f}s)  {self.counts.get(stage, '')}")
        if self.llm:
            cost = self.llm.get("cost")
            per_second = self.llm["calls"] / max(self.llm["seconds_total"], 1e-9)
            lines.append(f"llm: {self.llm['calls']} calls, {self.llm['failures']} failed {self.llm['failure_reasons']}, "
                         f"{self.llm['prompt_tokens']}+{self.llm['completion_tokens']} tokens, "
                         f"cost {'$%.4f' % cost if cost is not None else 'unknown'}, {per_second:.1f} calls/s")
        for task in sorted(set(self.rejected) | set(self.labels)):
            lines.append(f"  {task}: labels {self.labels.get(task, {})} rejected {self.rejected.get(task, {})}")
        return "\n".join(lines)


#: What data_gen writes in its output folder: one of these marks the folder as its own.
STAGE_FILES = ("journal.jsonl", "corpus.jsonl", "generated.jsonl", "annotated.jsonl", "mined.jsonl", "labeled.jsonl",
               "triplets.jsonl", "summary.json", "dataset", "brainstormed_tasks.yaml")


def is_data_gen_folder(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier data_gen run's files (stages run one at a time read each other's)."""
    return any((folder / name).exists() for name in STAGE_FILES)


class Pipeline:
    def __init__(self, config: PipelineConfig, log=print) -> None:
        self.config = config
        self.out = check_output_folder(config.out, flag="--out", what="data_gen output", owned=is_data_gen_folder,
                                       inputs=list(config.corpus or []), ignore=(LOCK_NAME,))
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.summary = Summary()
        self._client: LLMClient | None = None
        self._journal: Journal | None = None
        self._wall = 0.0
        self._stage_calls = (0, 0)  # (calls, failures) when the current stage started

    # -- shared resources ----------------------------------------------------------------------
    @property
    def client(self) -> LLMClient:
        if self._client is None:
            c = self.config
            self._client = LLMClient(c.model, c.api_bases, c.concurrency, c.timeout, c.retries, client=c.client)
        return self._client

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(self.out / "journal.jsonl")
        return self._journal

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
        if self._client is not None:
            s = self._client.stats
            self.summary.llm = {"calls": s.calls, "failures": s.failures, "failure_reasons": s.failure_reasons,
                                "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
                                "cost": self._client.cost(), "client": self._client.kind,
                                "seconds_total": self._wall}
        (self.out / "summary.json").write_text(json.dumps(asdict(self.summary), indent=2, default=str))

    def tasks(self):
        from st_code.tasks import coder_pile_tasks, get_task, load_registry

        registry = dict(coder_pile_tasks())
        if self.config.task_file:
            registry.update(load_registry(self.config.task_file))
        if not self.config.tasks:
            return list(registry.values())
        missing = [t for t in self.config.tasks if t not in registry]
        if missing:
            get_task(missing[0])  # raises with close-match suggestions
        return [registry[t] for t in self.config.tasks]

    # -- stages --------------------------------------------------------------------------------
    async def _map(self, work, items: list, desc: str) -> list:
        """``[await work(item) for item in items]``, run concurrently, in order, with a progress bar.

        ``concurrency`` workers take items one at a time, so a worker has at most one LLM call in flight
        and the client's semaphore never makes a call wait (measured: 2x workers queueing on the
        semaphore lost ~2% throughput). A million-item run holds a million pending tasks neither in
        memory nor in the event loop, and the first requests leave at once, not after every prompt is built.
        """
        from tqdm.auto import tqdm

        results: list = [None] * len(items)
        queue = iter(enumerate(items))  # shared by the workers: each takes the next item when free
        with tqdm(total=len(items), desc=desc, unit="item", leave=False) as bar:
            async def worker() -> None:
                for index, item in queue:
                    results[index] = await work(item)
                    bar.update()

            await asyncio.gather(*(worker() for _ in range(min(len(items), self.config.concurrency))))
        self._check_reachable(desc, self._stage_calls)  # before the stage writes its file
        return results

    async def stage_brainstorm(self) -> None:
        from data_gen.brainstorm import brainstorm, draft_recipes, write_proposals

        proposals, rejected = await brainstorm(self.client, self.journal, rounds=self.config.brainstorm_rounds)
        drafting = await draft_recipes(self.client, self.journal, proposals)
        write_proposals(proposals, self.out / "brainstormed_tasks.yaml", self.config.model)
        self.summary.rejected["(instruct)"] = drafting
        self.summary.counts["brainstorm"] = len(proposals)
        self.summary.rejected["(brainstorm)"] = rejected
        self.log(f"brainstorm: {len(proposals)} new task(s) -> {self.out / 'brainstormed_tasks.yaml'} (review before use)")

    def stage_corpus(self) -> None:
        if not self.config.corpus:
            raise ValueError("no --corpus given: pass folders, git checkouts, .jsonl files or datasets folders of code")
        files, report = read_corpus(self.config.corpus, self.config.languages, self.config.max_files_per_language,
                                    self.config.seed)
        write_jsonl(self.out / "corpus.jsonl", [asdict(f) for f in files])
        self.summary.corpus = report.lines()
        self.summary.counts["corpus"] = len(files)
        for line in report.lines():
            self.log(line)

    def _corpus(self) -> list[CodeFile]:
        return [CodeFile(**row) for row in read_jsonl(self.out / "corpus.jsonl")]

    async def stage_generate(self) -> None:
        from data_gen.generate import Generator, plan_work

        items = plan_work(self.tasks(), self._corpus(), self.config.natural_languages, self.config.max_samples,
                          self.config.seed, log=self.log)
        generator = Generator(self.client, self.journal)
        try:
            results = await self._map(generator.run, items, "generate")
        finally:  # the summary says why, also when the stage stops
            self._merge_rejected(generator.rejected)
        pairs = [p for p in results if p is not None]
        write_jsonl(self.out / "generated.jsonl", [p.to_dict() for p in pairs])
        self.summary.counts["generate"] = len(pairs)
        self.log(f"generate: {len(pairs)} pair(s) from {len(items)} work item(s)")

    async def stage_annotate(self) -> None:
        from data_gen.judge import Judge

        pairs = read_pairs(self.out / "generated.jsonl")
        judge = Judge(self.client, self.journal)
        try:
            results = await self._map(judge.annotate, pairs, "annotate")
        finally:
            self._merge_rejected({t: dict(c) for t, c in judge.rejected.items()})
        kept = [p for p in results if p is not None]
        write_jsonl(self.out / "annotated.jsonl", [p.to_dict() for p in kept])
        for task, counter in judge.labels.items():
            self.summary.labels[task] = dict(counter)
            self.log(f"annotate {task}: labels {dict(counter)}")
        self.summary.counts["annotate"] = len(kept)
        self.log(f"annotate: kept {len(kept)} of {len(pairs)} (answer exactly 1)")

    def stage_mine(self) -> None:
        from data_gen.negatives import mine
        from st_code.mining import load_embedder

        pairs = read_pairs(self.out / "annotated.jsonl")
        embedder = load_embedder(self.config.embedder, self.config.embedder_dtype)
        corpus_path = self.out / "corpus.jsonl"
        corpus = [snippet(row["code"]) for row in read_jsonl(corpus_path)] if corpus_path.exists() else []
        kept, report = mine(pairs, embedder, corpus, self.config.num_negatives, self.config.relative_margin,
                            batch_size=self.config.embed_batch_size)
        write_jsonl(self.out / "mined.jsonl", [p.to_dict() for p in kept])
        self.summary.counts["mine"] = len(kept)
        self.log(f"mine: {report.pairs_out} of {report.pairs_in} pair(s) got {self.config.num_negatives} negatives "
                 f"({report.seconds:.1f}s: embedding {report.embedding_seconds:.1f}s with {self.config.embedder} in "
                 f"{embedder.dtype} on {embedder.device}, search and selection {report.search_seconds:.1f}s)")

    async def stage_difficulty(self) -> None:
        from data_gen.judge import Judge

        pairs = read_pairs(self.out / "mined.jsonl")
        if self.config.skip_difficulty:
            write_jsonl(self.out / "labeled.jsonl", [p.to_dict() for p in pairs])
            return
        judge = Judge(self.client, self.journal)
        labeled = await self._map(judge.difficulty, pairs, "difficulty")
        write_jsonl(self.out / "labeled.jsonl", [p.to_dict() for p in labeled])
        counts = Counter(p.difficulty or "unparsed" for p in labeled)
        self.summary.counts["difficulty"] = len(labeled)
        self.log(f"difficulty: {dict(counts)}")

    def stage_write(self) -> None:
        from data_gen.write import write_dataset

        source = self.out / "labeled.jsonl"
        pairs = read_pairs(source if source.exists() else self.out / "mined.jsonl")
        n = write_dataset(pairs, self.out, self.config.num_negatives)
        self.summary.counts["write"] = n
        self.log(f"write: {n} row(s) -> {self.out / 'dataset'} and {self.out / 'triplets.jsonl'}")

    def _merge_rejected(self, rejected: dict[str, dict[str, int]]) -> None:
        for task, reasons in rejected.items():
            merged = self.summary.rejected.setdefault(task, {})
            for reason, n in reasons.items():
                merged[reason] = merged.get(reason, 0) + n

    async def _run_stages(self, order: list[str]) -> None:
        try:
            for name in order:
                # Everything alive now (imported libraries: litellm, torch...) is long-lived: keep it out
                # of the cyclic collector's full passes, which otherwise stall the event loop for tens of
                # ms (measured: ~2% of call throughput with litellm imported). Undone when the run ends.
                gc.freeze()
                t0, cpu0 = time.perf_counter(), time.process_time()
                self._stage_calls = self._calls()
                result = getattr(self, f"stage_{name}")()
                if asyncio.iscoroutine(result):
                    await result
                self._check_reachable(name, self._stage_calls)
                self.summary.stage_seconds[name] = time.perf_counter() - t0
                self.summary.stage_cpu_seconds[name] = time.process_time() - cpu0
        finally:
            if self._client is not None:
                await self._client.aclose()  # HTTP connections belong to this event loop

    def _calls(self) -> tuple[int, int]:
        stats = self._client.stats if self._client is not None else None
        return (stats.calls, stats.failures) if stats else (0, 0)

    def _check_reachable(self, stage: str, before: tuple[int, int]) -> None:
        """A stage in which every LLM call failed stops the run: going on would write empty stage
        files and mine nothing, and the finished work stays in the journal for the rerun."""
        calls, failures = (now - then for now, then in zip(self._calls(), before))
        if failures and not calls:
            reasons = ", ".join(f"{k}: {v}" for k, v in self._client.stats.failure_reasons.items())
            where = f" at {', '.join(self.config.api_bases)}" if self.config.api_bases else ""
            raise ServiceUnreachable(
                f"{stage}: none of {failures} calls to {self.config.model}{where} succeeded ({reasons}); check that the "
                "server is up, the --model name and the API key, then rerun the same command (finished work is kept)")

    def run(self, stage: str) -> Summary:
        """Run one stage, or ``all`` (corpus -> write; brainstorm is a separate, human-reviewed step)."""
        order = list(STAGES[1:]) if stage == "all" else [stage]
        if stage != "all" and stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; use one of {STAGES + ('all',)}")
        start = time.perf_counter()
        gc.collect()
        with FolderLock(self.out, "data_gen run", self.log):
            try:
                asyncio.run(self._run_stages(order))  # one event loop for every LLM call of the run
            finally:
                gc.unfreeze()
                self._wall = time.perf_counter() - start
                self.close()
                self.log(self.summary.render())  # also when a stage failed: the counts say why
        return self.summary
