"""Packed rows on every attention implementation st-code packs with: PyTorch's variable-length kernel,
FlexAttention, sdpa, causal and bidirectional. No text attends across its boundary, and the embeddings,
loss and gradients are those of padded rows.

PyTorch's variable-length kernel runs on CUDA only: here it is stood in for by
``st_code.testing.reference_varlen_kernel`` (one sequence at a time through sdpa), so everything around
the kernel (where the sequences come from, grouped heads, the scale, causal or not, padding) runs for
real; the GPU check script runs the kernel itself (benchmarks/gpu_training_check.sh)."""

from __future__ import annotations

import pytest
import torch

import st_code
from st_code.errors import UsageError
from st_code.modules.attention_choice import choose_attention
from st_code.modules.varlen_attention import VARLEN_ATTENTION, register_varlen_attention, torch_varlen_kernel
from st_code.testing import reference_varlen_kernel
from st_code.training.packing import pack_feature, packing_unsupported
from tests.test_packing import _texts


@pytest.fixture(scope="module", autouse=True)
def reference_varlen():
    """The varlen attention registered with the CPU stand-in for PyTorch's CUDA kernel."""
    register_varlen_attention(reference_varlen_kernel)


def _model(path: str, attention: str, bidirectional: bool = False, padding_side: str = "right", **kwargs):
    torch.manual_seed(0)
    return st_code.build_model(path, pooling=kwargs.pop("pooling", "lasttoken"), device="cpu", max_seq_length=64,
                               attn_implementation=attention, bidirectional=bidirectional, padding_side=padding_side,
                               **kwargs).eval()


