"""The speed benchmarks count what they say, and the GPU check runs end to end (here on the CPU, down
the same script a rented GPU machine runs; the GPU itself cannot exist here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import meters  # noqa: E402

from tests.small_repos import java_class  # noqa: E402


@pytest.mark.parametrize("shape, total, without_embedding", [
    ("qwen2.5-coder-0.5b", 494_032_768, 357_898_112),  # the model card's 0.49B / 0.36B
    ("qwen2.5-coder-1.5b", 1_543_714_304, 1_310_340_608),  # 1.54B / 1.31B
])
def test_random_shapes_have_the_published_parameter_counts(shape, total, without_embedding):
    from transformers import Qwen2Model

    from st_code.testing import random_qwen2_config

    with torch.device("meta"):
        model = Qwen2Model(random_qwen2_config(shape))
    counted = sum(p.numel() for p in model.parameters())
    assert counted == total
    assert counted - model.embed_tokens.weight.numel() == without_embedding


def test_unknown_shape_names_the_known_ones():
    from st_code.testing import random_qwen2_config

    with pytest.raises(ValueError, match="qwen2.5-coder-0.5b"):
        random_qwen2_config("qwen9-huge")


def test_busy_time_counts_overlapping_kernels_once():
    assert meters.busy_time([]) == 0
    # two streams overlapping on [2, 3], one kernel inside another, a gap from 6 to 8
    assert meters.busy_time([(0, 3), (2, 5), (3.5, 4), (8, 9)]) == pytest.approx(6)


def test_flop_parameters_leave_out_the_input_embedding(tiny_qwen_path):
    import st_code

    model = st_code.build_model(tiny_qwen_path, pooling="pma", lora=True)
    everything = sum(p.numel() for p in model.parameters())
    embedding = model[0].auto_model.get_input_embeddings().weight.numel()
    assert meters.flop_parameters(model) == everything - embedding
    assert embedding > 0


def test_packed_shapes_are_counted_with_the_losss_own_plan(tiny_qwen_path):
    """benchmarks/packed_shapes.py: the distinct shapes the loss's plan packs, exact and rounded; rounded, a
    handful recur (every width a multiple), and the padding share counts the filler."""
    import packed_shapes

    import st_code
    from st_code.training.losses import LengthSortedCachedMNRL

    model = st_code.build_model(tiny_qwen_path, device="cpu", max_seq_length=128)
    rows = [(f"docstring {i} " * (1 + i % 5), "def f():\n    return x\n" * (1 + i % 11), "y = 1\n" * (1 + i % 7))
            for i in range(40)]
    steps = [[model.preprocess([rows[i][c] for i in indices]) for c in range(3)]
             for indices in packed_shapes.batches(len(rows), 8, 12)]
    assert all(len(indices) == 8 for indices in packed_shapes.batches(40, 8, 12))  # 5 a permutation, 12 in all
    figures = {}
    for name, multiple in packed_shapes.parse_multiples("none,4x64"):
        loss = LengthSortedCachedMNRL(model, pack=True, mini_batch_size=8, mini_batch_num_tokens=1024,
                                      shape_multiple=multiple)
        figures[name] = packed_shapes.measure(loss, steps, settle=4)
    assert figures["4x64"]["shapes"] < figures["none"]["shapes"]
    assert figures["4x64"]["new_after_settling"] <= figures["4x64"]["shapes"]
    assert 0 <= figures["none"]["padding_share"] < figures["4x64"]["padding_share"] < 1
    assert figures["none"]["mini_batches_per_step"] >= 1
    with pytest.raises(ValueError, match="ROWSxWIDTH items"):
        packed_shapes.parse_multiples("8by128")


@pytest.mark.slow
def test_gpu_training_check_script_runs_on_the_cpu(tmp_path, tiny_qwen_path):
    """benchmarks/gpu_training_check.sh with a tiny decoder: every run finishes, figures and loss curves
    land in $OUT, sorting cuts the padding, the ordering check sees the same losses (a shorter run on the
    full run's learning-rate schedule), the step anatomy times the GPU's cut and packing, and an extra
    (one setting changed) trains from the same first loss."""
    pairs = tmp_path / "pairs.json"
    meters.load_or_make_pairs(24, pairs)
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "DEVICE": "cpu", "MODEL": tiny_qwen_path,
           "STEPS": "3", "PREVIOUS_STEPS": "2", "STEPS_FOR": "unsorted=2", "BATCH": "8", "PAIRS": "24",
           "PAIRS_FILE": str(pairs), "ENCODE_TEXTS": "16", "WHEELS": str(tmp_path / "no-wheels"),
           "ANATOMY_SECONDS": "300", "ANATOMY_ARGS": "--shares 1,0.001 --repeats 1 --max-seq-length 128 --stock "
                                                     "--cpu-bf16 --compile eager",
           "EXTRAS": "rounded,compile", "COMPILE_BACKEND": "eager", "EXTRA_STEPS": "2"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_training_check.sh")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = json.loads((tmp_path / "out" / "train.json").read_text())
    assert set(runs) == {"now", "packed", "previous", "unsorted"}
    steps = {"now": 3, "packed": 3, "previous": 2, "unsorted": 2}
    for kind, results in runs.items():
        assert len(results[0]["losses"]) == steps[kind] and results[0]["timed_steps"] == steps[kind] - 1, kind
        # every run on the 3-step schedule, however many steps it ran: comparable step by step
        assert results[0]["learning_rates"] == runs["now"][0]["learning_rates"][:steps[kind]], kind
        # GradCache's replay of each mini-batch gives its first pass's embeddings (dropout masks restored)
        assert results[0]["replays_checked"] > 0 and results[0]["replay_max_difference"] == 0, kind
    assert runs["now"][0]["padding_share"] < runs["previous"][0]["padding_share"]
    now, unsorted = runs["now"][0]["losses"], runs["unsorted"][0]["losses"]
    assert now[0] == pytest.approx(unsorted[0], abs=1e-3)  # the same weights and batch: the same loss
    assert now[1] == pytest.approx(unsorted[1], abs=1e-2)  # after one update: LoRA dropout's noise only
    packed = runs["packed"][0]
    assert packed["losses"][0] == pytest.approx(now[0], abs=1e-3)  # packing changes no maths either
    assert packed["padding_share"] < runs["previous"][0]["padding_share"]
    log = (tmp_path / "out" / "train.log").read_text()
    assert "ratio now/previous" in log and "ordering check over 2 steps" in log and "packing check over 3" in log
    assert "lora (merged)" in (tmp_path / "out" / "encode.log").read_text()
    assert "torch" in (tmp_path / "out" / "environment.txt").read_text()
    # the step anatomy (step_anatomy.py): every cut timed, the cheaper a mini-batch the more of them, the
    # fixed cost of a mini-batch in token slots; the padding rule is left out (on a GPU it would take the run)
    anatomy = json.loads((tmp_path / "out" / "anatomy.json").read_text())
    assert set(anatomy) == {"overhead=1", "overhead=0.001", "packed", "packed per column", "stock", "fixed_cost",
                            "overhead=1, LoRA inputs not cast", "packed, compiled"}
    # the packed cut again with its layers compiled (TorchDynamo's eager backend here: inductor takes minutes)
    compiled = anatomy["packed, compiled"]
    assert compiled["backend"] == "eager" and compiled["seconds"] > 0 and compiled["compile_seconds"] > 0
    assert compiled["cuda_graphs_recorded"] == 0  # counted (reduce-overhead on a GPU records them)
    # packed: no more mini-batches than the budget's cheapest cut, and far less of its padding; the three
    # columns packed together need fewer mini-batches than one or more per column
    assert anatomy["packed"]["mini_batches"] <= anatomy["overhead=1"]["mini_batches"]
    assert anatomy["packed"]["padding_share"] < anatomy["overhead=1"]["padding_share"] / 2
    assert anatomy["packed"]["mini_batches"] < anatomy["packed per column"]["mini_batches"]
    assert anatomy["packed per column"]["mini_batches"] >= 3
    assert anatomy["overhead=1, LoRA inputs not cast"]["cast_seconds"] > 0
    assert anatomy["overhead=1"]["mini_batches"] <= anatomy["overhead=0.001"]["mini_batches"]
    assert anatomy["overhead=1"]["padding_share"] >= anatomy["overhead=0.001"]["padding_share"]
    assert anatomy["stock"]["mini_batches"] == 3 and anatomy["stock"]["padding_share"] > 0.3
    assert all(r["seconds"] > 0 for name, r in anatomy.items() if name != "fixed_cost")
    assert anatomy["fixed_cost"]["slots_worth_one_mini_batch"] > 0
    # each extra trains 'packed' (what a GPU trains) with one setting changed (rounded: its shapes rounded up;
    # compile), which does not change the maths of the first step; their figures in one file, keyed by the extra
    extras = json.loads((tmp_path / "out" / "extras.json").read_text())
    assert set(extras) == {"rounded", "compile"}
    for result in (extras["rounded"]["packed"][0], extras["compile"]["packed"][0]):
        assert result["losses"][0] == pytest.approx(now[0], abs=1e-3)
        assert result["replays_checked"] > 0 and result["replay_max_difference"] == 0
        assert result["packed_shapes"] >= 1  # counted: with CUDA graphs each new one records
    extras_log = (tmp_path / "out" / "extras.log").read_text()
    assert "extra rounded (packed with packed_shape_multiple: [8, 128])" in extras_log
    assert "shapes rounded up to 8 rows x 128 tokens" in extras_log
    assert "extra compile (packed with {compile: true, compile_backend: eager})" in extras_log
    # a compiled run tells its compiling steps from its steady state: the graphs it compiled, the median step;
    # CUDA graphs (compile_mode: reduce-overhead, a GPU's) are counted too: none recorded here
    compiled_run = extras["compile"]["packed"][0]
    assert compiled_run["graphs_compiled"] > 0 and compiled_run["median_step_seconds"] > 0
    # every timed step's own seconds, so that runs of different lengths compare step by step
    assert len(compiled_run["step_seconds"]) == compiled_run["timed_steps"]
    assert sum(compiled_run["step_seconds"]) == pytest.approx(compiled_run["seconds"])
    assert compiled_run["cuda_graphs_recorded"] == 0
    assert all(r[0]["graphs_compiled"] == 0 for r in runs.values())
    assert len(list((tmp_path / "out").iterdir())) <= 8  # what the device tool brings back


def _js_module(name: str, verbs: list[str]) -> str:
    return "\n".join(
        f"/**\n * {verb.capitalize()} every {name} entry found in the registry cache.\n * @param {{string}} key\n */\n"
        f"function {verb}{name.capitalize()} (key, opts) {{\n  const found = lookup(key, {i})\n"
        f"  return found.map(entry => entry.{verb})\n}}\n" for i, verb in enumerate(verbs))


def _rustdoc_page(name: str, verbs: list[str]) -> str:
    """A rustdoc source page as rust-docs ships it: numbered lines, highlighting spans, HTML escapes."""
    lines = []
    for i, verb in enumerate(verbs):
        lines += [f'<span class="doccomment">/// {verb.capitalize()}s every {name} entry &amp; its children in the arena.</span>',
                  f'<span class="kw">pub fn </span>{verb}_{name}(limit: usize) -&gt; Vec&lt;u8&gt; {{',
                  f"    <span class=\"kw\">let </span>total = limit * {i + 2};",
                  f"    <span class=\"kw\">let </span>more = total + {i};", "    vec![0; more]", "}"]
    numbered = "\n".join(f"<a href=#{n} id={n} data-nosnippet>{n}</a>{line}" for n, line in enumerate(lines, 1))
    return (f'<html><body><div class="example-wrap"><pre class="rust"><code>{numbered}</code></pre></div>'
            '<pre class="rust"><code>not this block</code></pre></body></html>')


def test_unseen_language_sets_hold_out_every_file_and_score_each_model(tmp_path, minilm_path):
    """benchmarks/unseen_languages.py: Java from a JDK's src.zip (its held-out packages only), JavaScript from
    a node_modules folder (scoped packages too; bundled node_modules below it are skipped) and Rust from
    rustdoc source pages become doc -> code, code -> doc and code-context sets with every file held out,
    scored per model."""
    import zipfile

    import unseen_languages

    verbs = ["copy", "merge", "split", "sort", "count", "flush", "parse", "print", "clear", "shrink", "grow", "scan"]
    jdk = tmp_path / "src.zip"
    with zipfile.ZipFile(jdk, "w") as archive:
        for i, name in enumerate(["Ledger", "Roster", "Journal"]):
            archive.writestr(f"java.base/java/util/{name}.java", java_class(name, [verbs[(i * 4 + k) % 12] for k in range(6)]))
        archive.writestr("java.desktop/javax/swing/Widget.java", java_class("Widget", verbs))  # not a chosen package
    modules = tmp_path / "node_modules"
    for i, package in enumerate(["cacache", "@npmcli/config", "glob"]):
        (modules / package / "lib").mkdir(parents=True)
        (modules / package / "lib" / "index.js").write_text(_js_module(package.split("/")[-1], verbs[i * 4:i * 4 + 4]))
    (modules / "glob" / "node_modules" / "minimatch").mkdir(parents=True)  # a package's own bundled copy: skipped
    (modules / "glob" / "node_modules" / "minimatch" / "index.js").write_text(_js_module("minimatch", verbs))

    docs = tmp_path / "html" / "src"
    for i, (crate, name) in enumerate([("core", "slab"), ("alloc", "heap"), ("std", "arena")]):
        (docs / crate / "mem").mkdir(parents=True)
        (docs / crate / "mem" / f"{name}.rs.html").write_text(_rustdoc_page(name, verbs[i * 4:i * 4 + 4]))
    (docs / "test").mkdir()
    (docs / "test" / "bench.rs.html").write_text(_rustdoc_page("bench", verbs))  # not a chosen crate

    result = unseen_languages.main(["--models", "base", minilm_path, "--jdk-src", str(jdk),
                                    "--node-modules", str(modules), "--rust-docs", str(docs),
                                    "--json", str(tmp_path / "scores.json")])
    counts, scores = result["counts"], result["scores"]
    assert counts["Java"]["files"] == 3 and counts["JavaScript"]["files"] == 3  # Widget.java was not extracted
    assert counts["Rust"]["files"] == 3 and counts["Rust"]["unseen-rust-doc2code"] == 12  # test/ was not read
    tree = unseen_languages.rust_tree(tmp_path / "rust", docs)
    code = (tree / "core" / "mem" / "slab.rs").read_text()
    assert code.startswith("/// Copys every slab entry & its children in the arena.\npub fn copy_slab(limit: usize) -> Vec<u8> {")
    assert "<" not in code.replace("Vec<u8>", "") and "not this block" not in code
    assert counts["Java"]["train_doc2code"] == 0 and counts["JavaScript"]["train_code2doc"] == 0
    assert counts["Java"]["unseen-java-doc2code"] == 18 and counts["JavaScript"]["unseen-javascript-code2doc"] == 12
    names = {f"unseen-{language}-{suffix}" for language in ("java", "javascript", "rust")
             for suffix in ("doc2code", "code2doc")}
    assert names <= set(scores["base"])
    assert all(0 < value <= 100 for value in scores["base"].values())
    assert scores[minilm_path] == scores["base"]  # the same model, the same numbers
    assert json.loads((tmp_path / "scores.json").read_text())["scores"] == scores
    with pytest.raises(SystemExit, match="runs/annealing/final"):
        unseen_languages.main(["--models", "runs/no-such-run/final", "--jdk-src", str(jdk)])
    with pytest.raises(SystemExit, match="no such file"):
        unseen_languages.main(["--jdk-src", str(tmp_path / "missing.zip")])
    with pytest.raises(SystemExit, match="rust-docs"):
        unseen_languages.main(["--rust-docs", str(tmp_path / "missing")])


def test_scale_rehearsal_runs_a_shipped_configs_data_path(tmp_path):
    """The rehearsal end to end at a small size: every phase timed, codexembed's mix repeats the small
    set (and nothing is cut), one optimizer step per stage, mining and the filter at two sizes."""
    out = tmp_path / "rows.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale_rehearsal.py"), "--configs", "codexembed-2stage",
                    "--rows", "3000", "--beir-rows", "1000", "--other-rows", "300", "--small-rows", "100",
                    "--search-rows", "600", "--workdir", str(tmp_path / "work"), "--json", str(out)],
                   check=True, capture_output=True, text=True, timeout=600,
                   env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    rows = json.loads(out.read_text())
    phases = [(r["config"], r["phase"]) for r in rows]
    assert ("codexembed-2stage", "stage 'text+code': 1 step") in phases and ("search", "embedder_topk k=3, 600 rows") in phases
    assert all(r["seconds"] >= 0 and r["peak_gb"] > 0 for r in rows)
    plan = next(r["plan"] for r in rows if r["phase"] == "stage 'text+code': rows + plan")
    assert any(line.strip().startswith("trans_dl: 100 rows x ") and "shared by csn+apps" in line for line in plan)
    assert any(line.strip().startswith("csn: 3000 rows x 1.00 repeats") for line in plan)


def test_code_search_suite_scores_as_the_semble_suite_does(tmp_path, minilm_path):
    """The suite's NDCG@10 (binary gains at each target's first covering rank, ideal over the indexed
    targets), its path and span match, and a run over a tiny suite in its format, BM25 beside st-code,
    each mode also followed by a cross-encoder (MiniLM with a fresh head: its order, not its quality)."""
    import math

    import code_search_suite as suite

    units = [{"path": "pkg/a.go", "start_line": 1, "end_line": 10}, {"path": "pkg/b.go", "start_line": 1, "end_line": 5},
             {"path": "pkg/b.go", "start_line": 20, "end_line": 30}]
    assert suite.covers(units[0], ("a.go", None, None)) and not suite.covers(units[0], ("ka.go", None, None))
    assert suite.covers(units[2], ("b.go", 25, 40)) and not suite.covers(units[1], ("b.go", 6, 9))
    targets = [("a.go", None, None), ("b.go", 21, 22), ("missing.go", None, None)]  # the last is not indexed
    ranked = [units[1], units[0], units[2]]
    want = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert suite.ndcg_at_10(ranked, targets, units) == pytest.approx(want)
    assert suite.code_tokens("parseHTTPHeader read_file") == ["parsehttpheader", "parse", "http", "header",
                                                             "read_file", "read", "file"]
    repo = tmp_path / "checkouts" / "tiny" / "src"
    repo.mkdir(parents=True)
    (repo / "router.py").write_text("def route_request(path):\n    \"\"\"Match a URL path to its handler.\"\"\"\n"
                                    "    return handlers[path]\n")
    (repo / "gzip.py").write_text("def compress_body(data):\n    \"\"\"Gzip a response body.\"\"\"\n"
                                  "    return zlib.compress(data)\n")
    (tmp_path / "suite" / "annotations").mkdir(parents=True)
    (tmp_path / "suite" / "repos.json").write_text(json.dumps([{"name": "tiny", "language": "python", "url": "-",
                                                                 "revision": "-", "benchmark_root": "src"}]))
    (tmp_path / "suite" / "annotations" / "tiny.json").write_text(json.dumps([
        {"query": "gzip response compression", "relevant": ["gzip.py"], "secondary": []},
        {"query": "route_request", "relevant": [{"path": "router.py", "start_line": 1, "end_line": 3}]}]))
    from sentence_transformers import CrossEncoder

    CrossEncoder(minilm_path, num_labels=1, device="cpu").save(str(tmp_path / "reranker"))
    out = tmp_path / "scores.json"
    assert suite.main(["--suite", str(tmp_path / "suite"), "--checkouts", str(tmp_path / "checkouts"),
                       "--json", str(out), "--rerank", str(tmp_path / "reranker")]) == 0
    result = json.loads(out.read_text())[0]
    assert set(result["ms_per_query"]) == {"hybrid", "dense", "hybrid+rerank", "dense+rerank"}
    assert all("hybrid+rerank" in q for q in result["queries"])
    assert result["units"] == 2 and [q["category"] for q in result["queries"]] == ["semantic", "symbol"]
    assert result["queries"][1]["bm25"] == 1.0  # the name itself: BM25 ranks its definition first


def test_index_speed_prints_units_per_second_side_by_side(tmp_path, minilm_path, capsys):
    import index_speed

    from tests.test_code_search import write_repo

    repo = write_repo(tmp_path / "repo")
    assert index_speed.main([str(repo), "--models", minilm_path, minilm_path]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(rows) == 2 and rows[0][-1] == "1.00" and int(rows[1][1]) == int(rows[0][1]) > 0


@pytest.mark.slow
def test_gpu_check_compares_attention_settings_side_by_side(tmp_path, tiny_qwen_path):
    """CHECK=attention: the packed run once per attention setting and the table against the first; a
    setting that cannot run here (varlen: CUDA only) is named as missing and fails the exit status."""
    pairs = tmp_path / "pairs.json"
    meters.load_or_make_pairs(24, pairs)
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "DEVICE": "cpu", "MODEL": tiny_qwen_path,
           "BATCH": "8", "PAIRS": "24", "PAIRS_FILE": str(pairs), "WHEELS": str(tmp_path / "no-wheels"),
           "CHECK": "attention", "ATTENTION": "sdpa,varlen", "ATTENTION_STEPS": "2"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_training_check.sh")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode != 0  # varlen failed here, and the exit status says so
    runs = json.loads((tmp_path / "out" / "attention.json").read_text())
    assert set(runs) == {"sdpa"} and len(runs["sdpa"]["packed"][0]["losses"]) == 2
    log = (tmp_path / "out" / "attention.log").read_text()
    assert "attention varlen (packed with {model: {attn_implementation: varlen, liger_kernel: false}})" in log
    assert "ratios and loss gaps against sdpa" in log and "no packed run finished for: varlen" in log
    assert not (tmp_path / "out" / "train.json").exists()  # the attention check runs nothing else


def test_the_attention_table_compares_each_setting_with_the_first():
    import attention_comparison

    def run(seconds, losses, mfu=None):
        return {"packed": [{"seconds_per_step": seconds, "samples_per_s": 64 / seconds,
                            "real_tokens_per_s": 1e4 / seconds, "losses": losses, "mfu": mfu, "peak_memory_gb": 10.0}]}

    lines = attention_comparison.comparison_lines(
        {"sdpa": run(2.0, [3.0, 2.5, 2.0], 0.076), "varlen": run(1.0, [3.0, 2.52, 1.99], 0.152),
         "flex": {"packed": []}}, asked=["sdpa", "varlen", "flex", "varlen+liger"])
    varlen = next(line for line in lines if line.startswith("varlen "))
    assert "15.2%" in varlen and "0.50x" in varlen and "2.00x" in varlen and varlen.endswith("0.0200")
    assert lines[-1] == "no packed run finished for: flex, varlen+liger (see attention.log)"
