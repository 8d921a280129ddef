"""The backbone module: sentence-transformers' ``Transformer`` with what code LLM embedders need.

* Every input ends in an EOS token, even when truncated (CodeR appends EOS to queries and
  documents; last-token pooling reads it). Done in the tokenizer's own post-processor, so
  truncation reserves the slot for it, exactly like BERT's ``[SEP]``, and the saved tokenizer keeps it.
* Padding on the right, decoders included: under causal attention a real token never sees the padding
  after it, and last-token pooling finds the last real token from the attention mask, so a text gets
  the same vector alone or in any batch. (Left padding stays available; ``position_ids`` are then
  computed from the attention mask so it does not shift positions.)
* Optional bidirectional attention for decoders (CodeXEmbed / LLM2Vec style).
* Text only: a chat template on the tokenizer is never applied to retrieval inputs.
* With flash attention's variable-length kernels, no padding at all (sentence-transformers' unpadding).

Everything here lives in files sentence-transformers reads itself (the tokenizer, its config), so a
saved model needs no st-code: ``save`` writes a plain ``Transformer`` config, and ``modules.json``
names sentence-transformers' ``Transformer`` (or, for bidirectional attention, the
``BidirectionalTransformer`` of the ``modeling_st_code.py`` the folder carries; see ``st_code.model``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch
from sentence_transformers.sentence_transformer.modules import Transformer
from tokenizers import processors
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from st_code.errors import UsageError
from st_code.modules.document_mask import packed_document_mask
from st_code.modules.modeling_st_code import PORTABLE_CODE_MODULE, BidirectionalTransformer, make_bidirectional
from st_code.modules.varlen_attention import VARLEN_ATTENTION, narrow_sliding_window, sequence_offsets

logger = logging.getLogger(__name__)

#: The feature key of a packed mini-batch's way back to padded rows (``st_code.training.packing``).
PACKED_ROWS = "st_code_packed_rows"

#: Attention implementations that keep packed texts apart: transformers reads causal texts off the
#: position ids on the first three (a bidirectional model gets a document mask from here), the varlen
#: kernel reads them itself (st_code.modules.varlen_attention).
PACKING_ATTENTION = ("sdpa", "eager", "flex_attention", VARLEN_ATTENTION)

#: transformers' flash-attention keywords, passed to the model for packed rows on the varlen kernel.
VARLEN_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")

TEXT_ONLY_MODALITY = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}


def is_decoder_config(config: Any) -> bool:
    """Encoder families (BERT, RoBERTa, ...) have a masked-LM head class; decoders (Qwen2, Llama, ...) do not."""
    return config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


class CodeTransformer(Transformer):
    """Backbone for code embedders; a drop-in ``Transformer`` with three extra config keys.

    Args:
        model_name_or_path: hub id or local folder of the backbone.
        append_eos: guarantee a final EOS token. ``None`` (default) turns it on when the tokenizer does
            not already end sequences with a special token (decoders), and off for BERT-style tokenizers.
        padding_side: ``"right"`` (``None``, the default) or ``"left"``.
        bidirectional: let a decoder attend in both directions (needs training to be useful).
        **kwargs: everything ``sentence_transformers`` ``Transformer`` accepts (model_kwargs with
            ``dtype``/``attn_implementation``, ``processor_kwargs``, ``max_seq_length``, ...).
    """

    # Saved configs hold sentence-transformers' own keys only, so the folder loads as a plain Transformer;
    # the three extra arguments are still read from folders saved before 0.2.
    config_keys: list[str] = list(Transformer.config_keys)

    def __init__(
        self,
        model_name_or_path: str,
        *,
        append_eos: bool | None = None,
        padding_side: Literal["left", "right"] | None = None,
        bidirectional: bool = False,
        **kwargs: Any,
    ) -> None:
        # unpad_inputs None (the default): with flash attention requested and its variable-length kernels
        # installed, sentence-transformers packs a batch into one sequence with no padding at all; the EOS
        # (tokenizer post-processor), the per-sequence positions (its flattening collator) and PMAPooling
        # (cu_seq_lens_q) all hold in that layout. Elsewhere batches are padded.
        kwargs.setdefault("unpad_inputs", None)
        kwargs.setdefault("modality_config", TEXT_ONLY_MODALITY)
        kwargs.setdefault("module_output_name", "token_embeddings")
        super().__init__(model_name_or_path, **kwargs)

        self._drop_gguf_quantizer()
        self.is_decoder = is_decoder_config(self.model.config)
        if padding_side not in (None, "left", "right"):
            raise UsageError(f"padding_side must be 'left', 'right' or None, got {padding_side!r}")
        self.padding_side = padding_side or "right"
        self.tokenizer.padding_side = self.padding_side
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise UsageError(f"the tokenizer of {model_name_or_path} has neither a pad nor an EOS token")
            self.tokenizer.pad_token = self.tokenizer.eos_token

        self.append_eos = self._install_eos() if append_eos is not False else False
        if append_eos and not self.append_eos:
            raise UsageError(f"append_eos=True, but the tokenizer of {model_name_or_path} has no EOS token")

        self.bidirectional = bool(bidirectional)
        if self.bidirectional:
            self._make_bidirectional()
        self._accepts_position_ids = "position_ids" in self._declared_forward_params

    def _drop_gguf_quantizer(self) -> None:
        """transformers de-quantizes a GGUF checkpoint into ordinary tensors but keeps a GGUF
        "quantizer" that refuses to save; dropping it makes the model a plain, saveable checkpoint."""
        quantizer = getattr(self.model, "hf_quantizer", None)
        method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", None)
        if quantizer is not None and str(getattr(method, "value", method)).lower() == "gguf":
            self.model.hf_quantizer = None
            if hasattr(self.model.config, "quantization_config"):
                del self.model.config.quantization_config

    # -- EOS ---------------------------------------------------------------------------------
    def _ends_with_special_token(self) -> bool:
        ids = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        return bool(ids) and ids[-1] in set(self.tokenizer.all_special_ids)

    def _install_eos(self) -> bool:
        """Append EOS through the fast tokenizer's post-processor; returns whether EOS is appended."""
        tokenizer = self.tokenizer
        if self._ends_with_special_token():
            return True
        eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
        if eos is None or eos_id is None:
            return False
        backend = tokenizer.backend_tokenizer
        template = processors.TemplateProcessing(
            single=f"$A:0 {eos}:0", pair=f"$A:0 {eos}:0 $B:1 {eos}:1", special_tokens=[(eos, eos_id)]
        )
        existing = backend.post_processor
        backend.post_processor = template if existing is None else processors.Sequence([existing, template])
        if not self._ends_with_special_token():
            raise RuntimeError(f"could not make tokenizer {type(tokenizer).__name__} append {eos!r}")
        return True

    # -- attention ---------------------------------------------------------------------------
    def _make_bidirectional(self) -> None:
        if self.is_decoder:  # encoders are bidirectional already
            make_bidirectional(self.model)

    # -- saving ------------------------------------------------------------------------------
    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        """A plain ``Transformer`` folder; the tokenizer is saved padding on the right, which a plain
        load reproduces exactly without st-code's position ids."""
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "right"
        try:
            super().save(output_path, *args, **kwargs)
        finally:
            self.tokenizer.padding_side = side

    @property
    def saved_type(self) -> str:
        """The ``modules.json`` type a saved folder names for this module (see ``st_code.model``)."""
        if self.bidirectional and self.is_decoder:
            return f"{PORTABLE_CODE_MODULE}.{BidirectionalTransformer.__name__}"
        return f"{Transformer.__module__}.{Transformer.__name__}"

    # -- packed mini-batches (training) ------------------------------------------------------
    def packing_unsupported(self) -> str | None:
        """Why :func:`st_code.training.packing.pack_feature`'s rows would not compute what padded rows do
        here, or None: packing needs a decoder that takes position ids, on an attention implementation
        that keeps packed texts apart (:data:`PACKING_ATTENTION`)."""
        implementation = getattr(self.model.config, "_attn_implementation", None)
        if not self.is_decoder:
            return "the backbone is an encoder; packing is for decoders"
        if not self._accepts_position_ids:
            return "the backbone's forward takes no position_ids"
        if getattr(self, "can_flatten_inputs", False):
            return "flash attention's variable-length kernels already run this backbone without padding"
        if implementation not in PACKING_ATTENTION:
            return f"attention implementation {implementation!r}; packing is tested on {', '.join(PACKING_ATTENTION)}"
        window = narrow_sliding_window(self.model.config, self.max_seq_length)
        if self.bidirectional and implementation != VARLEN_ATTENTION and window:
            return f"bidirectional sliding-window layers ({window} tokens) under texts up to {self.max_seq_length}"
        return None

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        packed = features.pop(PACKED_ROWS, None)
        implementation = self.model.config._attn_implementation
        if packed is not None and implementation == VARLEN_ATTENTION:
            # the texts' offsets once for all layers (each would otherwise read them off the position ids)
            positions = features["position_ids"]
            offsets, longest = sequence_offsets(None, positions, positions.shape[0], positions.shape[1],
                                                positions.device)
            kwargs = {**kwargs, **dict(zip(VARLEN_KEYS, (offsets, offsets, longest, longest)))}
            if self.model_forward_params is not None:
                self.model_forward_params |= set(VARLEN_KEYS)
        elif packed is not None and self.bidirectional:
            # transformers' bidirectional mask ignores packed position ids: each text gets its own block
            features["attention_mask"] = packed_document_mask(features["position_ids"], implementation,
                                                              self.model.dtype)
        features = super().forward(features, **kwargs)
        if packed is not None:  # back to the padded rows the pooling reads
            features["token_embeddings"] = packed.token_embeddings(features["token_embeddings"])
            features["attention_mask"] = packed.attention_mask
        return features

    # -- preprocessing -----------------------------------------------------------------------
    def preprocess(self, inputs, prompt: str | None = None, **kwargs) -> dict[str, Any]:
        features = super().preprocess(inputs, prompt=prompt, **kwargs)
        mask = features.get("attention_mask")
        if self._accepts_position_ids and isinstance(mask, torch.Tensor) and mask.dim() == 2:
            # Positions count real tokens only, so left padding does not shift them.
            features["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return features
