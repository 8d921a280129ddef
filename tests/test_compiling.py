"""Regional torch.compile (compile: true): each layer compiled in place, the maths and the model untouched.

The tests compile with the ``eager`` backend: TorchDynamo captures and guards the layers exactly as for
inductor (graph breaks, recompiles, side effects of peft's and st-code's hooks), without inductor's code
generation, which takes minutes on 2 CPU cores and is PyTorch's to test. Inductor itself was checked by
hand on this CPU (docs/training.md) and is what the GPU benchmark runs. A whole curriculum compiled,
across a LoRA merge, is test_curriculum's continuous-optimizer run."""

from __future__ import annotations

import copy
import random

import pytest
import torch

import st_code



def _model(tiny_qwen_path):
    from st_code.training.config import ModelConfig
    from st_code.training.models import build_training_model

    torch.manual_seed(0)
    model = build_training_model(ModelConfig(base=tiny_qwen_path, pooling="pma", embedding_dim=32, pma_num_heads=4,
                                             lora={"r": 4, "alpha": 8, "dropout": 0.3}, max_seq_length=64))
    with torch.no_grad():  # a trained adapter: B is zero at the start, which would hide the dropout
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    return model.train()  # as the trainer sets it: the loaded backbone comes in eval mode, which skips checkpointing


class _Recording:
    """Each GradCache mini-batch's embeddings: its pass without gradients, then its replay."""

    def __init__(self) -> None:
        from st_code.training.losses import LengthSortedCachedMNRL

        self.passes: dict[tuple, list[torch.Tensor]] = {}
        passes = self.passes

        class Loss(LengthSortedCachedMNRL):
            def embed_minibatch(self, sentence_feature, begin, end, with_grad, copy_random_state, random_state=None):
                reps, state = super().embed_minibatch(sentence_feature, begin, end, with_grad, copy_random_state,
                                                      random_state)
                passes.setdefault((begin, end), []).append(reps.detach().clone())
                return reps, state

        self.loss = Loss

    def replays_match(self) -> bool:
        return len(self.passes) > 1 and all(len(p) == 2 and torch.equal(p[0], p[1]) for p in self.passes.values())

    def step(self, model, features) -> tuple[float, torch.Tensor]:
        """One packed GradCache loss and backward: the loss and every gradient, flattened."""
        self.passes.clear()
        torch.manual_seed(1)
        value = self.loss(model, scale=20, mini_batch_size=8, mini_batch_num_tokens=96, pack=True)(
            [dict(f) for f in features], torch.zeros(8))
        value.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        model.zero_grad(set_to_none=True)
        return value.item(), grads


def _features(model) -> list[dict]:
    words = "parse read the config file and merge two sorted lists of values into one".split()
    rows = [" ".join(random.Random(i).choices(words, k=3 + i % 9)) for i in range(24)]
    return [model.preprocess(rows[c::3]) for c in range(3)]


def _same(got, expected) -> None:
    assert got[0] == expected[0]
    torch.testing.assert_close(got[1], expected[1], rtol=0, atol=0)


def test_compiled_layers_train_with_the_same_loss_gradients_and_dropout_masks(tiny_qwen_path, tmp_path):
    from torch._dynamo.utils import counters

    from st_code.training.compiling import compiled_layers

    model = _model(tiny_qwen_path)
    recording = _Recording()
    features = _features(model)

    def step(m) -> tuple[float, torch.Tensor]:
        return recording.step(m, features)

    reference = step(model)
    twin = copy.deepcopy(model)  # stays uncompiled
    names = list(model.state_dict())
    counters.clear()
    with compiled_layers(model, backend="eager") as blocks:
        assert blocks == 2  # the tiny decoder's two layers
        for _ in range(2):
            _same(step(model), reference)
            # GradCache's replay sees the dropout masks of its pass without gradients
            assert recording.replays_match()
        assert counters["stats"]["unique_graphs"] > 0 and not counters["graph_break"]
        assert list(model.state_dict()) == names  # in place: the same parameter names, saving untouched
        # CodeXEmbed's next stage: the adapter merged into the compiled layers, a fresh one trained in them
        for m in (model, twin):
            st_code.merge_lora(m)
            torch.manual_seed(2)
            st_code.add_lora(m, r=4, alpha=8, dropout=0.3)
            with torch.no_grad():
                for name, parameter in m.named_parameters():
                    if "lora_B" in name:
                        parameter.normal_(0, 0.5)
        _same(step(model), step(twin))
        assert all(layer._compiled_call_impl is not None for layer in model[0].auto_model.layers)
    # after training, the layers run eagerly again (filters, evaluation, saving: no compile for one pass)
    assert not any(getattr(m, "_compiled_call_impl", None) for m in model.modules())
    _same(step(model), step(twin))


