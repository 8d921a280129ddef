"""Shared pieces of the real-path tests: a small multi-language repository written by the test, the
data_gen command a user runs on it against the scripted OpenAI-compatible server, and a curriculum
config that reads data_gen's output folder the way the shipped configs do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Text2Code, Code2Text, Code2Code with a placeholder instruction, and the LLM-free task.
TASKS = ["Web Query to Code Retrieval", "Code Summary Retrieval", "Code Translation Retrieval",
         "Code Context Retrieval"]

_PY_FUNCTIONS = [
    ("load_records", "Read every JSON line of a file into a list of dicts.",
     "records = []\n    with open(path) as handle:\n        for line in handle:\n            if line.strip():\n"
     "                records.append(json.loads(line))\n    return records"),
    ("count_words", "Count how often each word occurs in a text.",
     "counts = {}\n    for word in path.split():\n        counts[word] = counts.get(word, 0) + 1\n"
     "    ordered = sorted(counts.items())\n    total = sum(counts.values())\n    return ordered, total"),
    ("parse_ini", "Parse key=value lines of a small configuration file.",
     "config = {}\n    for line in open(path):\n        line = line.strip()\n        if not line or line.startswith('#'):\n"
     "            continue\n        key, _, value = line.partition('=')\n        config[key.strip()] = value.strip()\n"
     "    return config"),
    ("file_digest", "Compute the SHA-256 digest of a file in chunks.",
     "import hashlib\n    digest = hashlib.sha256()\n    with open(path, 'rb') as handle:\n"
     "        for chunk in iter(lambda: handle.read(65536), b''):\n            digest.update(chunk)\n"
     "    return digest.hexdigest()"),
    ("tail_lines", "Return the last lines of a log file.",
     "from collections import deque\n    keep = deque(maxlen=10)\n    with open(path) as handle:\n"
     "        for line in handle:\n            keep.append(line.rstrip())\n    result = list(keep)\n    return result"),
    ("csv_columns", "Read a CSV file and return its columns by header name.",
     "import csv\n    columns = {}\n    with open(path) as handle:\n        for row in csv.DictReader(handle):\n"
     "            for key, value in row.items():\n                columns.setdefault(key, []).append(value)\n"
     "    return columns"),
    ("merge_sorted", "Merge two sorted lists into one sorted list.",
     "left, right = path\n    merged, i, j = [], 0, 0\n    while i < len(left) and j < len(right):\n"
     "        if left[i] <= right[j]:\n            merged.append(left[i]); i += 1\n"
     "        else:\n            merged.append(right[j]); j += 1\n    return merged + left[i:] + right[j:]"),
    ("slugify", "Turn a title into a lowercase URL slug.",
     "import re\n    text = path.lower().strip()\n    text = re.sub(r'[^a-z0-9]+', '-', text)\n"
     "    text = text.strip('-')\n    if not text:\n        text = 'untitled'\n    return text"),
]
_GO_FUNCTIONS = [
    ("Sum", "Sum adds the numbers of a slice.",
     "total := 0\n\tfor _, v := range values {\n\t\ttotal += v\n\t}\n\treturn total"),
    ("Max", "Max returns the largest number of a slice.",
     "best := values[0]\n\tfor _, v := range values[1:] {\n\t\tif v > best {\n\t\t\tbest = v\n\t\t}\n\t}\n\treturn best"),
    ("Mean", "Mean returns the average of a slice of numbers.",
     "total := 0\n\tfor _, v := range values {\n\t\ttotal += v\n\t}\n\tif len(values) == 0 {\n\t\treturn 0\n\t}\n"
     "\treturn total / len(values)"),
    ("CountEven", "CountEven counts the even numbers of a slice.",
     "n := 0\n\tfor _, v := range values {\n\t\tif v%2 == 0 {\n\t\t\tn++\n\t\t}\n\t}\n\treturn n"),
    ("Reverse", "Reverse returns the numbers of a slice in reverse order.",
     "out := make([]int, len(values))\n\tfor i, v := range values {\n\t\tout[len(values)-1-i] = v\n\t}\n"
     "\treturn len(out)"),
    ("Product", "Product multiplies the numbers of a slice.",
     "p := 1\n\tfor _, v := range values {\n\t\tp *= v\n\t}\n\treturn p"),
    ("Distinct", "Distinct counts the different numbers of a slice.",
     "seen := map[int]bool{}\n\tfor _, v := range values {\n\t\tseen[v] = true\n\t}\n\treturn len(seen)"),
    ("Range", "Range returns the spread between the largest and smallest number.",
     "lo, hi := values[0], values[0]\n\tfor _, v := range values {\n\t\tif v < lo {\n\t\t\tlo = v\n\t\t}\n"
     "\t\tif v > hi {\n\t\t\thi = v\n\t\t}\n\t}\n\treturn hi - lo"),
]


def write_repository(root: Path) -> Path:
    """A small Python + Go repository, one documented function per file."""
    repo = root / "repo"
    (repo / "pytools").mkdir(parents=True)
    (repo / "gotools").mkdir(parents=True)
    for name, doc, body in _PY_FUNCTIONS:
        (repo / "pytools" / f"{name}.py").write_text(f'import json\n\n\ndef {name}(path):\n    """{doc}"""\n    {body}\n')
    for name, doc, body in _GO_FUNCTIONS:
        (repo / "gotools" / f"{name.lower()}.go").write_text(
            f"package tools\n\n// {doc}\nfunc {name}(values []int) int {{\n\t{body}\n}}\n")
    return repo


def run_data_gen(api_base: str, corpus: Path, out: Path, max_samples: int = 6, num_negatives: int = 2) -> None:
    """``python -m data_gen all`` as a user types it."""
    command = [sys.executable, "-m", "data_gen", "all", "--corpus", str(corpus), "--tasks", *TASKS,
               "--languages", "Python", "Go", "--natural-languages", "English", "Chinese",
               "--model", "openai/stub", "--api-base", api_base, "--concurrency", "4",
               "--max-samples", str(max_samples), "--num-negatives", str(num_negatives), "--out", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def curriculum_config(base: str, coder_pile: Path, output_dir: Path, record_batches: int = 20) -> dict:
    """PMA + LoRA on a tiny decoder; data_gen's folder as a plain source (no task override: each row
    keeps its own); stage 1 without instructions, stages 2-3 with them, LoRA merged between stages,
    stage 3 kept to Table-17 medium/hard rows."""
    stage = {"datasets": ["coder_pile"], "max_steps": 3, "batch_size": 4, "mini_batch_size": 2, "num_negatives": 2,
             "learning_rate": 1e-3, "temperature": 0.05, "save_steps": 1, "merge_lora": True}
    return {
        "model": {"base": base, "pooling": "pma", "embedding_dim": 32, "lora": {"r": 4, "alpha": 8},
                  "max_seq_length": 64, "instruction_format": "bge", "instruction_set": "coder"},
        "data": {"offline": {"code_dirs": [str(Path(__file__).parent)], "max_pairs_per_task": 10,
                             "heldout_percent": 50, "include_package_docs": False},
                 "sources": {"coder_pile": {"path": str(coder_pile)}}},
        "stages": [
            {"name": "warm", **stage},
            {"name": "instructed", **stage, "instructions": True, "head_learning_rate": 1e-2},
            {"name": "hard", **stage, "instructions": True, "batch_size": 2, "merge_lora": False,
             "filters": [{"type": "difficulty", "keep": ["medium", "hard"], "unlabeled": "drop"}]},
        ],
        "evaluation": {"sets": ["stdlib-doc2code"], "max_queries": 8, "batch_size": 8},
        "output_dir": str(output_dir),
        "logging_steps": 1,
        "record_batches": record_batches,
    }
