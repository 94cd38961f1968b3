// Small statistics helpers.

/** The p-th percentile (0..100) of `samples`, interpolating between ranks. */
export function percentile(samples, p) {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

/** The median of the values that are numbers; null when there are none. */
export function median(values) {
  const numbers = values.filter((value) => typeof value === 'number' && Number.isFinite(value));
  return numbers.length === 0 ? null : percentile(numbers, 50);
}

export function mean(samples) {
  return samples.length === 0 ? null : samples.reduce((sum, value) => sum + value, 0) / samples.length;
}
