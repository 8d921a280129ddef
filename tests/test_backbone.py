"""CodeTransformer + every pooling: EOS after truncation, padding invariance, bidirectional attention."""

from __future__ import annotations

import pytest
import torch

import st_code
from tests.conftest import TEXTS


@pytest.fixture(scope="module")
def decoder_models(tiny_qwen_path):
    return {p: st_code.build_model(tiny_qwen_path, pooling=p, device="cpu").eval() for p in ("lasttoken", "mean", "pma")}


def test_eos_is_appended_and_survives_truncation(tiny_qwen_path):
    model = st_code.build_model(tiny_qwen_path, pooling="lasttoken", max_seq_length=8, device="cpu")
    backbone = model[0]
    eos = backbone.tokenizer.eos_token_id
    features = backbone.preprocess(["def " + "very_long_name_" * 40, "short"])
    ids, mask = features["input_ids"], features["attention_mask"]
    assert ids.shape[1] == 8
    for row, row_mask in zip(ids, mask):
        assert row[row_mask.bool()][-1].item() == eos  # last real token is EOS even when truncated
    assert backbone.padding_side == "left"
    assert mask[1, 0].item() == 0  # the short text is left-padded


def test_encoder_keeps_its_own_sep_and_right_padding(minilm_path):
    model = st_code.build_model(minilm_path, pooling="mean", device="cpu")
    backbone = model[0]
    ids = backbone.preprocess(["hello world"])["input_ids"][0].tolist()
    assert ids[-1] == backbone.tokenizer.sep_token_id and ids.count(backbone.tokenizer.sep_token_id) == 1
    assert backbone.padding_side == "right"


@pytest.mark.parametrize("pooling", ["lasttoken", "mean", "pma"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_decoder_padding_invariance(decoder_models, pooling, side):
    model = decoder_models[pooling]
    model[0].tokenizer.padding_side = side
    try:
        batch = model.encode(TEXTS, convert_to_tensor=True, batch_size=len(TEXTS))
        single = torch.stack([model.encode([t], convert_to_tensor=True)[0] for t in TEXTS])
    finally:
        model[0].tokenizer.padding_side = "left"
    assert (batch - single).abs().max() < 1e-5


@pytest.mark.parametrize("pooling", ["mean", "pma", "cls"])
def test_encoder_padding_invariance(minilm_path, pooling):
    model = st_code.build_model(minilm_path, pooling=pooling, device="cpu").eval()
    batch = model.encode(TEXTS, convert_to_tensor=True, batch_size=len(TEXTS))
    single = torch.stack([model.encode([t], convert_to_tensor=True)[0] for t in TEXTS])
    assert (batch - single).abs().max() < 1e-5


def test_bidirectional_attention_lets_early_tokens_see_later_ones(tiny_qwen_path):
    def first_token_states(model, text):
        features = model[0].preprocess([text])
        with torch.no_grad():
            return model[0](features)["token_embeddings"][0, 0]

    causal = st_code.build_model(tiny_qwen_path, pooling="mean", device="cpu").eval()
    bidir = st_code.build_model(tiny_qwen_path, pooling="mean", bidirectional=True, device="cpu").eval()
    a, b = "alpha beta gamma", "alpha zeta omega"  # same first token, different continuations
    assert torch.allclose(first_token_states(causal, a), first_token_states(causal, b), atol=1e-6)
    assert not torch.allclose(first_token_states(bidir, a), first_token_states(bidir, b), atol=1e-4)


def test_unpadded_inputs_are_refused_explicitly(tiny_qwen_path):
    from st_code.modules import CodeTransformer

    with pytest.raises(ValueError, match="unpad_inputs"):
        CodeTransformer(tiny_qwen_path, unpad_inputs=True)
