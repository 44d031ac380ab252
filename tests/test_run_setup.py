"""run_setup: what a run config builds (here: the policy's tokenizer template)."""

from flax import nnx

from amrsd import config as config_lib, models
from amrsd.run_setup import load_policy
from tests.conftest import tiny_config
from tests.envs.conftest import word_chat_tokenizer


def test_a_chat_template_file_replaces_the_tokenizers_own(tmp_path):
  models.save_hf(models.Decoder(tiny_config(), rngs=nnx.Rngs(0)), word_chat_tokenizer(),
                 str(tmp_path / "model"))
  template = "{% for m in messages %}<turn> {{ m['content'] }} <eos> {% endfor %}"
  (tmp_path / "t.jinja").write_text(template)
  config = config_lib.default_config()
  config.model.path = str(tmp_path / "model")
  _, own, _ = load_policy(config)
  config.model.chat_template = str(tmp_path / "t.jinja")
  config_lib.validate(config)
  _, tokenizer, _ = load_policy(config)
  chat = [{"role": "user", "content": "t9"}]
  assert own.apply_chat_template(chat, tokenize=False) == "<turn> user t9 <eos> "
  assert tokenizer.apply_chat_template(chat, tokenize=False) == "<turn> t9 <eos> "
