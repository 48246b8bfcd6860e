/**
 * Run fn over items with at most `limit` running at once, results in input order. Per-namespace
 * commands go through this: a thousand `ip` processes at once would exhaust file descriptors.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** How many per-namespace commands run at once. */
export const NAMESPACE_CONCURRENCY = 32;
