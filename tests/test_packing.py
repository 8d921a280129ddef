"""Sequence packing: rows side by side in a mini-batch compute what padded rows do, with less padding."""

from __future__ import annotations

import random

import pytest
import torch
from sentence_transformers import SentenceTransformer

import st_code
from st_code.errors import UsageError
from st_code.training.packing import first_fit, pack_feature, packed_ranges, packed_slots, packing_unsupported

WORDS = "def return self value parse json line key sort merge ( ) : + = if else for in".split()


def _texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.choice([1, 2, 4, 7, 15, 30, 45]))) for _ in range(count)]


def test_first_fit_places_every_row_once_within_the_width():
    rng = random.Random(1)
    for _ in range(200):
        lengths = [rng.randint(1, 20) for _ in range(rng.randint(1, 30))]
        width = max(lengths)
        bin_of, offset_of, used = first_fit(lengths, width)
        slots = [set() for _ in used]
        for row, length in enumerate(lengths):
            taken = set(range(offset_of[row], offset_of[row] + length))
            assert not taken & slots[bin_of[row]] and max(taken) < width
            slots[bin_of[row]] |= taken
        assert [len(s) for s in slots] == used and sum(used) == sum(lengths)
        assert len(used) <= len(lengths)
    with pytest.raises(ValueError, match="does not fit a packing width of 3"):
        first_fit([4], 3)


def test_packed_ranges_fill_the_budget_and_no_more():
    rng = random.Random(2)
    for _ in range(200):
        lengths = sorted((rng.randint(1, 64) for _ in range(rng.randint(1, 40))), reverse=True)
        budget = rng.choice([None, 64, 200, 1000])
        ranges = packed_ranges(lengths, 4, budget)
        limit = budget if budget is not None else 4 * lengths[0]
        assert ranges[0][0] == 0 and ranges[-1][1] == len(lengths)
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        for begin, end in ranges:
            slots = packed_slots(lengths, [(begin, end)])
            assert slots <= limit or end - begin == 1  # a row wider than the budget goes alone
            if end < len(lengths):  # one more row would not have fit
                assert packed_slots(lengths, [(begin, end + 1)]) > limit
    assert packed_ranges([], 4, None) == []


@pytest.mark.parametrize(("pooling", "padding_side", "attention"),
                         [("pma", "right", "sdpa"), ("lasttoken", "right", "sdpa"), ("pma", "left", "sdpa"),
                          ("lasttoken", "right", "eager")])
def test_packed_rows_embed_as_padded_rows(tiny_qwen_path, pooling, padding_side, attention):
    torch.manual_seed(0)
    model = st_code.build_model(tiny_qwen_path, pooling=pooling, padding_side=padding_side, device="cpu",
                                attn_implementation=attention, max_seq_length=64).eval()
    assert packing_unsupported(model) is None
    feature = model.preprocess(_texts(17))
    packed = pack_feature(dict(feature), model[0].tokenizer.pad_token_id)
    assert packed["input_ids"].shape[0] < feature["input_ids"].shape[0]  # fewer rows: short texts share one
    assert "attention_mask" not in packed  # transformers reads the sequences off the position ids
    with torch.no_grad():
        padded_out = model(dict(feature))["sentence_embedding"]
        packed_out = model(packed)["sentence_embedding"]
    torch.testing.assert_close(packed_out, padded_out, rtol=1e-4, atol=1e-5)


def test_models_packing_cannot_serve_say_why(tiny_qwen_path, minilm_path):
    encoder = st_code.build_model(minilm_path, pooling="mean", device="cpu", max_seq_length=32)
    assert "encoder" in packing_unsupported(encoder)
    assert packing_unsupported(st_code.build_model(tiny_qwen_path, bidirectional=True, device="cpu")) is None
    assert "not st-code's CodeTransformer" in packing_unsupported(SentenceTransformer(minilm_path, device="cpu"))
    from st_code.training.config import StageConfig
    from st_code.training.losses import LengthSortedCachedMNRL
    from st_code.training.stage_loss import stage_loss

    stage = StageConfig(name="s", datasets=["offline:Text Retrieval"], mini_batch_size=4, pack_sequences=True)
    with pytest.raises(UsageError, match="stage 's': pack_sequences: true, but the backbone is an encoder"):
        stage_loss(encoder, stage)
    with pytest.raises(UsageError, match="sequence packing: the backbone is an encoder"):
        LengthSortedCachedMNRL(encoder, pack=True)


