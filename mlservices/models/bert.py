"""A packed (padding-free) BERT encoder that loads the original checkpoint.

Every activation is [T, hidden], T = the real tokens of the batch; attention is restricted to
each text's own segment through ``cu_seqlens``. The math is BERT's (post-LayerNorm, absolute
positions, token types); only the layout differs, so outputs match the original model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mlservices import ops
from mlservices.errors import ModelLoadError, UnsupportedModelError

ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_python": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}
# Activations with a fused bias + activation op: hidden_act -> ops.bias_gelu_'s approximate.
FUSED_GELU = {
    "gelu": "none",
    "gelu_python": "none",
    "gelu_new": "tanh",
    "gelu_pytorch_tanh": "tanh",
}


@dataclass
class BertLayer:
    qkv_weight: torch.Tensor  # [3 * hidden, hidden]: query, key, value stacked
    qkv_bias: torch.Tensor  # [3 * hidden]
    out_weight: torch.Tensor  # [hidden, hidden]
    out_bias: torch.Tensor
    attn_ln_weight: torch.Tensor
    attn_ln_bias: torch.Tensor
    ffn_in_weight: torch.Tensor  # [intermediate, hidden]
    ffn_in_bias: torch.Tensor
    ffn_out_weight: torch.Tensor  # [hidden, intermediate]
    ffn_out_bias: torch.Tensor
    ffn_ln_weight: torch.Tensor
    ffn_ln_bias: torch.Tensor


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept BertModel keys with or without a ``bert.`` prefix and old gamma/beta names."""
    out = {}
    for key, value in state.items():
        if key.startswith("bert."):
            key = key[len("bert.") :]
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight")
        key = key.replace("LayerNorm.beta", "LayerNorm.bias")
        out[key] = value
    return out


