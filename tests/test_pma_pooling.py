"""PMAPooling on its own: shapes, head rules, masking and the flattened (varlen) layout."""

from __future__ import annotations

import pytest
import torch

from st_code import PMAPooling
from st_code.modules.pma_pooling import default_num_heads


def _features(hidden: torch.Tensor, mask: torch.Tensor) -> dict:
    return {"token_embeddings": hidden, "attention_mask": mask}


def test_output_dimension_is_decoupled_from_hidden_size():
    pma = PMAPooling(hidden_size=48, embedding_dim=64)
    out = pma(_features(torch.randn(3, 7, 48), torch.ones(3, 7)))["sentence_embedding"]
    assert out.shape == (3, 64)
    assert pma.get_embedding_dimension() == 64
    assert PMAPooling(hidden_size=48).get_embedding_dimension() == 48


def test_default_heads_are_32_where_they_divide():
    assert PMAPooling(64).num_heads == 32
    assert default_num_heads(48) == 16
    assert default_num_heads(30) == 2


def test_heads_that_do_not_divide_are_refused():
    with pytest.raises(ValueError, match="not divisible by num_heads=32"):
        PMAPooling(64, embedding_dim=100, num_heads=32)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_does_not_change_the_vector(side):
    torch.manual_seed(0)
    pma = PMAPooling(32, embedding_dim=16, num_heads=4).eval()
    real = torch.randn(1, 5, 32)
    alone = pma(_features(real, torch.ones(1, 5)))["sentence_embedding"]
    garbage = torch.full((1, 3, 32), float("nan"))  # pads can hold anything, NaN included
    padded = torch.cat([garbage, real], 1) if side == "left" else torch.cat([real, garbage], 1)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1]]) if side == "left" else torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]])
    batched = pma(_features(padded, mask))["sentence_embedding"]
    assert torch.isfinite(batched).all()
    assert (alone - batched).abs().max() < 1e-5


def test_flattened_varlen_batch_equals_padded_batch():
    torch.manual_seed(0)
    pma = PMAPooling(32, embedding_dim=32).eval()
    a, b = torch.randn(4, 32), torch.randn(6, 32)
    padded = torch.zeros(2, 6, 32)
    padded[0, :4], padded[1] = a, b
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1] * 6])
    expected = pma(_features(padded, mask))["sentence_embedding"]
    flat = {"token_embeddings": torch.cat([a, b]).unsqueeze(0), "cu_seq_lens_q": torch.tensor([0, 4, 10])}
    assert (pma(flat)["sentence_embedding"] - expected).abs().max() < 1e-5


def test_attention_reads_the_tokens():
    """A PMA whose output ignored the tokens would pass the shape tests; this one would not."""
    torch.manual_seed(0)
    pma = PMAPooling(16, embedding_dim=16, num_heads=4).eval()
    x = torch.randn(2, 5, 16)
    out = pma(_features(x, torch.ones(2, 5)))["sentence_embedding"]
    assert (out[0] - out[1]).abs().max() > 1e-3


def test_save_and_load_roundtrip(tmp_path):
    pma = PMAPooling(24, embedding_dim=12, num_heads=3, num_seeds=2).eval()
    pma.save(str(tmp_path))
    loaded = PMAPooling.load(str(tmp_path)).eval()
    assert loaded.get_config_dict() == pma.get_config_dict()
    x = _features(torch.randn(2, 4, 24), torch.ones(2, 4))
    assert torch.equal(pma(dict(x))["sentence_embedding"], loaded(dict(x))["sentence_embedding"])
