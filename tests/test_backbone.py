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
    assert backbone.padding_side == "right"  # what a plain sentence-transformers load reproduces
    assert mask[1, -1].item() == 0  # the short text is right-padded


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
        model[0].tokenizer.padding_side = "right"
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


def test_unpadding_needs_flash_attention_and_falls_back_to_padded_batches(tiny_qwen_path):
    """Without flash attention's varlen kernels (none on a CPU) asking for unpadded inputs falls back to
    padded batches, with the same embeddings; the flattened layout itself is PMAPooling's test."""
    import numpy as np

    import st_code

    padded = st_code.build_model(tiny_qwen_path, pooling="lasttoken", device="cpu")
    asked = st_code.build_model(tiny_qwen_path, pooling="lasttoken", device="cpu")
    asked[0].unpad_inputs = True
    assert padded[0].can_flatten_inputs is False and asked[0].can_flatten_inputs is False
    np.testing.assert_allclose(asked.encode(TEXTS), padded.encode(TEXTS), atol=1e-6)


@pytest.mark.parametrize("pooling", ["lasttoken", "pma"])
def test_flattened_layout_gives_the_padded_embeddings_and_loss(tiny_qwen_path, pooling):
    """With flash attention's varlen kernels, sentence-transformers packs a batch into one row with no
    padding. Those kernels need a GPU; the layout is built here as it would be there (one packed row,
    per-text positions, cu_seq_lens) and run through sdpa, which attends within each packed text. The
    EOS guarantee, the positions and the pooling hold: same embeddings, same GradCache loss."""
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    import st_code
    from st_code.testing import flatten_like_flash_attention
    from st_code.training.losses import LengthSortedCachedMNRL

    torch.manual_seed(0)
    padded = st_code.build_model(tiny_qwen_path, pooling=pooling, device="cpu").eval()
    torch.manual_seed(0)
    flat = st_code.build_model(tiny_qwen_path, pooling=pooling, device="cpu").eval()
    flatten_like_flash_attention(flat)
    features = flat[0].preprocess(TEXTS)
    assert features["input_ids"].shape[0] == 1 and "attention_mask" not in features
    ends = features["cu_seq_lens_q"][1:] - 1
    assert (features["input_ids"][0, ends] == flat.tokenizer.eos_token_id).all()  # every text ends in EOS
    torch.testing.assert_close(flat.encode(TEXTS, convert_to_tensor=True),
                               padded.encode(TEXTS, convert_to_tensor=True), atol=1e-5, rtol=1e-4)

    columns = [TEXTS, list(reversed(TEXTS))]
    expected = LengthSortedCachedMNRL(padded, mini_batch_size=2)([padded[0].preprocess(c) for c in columns], None)
    for loss in (CachedMultipleNegativesRankingLoss, LengthSortedCachedMNRL):  # the latter hands flat input on
        got = loss(flat, mini_batch_size=2, mini_batch_num_tokens=12)([flat[0].preprocess(c) for c in columns], None)
        assert got.item() == pytest.approx(expected.item(), rel=1e-5)
