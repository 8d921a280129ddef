"""The README.md every saved model carries: what a reader of a model page needs.

Written on every ``model.save`` (``CodeSentenceTransformer._create_model_card``). What the model
itself knows goes in always: base model, pooling, output dimension, maximum length, how to load it
(plain ``SentenceTransformer`` or ``trust_remote_code=True``), a usage snippet that runs as written,
and the instruction table (which ``prompt_name`` to pass for which task). What only the training run
knows comes from ``model.card_details`` (set by the curriculum): the stages with their data and
hyperparameters, the evaluation table and the report's plots (copied into the folder), licence and
languages.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from st_code.reporting import markdown_table

#: What a card says of each pooling module.
POOLING_NAMES = {
    "lasttoken": "last token (EOS)", "mean": "mean of the token embeddings", "cls": "CLS token",
    "max": "max over tokens", "PMAPooling": "PMA (Pooling by Multihead Attention, C2LLM)",
}
SNIPPET_PROMPTS = ("CodeSearchNetRetrieval-query", "CosQA-query", "SyntheticText2SQL-query")
EXAMPLE_QUERY = "read a JSON file and return its content as a dict"
EXAMPLE_DOCUMENTS = ["def load(path):\n    with open(path) as f:\n        return json.load(f)",
                     "def add(a, b):\n    return a + b"]


def describe(model: Any) -> dict[str, Any]:
    """What a saved model is, read off its modules: base, pooling, dimension, length, loader."""
    from st_code.modules.saved_types import saved_type

    modules = list(model)
    backbone = modules[0]
    config = getattr(getattr(backbone, "auto_model", None), "config", None)
    pooling = modules[1] if len(modules) > 1 else None
    if pooling is None:
        pooling_name = "none"
    elif type(pooling).__name__ == "Pooling":
        pooling_name = POOLING_NAMES.get(pooling.pooling_mode, pooling.pooling_mode)
    else:
        pooling_name = POOLING_NAMES.get(type(pooling).__name__, type(pooling).__name__)
    types = [saved_type(m) or f"{type(m).__module__}.{type(m).__name__}" for m in modules]
    return {
        "base": getattr(config, "_name_or_path", None) or "unknown",
        "architecture": getattr(config, "model_type", "unknown"),
        "pooling": pooling_name,
        "dimension": model.get_embedding_dimension(),
        "max_seq_length": model.max_seq_length,
        "normalized": any(type(m).__name__ == "Normalize" for m in modules),
        "bidirectional": any("Bidirectional" in t for t in types),
        "custom_code": any(not t.startswith("sentence_transformers.") for t in types),
    }


def _front_matter(info: dict[str, Any], details: dict[str, Any]) -> str:
    lines = ["---", "library_name: sentence-transformers", "pipeline_tag: sentence-similarity",
             "tags:", "- sentence-transformers", "- feature-extraction", "- code-retrieval", "- st-code"]
    base = details.get("base") or info["base"]
    if base and not Path(base).is_absolute() and base != "unknown":
        lines.append(f"base_model: {base}")
    if details.get("license"):
        lines.append(f"license: {details['license']}")
    if details.get("languages"):
        lines += ["language:"] + [f"- {language}" for language in details["languages"]]
    lines.append("---")
    return "\n".join(lines)


def usage_snippet(model_id: str, info: dict[str, Any], prompts: dict[str, str]) -> str:
    """Python that loads the model and ranks two snippets for a query, as written."""
    trust = ", trust_remote_code=True" if info["custom_code"] else ""
    # a text-to-code task's instruction suits the example; encode_query falls back to the "query" prompt
    prompt = next((name for name in SNIPPET_PROMPTS if name in prompts), None)
    prompt_arg = f', prompt_name="{prompt}"' if prompt else ""
    return "\n".join([
        "from sentence_transformers import SentenceTransformer",
        "",
        f'model = SentenceTransformer("{model_id}"{trust})',
        f"query = model.encode_query([{EXAMPLE_QUERY!r}]{prompt_arg})",
        f"documents = model.encode_document({EXAMPLE_DOCUMENTS!r})",
        "print(model.similarity(query, documents))  # the first document should score higher",
    ])


def _instruction_table(prompts: dict[str, str]) -> str:
    queries = sorted(name for name in prompts if name.endswith("-query"))
    if not prompts:
        return "The model was trained without instructions: encode queries and documents as they are.\n"
    lines = ["Pass `prompt_name` to `encode_query` / `encode_document`; `mteb.evaluate` picks the task's "
             "prompt by itself. `query` is the default for queries.", "",
             "| task | query `prompt_name` | query instruction | document prompt |", "|---|---|---|---|"]
    for name in queries + (["query"] if "query" in prompts else []):
        task = name[: -len("-query")] if name.endswith("-query") else "(default)"
        document = prompts.get(f"{task}-document") or prompts.get("document") or ""
        lines.append(f"| {task} | `{name}` | {_cell(prompts[name])} | {_cell(document)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("\n", "\\n").replace("|", "\\|").strip()


def _stage_table(stages: list[dict[str, Any]]) -> str:
    columns = ["name", "datasets", "steps", "learning_rate", "batch_size", "num_negatives", "temperature",
               "instructions", "max_seq_length", "lora", "merge_lora", "matryoshka_dims"]
    present = [c for c in columns if any(c in stage for stage in stages)]
    lines = ["| " + " | ".join(present) + " |", "|" + "---|" * len(present)]
    for stage in stages:
        lines.append("| " + " | ".join(_cell(_show(stage.get(c, ""))) for c in present) + " |")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_card(model: Any, folder: Path, details: dict[str, Any] | None = None) -> str:
    """The card's markdown; ``details`` as the curriculum fills it (all keys optional): ``model_id``,
    ``base``, ``license``, ``languages``, ``recipe``, ``stages`` (dicts), ``data`` (lines),
    ``scores`` (``{row: {set: {metric: value}}}``), ``metric``, ``plots`` (files to copy in)."""
    details = details or {}
    info = describe(model)
    model_id = details.get("model_id") or str(folder.resolve())
    prompts = dict(model.prompts or {})
    name = details.get("name") or (model_id.rsplit("/", 1)[-1] if details.get("model_id") else folder.name)
    base = details.get("base") or info["base"]
    loads = ("`SentenceTransformer(id, trust_remote_code=True)`: the folder carries `modeling_st_code.py` "
             "(PyTorch only, no st-code needed)" if info["custom_code"]
             else "`SentenceTransformer(id)`: sentence-transformers' own modules, no custom code")
    parts = [
        _front_matter(info, details), "",
        f"# {name}", "",
        f"A code retrieval embedding model trained with st-code from `{base}`: queries in natural language or "
        f"code, documents in code or text, {info['dimension']}-dimensional embeddings compared by cosine "
        "similarity.", "",
        "## Use", "", "```python", usage_snippet(model_id, info, prompts), "```", "",
        "## Model", "",
        "| | |", "|---|---|",
        f"| base model | `{base}` ({info['architecture']}) |",
        f"| pooling | {info['pooling']} |",
        f"| output dimension | {info['dimension']} |",
        f"| maximum length | {info['max_seq_length']} tokens |",
        f"| normalized | {'yes (cosine = dot product)' if info['normalized'] else 'no'} |",
        f"| attention | {'bidirectional' if info['bidirectional'] else 'as the base model'} |",
        f"| loads with | {loads} |",
    ]
    matryoshka = getattr(model, "matryoshka_dims", None) or details.get("matryoshka_dims")
    if matryoshka:
        dims = ", ".join(str(d) for d in matryoshka)
        parts.append(f"| Matryoshka dimensions | {dims} (load with `truncate_dim=`; compare with cosine similarity or pass `normalize_embeddings=True`) |")
    parts += ["", "## Instructions", "", _instruction_table(prompts)]
    if details.get("stages"):
        parts += ["## Training", ""]
        if details.get("recipe"):
            parts += [f"Trained with `{details['recipe']}`.", ""]
        parts += [_stage_table(details["stages"]), ""]
        if details.get("data"):
            parts += ["Data:", ""] + [f"- {line}" for line in details["data"]] + [""]
    if details.get("scores"):
        metric = details.get("metric", "ndcg_at_10")
        parts += ["## Evaluation", "", f"{metric} x100 on the run's held-out sets, after each stage:", "",
                  markdown_table(details["scores"], metric), ""]
        for plot in details.get("plots") or []:
            plot = Path(plot)
            if plot.is_file():
                (folder / "assets").mkdir(exist_ok=True)
                shutil.copyfile(plot, folder / "assets" / plot.name)
                parts += [f"![{plot.stem}](assets/{plot.name})", ""]
    parts += ["## Licence", "",
              f"{details['license']}; the base model's licence applies too." if details.get("license")
              else "Not stated: the base model's licence applies.", ""]
    return "\n".join(parts)


def write_model_card(model: Any, folder: Path, details: dict[str, Any] | None = None) -> Path:
    """Write ``README.md`` into a saved model folder (and the plots it shows into ``assets/``)."""
    path = folder / "README.md"
    path.write_text(render_card(model, folder, details), encoding="utf-8")
    return path


__all__ = ["describe", "render_card", "usage_snippet", "write_model_card"]
