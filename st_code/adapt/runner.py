"""``st-code adapt REPO``: an embedder that knows a team's own code, in one command.

repository -> documented units as pairs, split by file (:mod:`st_code.data.repo_pairs`) -> optional
LLM-written queries for undocumented units (``python -m data_gen``, CodeR's task prompts) -> the base
model scored on the held-out files and the built-in general sets -> the steps that fit ``--minutes``
(:mod:`st_code.adapt.plan`) -> one curriculum stage (:class:`st_code.training.CurriculumRunner`, the
recipes' own trainer, checkpoints and resume) -> the adapted model scored on the same sets -> the gate
(:mod:`st_code.adapt.gate`) -> ``OUT/model`` only if it passed, a report either way, and an offer to
rebuild the repository's code-search index with the new model.

Everything lands in ``OUT``: ``data/`` (``train.jsonl``, held-out BEIR folders, ``split.json``), ``run/``
(the curriculum run), ``scores/``, ``plan.json``, ``report/`` and, when the gate passes, ``model/``.
Rerunning the same command resumes: the data is rebuilt identically, scores are cached by model
weights and sets, the step plan is reused, and training goes on from its last checkpoint.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer

import st_code
from st_code.adapt.gate import GENERAL_SETS, GateDecision, decide, write_report  # noqa: F401 - GENERAL_SETS re-exported
from st_code.adapt.options import ADAPT_OUTPUTS, MARKER, REPORT_FILES, AdaptOptions
from st_code.adapt.plan import TrainingPlan, adapt_config, plan_steps, seconds_per_step
from st_code.assets import resolve_model_name
from st_code.data.python_functions import content_hash
from st_code.data.readers import write_beir
from st_code.data.records import RetrievalSet, sample_to_row
from st_code.data.repo_pairs import TEXT2CODE, RepositoryPairs, build_repository_pairs
from st_code.errors import MissingPathError, UsageError
from st_code.fingerprint import model_fingerprint, path_fingerprint, stable_hash
from st_code.locking import FolderLock
from st_code.outputs import remove_owned, staged_folder, write_text_atomic

#: Fewer documented training pairs than this (and no --llm) is no basis for training.
MIN_DOCUMENTED_PAIRS = 20
#: Repository held-out sets: at least this many queries to be scored, at most this many (a seeded sample).
MIN_SET_QUERIES, MAX_SET_QUERIES = 10, 300
#: The CodeR-Pile tasks data_gen writes queries for when --llm is given (Text2Code: a person's query -> code).
LLM_TASKS = ("Web Query to Code Retrieval", "Code Explanation to Implementation Retrieval")


@dataclass
class AdaptResult:
    """The verdict and where everything is: ``model`` is what to use from now on (the adapted folder, or
    the base when the gate refused)."""

    accepted: bool
    model: str
    adapted: str
    decision: GateDecision
    report: Path
    out: Path
    base_scores: dict
    adapted_scores: dict
    plan: TrainingPlan
    seconds: float
    index_rebuilt: bool = False


def adapt_repository(options: AdaptOptions, log: Callable[[str], None] = print,
                     confirm: Callable[[str], bool] | None = None) -> AdaptResult:
    """Adapt ``options.model`` to ``options.repository``; see the module docstring. ``confirm`` answers
    the index-rebuild question (default: ask on an interactive terminal, else only print the command)."""
    out = options.out_dir()
    options.check()  # before the lock creates OUT: a folder of the user's files is refused untouched
    with FolderLock(out, "st-code adapt", log):
        return _adapt(options, out, log, confirm)


def _adapt(options: AdaptOptions, out: Path, log: Callable[[str], None],
           confirm: Callable[[str], bool] | None) -> AdaptResult:
    start = time.time()
    repo = options.check()
    write_text_atomic(out / MARKER, json.dumps({"tool": "st-code adapt", "repository": str(repo.resolve())}))
    if options.overwrite:  # only what adapt wrote: a user's files in OUT (or notes in OUT/report) stay
        removed = remove_owned(out, ADAPT_OUTPUTS) + remove_owned(out / "report", REPORT_FILES)
        log(f"--overwrite: removed {', '.join(removed) or 'nothing (no earlier run)'} from {out}")

    log(f"[1/6] reading {repo} ...")
    pairs = build_repository_pairs(repo, heldout_percent=options.heldout_percent, seed=options.seed,
                                   languages=set(options.languages) if options.languages else None,
                                   heldout_paths=options.heldout_paths)
    log(f"  {pairs.walk.line()}")
    log(f"  {pairs.summary()}")
    repo_sets = _check_pairs(repo, pairs, options)
    data_dir = out / "data"
    train_file = _write_data(data_dir, pairs, repo_sets)
    extra_sources = _llm_queries(options, pairs, out / "llm", log) if options.llm else {}

    log("[2/6] loading the base model and the general sets ...")
    base_name = resolve_model_name(options.model)
    base = _load(base_name, options.device)
    general = _general_sets(options.general_sets, pairs, log)
    sets = {**repo_sets, **general}

    log(f"[3/6] scoring the base model on {len(repo_sets)} repository and {len(general)} general set(s) ...")
    base_fingerprint = model_fingerprint(base, base_name)
    base_scores, eval_seconds = _scores(out / "scores" / "base.json", base, base_fingerprint, sets, log)
    plan = _plan(out / "plan.json", options, pairs, base, base_fingerprint, train_file, extra_sources, eval_seconds,
                 sum(len(s.queries) + len(s.corpus) for s in sets.values()), time.time() - start, log)

    log(f"[4/6] training {plan.max_steps} step(s) ({plan.epochs:g} epochs, ~{plan.seconds_per_step:.1f} s/step) ...")
    config = adapt_config(base_name, _pooling_of(base), str(train_file.resolve()), str((out / "run").resolve()),
                          plan.max_steps, options.learning_rate, options.batch_size, base.max_seq_length,
                          min(options.train_seq_length, base.max_seq_length), options.seed,
                          gradcache=base.device.type == "cuda", extra_sources=extra_sources)
    write_text_atomic(out / "adapt_config.yaml", _yaml(config))
    del base
    result = _train(config, base_name, log)
    adapted_dir = Path(result["final"])

    log("[5/6] scoring the adapted model ...")
    adapted = _load(str(adapted_dir), options.device)
    adapted_scores, _ = _scores(out / "scores" / "adapted.json", adapted,
                                model_fingerprint(path=adapted_dir), sets, log)
    decision = decide(base_scores, adapted_scores, list(repo_sets), list(general),
                      max_general_loss=options.max_general_loss)
    installed = out / "model"
    if decision.accepted:  # copied beside, then swapped in: a crash never leaves half a model folder
        with staged_folder(installed) as staging:
            shutil.copytree(adapted_dir, staging, dirs_exist_ok=True)
    else:
        shutil.rmtree(installed, ignore_errors=True)
    seconds = time.time() - start
    details = {"repository": str(repo.resolve()), "model": options.model, "adapted_model": str(adapted_dir),
               "files": {"train": len(pairs.train_files), "heldout": len(pairs.heldout_files)},
               "per_language": pairs.counts(), "walk": pairs.walk.line(), "plan": plan.to_json(),
               "repository_sets": {name: {"queries": len(s.queries), "documents": len(s.corpus)}
                                   for name, s in repo_sets.items()},
               "general_sets": {name: len(s.queries) for name, s in general.items()},
               "llm_sources": extra_sources, "wall_seconds": round(seconds, 1)}
    report = write_report(out / "report", base_scores, adapted_scores, decision, list(repo_sets), list(general),
                          details)
    log(f"[6/6] {decision.line()}")
    log(f"  report: {report}")
    chosen = str(installed) if decision.accepted else options.model
    log(f"  model to use: {chosen}" + ("" if decision.accepted else f" (the refused model stays at {adapted_dir})"))
    rebuilt = _offer_index(options, repo, installed, decision.accepted, log, confirm)
    return AdaptResult(decision.accepted, chosen, str(adapted_dir), decision, report, out, base_scores,
                       adapted_scores, plan, seconds, rebuilt)


# -- data -----------------------------------------------------------------------------------------
def _check_pairs(repo: Path, pairs: RepositoryPairs, options: AdaptOptions) -> dict[str, RetrievalSet]:
    """The held-out sets, or a clear error when the repository cannot support an adaptation."""
    if pairs.walk.files == 0:
        raise UsageError(f"{repo}: no code files to learn from ({pairs.walk.line()}); pass the repository's root")
    documented = sum(1 for p in pairs.train if p.task == TEXT2CODE)
    units = sum(pairs.units.values())
    if documented < MIN_DOCUMENTED_PAIRS and not options.llm:
        raise UsageError(
            f"{repo}: {documented} documented function(s)/class(es) in its training files ({units} code units in "
            f"{pairs.walk.files} files); adapt needs at least {MIN_DOCUMENTED_PAIRS}: add docstrings or doc comments, "
            "or let an LLM write the queries: --llm MODEL --api-base URL")
    sets = pairs.heldout_sets(MIN_SET_QUERIES, MAX_SET_QUERIES, options.seed)
    if not any(name.endswith(("-doc2code", "-code2doc")) for name in sets):
        raise UsageError(
            f"{repo}: its held-out files ({len(pairs.heldout_files)}) hold fewer than {MIN_SET_QUERIES} documented "
            "units in every language, too few to tell whether an adapted model is better; raise "
            f"--heldout-percent (now {options.heldout_percent:g})")
    return sets


def _write_if_changed(path: Path, text: str) -> None:
    """Rewrite only what changed: the curriculum fingerprints its sources by content, but an unchanged
    file keeps its timestamp too."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def _write_data(folder: Path, pairs: RepositoryPairs, sets: dict[str, RetrievalSet]) -> Path:
    """``train.jsonl`` (st-code's row layout), one BEIR folder per held-out set, ``split.json``."""
    train = folder / "train.jsonl"
    _write_if_changed(train, "".join(json.dumps(sample_to_row(s), ensure_ascii=False) + "\n" for s in pairs.samples()))
    heldout = folder / "heldout"
    shutil.rmtree(heldout, ignore_errors=True)
    for name, rs in sets.items():
        write_beir(rs, heldout / name)
    _write_if_changed(folder / "split.json", json.dumps({"train_files": pairs.train_files,
                                                         "heldout_files": pairs.heldout_files,
                                                         "per_language": pairs.counts()}, indent=2))
    return train


