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


def _bf16_model_with_a_live_adapter(tiny_qwen_path, dropout: float):
    from st_code.training.config import ModelConfig
    from st_code.training.models import build_training_model

    torch.manual_seed(0)
    model = build_training_model(ModelConfig(base=tiny_qwen_path, pooling="pma", embedding_dim=32, pma_num_heads=4,
                                             lora={"r": 4, "alpha": 8, "dropout": dropout}, dtype="bfloat16"))
    with torch.no_grad():  # a trained adapter: B is zero at the start, which would hide any difference
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    return model


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_lora_inputs_skip_the_float32_round_trip_under_autocast_with_the_same_numbers(tiny_qwen_path, dropout):
    """Under autocast the hook turns peft's cast of LoRA inputs off (seen inside the forward): the
    embeddings and gradients are the same bit for bit without dropout, and within dropout's noise with
    it (its mask and scale are drawn in bf16 instead of float32); without autocast nothing changes."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    from st_code.lora import skip_lora_input_cast_under_autocast

    model = _bf16_model_with_a_live_adapter(tiny_qwen_path, dropout)
    model.train()
    features = model.preprocess(TEXTS)
    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    seen: list[bool] = []
    layers[0].register_forward_pre_hook(lambda module, args: seen.append(module.cast_input_dtype_enabled))
    direction = torch.linspace(-1, 1, 32)

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        model.zero_grad()
        torch.manual_seed(1)  # the same dropout masks
        with torch.autocast("cpu", dtype=torch.bfloat16):
            embedding = model(dict(features))["sentence_embedding"].float()
        (embedding @ direction).pow(2).sum().backward()
        grads = torch.cat([p.grad.flatten() for n, p in model.named_parameters() if "lora_" in n])
        return embedding.detach(), grads

    cast = run()
    skip_lora_input_cast_under_autocast(model)
    skip_lora_input_cast_under_autocast(model)  # idempotent: one pair of hooks
    uncast = run()
    assert seen == [True, False]
    if dropout == 0:
        torch.testing.assert_close(uncast[0], cast[0], rtol=0, atol=0)
        torch.testing.assert_close(uncast[1], cast[1], rtol=1e-6, atol=1e-8)
    else:
        assert torch.nn.functional.cosine_similarity(uncast[0], cast[0]).min() > 0.999
        assert torch.nn.functional.cosine_similarity(uncast[1], cast[1], dim=0) > 0.99
    assert all(layer.cast_input_dtype_enabled for layer in layers)  # on again after the forward
    model.eval()
    with torch.no_grad():
        model.float()(dict(features))  # no autocast: peft's cast stays on
    assert seen[-1] is True
