"""Train a policy with RLVR: python -m amrsd.train [--config=configs/<recipe>.py] [--config.<field>=<value> ...]

With no --config it runs the embedded default (amrsd.config.default_config): AMR-SD on
SmolLM2-135M-Instruct, a procedural arithmetic task, CPU. Running the same command again
with the same workdir resumes from the latest checkpoint. SIGTERM saves and exits.
"""

import json
import os
import sys

from absl import app, flags, logging

from amrsd import config as config_lib

_CONFIG = config_lib.define_config_flag(
    "amrsd.train", config_lib.__file__, "Recipe file with get_config() (configs/*.py); "
    "default: the embedded default. Override any field with --config.<field>=<value>.",
    lock_config=True)
_SHOW_CONFIG = flags.DEFINE_bool(
    "show_config", False, "Print every config field with its value (after overrides) and "
    "exit. What each field means is documented in amrsd/config.py.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume even if the config changes fields that change the "
    "run's meaning (method, group size, model, trainable set, dtype, data, seed); without "
    "it such a resume is refused, naming the fields.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; fields are set with "
                         "--config.<field>=<value>")
  config = _CONFIG.value
  if _SHOW_CONFIG.value:
    print(config)
    return
  from amrsd import distributed
  from amrsd.checkpointing import CheckpointError
  from amrsd.trainer import Trainer, TrainingError
  try:
    config_lib.validate(config)
    distributed.initialize()
    trainer = Trainer(config, allow_config_change=_ALLOW_CONFIG_CHANGE.value)
    final = trainer.train()
  except (ValueError, OSError, TrainingError, CheckpointError) as e:
    # Bad configs, missing files and stopped runs: the message says what and how to fix;
    # a traceback would only bury it. AMRSD_TRACEBACK=1 shows it anyway.
    if os.environ.get("AMRSD_TRACEBACK"):
      raise
    sys.exit(f"amrsd.train: {type(e).__name__}: {e}")
  if trainer.is_primary:
    print(json.dumps(final, indent=2))
    print(f"metrics: {os.path.join(config.workdir, 'metrics.jsonl')}\n"
          f"plots:   {os.path.join(config.workdir, 'plots')}\n"
          f"tensorboard --logdir {os.path.join(config.workdir, 'tensorboard')}")


if __name__ == "__main__":
  logging.set_verbosity(logging.WARNING)
  app.run(main)
