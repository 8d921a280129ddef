"""LoRA: what trains, merge identity, stage chaining, adapter-only saving."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import st_code
from tests.conftest import TEXTS


def _perturb_lora(model, seed=0):
    """Fresh LoRA B matrices are zero (a no-op); give them values so merging has something to fold."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)


def test_only_lora_and_pma_parameters_train(tiny_qwen_path):
    model = st_code.build_model(tiny_qwen_path, pooling="pma", lora=True, device="cpu")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable, "nothing trains"
    assert all("lora_" in n or n.startswith("1.") for n in trainable), sorted(trainable)[:5]
    assert any(n.startswith("1.") for n in trainable)  # the PMA head
    targets = {n.split(".")[-4] for n in trainable if "lora_A" in n}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    lora_a = next(p for n, p in model.named_parameters() if "lora_A" in n)
    assert lora_a.shape[0] == 32  # r


def test_bert_default_targets(minilm_path):
    model = st_code.build_model(minilm_path, pooling="mean", lora={"r": 4, "alpha": 8}, device="cpu")
    targets = {n.split(".")[-4] for n, p in model.named_parameters() if "lora_A" in n}
    assert targets == {"query", "key", "value", "dense"}


def test_merge_gives_a_plain_model_with_the_same_embeddings(tiny_qwen_path, tmp_path):
    model = st_code.build_model(tiny_qwen_path, pooling="pma", lora={"r": 8, "alpha": 16}, device="cpu").eval()
    without_adapter = model.encode(TEXTS)
    _perturb_lora(model)
    adapted = model.encode(TEXTS)
    assert np.abs(adapted - without_adapter).max() > 1e-3  # the adapter really changes the model
    st_code.merge_lora(model)
    assert not st_code.has_lora(model)
    assert not any("lora_" in n for n, _ in model.named_parameters())
    np.testing.assert_allclose(model.encode(TEXTS), adapted, atol=1e-4)

    model.save(str(tmp_path / "merged"))
    saved = sorted(p.name for p in (tmp_path / "merged").iterdir())
    assert "adapter_config.json" not in saved and "model.safetensors" in saved
    np.testing.assert_allclose(st_code.load_model(tmp_path / "merged", device="cpu").encode(TEXTS), adapted, atol=1e-4)


def test_stage_chaining_merge_then_fresh_adapter(tiny_qwen_path):
    model = st_code.build_model(tiny_qwen_path, pooling="lasttoken", lora={"r": 4, "alpha": 8}, device="cpu").eval()
    _perturb_lora(model, seed=1)
    st_code.merge_lora(model)
    after_stage_1 = model.encode(TEXTS)
    st_code.add_lora(model, r=4, alpha=8)
    assert st_code.has_lora(model)
    np.testing.assert_allclose(model.encode(TEXTS), after_stage_1, atol=1e-5)  # fresh adapter starts as a no-op
    with pytest.raises(ValueError, match="already has a LoRA adapter"):
        st_code.add_lora(model, r=4)


def test_adapter_only_save_reloads(tiny_qwen_path, tmp_path):
    model = st_code.build_model(tiny_qwen_path, pooling="lasttoken", lora={"r": 4, "alpha": 8}, device="cpu").eval()
    _perturb_lora(model, seed=2)
    adapted = model.encode(TEXTS)
    model.save(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    reloaded = st_code.load_model(tmp_path / "adapter", device="cpu")
    np.testing.assert_allclose(reloaded.encode(TEXTS), adapted, atol=1e-5)


def test_merged_copy_leaves_the_original_adapter(tiny_qwen_path):
    model = st_code.build_model(tiny_qwen_path, pooling="lasttoken", lora={"r": 4, "alpha": 8}, device="cpu")
    copy = st_code.merged_copy(model)
    assert st_code.has_lora(model) and not st_code.has_lora(copy)