@pytest.mark.parametrize(("stage", "error"), [
    ({"pack_sequences": True}, None),
    ({"pack_sequences": "auto"}, None),
    ({"pack_sequences": "auto", "length_sorted": False}, None),  # auto just does not pack there
    ({"pack_sequences": "yes"}, r"pack_sequences: true, false or auto, got 'yes'"),
    ({"pack_sequences": True, "length_sorted": False}, r"pack_sequences: packs GradCache's length-sorted"),
    ({"pack_sequences": True, "gradcache": False}, r"pack_sequences: .* it needs gradcache: true and length_sorted: true"),
])
def test_pack_sequences_in_the_config(stage, error):
    from st_code.training import ConfigError, config_from_dict

    config = {"data": {"offline": {"max_pairs_per_task": 10}},
              "stages": [{"name": "s", "datasets": ["offline:Text Retrieval"], **stage}]}
    if error is None:
        assert config_from_dict(config).stages[0].pack_sequences == stage["pack_sequences"]
    else:
        with pytest.raises(ConfigError, match=r"stages\[0\]( \(s\))?\." + error):
            config_from_dict(config)


def test_a_run_that_cannot_pack_stops_before_reading_data(tiny_qwen_path, minilm_path, tmp_path):
    """The check runs when the model is built, not minutes later at the packed stage's start."""
    from st_code.training import CurriculumRunner, config_from_dict
    from tests.test_curriculum import tiny_config

    config = tiny_config(tiny_qwen_path, tmp_path / "run")
    config["model"]["base"] = minilm_path  # the mixed stage packs: refused for an encoder
    with pytest.raises(UsageError, match="stage 'mixed': pack_sequences: true, but the backbone is an encoder"):
        CurriculumRunner(config_from_dict(config), log=lambda _: None).run()
    assert not (tmp_path / "run" / "data").exists()
    # the setup it recorded does not stand in the way of the corrected config's run (no --overwrite needed)
    from st_code.training.run_state import prepare_output, run_identity

    config["model"]["base"] = tiny_qwen_path
    said: list[str] = []
    assert prepare_output(tmp_path / "run", run_identity(config_from_dict(config)), log=said.append)
    assert said and said[0].endswith("stopped before training anything; this run takes its place")


def test_the_default_packs_on_a_gpu_where_the_model_can(tiny_qwen_path, minilm_path):
    """``pack_sequences: auto`` (the default): packed on a CUDA device for length-sorted GradCache and a
    model that can, never on a CPU, and a model that cannot is trained unpacked with the reason logged.
    No GPU exists here: the device is named rather than taken from the parameters."""
    from st_code.training.config import StageConfig
    from st_code.training.packing import stage_packs

    decoder = st_code.build_model(tiny_qwen_path, device="cpu", max_seq_length=32)
    encoder = st_code.build_model(minilm_path, pooling="mean", device="cpu", max_seq_length=32)
    stage = StageConfig(name="s", datasets=["offline:Text Retrieval"])
    assert stage.pack_sequences == "auto"
    assert stage_packs(decoder, stage, device="cuda:0")
    assert not stage_packs(decoder, stage)  # the parameters are on the CPU
    assert not stage_packs(decoder, StageConfig(name="s", datasets=["x"], length_sorted=False), device="cuda:0")
    assert not stage_packs(decoder, StageConfig(name="s", datasets=["x"], pack_sequences=False), device="cuda:0")
    logs: list[str] = []
    assert not stage_packs(encoder, stage, logs.append, device="cuda:0")
    assert logs == ["  pack_sequences auto: not packed, the backbone is an encoder; packing is for decoders"]
    assert not stage_packs(SentenceTransformer(minilm_path, device="cpu"), stage, device="cuda:0")
    assert stage_packs(decoder, StageConfig(name="s", datasets=["x"], pack_sequences=True))  # asked: packs anywhere


def test_rounded_packed_ranges_stay_within_the_budget():
    """Rounded up, a packed mini-batch's shape is a multiple of the rows and width asked for, unless the
    budget has no room for the rounded rows; its slots never pass the budget unless one row alone does."""
    from st_code.training.packing import ShapeMultiple, packed_shape

    rng = random.Random(3)
    multiple = ShapeMultiple(rows=4, width=16)
    for _ in range(200):
        lengths = sorted((rng.randint(1, 64) for _ in range(rng.randint(1, 40))), reverse=True)
        budget = rng.choice([64, 200, 1000])
        for begin, end in packed_ranges(lengths, 4, budget, multiple):
            rows, width = packed_shape(lengths[begin:end], multiple, 4, budget)
            assert width % 16 == 0 and width >= max(lengths[begin:end])
            exact_rows = len(first_fit(lengths[begin:end], width)[2])
            assert rows >= exact_rows and (rows % 4 == 0 or (rows + 1) * width > budget)
            assert rows * width <= budget or end - begin == 1
            assert packed_slots(lengths, [(begin, end)], multiple, 4, budget) == rows * width
    exact = sorted((rng.randint(1, 64) for _ in range(30)), reverse=True)
    assert packed_ranges(exact, 4, 1000, None) == packed_ranges(exact, 4, 1000)  # no multiple: as before
    from st_code.training.packing import packed_rows

    assert packed_rows(3, 2048, ShapeMultiple(8, 128), max_slots=1024) == 3  # wider than the budget: no filler
    assert packed_rows(3, 128, ShapeMultiple(8, 128), max_slots=640) == 5  # filler only while the budget has room
    assert packed_rows(3, 128, ShapeMultiple(8, 128), max_rows=16) == 8


