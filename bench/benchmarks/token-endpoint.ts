/**
 * 3. Token endpoint: refresh_token grants per second with rotation, one token-service process per core.
 * Each client connection holds its own refresh-token chain (a refresh can only use the token the previous
 * one returned) and sticks to one process. Target: >= 1,000 grants per second per core.
 */
import { cpus } from 'node:os'
import { requestPool } from '../lib/mcp.ts'
import { closedLoop } from '../lib/load.ts'
import { seedWorkspace, seedGrants } from '../lib/seed.ts'
import { startChains, refresh } from '../lib/oauth.ts'
import { ProcessGroup, tokenOptions, RESOURCE, type ServerProcess } from '../lib/services.ts'
import { profileDuring, shouldProfile } from '../lib/profiling.ts'
import { round } from '../lib/stats.ts'
import type { Benchmark, CpuTimeLike } from './common.ts'

const SIZES = {
  tiny: { chainsPerProcess: 8, durationMs: 1000, warmupMs: 300, profileMs: 500 },
  full: { chainsPerProcess: 24, durationMs: 10000, warmupMs: 2000, profileMs: 5000 }
}

const cpuTotal = (c: CpuTimeLike): number => c.user + c.system

export const tokenEndpoint: Benchmark = {
  name: 'token-endpoint',
  title: '3. Token endpoint',
  async run (ctx, result) {
    const s = SIZES[ctx.size]
    const processes = cpus().length
    const group = new ProcessGroup()
    const pools: Array<{ destroy: () => Promise<void> }> = []
    try {
      const ws = await seedWorkspace(ctx.bench.redis)
      const n = s.chainsPerProcess * processes
      const grants = await seedGrants(ctx.bench.redis, ctx.prefix, ws.userId, n, { resource: RESOURCE })
      // the first process creates the signing key; the others read the same one
      const first = await group.start(tokenOptions(ctx, { name: 'token-1' }))
      const rest = await Promise.all(Array.from({ length: processes - 1 }, (_, i) => group.start(tokenOptions(ctx, { name: `token-${i + 2}` }))))
      const procs: ServerProcess[] = [first, ...rest]
      const perProc = procs.map((p) => requestPool(p.url, s.chainsPerProcess))
      pools.push(...perProc)
      const poolOf = (i: number): typeof perProc[number] => perProc[i % processes]
      const chains = await Promise.all(procs.map((_, p) => startChains(ctx.bench.redis, perProc[p], grants.filter((_, i) => i % processes === p), RESOURCE)))
      // chain i lives on process i % processes
      const chainOf = (i: number): typeof chains[number][number] => chains[i % processes][Math.floor(i / processes)]

      const run = async (durationMs: number, warmupMs: number): Promise<{ load: Awaited<ReturnType<typeof closedLoop>>, cpuUs: number[] }> => {
        let cpu0: CpuTimeLike[] = []
        let cpu1: CpuTimeLike[] = []
        const load = await closedLoop({
          connections: n,
          durationMs,
          warmupMs,
          op: (i) => refresh(poolOf(i), chainOf(i)),
          onStart: async () => { cpu0 = await Promise.all(procs.map((p) => p.cpu())) },
          onEnd: async () => { cpu1 = await Promise.all(procs.map((p) => p.cpu())) }
        })
        return { load, cpuUs: procs.map((_, i) => cpuTotal(cpu1[i]) - cpuTotal(cpu0[i])) }
      }
      ctx.log(`${processes} token processes, ${n} refresh-token chains, ${s.durationMs / 1000} s`)
      const { load, cpuUs } = await run(s.durationMs, s.warmupMs)
      const cpuS = cpuUs.reduce((a, b) => a + b, 0) / 1e6
      const perCpuSecond = round(load.ok / Math.max(1e-9, cpuS))
      const perProcess = round(load.rps / processes)
      const errors = load.requests - load.ok
      result.metrics.push(
        { name: 'refresh_token grants per second (all processes)', value: load.rps, unit: '/s', note: `${processes} token processes (one per core), ${n} connections each with its own rotating chain` },
        { name: 'per process (wall clock)', value: perProcess, unit: '/s', note: 'the machine\'s cores are shared with the load generator and Redis' },
        { name: 'per core (grants per CPU-second of the token processes)', value: perCpuSecond, unit: '/s', note: 'what one fully used core sustains' },
        { name: 'token process CPU use', value: round((cpuUs.reduce((a, b) => a + b, 0) / 1000 / s.durationMs) * 100 / processes), unit: '%', note: 'mean per process; 100 % = its core saturated' },
        { name: 'latency p50 / p99', value: load.latency.p50, unit: 'ms', note: `p99 ${load.latency.p99} ms, max ${load.latency.max} ms` },
        { name: 'load generator CPU use', value: load.clientCpuPct, unit: '%' },
        { name: 'failed grants', value: errors, unit: '', note: JSON.stringify(load.outcomes) }
      )
      result.targets.push({ name: 'refresh grants per second per core', target: '>= 1000', value: perCpuSecond, unit: '/s', met: perCpuSecond >= 1000 && errors === 0 })
      const rotations = chains.flat().reduce((a, c) => a + c.rotations, 0)
      result.notes.push(`Every grant rotates: ${rotations} rotations in all, each answer carrying a new refresh token that the next request uses. "Per core" divides the grants by the CPU time the token processes used in the window (user + system), so it does not count the cores the load generator and Redis took on this ${processes}-core machine; the wall-clock figure per process is next to it.`)
      result.details = { size: s, processes, load, cpuUsByProcess: cpuUs, rotations }

      if (shouldProfile(ctx, result)) {
        ctx.log('profiling a token process under the same load')
        await profileDuring(ctx, result, [first], `${n} connections of refresh_token grants for ${s.profileMs / 1000} s`, () => run(s.profileMs, 300))
      }
    } finally {
      await Promise.all(pools.map(async (p) => p.destroy().catch(() => {})))
      await group.stopAll()
    }
  }
}
