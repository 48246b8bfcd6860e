/** Runs one named stage of a longer operation, records its duration, and reports it. */
export type Stage = (name: string, work: () => Promise<unknown>) => Promise<void>;

export function stager(timings: Record<string, number>, onStage?: (stage: string, ms: number) => void): Stage {
  return async (name, work) => {
    const t0 = performance.now();
    await work();
    timings[name] = Math.round(performance.now() - t0);
    onStage?.(name, timings[name]!);
  };
}