def _texts_hashes(pairs: RepositoryPairs) -> set[str]:
    """What the training side holds, to keep it out of the general sets: each text, and each code's
    first three lines (the same function, cut or cleaned another way)."""
    found = set()
    for pair in pairs.train:
        for text in (pair.query, pair.positive):
            found.add(content_hash(text))
            found.add(_head(text))
    return found


def _head(text: str) -> str:
    return "head:" + content_hash("\n".join([ln for ln in text.splitlines() if ln.strip()][:3]))


def _general_sets(names: list[str], pairs: RepositoryPairs, log: Callable[[str], None]) -> dict[str, RetrievalSet]:
    """The built-in sets, less any query whose text or relevant document the repository trains on (a
    repository inside the standard library or site-packages would otherwise be scored on its own data)."""
    if not names:
        return {}
    from st_code.evaluation.runner import builtin_sets

    taken = _texts_hashes(pairs)
    sets = {}
    for name, rs in builtin_sets(list(names)).items():
        seen = {d for d, text in rs.corpus.items() if content_hash(text) in taken or _head(text) in taken}
        keep = [q for q, text in rs.queries.items() if q in rs.relevant and content_hash(text) not in taken
                and _head(text) not in taken and not rs.relevant[q] & seen]
        if len(keep) < len(rs.queries):
            log(f"  {name}: {len(rs.queries) - len(keep)} of {len(rs.queries)} queries left out (the repository "
                "trains on them)")
        if keep:
            sets[name] = RetrievalSet(name, rs.instruction, {q: rs.queries[q] for q in keep},
                                      {d: t for d, t in rs.corpus.items() if d not in seen},
                                      {q: rs.relevant[q] for q in keep}, rs.task)
    return sets


