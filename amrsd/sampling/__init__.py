"""Batched KV-cache sampling: `Sampler(model, tokenizer).generate(prompts, ...)`."""

from amrsd.sampling.sampler import GenerateTiming, SampleResult, Sampler

__all__ = ["GenerateTiming", "SampleResult", "Sampler"]
