"""Compile time seen by JAX, to subtract from a timed call (amrsd.bench)."""


class CompileClock:
  """Seconds JAX spent tracing, lowering and compiling since the last `take()`."""

  def __init__(self):
    import jax
    self.seconds = 0.0
    jax.monitoring.register_event_duration_secs_listener(self._on_event)

  def _on_event(self, event, duration, **_):
    if event.startswith("/jax/core/compile/"):
      self.seconds += duration

  def take(self) -> float:
    seconds, self.seconds = self.seconds, 0.0
    return seconds
