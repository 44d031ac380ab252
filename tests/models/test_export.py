"""models.save_hf: the folder loads back, in amrsd and in transformers, with the same logits."""

import json
import subprocess

import numpy as np
import pytest
from flax import nnx
from safetensors import safe_open

from amrsd import models
from tests.conftest import FIXTURES, REPO
from tests.models.conftest import CHECKPOINTS, forward, max_diff_on_real_tokens, reference

REFERENCE_PYTHON = REPO / ".venv-ref" / "bin" / "python"
needs_reference_venv = pytest.mark.skipif(
    not REFERENCE_PYTHON.exists(),
    reason=f"{REFERENCE_PYTHON} is absent (Python 3.11 with torch + transformers; "
           "launch/test.sh creates it when python3.11 and the torch wheel are available)")


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_save_hf_round_trips_through_our_loader(name, fixture_models, tmp_path):
  model, tokenizer = fixture_models[name]
  models.save_hf(model, tokenizer, tmp_path)
  again, tokenizer_again = models.load(tmp_path)
  assert again.config == model.config
  before = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
  after = dict(nnx.to_flat_state(nnx.state(again, nnx.Param)))
  assert before.keys() == after.keys()
  for path in before:
    np.testing.assert_array_equal(np.asarray(after[path][...]), np.asarray(before[path][...]),
                                  err_msg=str(path))
  ref = reference(name)
  np.testing.assert_array_equal(np.asarray(forward(again, ref["input_ids"], ref["attention_mask"])),
                                np.asarray(forward(model, ref["input_ids"], ref["attention_mask"])))
  text = "round trip, ünïcode"
  assert tokenizer_again(text)["input_ids"] == tokenizer(text)["input_ids"]
  with safe_open(tmp_path / "model.safetensors", framework="numpy") as f:
    assert ("lm_head.weight" in f.keys()) == (not model.config.tie_word_embeddings)


@pytest.fixture(scope="module")
def transformers_on_exports(fixture_models, tmp_path_factory):
  """name -> (our logits, transformers' logits on our exported folder), float32 [B, T, V]."""
  root = tmp_path_factory.mktemp("exports")
  args, ours = [], {}
  for name in CHECKPOINTS:
    model, tokenizer = fixture_models[name]
    models.save_hf(model, tokenizer, root / name)
    ref = reference(name)
    np.savez(root / f"{name}_inputs.npz", input_ids=ref["input_ids"],
             attention_mask=ref["attention_mask"])
    args += [root / name, root / f"{name}_inputs.npz", root / f"{name}_hf.npz"]
    ours[name] = np.asarray(forward(model, ref["input_ids"], ref["attention_mask"]))
  run_reference(args)
  return {name: (ours[name], np.load(root / f"{name}_hf.npz")["logits"]) for name in CHECKPOINTS}


@needs_reference_venv
@pytest.mark.parametrize("name", CHECKPOINTS)
def test_transformers_loads_the_export_with_our_logits(name, transformers_on_exports):
  ours, theirs = transformers_on_exports[name]
  diff = max_diff_on_real_tokens(theirs, ours, reference(name)["attention_mask"])
  assert diff <= 1e-4, f"{name}: max |logit difference| {diff}"


@needs_reference_venv
@pytest.mark.slow
def test_exported_smollm2_loads_in_amrsd_and_transformers(smollm, tmp_path):
  model, tokenizer = smollm
  folder = tmp_path / "smollm2"
  models.save_hf(model, tokenizer, folder)
  ref = reference("smollm2_135m")
  ids, mask = ref["input_ids"], ref["attention_mask"]
  ours = np.asarray(forward(model, ids, mask))

  again, tokenizer_again = models.load(folder)
  np.testing.assert_array_equal(np.asarray(forward(again, ids, mask)), ours)
  del again
  for row, prompt in enumerate(json.loads(str(ref["prompts"]))):
    assert (tokenizer_again.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                return_dict=False)
            == ids[row][mask[row] == 1].tolist()), f"chat template, prompt {row}"

  np.savez(tmp_path / "inputs.npz", input_ids=ids, attention_mask=mask)
  run_reference([folder, tmp_path / "inputs.npz", tmp_path / "hf.npz"])
  theirs = np.load(tmp_path / "hf.npz")["logits"]
  real = mask.astype(bool)
  assert (theirs.argmax(-1) == ours.argmax(-1))[real].all()
  assert max_diff_on_real_tokens(theirs, ours, mask) <= 1e-3


def run_reference(args):
  """Runs tests/fixtures/hf_reference.py under the reference venv on (folder, inputs, output)
  triples."""
  result = subprocess.run([str(REFERENCE_PYTHON), str(FIXTURES / "hf_reference.py"),
                           *map(str, args)], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, f"hf_reference.py failed:\n{result.stderr[-3000:]}"
