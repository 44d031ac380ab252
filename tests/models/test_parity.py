"""Our loader and decoder against transformers + PyTorch, through stored reference logits.

The references come from tests/fixtures/make_reference.py (see tests/fixtures/README.md);
this run needs neither torch nor transformers' models.
"""

import json

import numpy as np
import pytest

from tests.models.conftest import CHECKPOINTS, forward, max_diff_on_real_tokens, reference

# What each fixture exists to cover, checked so that a regenerated fixture cannot lose it.
COVERS = {
    "llama_tied": dict(model_type="llama", tie_word_embeddings=True, num_key_value_heads=1),
    "llama3_untied": dict(model_type="llama", tie_word_embeddings=False, rope_type="llama3"),
    "qwen2": dict(model_type="qwen2", attention_bias=True, qk_norm=False),
    # head_dim 32 with width 64 and 4 heads: q is wider than the residual stream.
    "qwen3": dict(model_type="qwen3", attention_bias=False, qk_norm=True, head_dim=32,
                  hidden_size=64, num_attention_heads=4),
}


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_random_checkpoint_matches_transformers(name, fixture_models):
  model, _ = fixture_models[name]
  ref = reference(name)
  logits = forward(model, ref["input_ids"], ref["attention_mask"])
  assert logits.dtype == np.float32 and logits.shape == ref["logits"].shape
  diff = max_diff_on_real_tokens(logits, ref["logits"], ref["attention_mask"])
  assert diff <= 1e-4, f"{name}: max |logit difference| {diff} on non-pad positions"


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_fixture_covers_its_architecture_variant(name, fixture_models):
  config = fixture_models[name][0].config
  features = dict(vars(config), rope_type=(config.rope_scaling_dict or {}).get("rope_type"))
  for field, want in COVERS[name].items():
    assert features[field] == want, f"{name}: {field} is {features[field]!r}, expected {want!r}"


@pytest.mark.slow
def test_smollm2_matches_transformers_gguf_loader(smollm):
  model, _ = smollm
  ref = reference("smollm2_135m")
  ids, mask = ref["input_ids"], ref["attention_mask"]
  real = mask.astype(bool)
  logits = np.asarray(forward(model, ids, mask))
  top1 = logits.argmax(-1)
  wrong = np.argwhere(real & (top1 != ref["argmax"]))
  assert wrong.size == 0, f"top-1 differs at (row, position) {wrong.tolist()}"
  # The largest logit at every real position, and the whole vocabulary at the last ones.
  top1_diff = np.abs(logits.max(-1) - ref["top1"])[real].max()
  tail = ref["tail_logits"].shape[1]
  tail_diff = np.abs(logits[:, -tail:] - ref["tail_logits"]).max()
  assert top1_diff <= 1e-2 and tail_diff <= 1e-2, (top1_diff, tail_diff)


@pytest.mark.slow
def test_smollm2_chat_template_gives_transformers_token_ids(smollm):
  _, tokenizer = smollm
  ref = reference("smollm2_135m")
  for row, prompt in enumerate(json.loads(str(ref["prompts"]))):
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                        return_dict=False)
    want = ref["input_ids"][row][ref["attention_mask"][row] == 1].tolist()
    assert list(ids) == want, f"prompt {row}"
