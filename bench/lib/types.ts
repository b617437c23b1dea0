import type { ProfileSummary } from './profile.ts'
import type { BenchRedis } from './seed.ts'

export type Size = 'tiny' | 'full'
export type ProfileMode = 'missed' | 'always' | 'never'

/** One row of a benchmark's table: a figure, and where a baseline was measured in the same run, it and the ratio. */
export interface Metric {
  name: string
  value: number
  unit: string
  baseline?: number
  /** value / baseline (or as the metric's note says) */
  ratio?: number
  note?: string
}

/** A target from the issue, judged on this run's figure. */
export interface Target {
  name: string
  /** the target as the issue states it, e.g. ">= 0.85" */
  target: string
  value: number
  unit: string
  met: boolean
}

export interface ProfileRecord {
  /** which process was profiled, and under what load */
  process: string
  load: string
  file: string
  summary: ProfileSummary
}

export interface BenchResult {
  name: string
  title: string
  status: 'ok' | 'error'
  error?: string
  durationS: number
  metrics: Metric[]
  targets: Target[]
  profiles: ProfileRecord[]
  notes: string[]
  /** every raw figure the benchmark collected */
  details: Record<string, unknown>
}

export interface RunContext {
  size: Size
  profile: ProfileMode
  bench: BenchRedis
  redisUrl: string
  prefix: string
  /** where .cpuprofile files go */
  profilesDir: string
  stamp: string
  log: (msg: string) => void
}

export interface Benchmark {
  name: string
  title: string
  run: (ctx: RunContext, result: BenchResult) => Promise<void>
}