# -- the LLM path ------------------------------------------------------------------------------------
def _llm_queries(options: AdaptOptions, pairs: RepositoryPairs, folder: Path,
                 log: Callable[[str], None]) -> dict[str, str]:
    """Queries for the undocumented units of the training files, written by ``python -m data_gen`` with
    CodeR's task prompts; returns ``{source name: data_gen output folder}``."""
    corpus = folder / "corpus.jsonl"
    rows = [{"path": f"{u.path}:{u.start_line}-{u.end_line}", "code": u.text, "language": u.language}
            for u in pairs.undocumented_units][: options.llm_max_units]
    if not rows:
        log("  --llm: every training unit is documented; no queries to write")
        return {}
    _write_if_changed(corpus, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    command = [sys.executable, "-m", "data_gen", "all", "--corpus", str(corpus), "--out", str(folder / "data"),
               "--tasks", *LLM_TASKS, "--model", options.llm, "--max-samples", str(len(rows)),
               "--max-files-per-language", "all", "--num-negatives", "1", "--skip-difficulty",
               "--seed", str(options.seed)]
    if options.api_base:
        command += ["--api-base", *options.api_base]
    log(f"  --llm: writing queries for {len(rows)} undocumented unit(s) through data_gen ({options.llm}) ...")
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise UsageError(f"data_gen stopped (exit {done.returncode}) while writing queries with {options.llm}; its "
                         f"messages are above. Rerun the same command to go on (finished calls are journaled in "
                         f"{folder / 'data'}), or leave out --llm")
    return {"llm": str((folder / "data").resolve())}


# -- models, scores, plan, training -------------------------------------------------------------------
def _load(name: str, device: str | None) -> SentenceTransformer:
    model = st_code.load_model(name, device=device)
    if not model.get_embedding_dimension():
        raise UsageError(f"{name} is not a sentence embedder; train one with st-code train first")
    return model


def _pooling_of(model: SentenceTransformer) -> str:
    for module in model:
        if type(module).__name__ == "PMAPooling":
            return "pma"
        mode = getattr(module, "pooling_mode", None)
        if isinstance(mode, str):
            return {"lasttoken": "lasttoken", "cls": "cls"}.get(mode, "mean")
    return "mean"


def _scores(path: Path, model: SentenceTransformer, fingerprint: str, sets: dict[str, RetrievalSet],
            log: Callable[[str], None]) -> tuple[dict, float]:
    """Scores of ``model`` on ``sets``, cached by the model's weights and the sets' content."""
    from st_code.training.evaluate import evaluate_sets

    key = stable_hash({"model": fingerprint, "prompts": model.prompts,
                       "sets": {n: stable_hash(rs.to_json()) for n, rs in sets.items()}})
    if path.is_file():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            log(f"  scores of the same model on the same sets found in {path}")
            return cached["scores"], cached["seconds"]
    start = time.time()
    scores = evaluate_sets(model, sets, log=log)
    seconds = time.time() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({"key": key, "scores": scores, "seconds": seconds}, indent=2))
    return scores, seconds


