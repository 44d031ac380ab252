"""Train a policy with RLVR: python -m amrsd.train [--config=configs/<recipe>.py] [--config.<field>=<value> ...]

With no --config it runs the embedded default (amrsd.config.default_config): AMR-SD on
SmolLM2-135M-Instruct, a procedural arithmetic task, CPU. Running the same command again
with the same workdir resumes from the latest checkpoint. SIGTERM saves and exits.
"""

import json
import os

from absl import app, flags, logging
from ml_collections import config_flags

from amrsd import config as config_lib

_CONFIG = config_flags.DEFINE_config_file(
    "config", config_lib.__file__, "Recipe file with get_config() (configs/*.py); default: "
    "the embedded default. Override any field with --config.<field>=<value>.",
    lock_config=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; fields are set with "
                         "--config.<field>=<value>")
  config = _CONFIG.value
  config_lib.validate(config)
  from amrsd import distributed
  distributed.initialize()
  from amrsd.trainer import Trainer
  trainer = Trainer(config)
  final = trainer.train()
  if trainer.is_primary:
    print(json.dumps(final, indent=2))
    print(f"metrics: {os.path.join(config.workdir, 'metrics.jsonl')}\n"
          f"plots:   {os.path.join(config.workdir, 'plots')}\n"
          f"tensorboard --logdir {os.path.join(config.workdir, 'tensorboard')}")


if __name__ == "__main__":
  logging.set_verbosity(logging.WARNING)
  app.run(main)
