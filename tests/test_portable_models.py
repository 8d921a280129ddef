"""Saved models load where sentence-transformers runs, without st-code: every supported kind, trained a
step, saved, and reloaded in a fresh process that cannot import st_code; the model card's snippet runs
there as written; folders saved before 0.2 still load with st_code.load_model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import st_code
from tests.conftest import TEXTS

# Runs in a fresh interpreter: any import of st_code fails there, as on a machine without st-code.
CLEAN_PROCESS = textwrap.dedent('''
    import json, sys
    class NoStCode:
        def find_spec(self, name, path=None, target=None):
            if name == "st_code" or name.startswith("st_code."):
                raise ImportError("st_code is not installed on this machine")
    sys.meta_path.insert(0, NoStCode())
    import numpy as np
    from sentence_transformers import SentenceTransformer
    jobs, texts = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    report = {}
    for name, folder in jobs.items():
        try:
            SentenceTransformer(folder, device="cpu")
            plain = "loaded"
        except Exception as exc:
            plain = f"{type(exc).__name__}: {exc}"
        if plain == "loaded":
            model = SentenceTransformer(folder, device="cpu")
        else:
            model = SentenceTransformer(folder, device="cpu", trust_remote_code=True)
        np.save(f"{folder}/clean.npy", model.encode(texts))
        report[name] = plain
        if name in sys.argv[3:]:  # the model card's usage snippet, as written
            card = open(f"{folder}/README.md").read()
            exec(card.split("```python\\n", 1)[1].split("```", 1)[0], {})
    print(json.dumps(report))
''')

KINDS = {
    "encoder-mean": dict(pooling="mean"),
    "decoder-lasttoken": dict(pooling="lasttoken", lora={"r": 4, "alpha": 8}),
    "decoder-pma": dict(pooling="pma", embedding_dim=32),
    "decoder-bidirectional": dict(pooling="mean", bidirectional=True),
}


def train_one_step(model) -> None:
    """One AdamW step of in-batch InfoNCE, so no weight is as initialised."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    torch.manual_seed(0)
    model.train()
    loss = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    features = [model.preprocess(TEXTS[:2]), model.preprocess(TEXTS[2:])]
    loss(features, None).backward()
    optimizer.step()
    model.eval()


@pytest.fixture(scope="module")
def saved_kinds(tmp_path_factory, tiny_qwen_path, minilm_path):
    root = tmp_path_factory.mktemp("kinds")
    expected = {}
    for name, settings in KINDS.items():
        torch.manual_seed(0)
        model = st_code.build_model(minilm_path if name.startswith("encoder") else tiny_qwen_path, device="cpu",
                                    **settings)
        train_one_step(model)
        if st_code.has_lora(model):
            st_code.merge_lora(model)
        model.save(str(root / name))
        expected[name] = model.encode(TEXTS)
    jobs = {name: str(root / name) for name in KINDS}
    env = {**os.environ, "HF_MODULES_CACHE": str(root / "hf_modules")}
    done = subprocess.run([sys.executable, "-c", CLEAN_PROCESS, json.dumps(jobs), json.dumps(TEXTS),
                           "encoder-mean", "decoder-pma"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return root, expected, json.loads(done.stdout.strip().splitlines()[-1]), done.stdout


def test_every_kind_loads_without_st_code_with_the_same_embeddings(saved_kinds):
    root, expected, report, _ = saved_kinds
    for name in KINDS:
        np.testing.assert_allclose(np.load(root / name / "clean.npy"), expected[name], atol=1e-5, err_msg=name)
    # the kinds sentence-transformers' own modules reproduce need no custom code at all ...
    assert report["encoder-mean"] == report["decoder-lasttoken"] == "loaded"
    for name in ("encoder-mean", "decoder-lasttoken"):
        assert not (root / name / "modeling_st_code.py").exists()
        assert "st-code" not in (root / name / "config_sentence_transformers.json").read_text()
    # ... PMA and bidirectional attention ship modeling_st_code.py and ask for trust_remote_code
    for name, cls in (("decoder-pma", "modeling_st_code.PMAPooling"),
                      ("decoder-bidirectional", "modeling_st_code.BidirectionalTransformer")):
        assert "trust_remote_code=True" in report[name] and cls in report[name]
        assert (root / name / "modeling_st_code.py").is_file()


def test_st_code_loads_every_kind_without_trust_remote_code(saved_kinds):
    root, expected, _, _ = saved_kinds
    for name in KINDS:
        model = st_code.load_model(root / name, device="cpu")
        np.testing.assert_allclose(model.encode(TEXTS), expected[name], atol=1e-5, err_msg=name)


def test_model_card_says_what_a_reader_needs_and_its_snippet_runs(saved_kinds):
    root, _, _, stdout = saved_kinds
    assert stdout.count("tensor([[") == 2  # the snippet printed the similarities, for both models it ran for
    card = (root / "decoder-pma" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: sentence-transformers")
    for needed in ("PMA (Pooling by Multihead Attention", "| output dimension | 32 |", "trust_remote_code=True",
                   "`CodeSearchNetRetrieval-query`", "prompt_name=\"CodeSearchNetRetrieval-query\"",
                   "## Licence"):
        assert needed in card, needed
    minilm_card = (root / "encoder-mean" / "README.md").read_text()
    assert "mean of the token embeddings" in minilm_card and "trust_remote_code" not in minilm_card.split("## Use")[1]


def to_old_format(folder: Path) -> None:
    """Rewrite a saved folder as st-code 0.1 saved it: st-code module types, CodeTransformer's own keys
    in sentence_bert_config.json (left padding for decoders) and an st-code requirement."""
    modules = json.loads((folder / "modules.json").read_text())
    for entry in modules:
        if entry["type"].endswith(".Transformer") or entry["type"].endswith("BidirectionalTransformer"):
            bidirectional = entry["type"].endswith("BidirectionalTransformer")
            entry["type"] = "st_code.modules.code_transformer.CodeTransformer"
        elif entry["type"].endswith("PMAPooling"):
            entry["type"] = "st_code.modules.pma_pooling.PMAPooling"
    (folder / "modules.json").write_text(json.dumps(modules))
    settings = json.loads((folder / "sentence_bert_config.json").read_text())
    decoder = json.loads((folder / "config.json").read_text())["model_type"] == "qwen2"
    settings.update(append_eos=decoder, padding_side="left" if decoder else "right", bidirectional=bidirectional)
    (folder / "sentence_bert_config.json").write_text(json.dumps(settings))
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    config["requirements"] = {"st-code": {"specifier": ">=0.1", "reason": "The model uses st-code modules"}}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    (folder / "modeling_st_code.py").unlink(missing_ok=True)


def test_folders_saved_before_0_2_still_load(saved_kinds, tmp_path):
    import shutil

    root, expected, _, _ = saved_kinds
    for name in ("decoder-lasttoken", "decoder-pma", "decoder-bidirectional"):
        old = tmp_path / name
        shutil.copytree(root / name, old)
        to_old_format(old)
        model = st_code.load_model(old, device="cpu")
        assert type(model[0]).__name__ == "CodeTransformer" and model[0].padding_side == "left"
        np.testing.assert_allclose(model.encode(TEXTS), expected[name], atol=1e-5, err_msg=name)
        model.save(str(tmp_path / f"{name}-resaved"))  # re-saving migrates it to the portable format
        types = [e["type"] for e in json.loads((tmp_path / f"{name}-resaved" / "modules.json").read_text())]
        assert not any(t.startswith("st_code.") for t in types), types
