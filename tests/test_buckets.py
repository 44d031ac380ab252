from amrsd import buckets


def test_fit_is_the_smallest_ladder_size_that_holds_count():
  ladder = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256]
  for count in range(1, 257):
    assert buckets.fit(count) == min(s for s in ladder if s >= count), count
  # Padding stays under a third of the padded axis from 4 on (powers of two alone: half).
  assert all((buckets.fit(n) - n) / buckets.fit(n) < 1 / 3 for n in range(4, 5000))


def test_fit_respects_the_minimum():
  assert buckets.fit(3, 64) == 64
  assert buckets.fit(65, 64) == 96
  assert buckets.fit(130, 64) == 192
  assert buckets.fit(0) == 1