class PackedBert:
    """BERT over packed token streams.

    Args:
        config: the Hugging Face config dict (hidden_size, num_attention_heads, ...).
        state_dict: the checkpoint's tensors.
        device, dtype: where and in which precision the weights live. LayerNorm statistics,
            softmax and pooling accumulate in float32 whatever the dtype.
    """

    def __init__(self, config, state_dict, device: torch.device, dtype: torch.dtype) -> None:
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.head_dim = self.hidden // self.heads
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.type_vocab_size = int(config.get("type_vocab_size", 2))
        self.max_positions = int(config.get("max_position_embeddings", 512))
        act = config.get("hidden_act", "gelu")
        if act not in ACTIVATIONS:
            raise UnsupportedModelError(
                f"hidden_act {act!r} is not supported", hint=f"supported: {sorted(ACTIVATIONS)}"
            )
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise UnsupportedModelError(
                f"position_embedding_type {config['position_embedding_type']!r} is not supported",
                hint="only absolute position embeddings are implemented",
            )
        self.activation = ACTIVATIONS[act]
        self.gelu_approximate = FUSED_GELU.get(act)
        self.device, self.dtype = device, dtype
        state = _strip_prefix(state_dict)
        n_layers = int(config["num_hidden_layers"])

        def take(key: str) -> torch.Tensor:
            if key not in state:
                raise ModelLoadError(
                    f"checkpoint has no tensor {key!r}", hint="is it a BERT model?"
                )
            return state[key].to(device=device, dtype=dtype).contiguous()

        self.word_embeddings = take("embeddings.word_embeddings.weight")
        self.position_embeddings = take("embeddings.position_embeddings.weight")
        if "embeddings.token_type_embeddings.weight" in state:
            self.token_type_embeddings = take("embeddings.token_type_embeddings.weight")
        else:
            self.token_type_embeddings = torch.zeros(1, self.hidden, device=device, dtype=dtype)
        self.emb_ln_weight = take("embeddings.LayerNorm.weight")
        self.emb_ln_bias = take("embeddings.LayerNorm.bias")
        self.layers = [self._load_layer(take, f"encoder.layer.{i}.") for i in range(n_layers)]

    @staticmethod
    def _load_layer(take, p: str) -> BertLayer:
        attn = p + "attention.self."
        return BertLayer(
            qkv_weight=torch.cat([take(attn + f"{n}.weight") for n in ("query", "key", "value")]),
            qkv_bias=torch.cat([take(attn + f"{n}.bias") for n in ("query", "key", "value")]),
            out_weight=take(p + "attention.output.dense.weight"),
            out_bias=take(p + "attention.output.dense.bias"),
            attn_ln_weight=take(p + "attention.output.LayerNorm.weight"),
            attn_ln_bias=take(p + "attention.output.LayerNorm.bias"),
            ffn_in_weight=take(p + "intermediate.dense.weight"),
            ffn_in_bias=take(p + "intermediate.dense.bias"),
            ffn_out_weight=take(p + "output.dense.weight"),
            ffn_out_bias=take(p + "output.dense.bias"),
            ffn_ln_weight=take(p + "output.LayerNorm.weight"),
            ffn_ln_bias=take(p + "output.LayerNorm.bias"),
        )

    def embed(
        self, input_ids: torch.Tensor, positions: torch.Tensor, token_type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        """Word + position + token-type embeddings, then LayerNorm: [T] ids -> [T, hidden]."""
        h = self.word_embeddings.index_select(0, input_ids)
        h = h + self.position_embeddings.index_select(0, positions)
        if token_type_ids is None:
            h = h + self.token_type_embeddings[0]
        else:
            h = h + self.token_type_embeddings.index_select(0, token_type_ids)
        return ops.layer_norm(h, self.emb_ln_weight, self.emb_ln_bias, self.eps)

    def attention(
        self, layer: BertLayer, h: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int
    ) -> torch.Tensor:
        """Fused QKV projection, varlen attention, output projection: [T, hidden] -> same."""
        n_tokens = h.shape[0]
        qkv = F.linear(h, layer.qkv_weight, layer.qkv_bias).view(n_tokens, 3, self.heads, -1)
        q, k, v = qkv.unbind(1)  # strided [T, heads, head_dim] views; no copies
        ctx = ops.varlen_attention(q, k, v, cu_seqlens, max_seqlen, check_inputs=False)
        return F.linear(ctx.reshape(n_tokens, self.hidden), layer.out_weight, layer.out_bias)

    def feed_forward(self, layer: BertLayer, h: torch.Tensor) -> torch.Tensor:
        """FFN in, activation, FFN out: [T, hidden] -> [T, intermediate] -> [T, hidden]."""
        if self.gelu_approximate is None:
            inter = self.activation(F.linear(h, layer.ffn_in_weight, layer.ffn_in_bias))
        else:
            # A bias-free matmul, then bias + GELU in one pass over that fresh buffer (ours, so
            # written in place): no bias-broadcast pass and no second [T, intermediate] tensor.
            inter = torch.mm(h, layer.ffn_in_weight.t())
            ops.bias_gelu_(inter, layer.ffn_in_bias, self.gelu_approximate)
        return F.linear(inter, layer.ffn_out_weight, layer.ffn_out_bias)

    def layer(
        self, layer: BertLayer, h: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int
    ) -> torch.Tensor:
        """One post-LN transformer layer with fused residual + LayerNorm."""
        attn = self.attention(layer, h, cu_seqlens, max_seqlen)
        h = ops.layer_norm(attn, layer.attn_ln_weight, layer.attn_ln_bias, self.eps, residual=h)
        ffn = self.feed_forward(layer, h)
        return ops.layer_norm(ffn, layer.ffn_ln_weight, layer.ffn_ln_bias, self.eps, residual=h)

    @torch.inference_mode()
    def forward(
        self,
        input_ids: torch.Tensor,
        cu_seqlens: torch.Tensor,
        max_seqlen: int,
        positions: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings of a packed batch.

        Args:
            input_ids: [T] int64 token ids of all texts, back to back.
            cu_seqlens: [B + 1] int32 segment offsets.
            max_seqlen: the longest segment.
            positions: [T] int64 position of each token within its text.
            token_type_ids: [T] int64, or None for all zeros.

        Returns:
            [T, hidden] last hidden states in the model's dtype.
        """
        h = self.embed(input_ids, positions, token_type_ids)
        for layer in self.layers:
            h = self.layer(layer, h, cu_seqlens, max_seqlen)
        return h