def _plan(path: Path, options: AdaptOptions, pairs: RepositoryPairs, model: SentenceTransformer,
          model_id: str, train_file: Path,
          extra_sources: dict[str, str], eval_seconds: float, texts_evaluated: int, spent: float,
          log: Callable[[str], None]) -> TrainingPlan:
    """The step plan: read back when this data and these options made it before (a resumed run trains
    what it started), else measured now."""
    key = stable_hash({"model": model_id, "data": path_fingerprint(train_file), "llm": {k: path_fingerprint(v) for k, v in
                                                                     extra_sources.items()},
                       "options": {k: getattr(options, k) for k in ("model", "minutes", "learning_rate", "batch_size",
                                                                     "train_seq_length", "max_steps", "seed")}})
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            log(f"  the step plan of the first run of this command: {saved['plan']['max_steps']} steps")
            return TrainingPlan(**saved["plan"])
    samples = pairs.samples()
    per_step = seconds_per_step(model, samples, options.batch_size, min(options.train_seq_length,
                                                                        model.max_seq_length))
    rows = len(samples) + sum(_rows_in(Path(v)) for v in extra_sources.values())
    plan = plan_steps(options.minutes * 60, spent, per_step, eval_seconds, 2 * rows, texts_evaluated, rows,
                      options.batch_size)
    if options.max_steps is not None:
        plan.max_steps, plan.note = options.max_steps, f"--max-steps {options.max_steps} (the budget is not used)"
        plan.epochs = round(plan.max_steps * options.batch_size / max(rows, 1), 2)
    if plan.note:
        log(f"  {plan.note}")
    write_text_atomic(path, json.dumps({"key": key, "plan": plan.to_json()}, indent=2))
    return plan


