"""Length-sorted GradCache: the same loss and gradients as sentence-transformers' own, with less padding."""

from __future__ import annotations

import random

import pytest
import torch
from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

import st_code
from st_code.modules.code_transformer import PACKED_ROWS
from st_code.training.losses import (
    LengthSortedCachedMNRL, LengthSortedMNRL, cheapest_ranges, length_aware_ranges, merge_columns, trim_padding,
)
from st_code.training.stage_loss import mini_batch_overhead, sorts_without_gradcache, stage_loss


def _columns(model, rows: int = 12, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = "read parse write the json file line list dict value key sort merge".split()

    def text() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.choice([2, 3, 5, 9, 20, 40])))

    return [model.preprocess([text() for _ in range(rows)]) for _ in range(3)]  # anchor, positive, negative


class PaddingMeter:
    """Counts the token slots the backbone computes and how many of them are padding."""

    def __init__(self, model) -> None:
        self.slots = self.real = self.packed_calls = 0
        model[0].register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        packed = args[0].get(PACKED_ROWS)
        if packed is not None:  # rows side by side: the slots are the packed rows'
            self.packed_calls += 1
            self.slots += args[0]["input_ids"].numel()
            self.real += int(packed.attention_mask.sum())
            return
        mask = args[0]["attention_mask"]
        self.slots += mask.numel()
        self.real += int(mask.sum())

    @property
    def padding_share(self) -> float:
        return 1 - self.real / self.slots


@pytest.mark.parametrize(("pooling", "cut"), [("lasttoken", {}), ("pma", {}), ("pma", {"overhead_slots": 40}),
                                              ("lasttoken", {"pack": True}), ("pma", {"pack": True})])
