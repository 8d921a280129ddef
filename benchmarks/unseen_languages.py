"""Does a model trained by the offline default carry over to code it never saw, in languages it never saw?

    python benchmarks/unseen_languages.py [--models MODEL ...] [--max-queries 400] [--json out.json]

The offline default trains on Python, on the C, C++ and Fortran that installed packages ship, and on
Java from part of the JDK's own sources; the retrieval sets a trained model is judged on elsewhere come in
other languages too. This builds held-out sets, with the same LLM-free tasks and the same code as ``st-code
adapt`` (st_code.data.repo_pairs: doc summary -> code, code -> summary, first part -> rest), from source
trees found on this machine kind (nothing downloaded), and scores each model on them with mteb:

* ``java``: the JDK's held-out packages (``lib/src.zip``; java.util, java.io, java.net, java.time and
  java.text of java.base: :data:`st_code.data.jdk_sources.HELDOUT_PACKAGES`, which no config trains on;
  the default trains on other packages), Javadoc on nearly every public method;
* ``javascript``: the packages npm bundles (``node_modules`` of the system's npm), JSDoc comments; a
  language the default never trains on;
* ``rust``: the Rust standard library (core, alloc, std) as rustup's ``rust-docs`` component ships its
  source pages (``share/doc/rust/html/src``; the code is taken back out of the HTML), ``///`` comments;
  a language the default never trains on.

Every file is held out (none of it is training data for anything), so every documented unit is a query;
each set keeps a seeded sample of ``--max-queries``. Models: any folder or name ``st_code.load_model``
takes; the default compares the packaged all-MiniLM-L6-v2 with ``runs/annealing/final``, which
``python recipes/annealing.py`` writes.
"""

from __future__ import annotations

import argparse
import json
import html
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUFFIXES = ("doc2code", "code2doc", "code-context")


def java_tree(folder: Path, source: Path | None) -> Path | None:
    """The JDK's held-out packages (:data:`st_code.data.jdk_sources.HELDOUT_PACKAGES`, never trained on)
    extracted into ``folder``."""
    from st_code.data.jdk_sources import HELDOUT_PACKAGES, extract_packages

    if source is None:
        return None
    extract_packages(source, HELDOUT_PACKAGES, folder)
    return folder if folder.exists() else None


def npm_modules() -> Path | None:
    """The ``node_modules`` folder of the system's npm (the packages it bundles), or None."""
    npm = shutil.which("npm")
    roots = []
    if npm:
        try:
            prefix = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            prefix = ""
        if prefix:
            roots.append(Path(prefix) / "npm" / "node_modules")
    roots.append(Path("/usr/lib/node_modules/npm/node_modules"))
    return next((r for r in roots if r.is_dir()), None)


#: The crates of the Rust standard library whose source pages become the Rust sets.
RUST_CRATES = ("core", "alloc", "std")
_RUSTDOC_CODE = re.compile(r'<pre class="rust"><code>(.*?)</code></pre>', re.S)
_RUSTDOC_LINE_NUMBER = re.compile(r"<a href=#\d+ id=\d+ data-nosnippet>\d+</a>")


def rust_docs() -> Path | None:
    """The ``src`` folder of rustup's rust-docs (the standard library's source pages), or None."""
    roots = []
    rustc = shutil.which("rustc")
    if rustc:
        try:
            sysroot = subprocess.run([rustc, "--print", "sysroot"], capture_output=True, text=True,
                                     timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            sysroot = ""
        if sysroot:
            roots.append(Path(sysroot) / "share" / "doc" / "rust" / "html" / "src")
    roots += sorted(Path.home().glob(".rustup/toolchains/*/share/doc/rust/html/src"))
    return next((r for r in roots if any((r / crate).is_dir() for crate in RUST_CRATES)), None)


def rust_tree(folder: Path, docs: Path | None) -> Path | None:
    """The Rust source of :data:`RUST_CRATES`' rustdoc source pages (``*.rs.html``) written as ``.rs`` files
    into ``folder``: the code block of each page, line-number links and highlighting tags dropped."""
    if docs is None:
        return None
    for crate in RUST_CRATES:
        for page in sorted((docs / crate).rglob("*.rs.html")):
            found = _RUSTDOC_CODE.search(page.read_text(encoding="utf-8", errors="replace"))
            if found is None:
                continue
            code = html.unescape(re.sub(r"<[^>]+>", "", _RUSTDOC_LINE_NUMBER.sub("", found.group(1))))
            target = folder / page.relative_to(docs).with_suffix("")  # core/cmp.rs.html -> core/cmp.rs
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code, encoding="utf-8")
    return folder if folder.exists() else None