@pytest.mark.parametrize(("bidirectional", "padding_side"), [(False, "right"), (True, "right"), (True, "left")])
def test_varlen_embeds_padded_and_packed_rows_as_sdpa_does(tiny_qwen_path, bidirectional, padding_side):
    reference = _model(tiny_qwen_path, "sdpa", bidirectional, padding_side, pooling="pma")
    varlen = _model(tiny_qwen_path, VARLEN_ATTENTION, bidirectional, padding_side, pooling="pma")
    assert packing_unsupported(varlen) is None
    feature = varlen.preprocess(_texts(17))
    packed = pack_feature(dict(feature), varlen[0].tokenizer.pad_token_id)
    with torch.no_grad():
        expected = reference(dict(feature))["sentence_embedding"]
        torch.testing.assert_close(varlen(dict(feature))["sentence_embedding"], expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(varlen(packed)["sentence_embedding"], expected, rtol=1e-4, atol=1e-5)


def test_packed_varlen_layers_take_the_offsets_computed_once(tiny_qwen_path, monkeypatch):
    """The backbone reads the packed texts' offsets once and hands them to every layer (as transformers'
    flash-attention keywords), so no layer syncs with the GPU to read them off the position ids again."""
    import st_code.modules.varlen_attention as varlen

    model = _model(tiny_qwen_path, VARLEN_ATTENTION, pooling="pma")
    feature = model.preprocess(_texts(9, seed=3))
    packed = pack_feature(dict(feature), model[0].tokenizer.pad_token_id)
    with torch.no_grad():
        expected = model(dict(feature))["sentence_embedding"]

        def per_layer(*args, **kwargs):
            raise AssertionError("a layer recomputed the packed offsets")

        monkeypatch.setattr(varlen, "sequence_offsets", per_layer)
        torch.testing.assert_close(model(packed)["sentence_embedding"], expected, rtol=1e-4, atol=1e-5)


def _texts_seen_from_outside(model, feature, packed, changed_text: int) -> tuple[float, float]:
    """Change one text's tokens inside the packed rows; return how far that text's own token states and
    the other texts' token states moved."""
    altered = dict(packed)
    ids = packed["input_ids"].clone().view(-1)
    source = packed[next(k for k in packed if k.startswith("st_code_"))].source.view(feature["input_ids"].shape)
    mask = feature["attention_mask"].bool()
    slots = source[changed_text][mask[changed_text]]
    ids[slots] = (ids[slots] + 7) % 1000  # other tokens, same length
    altered["input_ids"] = ids.view(packed["input_ids"].shape)
    with torch.no_grad():
        before = model[0](dict(packed))["token_embeddings"]
        after = model[0](altered)["token_embeddings"]
    moved = (after - before).abs().amax(dim=-1)  # (rows, length)
    others = torch.ones(len(mask), dtype=torch.bool)
    others[changed_text] = False
    return moved[changed_text][mask[changed_text]].max().item(), moved[others][mask[others]].max().item()


@pytest.mark.parametrize("attention", ["sdpa", "eager", VARLEN_ATTENTION])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_no_attention_crosses_a_text_boundary(tiny_qwen_path, attention, bidirectional):
    model = _model(tiny_qwen_path, attention, bidirectional)
    feature = model.preprocess(_texts(9, seed=3))
    packed = pack_feature(dict(feature), model[0].tokenizer.pad_token_id)
    assert packed["input_ids"].shape[0] < 9  # texts do share rows
    for text in range(9):
        own, others = _texts_seen_from_outside(model, feature, packed, text)
        assert own > 1e-3  # the change is seen where it should be...
        assert others == 0.0  # ...and nowhere else


def test_transformers_alone_would_let_packed_bidirectional_texts_see_each_other(tiny_qwen_path):
    """Why the backbone hands a bidirectional model its own document mask: without it (the model called
    directly), a packed text's token states depend on its row neighbours."""
    model = _model(tiny_qwen_path, "sdpa", bidirectional=True)
    feature = model.preprocess(_texts(9, seed=3))
    packed = pack_feature(dict(feature), model[0].tokenizer.pad_token_id)
    ids = packed["input_ids"]
    altered = ids.clone()
    altered[0, 0] = (altered[0, 0] + 7) % 1000
    with torch.no_grad():
        before = model[0].model(input_ids=ids, position_ids=packed["position_ids"]).last_hidden_state
        after = model[0].model(input_ids=altered, position_ids=packed["position_ids"]).last_hidden_state
    assert (after[0, -1] - before[0, -1]).abs().max() > 1e-3  # the row's last text saw the first one change


def test_flex_attention_packs_causal_and_bidirectional_texts(tiny_qwen_path):
    """FlexAttention (compiled once per process: slow on a CPU, so one test): causal texts through
    transformers' packed block mask, bidirectional ones through the backbone's document block mask."""
    for bidirectional in (False, True):
        reference = _model(tiny_qwen_path, "sdpa", bidirectional)
        flex = _model(tiny_qwen_path, "flex_attention", bidirectional)
        feature = flex.preprocess(_texts(9, seed=3))
        packed = pack_feature(dict(feature), flex[0].tokenizer.pad_token_id)
        with torch.no_grad():
            expected = reference(dict(feature))["sentence_embedding"]
            torch.testing.assert_close(flex(packed)["sentence_embedding"], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_varlen_training_gives_the_stock_loss_and_gradients(tiny_qwen_path, bidirectional):
    """GradCache over packed varlen mini-batches (LoRA on every projection) against sentence-transformers'
    own GradCache over padded sdpa ones, from the same weights."""
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    from st_code.training.losses import LengthSortedCachedMNRL

    lora = {"r": 4, "alpha": 8, "dropout": 0.0}
    results = []
    for attention, make_loss in (
            ("sdpa", lambda m: CachedMultipleNegativesRankingLoss(m, scale=20.0, mini_batch_size=3)),
            (VARLEN_ATTENTION, lambda m: LengthSortedCachedMNRL(m, scale=20.0, mini_batch_size=36,
                                                                mini_batch_num_tokens=512, pack=True))):
        model = _model(tiny_qwen_path, attention, bidirectional, pooling="pma", lora=lora).train()
        columns = [model.preprocess(_texts(12, seed)) for seed in range(3)]
        value = make_loss(model)([dict(c) for c in columns], None)
        value.backward()
        results.append((value.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (stock_loss, stock_grads), (packed_loss, packed_grads) = results
    assert packed_loss == pytest.approx(stock_loss, rel=1e-5)
    assert stock_grads.keys() == packed_grads.keys() and any("lora_" in name for name in stock_grads)
    for name in stock_grads:
        torch.testing.assert_close(packed_grads[name], stock_grads[name], rtol=1e-4, atol=1e-5)


def test_the_torch_kernel_adapter_folds_what_an_older_signature_lacks(monkeypatch):
    """PyTorch 2.10-2.11's ``varlen_attn(q, k, v, cu_q, cu_k, max_q, max_k, is_causal=...)`` has no scale
    and no grouped heads: the adapter repeats the kv heads and folds the scale into the query. Checked
    against the reference with an old-signature stand-in (the real kernel needs CUDA)."""
    import torch.nn.attention.varlen as varlen_module

    def old_varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False):
        assert key.shape[1] == query.shape[1] and query.dtype == torch.bfloat16
        return reference_varlen_kernel(query.float(), key.float(), value.float(), cu_seq_q, max_q, causal=is_causal,
                                       scale=None).to(query.dtype)

    monkeypatch.setattr(varlen_module, "varlen_attn", old_varlen_attn)
    kernel = torch_varlen_kernel()
    torch.manual_seed(0)
    query, key, value = torch.randn(10, 4, 8), torch.randn(10, 2, 8), torch.randn(10, 2, 8)
    offsets = torch.tensor([0, 3, 10], dtype=torch.int32)
    for causal in (False, True):
        got = kernel(query, key, value, offsets, 7, causal=causal, scale=0.2)
        assert got.dtype == torch.float32
        expected = reference_varlen_kernel(query, key, value, offsets, 7, causal=causal, scale=0.2)
        torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-2)  # bf16 inside, as the flash kernel


def test_auto_says_which_attention_it_picked_and_why():
    assert choose_attention("auto", "cpu") == ("sdpa", "auto on cpu: sdpa")
    assert choose_attention(None) == (None, "transformers' default")
    assert choose_attention("eager") == ("eager", "as configured")
    if not torch.cuda.is_available():  # this machine: the reasons each faster choice is out are named
        name, why = choose_attention("auto", "cuda")
        assert name == "sdpa" and "varlen: no CUDA GPU is visible" in why


def test_settings_that_cannot_run_here_are_refused_with_the_fix(tiny_qwen_path):
    with pytest.raises(UsageError, match="attn_implementation 'varlen': its flash kernels run on CUDA GPUs, not on "
                                         "cpu; use auto, sdpa or flex_attention"):
        st_code.build_model(tiny_qwen_path, device="cpu", attn_implementation="varlen")
    with pytest.raises(UsageError, match=r"liger_kernel: true, but liger-kernel is not installed \(pip install "
                                         r"liger-kernel\)|liger_kernel: true, but its Triton kernels run on CUDA"):
        st_code.build_model(tiny_qwen_path, device="cpu", liger_kernel=True)
    st_code.build_model(tiny_qwen_path, device="cpu", liger_kernel="auto")  # auto: off where it cannot run


def test_a_model_trained_on_varlen_saves_a_plain_folder(tiny_qwen_path, tmp_path):
    """The attention choice is not saved: the folder loads anywhere with sentence-transformers alone."""
    from sentence_transformers import SentenceTransformer

    from st_code.training.config import ModelConfig
    from st_code.training.models import load_stage_model

    model = _model(tiny_qwen_path, VARLEN_ATTENTION, pooling="pma")
    model.save(str(tmp_path / "m"))
    plain = SentenceTransformer(str(tmp_path / "m"), device="cpu", trust_remote_code=True)
    assert plain[0].model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(plain.encode(["def f(): pass"], convert_to_tensor=True),
                               model.encode(["def f(): pass"], convert_to_tensor=True), rtol=1e-4, atol=1e-5)
    # the next stage of a curriculum reloads it on the configured attention
    reloaded = load_stage_model(tmp_path / "m", ModelConfig(attn_implementation=VARLEN_ATTENTION))
    assert reloaded[0].model.config._attn_implementation == VARLEN_ATTENTION


def test_attention_the_kernels_cannot_compute_is_refused(tiny_qwen_path, tmp_path):
    """Sliding-window layers narrower than the texts: the varlen kernel is refused when named (auto falls
    back to sdpa), and a bidirectional model's per-text mask, which has no window, does not pack."""
    import json
    import shutil

    folder = tmp_path / "sliding"
    shutil.copytree(tiny_qwen_path, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(use_sliding_window=True, sliding_window=8, max_window_layers=0, layer_types=None)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="sliding-window layers of 8 tokens and texts up to 64; use sdpa"):
        _model(str(folder), VARLEN_ATTENTION)
    assert "sliding-window layers (8 tokens)" in packing_unsupported(_model(str(folder), "sdpa", bidirectional=True))
    assert packing_unsupported(_model(str(folder), "sdpa")) is None  # causal: transformers windows packed texts


def test_a_bidirectional_curriculum_packs_on_varlen_and_saves_a_portable_model(tiny_qwen_path, tmp_path):
    """Across the seams: a config naming the varlen attention and bidirectional attention trains its packed
    stage through the real curriculum, says which attention it used, and the saved folder loads with
    sentence-transformers alone (its bidirectional module ships in the folder) on sdpa, giving the
    trained model's own embeddings."""
    from sentence_transformers import SentenceTransformer

    from st_code.training import CurriculumRunner, config_from_dict
    from tests.test_curriculum import tiny_config

    config = tiny_config(tiny_qwen_path, tmp_path / "run")
    config["model"].update(bidirectional=True, attn_implementation=VARLEN_ATTENTION)
    config["stages"] = config["stages"][:2]  # text, then the packed mixed stage
    config["evaluation"]["max_queries"] = 5
    logs: list[str] = []
    CurriculumRunner(config_from_dict(config), log=logs.append).run()
    assert f"attention: {VARLEN_ATTENTION}" in logs
    assert any("rows packed side by side" in line for line in logs)
    plain = SentenceTransformer(str(tmp_path / "run" / "final"), device="cpu", trust_remote_code=True)
    assert plain[0].model.config._attn_implementation == "sdpa" and not plain[0].model.config.is_causal
    trained = st_code.load_model(tmp_path / "run" / "final", device="cpu",
                                 model_kwargs={"attn_implementation": VARLEN_ATTENTION})
    texts = ["def read_json(path): ...", "parse a json file"]
    expected = trained.encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(plain.encode(texts, convert_to_tensor=True), expected, rtol=1e-4, atol=1e-5)
