"""Saving and loading: plain sentence-transformers with trust_remote_code, st_code.load_model, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules.transformer import Transformer

import st_code
from tests.conftest import TEXTS


@pytest.mark.parametrize("pooling", ["pma", "lasttoken"])
def test_save_reload_identity_both_ways(tiny_qwen_path, tmp_path, pooling):
    model = st_code.build_model(tiny_qwen_path, pooling=pooling, embedding_dim=32 if pooling == "pma" else None,
                                device="cpu")
    before = model.encode(TEXTS)
    model.save(str(tmp_path / "saved"))

    plain = SentenceTransformer(str(tmp_path / "saved"), trust_remote_code=True, device="cpu")
    ours = st_code.load_model(tmp_path / "saved", device="cpu")
    np.testing.assert_allclose(plain.encode(TEXTS), before, atol=1e-6)
    np.testing.assert_allclose(ours.encode(TEXTS), before, atol=1e-6)
    assert type(ours[0]) is Transformer  # a plain sentence-transformers module: st-code adds nothing at load
    assert ours.prompts["CosQA-query"] == model.prompts["CosQA-query"]
    ids = ours[0].preprocess(["def f(): pass " * 50])["input_ids"][0]  # truncated, and still ends in EOS
    assert ids[-1].item() == ours[0].tokenizer.eos_token_id and ours[0].tokenizer.padding_side == "right"
    assert ours.encode_query(["q"], prompt_name="CosQA-query").shape == (1, before.shape[1])


def test_custom_code_ships_in_the_folder_and_plain_load_without_flag_is_refused(tiny_qwen_path, tmp_path):
    st_code.build_model(tiny_qwen_path, pooling="pma", device="cpu").save(str(tmp_path / "m"))
    types = [entry["type"] for entry in json.loads((tmp_path / "m" / "modules.json").read_text())]
    assert "modeling_st_code.PMAPooling" in types and (tmp_path / "m" / "modeling_st_code.py").is_file()
    assert "st-code" not in json.dumps(json.loads((tmp_path / "m" / "config_sentence_transformers.json").read_text()))
    with pytest.raises(ValueError, match="trust_remote_code"):
        SentenceTransformer(str(tmp_path / "m"), device="cpu")


def test_encoder_backbone_roundtrip(minilm_path, tmp_path):
    model = st_code.build_model(minilm_path, pooling="pma", embedding_dim=96, device="cpu")
    before = model.encode(TEXTS)
    assert before.shape == (len(TEXTS), 96)
    model.save(str(tmp_path / "enc"))
    np.testing.assert_allclose(st_code.load_model(tmp_path / "enc", device="cpu").encode(TEXTS), before, atol=1e-6)


def test_clear_errors(tiny_qwen_path, tmp_path):
    with pytest.raises(ValueError, match="unknown pooling 'maxx'"):
        st_code.build_model(tiny_qwen_path, pooling="maxx")
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        st_code.build_model(tiny_qwen_path, pooling="pma", embedding_dim=50, pma_num_heads=32)
    with pytest.raises(ValueError, match="needs pooling='pma'"):
        st_code.build_model(tiny_qwen_path, pooling="lasttoken", embedding_dim=32)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        st_code.build_model(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        st_code.build_model(str(tmp_path / "model.gguf"))
    with pytest.raises(FileNotFoundError, match="no saved model"):
        st_code.load_model(tmp_path / "missing")
    with pytest.raises(ValueError, match="match no Linear layer"):
        st_code.build_model(tiny_qwen_path, lora={"target_modules": ["not_a_layer"]})
    with pytest.raises(ValueError, match="instruction_format"):
        st_code.build_model(tiny_qwen_path, instruction_format="nonsense")


def test_gguf_file_as_the_base(tmp_path, monkeypatch):
    """A .gguf base (how small code LLMs ship offline) gives the same model as its safetensors twin,
    and its header is parsed once, not once per transformers loader (config, tokenizer, weights)."""
    import gguf

    from st_code.testing import save_tiny_qwen2, save_tiny_qwen2_gguf

    gguf_file = save_tiny_qwen2_gguf(tmp_path / "tiny.gguf", seed=3)
    folder = save_tiny_qwen2(tmp_path / "twin", seed=3)
    parsed = []
    real_reader = gguf.GGUFReader

    def counting_reader(path, mode="r"):  # the real reader, counted
        parsed.append(path)
        return real_reader(path, mode)

    monkeypatch.setattr(gguf, "GGUFReader", counting_reader)
    from_gguf = st_code.build_model(gguf_file, pooling="lasttoken", device="cpu")
    assert len(parsed) == 1 and gguf.GGUFReader is counting_reader  # one parse, and the library put back
    from_folder = st_code.build_model(folder, pooling="lasttoken", device="cpu")
    assert from_gguf[0].tokenizer("def f(): pass")["input_ids"] == from_folder[0].tokenizer("def f(): pass")["input_ids"]
    np.testing.assert_allclose(from_gguf.encode(TEXTS), from_folder.encode(TEXTS), atol=1e-5)
    from_gguf.save(str(tmp_path / "saved"))
    np.testing.assert_allclose(st_code.load_model(tmp_path / "saved", device="cpu").encode(TEXTS),
                               from_folder.encode(TEXTS), atol=1e-5)
