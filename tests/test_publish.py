"""Publishing a trained model: a Matryoshka stage scored at every dimension, the final folder with its
card and training config, pruned checkpoints, and the upload to the hub (the hub itself cannot be
reached from here: its client is replaced by a recorder, and the real client's offline error is checked)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from st_code.errors import ServiceUnreachable, UsageError
from st_code.hub import push_folder
from st_code.training import CurriculumRunner, config_from_dict
from tests.test_curriculum import tiny_config


class RecordingHub:
    """Stands in for huggingface_hub.HfApi (no hub here): records what would be sent."""

    calls: list[tuple[str, dict]] = []

    def __init__(self, token=None) -> None:
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        RecordingHub.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        RecordingHub.calls.append(("upload_folder", kwargs))


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub

    RecordingHub.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHub)
    return RecordingHub


def test_matryoshka_run_publishes_a_truncatable_model_with_its_card(tiny_qwen_path, tmp_path, hub):
    out = tmp_path / "mrl"
    config = tiny_config(tiny_qwen_path, out)
    config["stages"] = [{**config["stages"][0], "matryoshka_dims": [32, 16, 8]}]  # PMA head: 32 dimensions
    config["evaluation"] = {"sets": ["stdlib-doc2code"], "max_queries": 8}
    config["publish"] = {"hub_model_id": "me/tiny-code", "license": "apache-2.0"}
    result = CurriculumRunner(config_from_dict(config), log=lambda _: None).run()

    assert list(result["scores"]) == ["base", "text", "text @8", "text @16"]
    assert "| text @16 |" in (out / "report" / "metrics.md").read_text()
    final = out / "final"
    saved = json.loads((final / "config_sentence_transformers.json").read_text())
    assert saved["matryoshka_dims"] == [32, 16, 8]
    truncated = SentenceTransformer(str(final), truncate_dim=16, trust_remote_code=True)
    assert truncated.encode(["def f(): pass"]).shape == (1, 16)

    card = (final / "README.md").read_text()
    for needed in ("license: apache-2.0", 'SentenceTransformer("me/tiny-code", trust_remote_code=True)',
                   "## Training", "| text | offline:Text Retrieval |", "## Evaluation", "| text @8 |",
                   "![scores](assets/scores.png)", "Matryoshka dimensions | 32, 16, 8",
                   "offline: pairs built from Python code under 2 folder(s) (st_code.data.offline_pairs)"):
        assert needed in card, needed
    assert "programming languages" not in card  # its one stage trained on text only
    assert (final / "assets" / "loss.png").stat().st_size > 0 and (final / "training_config.yaml").is_file()

    assert hub.calls[0] == ("create_repo", {"repo_id": "me/tiny-code", "repo_type": "model", "private": True,
                                            "exist_ok": True})
    assert hub.calls[1][0] == "upload_folder" and hub.calls[1][1]["folder_path"] == str(final)
    assert result["hub_url"] == "https://huggingface.co/me/tiny-code"
    assert not (out / "stages" / "1-text" / "checkpoints").exists()  # pruned once the stage finished
    # sentence-transformers truncates after the Normalize module: cosine similarity (the saved similarity
    # function) is unaffected, and normalize_embeddings=True gives unit vectors again
    np.testing.assert_allclose(np.linalg.norm(truncated.encode(["x"], normalize_embeddings=True), axis=1), 1.0,
                               rtol=1e-5)
    assert truncated.similarity_fn_name == "cosine"


def test_push_errors_name_the_fix(tmp_path, minilm_path):
    with pytest.raises(UsageError, match="owner/name"):
        push_folder(minilm_path, "no-owner")
    with pytest.raises(FileNotFoundError, match="no modules.json"):
        push_folder(tmp_path, "me/x")
    # the real client, offline: one clear line, and how to push again
    with pytest.raises(ServiceUnreachable, match=r"could not upload .* python -m st_code push"):
        push_folder(minilm_path, "me/x", token="hf_not_a_token")


def test_recipe_flag_sets_the_hub_repository(capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("annealing", Path(__file__).parents[1] / "recipes" / "annealing.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    assert recipe.main(["--push-to-hub", "me/code-embedder", "--print-config"]) == 0
    assert "hub_model_id: me/code-embedder" in capsys.readouterr().out
    assert recipe.main(["--push-to-hub", "not-a-repo", "--print-config"]) == 2
    assert "publish.hub_model_id" in capsys.readouterr().err


def test_the_card_says_what_the_default_trained_on(tmp_path):
    """The offline default's card names every kind of data it was built from and the rows per programming
    language, most first (what a reader of the hub page needs to judge where the model will do well)."""
    from pathlib import Path

    from st_code.training import load_config
    from st_code.training.publish import card_details

    config = load_config(Path(__file__).resolve().parents[1] / "recipes" / "configs" / "minilm-cpu.yaml")
    details = card_details(config, {}, {}, tmp_path, ["English"], {"Python": 2198, "Java": 2139, "Fortran": 72})
    [offline, languages] = details["data"]
    for part in ("the Python standard library", "installed packages' READMEs", "other languages that installed "
                 "packages ship", "Java from the training packages of the JDK's own sources (st_code.data.offline_pairs, st_code.data.jdk_sources)"):
        assert part in offline, part
    assert languages == "programming languages (training rows): Python (2,198), Java (2,139), Fortran (72)"
    assert details["languages"] == ["en"]
    assert details["base"] == "sentence-transformers/all-MiniLM-L6-v2"  # base_model: the hub id, not "minilm"
    no_jdk = card_details(config, {}, {}, tmp_path, ["English"], {"Python": 2198, "C": 1264})["data"][0]
    assert "Java" not in no_jdk and "jdk_sources" not in no_jdk  # asked for, but no JDK on that machine
