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


def test_merged_copy_leaves_the_original_adapter(tiny_qwen_path, tmp_path):
    model = st_code.build_model(tiny_qwen_path, pooling="lasttoken", lora={"r": 4, "alpha": 8}, device="cpu").eval()
    _perturb_lora(model, seed=3)
    adapted = model.encode(TEXTS)
    copy = st_code.merged_copy(model)
    assert st_code.has_lora(model) and not st_code.has_lora(copy)
    np.testing.assert_allclose(copy.encode(TEXTS), adapted, atol=1e-5)
    # the tokenizer is shared, not copied: saving the copy (which saves it padding on the right) leaves
    # the original's padding side as it was, here the left
    assert copy[0].processor is model[0].processor
    model[0].processor.padding_side = model[0].padding_side = "left"
    copy.save(str(tmp_path / "merged"))
    assert model[0].processor.padding_side == "left"
    np.testing.assert_allclose(model.encode(TEXTS), adapted, atol=1e-6)


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


@pytest.mark.parametrize(("dropout", "checkpointing"), [(0.0, False), (0.1, False), (0.0, True)])
def test_lora_inputs_skip_the_float32_round_trip_under_autocast_with_the_same_numbers(tiny_qwen_path, dropout,
                                                                                       checkpointing):
    """Under autocast LoRA inputs reach the adapter in bf16 instead of float32 (seen at the adapter's
    first product); the embeddings and gradients are the same bit for bit without dropout, and within
    dropout's noise with it (its mask and scale are drawn in bf16); a checkpointed layer's recompute
    matches its forward; without autocast peft's cast stays."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    from st_code.lora import skip_lora_input_cast_under_autocast
    from st_code.training.models import enable_activation_checkpointing

    model = _bf16_model_with_a_live_adapter(tiny_qwen_path, dropout)
    if checkpointing:
        enable_activation_checkpointing(model)
    model.train()
    features = model.preprocess(TEXTS)
    first = next(m for m in model.modules() if isinstance(m, BaseTunerLayer))
    seen: list[torch.dtype] = []
    first.lora_A["default"].register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    direction = torch.linspace(-1, 1, 32)

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        model.zero_grad()
        seen.clear()
        torch.manual_seed(1)  # the same dropout masks
        with torch.autocast("cpu", dtype=torch.bfloat16):
            embedding = model(dict(features))["sentence_embedding"].float()
        (embedding @ direction).pow(2).sum().backward()  # with checkpointing: the recompute runs here
        grads = torch.cat([p.grad.flatten() for n, p in model.named_parameters() if "lora_" in n])
        return embedding.detach(), grads

    cast = run()
    assert set(seen) == {torch.float32}
    skip_lora_input_cast_under_autocast(model)
    skip_lora_input_cast_under_autocast(model)  # idempotent: one hook a layer
    uncast = run()
    assert set(seen) == {torch.bfloat16} and len(seen) == (2 if checkpointing else 1)
    if dropout == 0:
        torch.testing.assert_close(uncast[0], cast[0], rtol=0, atol=0)
        torch.testing.assert_close(uncast[1], cast[1], rtol=1e-6, atol=1e-8)
    else:
        assert torch.nn.functional.cosine_similarity(uncast[0], cast[0]).min() > 0.999
        assert torch.nn.functional.cosine_similarity(uncast[1], cast[1], dim=0) > 0.99
    model.eval()
    seen.clear()
    with torch.no_grad():
        model(dict(features))  # no autocast: peft's cast to the adapter's float32 stays
    assert seen == [torch.float32]