def _rows_in(folder: Path) -> int:
    triplets = folder / "triplets.jsonl"
    return sum(1 for _ in triplets.open(encoding="utf-8")) if triplets.is_file() else 0


def _yaml(config: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


def _train(config: dict[str, Any], base_name: str, log: Callable[[str], None]) -> dict[str, Any]:
    from st_code.training import CurriculumRunner, config_from_dict
    from st_code.training.models import load_stage_model

    class AdaptRunner(CurriculumRunner):
        """The curriculum, starting from the base exactly as saved (its pooling head, prompts and
        normalisation), not from a backbone with a fresh pooling."""

        def build_initial_model(self) -> SentenceTransformer:
            return load_stage_model(base_name, self.config.model)

    return AdaptRunner(config_from_dict(config), log=log).run()


# -- the code-search index ----------------------------------------------------------------------------
def _find_index(options: AdaptOptions, repo: Path) -> Path | None:
    from st_code.search.index import read_manifest

    candidates = [Path(options.index)] if options.index else [repo / ".st-code-index", Path(".st-code-index")]
    for folder in candidates:
        if (folder / "manifest.json").is_file():
            try:
                manifest = read_manifest(folder)
            except (UsageError, MissingPathError):
                continue
            if options.index or Path(manifest.get("root", "")).resolve() == repo.resolve():
                return folder
    return None


def _offer_index(options: AdaptOptions, repo: Path, model: Path, accepted: bool, log: Callable[[str], None],
                 confirm: Callable[[str], bool] | None) -> bool:
    index = _find_index(options, repo) if accepted else None
    if index is None:
        return False
    command = f"st-code index {repo} --out {index} --model {model}"
    question = f"  the code-search index {index} was built with another model; rebuild it with the adapted one?"
    if options.rebuild_index is None:
        if confirm is None and sys.stdin.isatty():
            def confirm(text: str) -> bool:
                return input(text + " [y/N] ").strip().lower() in ("y", "yes")
        if confirm is None or not confirm(question):
            log(f"  to search with the adapted model, rebuild the index: {command}")
            return False
    elif not options.rebuild_index:
        log(f"  index left as it is; to rebuild it: {command}")
        return False
    from st_code.search import build_index

    log(f"  rebuilding {index} with {model} ...")
    build_index(repo, index, model=str(model), log=log)
    return True


__all__ = ["AdaptOptions", "AdaptResult", "GENERAL_SETS", "adapt_repository"]
