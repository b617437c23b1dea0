export type { Benchmark, BenchResult, RunContext } from '../lib/types.ts'
export interface CpuTimeLike { user: number, system: number }