def test_compiled_checkpointed_layers_recompute_with_their_forward_dropout_masks(tiny_qwen_path):
    """compile with gradient_checkpointing: a checkpointed layer is recomputed in the backward and must draw
    its forward's dropout masks again. AOTAutograd's backends (aot_eager here, inductor checked by hand) do;
    the eager backend runs PyTorch's checkpoint without preserving the random state, its gradients were
    silently wrong (measured: off by 61 on this model), so it is refused."""
    from st_code.errors import UsageError
    from st_code.training.compiling import compile_blocks, compiled_layers
    from st_code.training.models import enable_activation_checkpointing

    model = _model(tiny_qwen_path)
    recording = _Recording()
    features = _features(model)
    reference = recording.step(model, features)  # uncompiled, not checkpointed
    enable_activation_checkpointing(model)
    assert all(layer.gradient_checkpointing and layer.training for layer in model[0].auto_model.layers)
    with pytest.raises(UsageError, match="eager with gradient_checkpointing"):
        compile_blocks(model, backend="eager")
    with compiled_layers(model, backend="aot_eager"):
        loss, grads = recording.step(model, features)
        assert recording.replays_match()
    # AOTAutograd's decompositions may round differently (torch 2.6: 1e-5 apart; 2.13: identical); other
    # masks were 61 apart
    assert loss == pytest.approx(reference[0], abs=1e-5)
    torch.testing.assert_close(grads, reference[1], rtol=0, atol=1e-4)


