"""The prompt pipeline: records -> chat-formatted prompts -> batches, on grain.

  source -> shuffle(seed, reshuffled each epoch) -> repeat(num_epochs) -> format prompt
         -> drop prompts over max_prompt_tokens (counted) -> batches of prompts_per_step

Its state (get_state/set_state) is a small JSON-serialisable dict, so a resumed run sees
exactly the batches an uninterrupted one would have seen.
"""

import sys

import grain

from amrsd import prompts


class PromptPipeline:
  """Iterator over training batches: each a list of `prompts_per_step` records, every
  record extended with "prompt" (str, chat-formatted, generation prompt appended) and
  "prompt_ids" (list[int], its tokens, no extra special tokens).

  source: any object with len and getitem giving records (FileSource, ProceduralSource).
  prompt_template: str.format template over the record's fields, the user message.
  system_prompt: optional system message; a record's own non-empty "system" field wins
  (SciKnowEval and BFCL rows carry theirs). max_prompt_tokens: longer prompts are dropped
  and counted (None keeps all). num_epochs: None repeats forever. A final partial batch
  is dropped (training steps have a fixed shape).
  """

  def __init__(self, source, tokenizer, *, prompts_per_step: int, seed: int = 0,
               num_epochs: int | None = None, prompt_template: str = "{problem}",
               system_prompt: str | None = None, max_prompt_tokens: int | None = None,
               shuffle: bool = True):
    if prompts_per_step < 1:
      raise ValueError(f"prompts_per_step must be >= 1, got {prompts_per_step}")
    if num_epochs is not None and num_epochs < 1:
      raise ValueError(f"num_epochs must be >= 1 or None (forever), got {num_epochs}")
    if len(source) == 0:
      raise ValueError(f"{source!r} is empty")
    self.source = source
    self.tokenizer = tokenizer
    self.prompt_template = prompt_template
    self.system_prompt = system_prompt
    self.max_prompt_tokens = max_prompt_tokens
    self.prompts_per_step = prompts_per_step
    self._check_template(source[0])
    self.filtered_too_long = 0
    self._rejected_in_a_row = 0
    dataset = grain.MapDataset.source(source)
    if shuffle:
      dataset = dataset.shuffle(seed=seed)
    dataset = dataset.repeat(num_epochs).map(self.format)
    # No reader threads: records are produced in order in this thread, so the
    # too-long counter below always matches the iterator's position.
    iterable = dataset.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
    self._iterator = iter(iterable.filter(self._keep).batch(
        prompts_per_step, drop_remainder=True, batch_fn=list))

  def __iter__(self):
    return self

  def __next__(self) -> list[dict]:
    return next(self._iterator)

  @property
  def stats(self) -> dict:
    """Counts to report: prompts dropped for length; rows the source skipped as malformed."""
    return {"filtered_too_long": self.filtered_too_long,
            "skipped_bad_rows": len(getattr(self.source, "skipped", ()))}

  def get_state(self) -> dict:
    """JSON-serialisable position of the pipeline (grain's iterator state + counters)."""
    return {"iterator": self._iterator.get_state(), "filtered_too_long": self.filtered_too_long}

  def set_state(self, state: dict) -> None:
    """Restores a position saved by get_state (from a pipeline built the same way)."""
    self._iterator.set_state(state["iterator"])
    self.filtered_too_long = int(state["filtered_too_long"])
    self._rejected_in_a_row = 0

  def format(self, record: dict) -> dict:
    """record + "prompt" (chat template applied) + "prompt_ids" (list[int])."""
    messages = prompts.chat_messages(record, self.prompt_template, self.system_prompt)
    prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                tokenize=False)
    ids = list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    return {**record, "prompt": prompt, "prompt_ids": ids}

  def held_out(self, source, size: int) -> list[dict]:
    """The first `size` records of `source` (unformatted) whose prompt fits
    max_prompt_tokens; the others are left out, named (file:line) on stderr. A prompt
    longer in characters than max_prompt_tokens times the longest vocabulary entry is
    judged without tokenizing it (a megabyte takes tens of seconds to tokenize); the
    bound holds for byte-level BPE and SentencePiece vocabularies, which have no
    unknown-word token."""
    if self.max_prompt_tokens is None:
      return [source[i] for i in range(min(size, len(source)))]
    longest = max(map(len, self.tokenizer.get_vocab()))
    kept, dropped = [], []
    for i in range(min(size, len(source))):
      record = source[i]
      text = self.prompt_template.format(**record)
      if (len(text) > self.max_prompt_tokens * longest or
          len(self.format(record)["prompt_ids"]) > self.max_prompt_tokens):
        lines = getattr(source, "lines", None)
        dropped.append(f"{source.path}:{lines[i]}" if lines else f"{source!r} record {i}")
      else:
        kept.append(record)
    where = ", ".join(dropped[:5]) + (" ..." if len(dropped) > 5 else "")
    if not kept:
      raise ValueError(f"every held-out prompt is longer than data.max_prompt_tokens="
                       f"{self.max_prompt_tokens}: {where}; raise it or shorten them")
    if dropped:
      print(f"held-out: left out {len(dropped)} problem(s) whose prompt is longer than "
            f"data.max_prompt_tokens={self.max_prompt_tokens}: {where}", file=sys.stderr,
            flush=True)
    return kept

  def _keep(self, record: dict) -> bool:
    if self.max_prompt_tokens is None or len(record["prompt_ids"]) <= self.max_prompt_tokens:
      self._rejected_in_a_row = 0
      return True
    self.filtered_too_long += 1
    self._rejected_in_a_row += 1
    if self._rejected_in_a_row >= len(self.source):
      raise ValueError(f"every prompt of {self.source!r} is longer than max_prompt_tokens="
                       f"{self.max_prompt_tokens}; raise it or shorten the template")
    return False

  def _check_template(self, record):
    try:
      self.prompt_template.format(**record)
    except (KeyError, IndexError) as e:
      raise ValueError(f"prompt template {self.prompt_template!r} uses field {e}, which "
                       f"records of {self.source!r} lack; fields: {', '.join(sorted(record))}") from None
