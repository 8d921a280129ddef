"""Fault cases from a user's own folders, flags and files (issue 34): an output flag pointed at the input,
at a folder of other files or at a file; a named pipe or a symlink loop in a repository; a full or
read-only disk; a damaged index; numbers out of range; files in another encoding. Each one must end in
one clear line with the user's files untouched, or, where going on is right, go on and say what it
passed over.

The full and read-only disks are real: a small tmpfs mounted for the case (root only; elsewhere the case
is skipped). Nothing is mocked but a GPU, whose absence these machines provide for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from tests.faults.cases import CaseSkipped, Setup, case

DOCUMENTED = 'def {name}(value):\n    """{doc}"""\n    return value + {number}\n'


def repository(folder: Path, functions: int = 3, per_file: int = 1) -> Path:
    """A small repository of documented Python functions."""
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, functions, per_file):
        text = "\n\n".join(DOCUMENTED.format(name=f"step_{i}", number=i,
                                             doc=f"Advance the counter by {i} and return the new {['total', 'sum', 'value'][i % 3]}.")
                           for i in range(start, min(functions, start + per_file)))
        (folder / f"module_{start}.py").write_text(text)
    return folder


def user_folder(folder: Path, **files: str) -> Path:
    """A folder of the user's own files (notes, documents): what no command may delete."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {"notes.md": "my notes, not st-code's"}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@contextmanager
