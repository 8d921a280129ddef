"""C2LLM's two-term InfoNCE (``infonce: two_term``): a hand computation, and the same loss and gradients
without GradCache, under it, and under st-code's length-sorted and packed cuts."""

from __future__ import annotations

import math

import pytest
import torch

import st_code
from st_code.training.two_term_loss import (
    LengthSortedTwoTermCachedMNRL, LengthSortedTwoTermMNRL, TwoTermCachedMNRL, TwoTermMNRL, two_term_infonce,
)
from tests.test_losses import _columns


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_the_two_terms_match_a_hand_computation():
    """loss = mean_i -log softmax_j(s(q_i, p_j)/t)[i]  +  mean_i -log softmax([s(q_i, p_i), s(q_i, n_i)]/t)[0]."""
    from sentence_transformers.util import cos_sim

    torch.manual_seed(0)
    q, p, n = (torch.randn(4, 6) for _ in range(3))
    scale = 1 / 0.05
    by_hand = 0.0
    for i in range(4):
        in_batch = [_cos(q[i].tolist(), p[j].tolist()) * scale for j in range(4)]
        by_hand += -(in_batch[i] - math.log(sum(math.exp(x) for x in in_batch))) / 4
        hard = [_cos(q[i].tolist(), p[i].tolist()) * scale, _cos(q[i].tolist(), n[i].tolist()) * scale]
        by_hand += -(hard[0] - math.log(sum(math.exp(x) for x in hard))) / 4
    assert two_term_infonce(q, [p, n], scale, cos_sim).item() == pytest.approx(by_hand, rel=1e-5)
    in_batch_only = two_term_infonce(q, [p], scale, cos_sim).item()
    assert 0 < in_batch_only < by_hand  # no negatives: the in-batch term alone
    # the joint softmax of CodeR and CodeXEmbed (one denominator over in-batch and hard negatives) differs
    logits = torch.cat([cos_sim(q, p), cos_sim(q, n)], dim=1) * scale
    joint = torch.nn.functional.cross_entropy(logits, torch.arange(4)).item()
    assert not math.isclose(joint, by_hand, rel_tol=1e-3)


@pytest.mark.parametrize("cached", ["gradcache", "length-sorted", "packed"])
def test_the_same_loss_and_gradients_under_gradcache(tiny_qwen_path, cached):
    torch.manual_seed(0)
    model = st_code.build_model(tiny_qwen_path, pooling="lasttoken", lora={"r": 4, "alpha": 8, "dropout": 0.0},
                                device="cpu", max_seq_length=64)
    columns = _columns(model)
    losses = {"plain": lambda: TwoTermMNRL(model, scale=20.0),
              "gradcache": lambda: TwoTermCachedMNRL(model, scale=20.0, mini_batch_size=3),
              "length-sorted": lambda: LengthSortedTwoTermCachedMNRL(model, scale=20.0, mini_batch_size=3),
              "packed": lambda: LengthSortedTwoTermCachedMNRL(model, scale=20.0, mini_batch_size=36,
                                                              mini_batch_num_tokens=4096, pack=True)}
    results = {}
    for name in ("plain", cached):
        model.zero_grad()
        value = losses[name]()([dict(c) for c in columns], None)
        value.backward()
        results[name] = (value.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    (plain_loss, plain_grads), (cached_loss, cached_grads) = results.values()
    assert cached_loss == pytest.approx(plain_loss, rel=1e-5) and plain_grads
    for name in plain_grads:
        torch.testing.assert_close(cached_grads[name], plain_grads[name], rtol=1e-4, atol=1e-5)


def test_the_length_sorted_chunks_without_gradcache_give_the_same_loss(tiny_qwen_path):
    torch.manual_seed(0)
    model = st_code.build_model(tiny_qwen_path, pooling="mean", device="cpu", max_seq_length=64)
    columns = _columns(model)
    values = [loss([dict(c) for c in columns], None).item()
              for loss in (TwoTermMNRL(model, scale=20.0), LengthSortedTwoTermMNRL(model, scale=20.0))]
    assert values[1] == pytest.approx(values[0], rel=1e-5)


def test_the_stage_config_chooses_it(tiny_qwen_path):
    from st_code.training import ConfigError, config_from_dict
    from st_code.training.config import StageConfig
    from st_code.training.stage_loss import stage_loss
    from tests.test_curriculum import tiny_config

    model = st_code.build_model(tiny_qwen_path, pooling="mean", device="cpu")
    assert isinstance(stage_loss(model, StageConfig(name="s", datasets=["x"], infonce="two_term")), TwoTermCachedMNRL)
    assert not isinstance(stage_loss(model, StageConfig(name="s", datasets=["x"])), TwoTermCachedMNRL)
    no_cache = StageConfig(name="s", datasets=["x"], infonce="two_term", gradcache=False)
    assert isinstance(stage_loss(model, no_cache), LengthSortedTwoTermMNRL)  # a CPU sorts its chunks
    config = tiny_config(tiny_qwen_path, "/tmp/unused")
    config["stages"][0]["infonce"] = "both"
    with pytest.raises(ConfigError, match=r"infonce: 'both'; use joint .* or two_term"):
        config_from_dict(config)