def test_compile_refuses_a_model_without_repeated_layers_and_unknown_settings(tiny_qwen_path):
    from torch import nn

    from st_code.errors import UsageError
    from st_code.training.compiling import compile_blocks, repeated_blocks

    assert len(repeated_blocks(_model(tiny_qwen_path)[0].auto_model)) == 2
    with pytest.raises(UsageError, match="no repeated layers"):
        compile_blocks(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(UsageError, match="compile_backend: 'fastest'"):
        compile_blocks(_model(tiny_qwen_path), backend="fastest")
    # and in a config, before anything is built
    from st_code.training import ConfigError, config_from_dict

    config = {"data": {"offline": None, "sources": {}}, "stages": [{"name": "s", "datasets": ["x"]}],
              "evaluation": {"sets": []}, "compile": True}
    with pytest.raises(ConfigError, match="compile_mode: 'fast'; use one of"):
        config_from_dict({**config, "compile_mode": "fast"})
    with pytest.raises(ConfigError, match="compile_backend: 'fastest' is not a torch.compile backend"):
        config_from_dict({**config, "compile_backend": "fastest"})
    with pytest.raises(ConfigError, match="compile_mode: reduce-overhead is an inductor mode, and compile_backend is "
                                          "aot_eager"):
        config_from_dict({**config, "compile_backend": "aot_eager", "compile_mode": "reduce-overhead"})
    with pytest.raises(ConfigError, match="unknown dataset 'x'"):  # "default" is unset: checked on past it
        config_from_dict({**config, "compile_backend": "aot_eager", "compile_mode": "default"})
    with pytest.raises(ConfigError, match="compile_backend: eager with gradient_checkpointing"):
        config_from_dict({**config, "compile_backend": "eager", "gradient_checkpointing": True})


class _GraphPoolStandIn:
    """Stands in for PyTorch's CUDA graph trees, which need a GPU: a compiled call's outputs live in the
    graphs' memory pool, and a call entered while no backward is pending starts a new generation, which
    overwrites the previous call's outputs (here with NaN) before it runs."""

    def __init__(self) -> None:
        self.live: list[torch.Tensor] = []
        self.overwritten = 0

    def compiled(self, call):
        from torch.utils._pytree import tree_leaves

        def run(*args, **kwargs):
            if self.live and not any(t.requires_grad for t in self.live):  # no backward pending
                with torch.no_grad():
                    for tensor in self.live:
                        tensor.fill_(float("nan"))
                self.overwritten += 1
            out = call(*args, **kwargs)
            self.live = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
            return out

        return run


def test_cuda_graph_modes_keep_a_layers_output_for_the_next_layer_without_gradients(tiny_qwen_path):
    """GradCache's first pass runs every layer without gradients. Under CUDA graphs each compiled layer's
    call would free its predecessor's output, its own input (pytorch/pytorch#160281), so compile_blocks
    copies such outputs out of the pool. The pool is a stand-in here (no GPU): with the copies, the packed
    loss and gradients are eager PyTorch's to the last bit; without them, its first pass reads NaN."""
    from st_code.training.compiling import compile_blocks, compiled_layers, outputs_kept_past_the_next_call

    model = _model(tiny_qwen_path)
    recording = _Recording()
    features = _features(model)
    reference = recording.step(model, features)
    layers = model[0].auto_model.layers
    for keep_outputs in (True, False):
        pool = _GraphPoolStandIn()
        for layer in layers:  # what compile_blocks does in a CUDA graph mode, the stand-in as the compiler
            compiled = pool.compiled(layer._call_impl)
            layer._compiled_call_impl = outputs_kept_past_the_next_call(compiled) if keep_outputs else compiled
        loss, grads = recording.step(model, features)
        assert pool.overwritten > 0  # the pool did overwrite outputs between calls
        if keep_outputs:
            _same((loss, grads), reference)
        else:
            assert loss != loss  # NaN: a layer read its predecessor's overwritten output
        for layer in layers:
            layer._compiled_call_impl = None
    # an output that needs a gradient stays where autograd saved it; one that does not is a copy
    kept = outputs_kept_past_the_next_call(lambda x: (x * 2, {"plain": x.detach() + 1}))
    source = torch.ones(3, requires_grad=True)
    with_grad, rest = kept(source)
    assert with_grad.requires_grad and with_grad.grad_fn is not None
    with torch.no_grad():
        without_grad, _ = kept(source)
    assert not without_grad.requires_grad and torch.equal(without_grad, torch.full((3,), 2.0))
    # the premise: each compiled layer's call is a torch.compile invocation of its own, which is what CUDA graph
    # trees count generations by (torch._dynamo's generation counter, whatever the backend)
    from torch._dynamo.mutation_guard import GenerationTracker

    with compiled_layers(model, backend="eager"), torch.no_grad():
        model(dict(features[0]))
        before = GenerationTracker.generation
        model(dict(features[0]))
        assert GenerationTracker.generation - before == len(layers)
    # compile_blocks installs the copies in the CUDA graph modes only (compiling is lazy: nothing runs here)
    for mode, wrapped in (("reduce-overhead", True), ("max-autotune", True), ("max-autotune-no-cudagraphs", False),
                          (None, False)):
        with compiled_layers(model, backend="inductor", mode=mode):
            assert all(_keeps_outputs(layer) == wrapped for layer in layers), mode
    assert compile_blocks(model, backend="eager") == 2 and not _keeps_outputs(layers[0])


def _keeps_outputs(layer) -> bool:
    return layer._compiled_call_impl.__qualname__.startswith("outputs_kept_past_the_next_call")


def test_cuda_graphs_with_gradcache_are_refused_before_any_data_is_read(tiny_qwen_path, tmp_path, monkeypatch):
    """On an H200 (torch 2.11) layers compiled as CUDA graphs died of a segmentation fault in the backward of
    GradCache's replay, so a run that would combine them stops when its model is built, naming the stage and
    the fix. No GPU exists here: the curriculum's device is named a CUDA one to ``records_cuda_graphs``."""
    from st_code.errors import UsageError
    from st_code.training import CurriculumRunner, config_from_dict
    from st_code.training import compiling, curriculum
    from st_code.training.config import StageConfig
    from tests.test_curriculum import tiny_config

    monkeypatch.delenv(compiling.ALLOW_CUDA_GRAPHS_WITH_GRADCACHE, raising=False)
    monkeypatch.setattr(curriculum, "records_cuda_graphs",
                        lambda compile, mode, device: compiling.records_cuda_graphs(compile, mode, "cuda:0"))
    config = {**tiny_config(tiny_qwen_path, tmp_path / "run"), "compile": True, "compile_backend": "inductor",
              "compile_mode": "reduce-overhead"}
    with pytest.raises(UsageError, match="stage 'text': compile_mode runs the compiled layers as CUDA graphs, and this "
                                         "stage trains with GradCache.*Use compile_mode: default"):
        CurriculumRunner(config_from_dict(config), log=lambda _: None).run()
    assert not (tmp_path / "run" / "data").exists()
    # compiled without CUDA graphs passes the check (the run is not taken further here: inductor takes minutes)
    for mode in ("default", "max-autotune-no-cudagraphs", None):
        assert not compiling.records_cuda_graphs(True, mode, "cuda:0")
    # the check itself: only CUDA graphs and GradCache together, unless a measurement asks for it
    with_gradcache, without = StageConfig(name="g", datasets=["x"]), StageConfig(name="p", datasets=["x"], gradcache=False)
    compiling.check_cuda_graphs_with_gradcache(False, with_gradcache)
    compiling.check_cuda_graphs_with_gradcache(True, without)
    with pytest.raises(UsageError, match="stage 'g'.*ST_CODE_ALLOW_CUDA_GRAPHS_WITH_GRADCACHE=1"):
        compiling.check_cuda_graphs_with_gradcache(True, with_gradcache)
    monkeypatch.setenv(compiling.ALLOW_CUDA_GRAPHS_WITH_GRADCACHE, "1")
    compiling.check_cuda_graphs_with_gradcache(True, with_gradcache)
