"""Padded sizes for the axes of jitted programs: few distinct values, little padding.

Each distinct shape compiles once, so rows and widths are rounded up to a size from a
short ladder. Powers of two alone waste up to half an axis (a 130-token prompt padded to
256 costs a compute-bound prefill twice its work); the ladder here adds 3 * 2**k between
them (1, 2, 3, 4, 6, 8, 12, 16, 24, ...), so padding stays under a third of the axis for
about two sizes per doubling.
"""


def fit(count: int, minimum: int = 1) -> int:
  """The smallest size on the ladder (2**k or 3 * 2**k) that is >= count and >= minimum."""
  count = max(int(count), int(minimum), 1)
  power = 1 << (count - 1).bit_length()  # the power of two at or above count
  return power * 3 // 4 if power >= 4 and power * 3 // 4 >= count else power

