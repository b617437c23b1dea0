/** Latency samples (milliseconds) and their summary. */
export interface LatencySummary {
  count: number
  mean: number
  p50: number
  p90: number
  p99: number
  max: number
  min: number
}

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000

export function summarize (samples: number[]): LatencySummary {
  const s = [...samples].sort((a, b) => a - b)
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)
  return {
    count: s.length,
    mean: r3(mean),
    p50: r3(percentile(s, 50)),
    p90: r3(percentile(s, 90)),
    p99: r3(percentile(s, 99)),
    max: r3(s[s.length - 1] ?? NaN),
    min: r3(s[0] ?? NaN)
  }
}

export function ratio (a: number, b: number): number {
  return b === 0 ? NaN : Math.round((a / b) * 1000) / 1000
}

export function round (x: number, digits = 1): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** Counts by key (status codes, outcomes). */
export class Counter {
  readonly counts: Record<string, number> = {}
  add (key: string | number, n = 1): void { this.counts[String(key)] = (this.counts[String(key)] ?? 0) + n }
  get (key: string | number): number { return this.counts[String(key)] ?? 0 }
  get total (): number { return Object.values(this.counts).reduce((a, b) => a + b, 0) }
}
