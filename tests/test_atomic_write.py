"""A file one process writes while others read it (DDP ranks sharing a run folder) is never seen half
written: the reader gets the old content or the new, as a plain write_text could not promise."""

from __future__ import annotations

import json
import multiprocessing

from st_code.outputs import write_text_atomic


def _rewrite(path: str, rounds: int) -> None:
    from pathlib import Path

    for i in range(rounds):
        write_text_atomic(Path(path), json.dumps({"round": i, "scores": list(range(2000))}))


def test_a_reader_never_sees_a_half_written_file(tmp_path):
    path = tmp_path / "base_scores.json"
    write_text_atomic(path, json.dumps({"round": -1, "scores": []}))
    writer = multiprocessing.get_context("fork").Process(target=_rewrite, args=(str(path), 300))
    writer.start()
    reads = 0
    while writer.is_alive() or reads == 0:
        json.loads(path.read_text())  # a torn or empty file raises here
        reads += 1
    writer.join()
    assert writer.exitcode == 0 and reads > 0
    assert json.loads(path.read_text())["round"] == 299
    assert [p.name for p in tmp_path.iterdir()] == ["base_scores.json"]  # no temporary file left behind
