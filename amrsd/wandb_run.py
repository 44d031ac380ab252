"""Optional Weights & Biases logging next to TensorBoard (config.log.wandb_project).

The W&B run is named after the workdir, and its id is kept in workdir/wandb_run_id, so a
run restarted in the same workdir continues the same W&B run (in offline mode,
WANDB_MODE=offline, `wandb sync` later joins the pieces into that run). `wandb` is an
optional dependency (the `wandb` extra), imported only when a project is set.
"""

import os
import secrets

RUN_ID_FILE = "wandb_run_id"


def start(workdir: str, *, project: str, entity: str = "", config: dict | None = None):
  """A wandb Run for this workdir: a new one, or the one whose id the workdir holds."""
  try:
    import wandb
  except ImportError:
    raise ImportError(f"config.log.wandb_project={project!r} needs the `wandb` package: "
                      "pip install 'amrsd[wandb]' (or leave wandb_project empty)") from None
  path = os.path.join(workdir, RUN_ID_FILE)
  if os.path.exists(path):
    with open(path) as f:
      run_id = f.read().strip()
  else:
    run_id = secrets.token_hex(4)  # W&B's own ids are 8 lower-case characters too
    with open(path + ".tmp", "w") as f:
      f.write(run_id + "\n")
    os.replace(path + ".tmp", path)
  # WANDB_DIR is read here, not left to wandb: wandb keeps the settings of its first run in
  # the process, so a second run (another workdir, another WANDB_DIR) would write beside the
  # first one's files. Without WANDB_DIR the W&B files stay with the run, in the workdir.
  return wandb.init(project=project, entity=entity or None, id=run_id, resume="allow",
                    name=os.path.basename(os.path.normpath(workdir)), config=config,
                    dir=os.environ.get("WANDB_DIR") or workdir)
