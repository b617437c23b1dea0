/**
 * Load shapes. Closed loop: N workers, each issuing its next request when the previous one answered, for a
 * fixed duration after a warm-up (throughput). Open loop: requests started on a fixed schedule whatever
 * the server does, latency measured from the scheduled start (so a stalled server cannot hide its queue).
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import { summarize, Counter, round, type LatencySummary } from './stats.ts'

/** An operation returns true when it succeeded, or a short outcome label (e.g. "http 503") when not. */
export type Op = (worker: number) => Promise<true | string>

export interface LoadResult {
  durationS: number
  requests: number
  ok: number
  /** successful operations per second */
  rps: number
  /** latency of successful operations, ms */
  latency: LatencySummary
  outcomes: Record<string, number>
}

async function attempt (op: Op, worker: number): Promise<true | string> {
  try {
    return await op(worker)
  } catch (err) {
    return `error: ${(err as Error).message.slice(0, 120)}`
  }
}

export interface ClosedLoopOptions {
  connections: number
  durationMs: number
  warmupMs: number
  op: Op
  /** called as the measured window opens and closes (to read server CPU time around exactly it) */
  onStart?: () => Promise<void>
  onEnd?: () => Promise<void>
}

export async function closedLoop (opts: ClosedLoopOptions): Promise<LoadResult & { clientCpuPct: number }> {
  let measuring = false
  let stopping = false
  let deadline = Infinity
  const latencies: number[] = []
  const outcomes = new Counter()
  const worker = async (i: number): Promise<void> => {
    while (!stopping) {
      const t0 = performance.now()
      const outcome = await attempt(opts.op, i)
      const t1 = performance.now()
      if (measuring && t0 >= startedAt && t1 <= deadline) {
        outcomes.add(outcome === true ? 'ok' : outcome)
        if (outcome === true) latencies.push(t1 - t0)
      }
    }
  }
  let startedAt = Infinity
  const workers = Array.from({ length: opts.connections }, (_, i) => worker(i))
  await delay(opts.warmupMs)
  await opts.onStart?.()
  const cpu0 = process.cpuUsage()
  startedAt = performance.now()
  deadline = startedAt + opts.durationMs
  measuring = true
  await delay(opts.durationMs)
  const cpu = process.cpuUsage(cpu0)
  const elapsed = performance.now() - startedAt
  await opts.onEnd?.()
  stopping = true
  await Promise.all(workers)
  const durationS = opts.durationMs / 1000
  const ok = outcomes.get('ok')
  return {
    durationS,
    requests: outcomes.total,
    ok,
    rps: round(ok / durationS),
    latency: summarize(latencies),
    outcomes: outcomes.counts,
    clientCpuPct: round(((cpu.user + cpu.system) / 1000 / elapsed) * 100)
  }
}

/** With `until`, the schedule runs until that promise settles (durationMs is then ignored). */
export async function openLoop (opts: { ratePerS: number, durationMs: number, op: Op, until?: Promise<unknown> }): Promise<LoadResult> {
  const latencies: number[] = []
  const outcomes = new Counter()
  let done = false
  void opts.until?.finally(() => { done = true })
  const total = opts.until ? Infinity : Math.max(1, Math.round((opts.ratePerS * opts.durationMs) / 1000))
  const interval = 1000 / opts.ratePerS
  const start = performance.now()
  const inflight: Array<Promise<void>> = []
  for (let i = 0; i < total && !done; i++) {
    const scheduled = start + i * interval
    const wait = scheduled - performance.now()
    if (wait > 1) await delay(wait)
    inflight.push(attempt(opts.op, i).then((outcome) => {
      outcomes.add(outcome === true ? 'ok' : outcome)
      if (outcome === true) latencies.push(performance.now() - scheduled)
    }))
  }
  await Promise.all(inflight)
  const durationS = (performance.now() - start) / 1000
  const ok = outcomes.get('ok')
  return { durationS: round(durationS, 2), requests: outcomes.total, ok, rps: round(ok / durationS), latency: summarize(latencies), outcomes: outcomes.counts }
}

/** A pool of exclusive resources (refresh-token chains): acquire waits for a free one, in order. */
export class ResourcePool<T> {
  private readonly free: T[]
  private readonly waiters: Array<(t: T) => void> = []
  constructor (items: T[]) { this.free = [...items] }
  acquire (): Promise<T> {
    const t = this.free.pop()
    if (t !== undefined) return Promise.resolve(t)
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  release (t: T): void {
    const w = this.waiters.shift()
    if (w) w(t)
    else this.free.push(t)
  }
}