def small_disk(folder: Path, size: str = "64k", read_only: bool = False):
    """A real, tiny (or read-only) file system at ``folder`` for the case's life."""
    if not shutil.which("mount") or os.geteuid() != 0:
        raise CaseSkipped("mounting a small file system needs root")
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        raise CaseSkipped(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def built_index(tmp: Path) -> tuple[Path, Path]:
    """(repository, index) built for real with the packaged MiniLM."""
    from st_code.search import build_index

    repo = repository(tmp / "repo")
    index = tmp / "index"
    build_index(repo, index, log=lambda _: None, progress=False)
    return repo, index


# -- st-code index: where the index goes -------------------------------------------------------------
@case("cli", r"--out .*repo is the input .*repo: writing the code-search index there would replace it")
def case_index_out_is_the_repository(tmp, assets):
    repo = repository(tmp / "repo")
    yield Setup(argv=["index", str(repo), "--out", str(repo)], protect=[repo])


@case("cli", r"--out .*project contains the input .*repo")
def case_index_out_contains_the_repository(tmp, assets):
    project = user_folder(tmp / "project", **{"README.md": "the whole project"})
    repository(project / "repo")
    yield Setup(argv=["index", str(project / "repo"), "--out", str(project)], protect=[project])


@case("cli", r"--out .*mydocs holds files that are not an st-code code-search index \(notes\.md\)")
def case_index_out_is_a_folder_of_other_files(tmp, assets):
    docs = user_folder(tmp / "mydocs")
    yield Setup(argv=["index", str(repository(tmp / "repo")), "--out", str(docs)], protect=[docs])


@case("cli", r"--out .*report\.pdf is a file; pass a folder")
def case_index_out_is_an_existing_file(tmp, assets):
    (tmp / "report.pdf").write_text("a user's file")
    yield Setup(argv=["index", str(repository(tmp / "repo")), "--out", str(tmp / "report.pdf")],
                protect=[tmp / "report.pdf"], clean=[tmp])


@case("cli", r"--out .*report\.pdf/index lies under .*report\.pdf, which is a file")
def case_index_out_under_a_file(tmp, assets):
    (tmp / "report.pdf").write_text("a user's file")
    yield Setup(argv=["index", str(repository(tmp / "repo")), "--out", str(tmp / "report.pdf" / "index")],
                protect=[tmp / "report.pdf"])


@case("cli", r"--out .*loop: .*loop is a broken or looping symbolic link")
def case_index_out_is_a_symlink_loop(tmp, assets):
    (tmp / "loop").symlink_to(tmp / "loop")
    yield Setup(argv=["index", str(repository(tmp / "repo")), "--out", str(tmp / "loop")])


@case("cli", r"is neither a folder nor a regular file")
def case_index_a_named_pipe(tmp, assets):
    os.mkfifo(tmp / "pipe")
    yield Setup(argv=["index", str(tmp / "pipe"), "--out", str(tmp / "index")])


@case("cli", r"skipped: .*not_a_regular_file 1", exit_code=0, timeout=120)
def case_index_skips_a_named_pipe_in_the_repository(tmp, assets):
    repo = repository(tmp / "repo")
    os.mkfifo(repo / "stream.py")  # a reader that opens it waits for a writer forever
    yield Setup(argv=["index", str(repo), "--out", str(tmp / "index")])


@case("cli", r"skipped: .*unreadable 1", exit_code=0, timeout=120)
def case_index_skips_a_symlink_loop_in_the_repository(tmp, assets):
    repo = repository(tmp / "repo")
    (repo / "loop.py").symlink_to(repo / "loop.py")
    yield Setup(argv=["index", str(repo), "--out", str(tmp / "index")])


@case("cli", r"argument --batch-size: expected a whole number >= 1, got 0")
def case_index_batch_size_zero(tmp, assets):
    yield Setup(argv=["index", str(repository(tmp / "repo")), "--out", str(tmp / "index"), "--batch-size", "0"])


@case("cli", r"--device cuda: PyTorch sees no CUDA GPU here")
def case_index_device_cuda_without_cuda(tmp, assets):
    import torch

    if torch.cuda.is_available():
        raise CaseSkipped("this machine has a CUDA GPU")
    yield Setup(argv=["index", str(repository(tmp / "repo")), "--out", str(tmp / "index"), "--device", "cuda"],
                clean=[tmp])


@case("cli", r"--device 'gpu' is not a device name")
def case_index_unknown_device(tmp, assets):
    yield Setup(argv=["index", str(repository(tmp / "repo")), "--out", str(tmp / "index"), "--device", "gpu"])


@case("cli", r"error: No space left on device")
def case_index_disk_full(tmp, assets):
    repo = repository(tmp / "repo", functions=300, per_file=10)
    with small_disk(tmp / "disk", "64k") as disk:
        yield Setup(argv=["index", str(repo), "--out", str(disk / "index")], clean=[disk])
        assert not any(disk.iterdir()), "the failed build left files on the full disk"


@case("cli", r"error: Read-only file system .*: the file system is read-only")
def case_index_read_only_folder(tmp, assets):
    repo = repository(tmp / "repo")
    with small_disk(tmp / "disk", read_only=True) as disk:
        yield Setup(argv=["index", str(repo), "--out", str(disk / "index")])


# -- st-code search and update --------------------------------------------------------------------------
@case("cli", r"repo is not a code-search index \(no manifest\.json\); .* st-code index .*repo --out .*repo/\.st-code-index")
def case_search_a_repository_folder(tmp, assets):
    repo = repository(tmp / "repo")
    yield Setup(argv=["search", str(repo), "add a number"], protect=[repo])


@case("cli", r"argument --rescore-multiplier: expected a whole number >= 1, got 0")
def case_search_rescore_multiplier_zero(tmp, assets):
    yield Setup(argv=["search", str(tmp / "index"), "add", "--rescore-multiplier", "0"])


@case("cli", r"argument --rescore-multiplier: expected a whole number >= 1, got -1")
def case_search_rescore_multiplier_negative(tmp, assets):
    yield Setup(argv=["search", str(tmp / "index"), "add", "--rescore-multiplier=-1"])


@case("cli", r"--queries .*queries\.txt is not UTF-8 text")
def case_search_queries_not_utf8(tmp, assets):
    (tmp / "queries.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    yield Setup(argv=["search", str(tmp / "index"), "--queries", str(tmp / "queries.txt")])


@case("cli", r"--queries .* is not a regular file")
def case_search_queries_is_a_folder(tmp, assets):
    yield Setup(argv=["search", str(tmp / "index"), "--queries", str(tmp)])


def _damaged(change):
    def build(tmp, assets):
        repo, index = built_index(tmp)
        change(index)
        yield Setup(argv=["search", str(index), "add a number"], protect=[repo])
    return build


for _id, _change in [
    ("truncated-manifest", lambda i: (i / "manifest.json").write_text((i / "manifest.json").read_text()[:40])),
    ("truncated-units", lambda i: (i / "units.jsonl").write_text((i / "units.jsonl").read_text()[:30])),
    ("missing-vectors", lambda i: (i / "vectors.npy").unlink()),
    ("garbage-faiss-file", lambda i: (i / "index.faiss").write_bytes(b"garbage, not faiss")),
]:
    _build = _damaged(_change)
    _build.__name__ = f"case_search_damaged_index_{_id.replace('-', '_')}"
    case("cli", r"the index at .*index is damaged \(.*\); rebuild it with st-code index")(_build)


@case("cli", r"the index at .*index is damaged \(vectors\.npy is missing\); rebuild it with st-code index .*repo")
def case_update_damaged_index(tmp, assets):
    repo, index = built_index(tmp)
    (index / "vectors.npy").unlink()
    yield Setup(argv=["update", str(index)], protect=[repo, index / "manifest.json"])


@case("cli", r"--path .*other shares 0 of the 3 files indexed in .*index .*: that is another repository")
def case_update_from_another_repository(tmp, assets):
    _, index = built_index(tmp)
    other = repository(tmp / "other", functions=2)
    for file in other.iterdir():
        file.rename(other / f"other_{file.name}")
    yield Setup(argv=["update", str(index), "--path", str(other)], protect=[index], clean=[tmp])


@case("cli", r"--path .*nowhere does not exist")
def case_update_path_missing(tmp, assets):
    _, index = built_index(tmp)
    yield Setup(argv=["update", str(index), "--path", str(tmp / "nowhere")], protect=[index])


from tests.faults import user_training_cases  # noqa: E402,F401 - registers the training commands' cases