def test_same_loss_and_gradients_as_the_unsorted_loss_with_far_less_padding(tiny_qwen_path, pooling, cut):
    torch.manual_seed(0)
    model = st_code.build_model(tiny_qwen_path, pooling=pooling, lora={"r": 4, "alpha": 8, "dropout": 0.0},
                                device="cpu", max_seq_length=64)
    meter = PaddingMeter(model)
    results = {}
    for name, cls in (("stock", CachedMultipleNegativesRankingLoss), ("sorted", LengthSortedCachedMNRL)):
        model.zero_grad()
        meter.slots = meter.real = meter.packed_calls = 0
        loss = cls(model, scale=20.0, mini_batch_size=3, **(cut if name == "sorted" else {}))(_columns(model), None)
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        results[name] = (loss.item(), grads, meter.padding_share)
        assert (meter.packed_calls > 0) == (name == "sorted" and cut.get("pack", False))  # packed when asked only
    (stock_loss, stock_grads, stock_padding), (sorted_loss, sorted_grads, sorted_padding) = results.values()
    assert sorted_loss == pytest.approx(stock_loss, rel=1e-5)
    assert stock_grads.keys() == sorted_grads.keys() and stock_grads
    for name in stock_grads:
        torch.testing.assert_close(sorted_grads[name], stock_grads[name], rtol=1e-4, atol=1e-6)
    assert stock_padding > 0.4 and sorted_padding <= (0.25 if cut else 0.1), (stock_padding, sorted_padding)


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_packed_mini_batches_draw_from_every_column(tiny_qwen_path, padding_side):
    """Packed, the three columns are embedded as one: a token budget that holds the whole batch makes one
    mini-batch a step (embedded twice: without gradients, then the replay) instead of one per column,
    with the stock loss and gradients, whichever side the tokenizer pads."""
    torch.manual_seed(0)
    model = st_code.build_model(tiny_qwen_path, pooling="pma", lora={"r": 4, "alpha": 8, "dropout": 0.0},
                                device="cpu", max_seq_length=64)
    model[0].tokenizer.padding_side = padding_side
    columns = _columns(model)
    meter = PaddingMeter(model)
    results = []
    for loss in (CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=3),
                 LengthSortedCachedMNRL(model, scale=20.0, mini_batch_size=36, mini_batch_num_tokens=4096, pack=True)):
        model.zero_grad()
        meter.packed_calls = 0
        value = loss([dict(c) for c in columns], None)
        value.backward()
        results.append((value.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    assert meter.packed_calls == 2
    (stock_loss, stock_grads), (packed_loss, packed_grads) = results
    assert packed_loss == pytest.approx(stock_loss, rel=1e-5)
    for name in stock_grads:  # float32 sums in another order: an element near zero may differ by ~1e-6
        torch.testing.assert_close(packed_grads[name], stock_grads[name], rtol=1e-4, atol=1e-5)


def test_packed_columns_under_matryoshka_give_the_stock_loss(tiny_qwen_path):
    """sentence-transformers' MatryoshkaLoss shrinks the cached embeddings before the loss reads them: the
    merged group is split back into its columns after that, as the stock loss sees them."""
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss

    torch.manual_seed(0)
    model = st_code.build_model(tiny_qwen_path, pooling="lasttoken", lora={"r": 4, "alpha": 8, "dropout": 0.0},
                                device="cpu", max_seq_length=64)
    columns = _columns(model)
    values = []
    for inner in (CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=3),
                  LengthSortedCachedMNRL(model, scale=20.0, mini_batch_size=36, mini_batch_num_tokens=4096, pack=True)):
        model.zero_grad()
        value = MatryoshkaLoss(model, inner, matryoshka_dims=[64, 16])([dict(c) for c in columns], None)
        value.backward()
        values.append((value.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (stock_loss, stock_grads), (packed_loss, packed_grads) = values
    assert packed_loss == pytest.approx(stock_loss, rel=1e-5)
    for name in stock_grads:
        torch.testing.assert_close(packed_grads[name], stock_grads[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backbone", ["encoder", "decoder"])
def test_without_gradcache_sorted_chunks_give_the_stock_loss_and_gradients_with_less_padding(
        tiny_qwen_path, minilm_path, backbone):
    """``gradcache: false`` on a CPU: each column embedded longest rows first in chunks of <= 10% padding,
    one forward with gradients, the embeddings back in batch order: sentence-transformers' own in-batch
    InfoNCE (plain and under MatryoshkaLoss) to float32 summation order, far fewer padding slots."""
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

    torch.manual_seed(0)
    model = (st_code.build_model(minilm_path, pooling="mean", device="cpu", max_seq_length=64) if backbone == "encoder"
             else st_code.build_model(tiny_qwen_path, pooling="pma", lora={"r": 4, "alpha": 8, "dropout": 0.0},
                                      device="cpu", max_seq_length=64))
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # the two losses draw dropout masks for other row groupings
    columns = _columns(model)
    meter = PaddingMeter(model)
    dims = [model.get_embedding_dimension(), 16]
    results = {}
    for name, make in (("stock", lambda: MultipleNegativesRankingLoss(model, scale=20.0)),
                       ("sorted", lambda: LengthSortedMNRL(model, scale=20.0)),
                       ("stock matryoshka", lambda: MatryoshkaLoss(model, MultipleNegativesRankingLoss(model, scale=20.0),
                                                                   matryoshka_dims=dims)),
                       ("sorted matryoshka", lambda: MatryoshkaLoss(model, LengthSortedMNRL(model, scale=20.0),
                                                                    matryoshka_dims=dims))):
        model.zero_grad()
        meter.slots = meter.real = 0
        value = make()([dict(c) for c in columns], None)
        value.backward()
        results[name] = (value.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
                         meter.padding_share, meter.slots)
    for stock, ours in (("stock", "sorted"), ("stock matryoshka", "sorted matryoshka")):
        assert results[ours][0] == pytest.approx(results[stock][0], rel=1e-5)
        assert results[ours][1].keys() == results[stock][1].keys() and results[stock][1]
        for name in results[stock][1]:
            torch.testing.assert_close(results[ours][1][name], results[stock][1][name], rtol=1e-4, atol=1e-5)
    assert results["stock"][2] > 0.4 and results["sorted"][2] <= 0.1, (results["stock"][2], results["sorted"][2])
    assert results["sorted matryoshka"][3] == results["sorted"][3]  # Matryoshka reuses the chunks' embeddings


def test_stages_without_gradcache_sort_on_a_cpu_only(minilm_path):
    """``gradcache: false`` with ``length_sorted`` (the default) sorts on a CPU, where compute is the cost,
    and keeps one pass per column on a GPU (a chunk's kernel launches cost more there); ``length_sorted:
    false`` is sentence-transformers' own loss."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from st_code.training.config import StageConfig

    stage = StageConfig(name="s", datasets=["d"], gradcache=False)
    assert sorts_without_gradcache(stage, "cpu") and not any(sorts_without_gradcache(stage, d) for d in ("cuda:0", "mps"))
    model = st_code.build_model(minilm_path, pooling="mean", device="cpu")
    said = []
    loss = stage_loss(model, stage, log=said.append)
    assert type(loss) is LengthSortedMNRL and loss.max_padding == stage.mini_batch_padding
    assert loss.scale == pytest.approx(1 / stage.temperature) and any("at most 10% padding" in s for s in said)
    stage.length_sorted = False
    assert type(stage_loss(model, stage)) is MultipleNegativesRankingLoss
    stage.gradcache, stage.length_sorted = True, True
    assert not sorts_without_gradcache(stage, "cpu")
    with pytest.raises(ValueError, match="max_padding"):
        LengthSortedMNRL(model, max_padding=1.0)


def test_columns_merge_only_when_they_carry_token_rows_alone(tiny_qwen_path):
    model = st_code.build_model(tiny_qwen_path, device="cpu", max_seq_length=64)
    short, long = model.preprocess(["a b"]), model.preprocess(["read the json file line by line", "x"])
    merged = merge_columns([short, long], pad_token_id=7, padding_side="left")
    assert merged["input_ids"].shape == (3, long["input_ids"].shape[1])
    assert merged["attention_mask"][0].tolist()[-short["input_ids"].shape[1]:] == short["attention_mask"][0].tolist()
    assert set(merged["input_ids"][0, :long["input_ids"].shape[1] - short["input_ids"].shape[1]].tolist()) == {7}
    assert merged["modality"] == short["modality"]
    assert merge_columns([short, {**long, "modality": "image"}], 7, "left") is None  # settings differ
    assert merge_columns([short, {**long, "weights": torch.ones(2)}], 7, "left") is None  # another per-row tensor


def _every_cut(n: int):
    """Every way to cut n sorted rows into consecutive mini-batches (2^(n-1) of them)."""
    for mask in range(1 << (n - 1)):
        bounds = [0] + [i + 1 for i in range(n - 1) if mask >> i & 1] + [n]
        yield list(zip(bounds, bounds[1:]))


def test_the_cheapest_cut_is_the_cheapest_of_every_cut():
    rng = random.Random(0)
    for _ in range(60):
        n = rng.randint(1, 9)
        lengths = sorted((rng.randint(1, 200) for _ in range(n)), reverse=True)
        max_rows, max_slots, overhead = rng.randint(1, 6), rng.choice([None, 300, 800]), rng.choice([0, 50, 400])

        def cost(cut):
            return sum(overhead + lengths[b] * (e - b) for b, e in cut)

        def allowed(cut):
            return all(e - b <= max_rows and (max_slots is None or e - b == 1 or lengths[b] * (e - b) <= max_slots)
                       for b, e in cut)

        found = cheapest_ranges(lengths, max_rows, max_slots, overhead)
        assert allowed(found) and [b for b, _ in found] == sorted({b for b, _ in found})
        assert cost(found) == min(cost(cut) for cut in _every_cut(n) if allowed(cut)), (lengths, found)


def test_a_costly_mini_batch_means_fewer_of_them_and_a_free_one_means_no_padding():
    lengths = [100, 90, 50, 48, 47, 46, 10, 10, 10, 9]
    assert cheapest_ranges(lengths, 16, None, overhead_slots=10_000) == [(0, 10)]
    assert cheapest_ranges(lengths, 16, 500, overhead_slots=10_000) == [(0, 2), (2, 10)]  # 200 + 400 slots
    free = cheapest_ranges(lengths, 16, None, overhead_slots=0)
    assert all(len(set(lengths[b:e])) == 1 for b, e in free)


def test_the_cut_follows_the_device_and_the_config():
    """``auto``: the cheapest cut at the token budget on a GPU, the padding rule on a CPU or without a
    budget; a number or null in the config is taken as it is."""
    from st_code.training.config import StageConfig

    stage = StageConfig(name="s", datasets=["d"])
    assert mini_batch_overhead(stage, "cuda:0", 65536) == 65536
    assert mini_batch_overhead(stage, "cpu", None) is None and mini_batch_overhead(stage, "cuda", None) is None
    stage.mini_batch_overhead = 2000
    assert mini_batch_overhead(stage, "cpu", None) == 2000
    stage.mini_batch_overhead = None
    assert mini_batch_overhead(stage, "cuda:0", 65536) is None


def test_mini_batches_end_at_rows_slots_or_padding():
    lengths = [100, 90, 50, 48, 47, 46, 10, 10, 10, 9]
    # padding: 100+90 fill 95% of 2 x 100 slots; adding 50 would leave 80%
    assert length_aware_ranges(lengths, max_rows=8, max_padding=0.1) == [(0, 2), (2, 6), (6, 10)]
    assert length_aware_ranges(lengths, max_rows=3, max_padding=0.1) == [(0, 2), (2, 5), (5, 6), (6, 9), (9, 10)]
    assert length_aware_ranges(lengths, max_rows=8, max_slots=100, max_padding=0.5) == [
        (0, 1), (1, 2), (2, 4), (4, 6), (6, 10)]  # a mini-batch holds at most 100 token slots
    assert length_aware_ranges(lengths, max_rows=16, max_padding=0.99) == [(0, 10)]
    for padding in (0.0, 0.05, 0.2):
        for begin, end in length_aware_ranges(lengths, max_rows=16, max_padding=padding):
            rows = lengths[begin:end]
            assert sum(rows) >= (1 - padding) * len(rows) * rows[0]


def test_trim_padding_keeps_every_real_token_and_positions():
    mask = torch.tensor([[0, 0, 1, 1, 0], [0, 1, 1, 1, 0]])
    feature = {"input_ids": torch.arange(10).view(2, 5), "attention_mask": mask,
               "position_ids": (mask.cumsum(-1) - 1).clamp(min=0)}
    trimmed = trim_padding(feature)
    assert trimmed["attention_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert trimmed["input_ids"].tolist() == [[1, 2, 3], [6, 7, 8]]
    assert trimmed["position_ids"].tolist() == [[0, 0, 1], [0, 1, 2]]
    no_positions = trim_padding({"input_ids": feature["input_ids"], "attention_mask": mask})
    assert no_positions["attention_mask"].shape[1] == 4  # leading padding kept: positions come from the index


def test_mini_batch_auto_halves_until_the_probe_fits():
    """The probe itself needs a GPU (there is none here); its halving logic is checked with a stand-in
    that says which sizes fit, and the CPU rule with the real code path."""
    from st_code.training.memory import CPU_MINI_BATCH, choose_mini_batch_size

    tried: list[int] = []

    def fits(rows: int) -> bool:  # stands in for one forward + backward on the GPU
        tried.append(rows)
        return rows <= 48

    assert choose_mini_batch_size(128, "cuda:0", fits) == 32 and tried == [128, 64, 32]
    tried.clear()
    assert choose_mini_batch_size(96, "cuda", fits) == 32 and tried == [96, 64, 32]  # then powers of two
    assert choose_mini_batch_size(8, "cuda", lambda rows: False) == 1
    assert choose_mini_batch_size(128, "cpu") == CPU_MINI_BATCH and choose_mini_batch_size(4, "cpu") == 4


def test_the_memory_probe_runs_a_training_pass_whatever_mode_the_model_is_in(tiny_qwen_path):
    """mini_batch_size: auto measures what training will hold. A loaded backbone comes in eval mode (and
    encoding leaves it there), which skips gradient checkpointing and dropout: a probe run in it measured
    another pass than the trainer's. The pass itself runs here on the CPU; the GPU's memory counters
    around it (gpu_probe) cannot."""
    import st_code
    from st_code.training.memory import probe_pass
    from st_code.training.models import enable_activation_checkpointing

    model = st_code.build_model(tiny_qwen_path, pooling="pma", lora={"r": 4, "alpha": 8, "dropout": 0.1})
    enable_activation_checkpointing(model)
    model.eval()
    calls: list[str] = []
    layer = model[0].auto_model.layers[0]
    # the attention's start: the checkpoint's recompute stops once it has what the backward needs
    layer.self_attn.register_forward_pre_hook(lambda module, args: calls.append("attention"))
    probe_pass(model, rows=2, max_seq_length=16)
    assert len(calls) == 2  # the forward, then the checkpoint's recompute in the backward: train mode
    assert not model.training and not layer.training  # the mode it was in
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(("key", "value", "error"), [
    ("mini_batch_size", "auto", None), ("mini_batch_size", 8, None),
    ("mini_batch_size", 0, r"\(s\)\.mini_batch_size: a whole number >= 1 or auto"),
    ("mini_batch_size", "big", r"\(s\)\.mini_batch_size: a whole number >= 1 or auto"),
    ("mini_batch_overhead", "auto", None), ("mini_batch_overhead", 4096, None), ("mini_batch_overhead", None, None),
    ("mini_batch_overhead", -1, r"\(s\)\.mini_batch_overhead: token slots \(a whole number >= 0\), auto or null"),
    ("mini_batch_overhead", "high", r"\(s\)\.mini_batch_overhead: token slots"),
    ("mini_batch_overhead", True, r"mini_batch_overhead: expected"),
])
def test_mini_batch_settings_in_the_config(key, value, error):
    from st_code.training import ConfigError, config_from_dict

    config = {"data": {"offline": {"max_pairs_per_task": 10}},
              "stages": [{"name": "s", "datasets": ["offline:Text Retrieval"], key: value}]}
    if error is None:
        assert getattr(config_from_dict(config).stages[0], key) == value
    else:
        with pytest.raises(ConfigError, match=r"stages\[0\].*" + error):
            config_from_dict(config)