def build_sets(work: Path, max_queries: int, jdk_zip: Path | None, node_modules: Path | None,
               rust_src: Path | None = None) -> tuple[dict, dict]:
    """Held-out sets ``unseen-{java,javascript,rust}-{doc2code,code2doc,code-context}``, and per language what
    was found (files, units, documented units, queries and corpus size per set)."""
    from st_code.data.repo_pairs import build_repository_pairs

    trees: dict[str, Path] = {}
    java = java_tree(work / "jdk", jdk_zip)
    if java is not None:
        trees["Java"] = java
    if node_modules is not None:
        trees["JavaScript"] = node_modules  # a walk skips folders named node_modules below its root, not the root
    rust = rust_tree(work / "rust", rust_src)
    if rust is not None:
        trees["Rust"] = rust
    sets, counts = {}, {}
    for language, root in trees.items():
        pairs = build_repository_pairs(root, languages={language}, heldout_paths=["*"], set_prefix="unseen")
        found = pairs.heldout_sets(min_queries=10, max_queries=max_queries)
        counts[language] = {"files": len(pairs.heldout_files), **pairs.counts().get(language, {}),
                            **{name: len(rs.queries) for name, rs in found.items()},
                            **{f"{name} corpus": len(rs.corpus) for name, rs in found.items()}}
        sets.update(found)
    return sets, counts


def main(argv: list[str] | None = None) -> dict:
    """Build the sets, score each model, print the table; returns ``{"counts": ..., "scores": ...}``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["base", "runs/annealing/final"],
                        help="'base' is the packaged all-MiniLM-L6-v2; otherwise a model folder or name")
    parser.add_argument("--max-queries", type=int, default=400, help="queries per set at most (a seeded sample)")
    parser.add_argument("--jdk-src", type=Path, help="a JDK's src.zip (default: the installed JDK's)")
    parser.add_argument("--node-modules", type=Path, help="a node_modules folder (default: the system npm's)")
    parser.add_argument("--rust-docs", type=Path, help="rustup's share/doc/rust/html/src (default: the installed "
                        "toolchain's); 'none' leaves Rust out")
    parser.add_argument("--json", help="also write the scores here")
    args = parser.parse_args(argv)
    if args.jdk_src is not None and not args.jdk_src.is_file():
        raise SystemExit(f"--jdk-src {args.jdk_src}: no such file (a JDK's lib/src.zip)")
    if args.node_modules is not None and not args.node_modules.is_dir():
        raise SystemExit(f"--node-modules {args.node_modules}: no such folder")
    if args.rust_docs is not None and str(args.rust_docs) != "none" and not args.rust_docs.is_dir():
        raise SystemExit(f"--rust-docs {args.rust_docs}: no such folder (rustup's share/doc/rust/html/src)")
    for name in args.models:
        if name != "base" and name.startswith(("runs/", "/", ".")) and not Path(name).exists():
            raise SystemExit(f"model folder {name} does not exist (python recipes/annealing.py writes runs/annealing/final)")

    import st_code
    from st_code.assets import minilm_path
    from st_code.data.jdk_sources import find_jdk_sources
    from st_code.training.evaluate import evaluate_sets

    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        rust = None if str(args.rust_docs) == "none" else (args.rust_docs or rust_docs())
        sets, counts = build_sets(Path(tmp), args.max_queries, args.jdk_src or find_jdk_sources(),
                                  args.node_modules or npm_modules(), rust)
        if not sets:
            raise SystemExit("no JDK sources (lib/src.zip), npm node_modules or Rust source pages found, or too few "
                             "documented units in them: nothing to build the sets from (--jdk-src, --node-modules, "
                             "--rust-docs)")
        print(f"sets built in {time.time() - start:.0f} s:")
        for language, row in counts.items():
            print(f"  {language}: {json.dumps(row)}")
    scores = {}
    for name in args.models:
        path = minilm_path() if name == "base" else name
        model = st_code.load_model(path)
        start = time.time()
        scores[name] = {set_name: s["ndcg_at_10"] * 100
                        for set_name, s in evaluate_sets(model, sets, log=lambda _: None).items()}
        print(f"{name}: scored in {time.time() - start:.0f} s", flush=True)
    names = sorted(sets)
    print("\n| ndcg_at_10 x100 | " + " | ".join(names) + " | mean |")
    print("|---|" + "---|" * (len(names) + 1))
    for model_name, row in scores.items():
        mean = sum(row[n] for n in names) / len(names)
        print(f"| {model_name} | " + " | ".join(f"{row[n]:.2f}" for n in names) + f" | {mean:.2f} |")
    if len(scores) > 1:
        first, *others = list(scores)
        for other in others:
            gains = [scores[other][n] - scores[first][n] for n in names]
            print(f"| {other} - {first} | " + " | ".join(f"{g:+.2f}" for g in gains)
                  + f" | {sum(gains) / len(gains):+.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"counts": counts, "scores": scores}, indent=2), encoding="utf-8")
    return {"counts": counts, "scores": scores}


if __name__ == "__main__":
    main()
