"""FLOP counts of the decoder, shared by the benchmarks."""


def forward_flops(config, batch: int, length: int) -> int:
  """FLOPs of one forward over [batch, length] tokens as this decoder computes it.

  Matmuls count 2 FLOPs per multiply-add; attention computes every query against all
  `length` keys (the causal mask is applied to the scores, not skipped).
  """
  c = config
  q_dim, kv_dim = c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim
  per_layer = (c.hidden_size * (q_dim + 2 * kv_dim) + q_dim * c.hidden_size
               + 3 * c.hidden_size * c.intermediate_size)
  linear = 2 * c.num_hidden_layers * per_layer
  attention = 2 * 2 * c.num_hidden_layers * q_dim * length  # scores and weighted values
  unembed = 2 * c.hidden_size * c.vocab_size
  return batch * length * (linear + attention + unembed)