def test_rounded_packed_shapes_give_the_stock_loss_and_gradients(tiny_qwen_path):
    """The filler rows and slots of a rounded shape are padding: the loss and gradients stay those of
    sentence-transformers' own GradCache, and every packed mini-batch has the rounded shape."""
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    from st_code.training.losses import LengthSortedCachedMNRL
    from st_code.training.packing import PACKED_ROWS, ShapeMultiple

    torch.manual_seed(0)
    model = st_code.build_model(tiny_qwen_path, pooling="pma", lora={"r": 4, "alpha": 8, "dropout": 0.0},
                                device="cpu", max_seq_length=64)
    shapes: list[tuple[int, int]] = []
    model[0].register_forward_pre_hook(
        lambda module, args: shapes.append(tuple(args[0]["input_ids"].shape)) if PACKED_ROWS in args[0] else None)
    columns = [model.preprocess(_texts(12, seed)) for seed in range(3)]
    results = []
    for loss in (CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=3),
                 LengthSortedCachedMNRL(model, scale=20.0, mini_batch_size=36, mini_batch_num_tokens=1024, pack=True,
                                        shape_multiple=ShapeMultiple(rows=4, width=32))):
        model.zero_grad()
        value = loss([dict(c) for c in columns], None)
        value.backward()
        results.append((value.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    assert shapes and all(rows % 4 == 0 and width % 32 == 0 and rows * width <= 1024 for rows, width in shapes)
    (stock_loss, stock_grads), (packed_loss, packed_grads) = results
    assert packed_loss == pytest.approx(stock_loss, rel=1e-5)
    for name in stock_grads:
        torch.testing.assert_close(packed_grads[name], stock_grads[name], rtol=1e-4, atol=1e-5)


def test_shapes_are_rounded_where_the_layers_record_cuda_graphs():
    """``packed_shape_multiple: auto`` rounds only where compiled layers run as CUDA graphs: compiled, in
    reduce-overhead or max-autotune mode, on a CUDA device (named here: no GPU exists in the tests)."""
    from st_code.training.compiling import records_cuda_graphs
    from st_code.training.packing import CUDA_GRAPH_SHAPE_MULTIPLE, ShapeMultiple, resolve_shape_multiple

    assert records_cuda_graphs(True, "reduce-overhead", "cuda:0") and records_cuda_graphs(True, "max-autotune", "cuda")
    assert not records_cuda_graphs(True, "reduce-overhead", "cpu")  # inductor skips CUDA graphs off a GPU
    assert not records_cuda_graphs(False, "reduce-overhead", "cuda:0")
    assert not records_cuda_graphs(True, "max-autotune-no-cudagraphs", "cuda:0")
    assert not records_cuda_graphs(True, None, "cuda:0")
    assert resolve_shape_multiple("auto", True) == CUDA_GRAPH_SHAPE_MULTIPLE == ShapeMultiple(8, 128)
    assert resolve_shape_multiple("auto", False) is None
    assert resolve_shape_multiple(None, True) is None
    assert resolve_shape_multiple([2, 64], False) == ShapeMultiple(2, 64)  # asked for: rounded anywhere
    with pytest.raises(ValueError, match="ShapeMultiple.width: a whole number >= 1, got 0"):
        ShapeMultiple(8, 0)


@pytest.mark.parametrize(("value", "error"), [
    ("auto", None), (None, None), ([8, 128], None), ([1, 1], None),
    ([8, 0], r"packed_shape_multiple: \[rows, width\] \(whole numbers >= 1, e.g. \[8, 128\]\), null or auto, "
             r"got \[8, 0\]"),
    ([8], "got \\[8\\]"), ("yes", "got 'yes'"), ([True, 128], "got \\[True, 128\\]"),
])
def test_packed_shape_multiple_in_the_config(value, error):
    from st_code.training import ConfigError, config_from_dict

    config = {"data": {"offline": {"max_pairs_per_task": 10}}, "packed_shape_multiple": value,
              "stages": [{"name": "s", "datasets": ["offline:Text Retrieval"]}]}
    if error is None:
        assert config_from_dict(config).packed_shape_multiple == value
    else:
        with pytest.raises(ConfigError, match=error):
            config_from_dict(config)
