"""amrsd: RLVR training in JAX/Flax around AMR-SD (Asymmetric Meta-Reflective Self-Distillation)."""
