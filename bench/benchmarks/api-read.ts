/**
 * 6. The workspace API's authenticated read: `GET /v1/workspaces/:id/recordings/:id` on the real API
 * service (the cache fence, the personal key, its user and the role judged from the tracked cache, both
 * rate limits counted, the recording read) against the same read with no auth on the same Fastify base
 * (`servers/bare-rest.ts`), same client load, alternating rounds. Target: API throughput >= 0.9 of the
 * bare read's.
 */
import { ApiKeyStore } from '@uspl/core'
import { request } from 'undici'
import { requestPool } from '../lib/mcp.ts'
import { closedLoop, type LoadResult } from '../lib/load.ts'
import { seedWorkspace } from '../lib/seed.ts'
import { ProcessGroup, type ServerProcess } from '../lib/services.ts'
import { serviceEntry, ROOT } from '../lib/proc.ts'
import { ratio, round } from '../lib/stats.ts'
import { profileDuring, shouldProfile } from '../lib/profiling.ts'
import { join } from 'node:path'
import type { Benchmark, CpuTimeLike } from './common.ts'

const SIZES = {
  tiny: { connections: 8, durationMs: 800, warmupMs: 200, rounds: 1, profileMs: 500 },
  full: { connections: 32, durationMs: 8000, warmupMs: 1500, rounds: 5, profileMs: 5000 }
}

interface Side { load: LoadResult & { clientCpuPct: number }, serverCpuUsPerCall: number }

export const apiRead: Benchmark = {
  name: 'api-read',
  title: '6. Workspace API: authenticated GET of a recording',
  async run (ctx, result) {
    const s = SIZES[ctx.size]
    const group = new ProcessGroup()
    try {
      const ws = await seedWorkspace(ctx.bench.redis)
      const { key } = await new ApiKeyStore(ctx.bench.redis).create('bench', { userId: ws.userId })
      const env = { REDIS_URL: ctx.redisUrl, REDIS_PREFIX: ctx.prefix }
      const [api, bare] = await Promise.all([
        // limits far above the load, so every request is counted but none refused
        group.start({ name: 'api', entry: serviceEntry('api'), env: { ...env, API_RATE_LIMIT_PER_KEY: '100000000', API_RATE_LIMIT_PER_ADDRESS: '100000000' } }),
        group.start({ name: 'bare-rest', entry: join(ROOT, 'bench', 'servers', 'bare-rest.ts'), env })
      ])
      const path = `/v1/workspaces/${ws.workspaceId}/recordings/${ws.recordingId}`

      const measure = async (server: ServerProcess, auth: boolean, durationMs: number, warmupMs: number): Promise<Side> => {
        const pool = requestPool(server.url, s.connections)
        const headers = auth ? { authorization: `Bearer ${key}` } : {}
        const get = async (): Promise<true | string> => {
          const res = await request(`${server.url}${path}`, { dispatcher: pool, headers })
          await res.body.text()
          return res.statusCode === 200 ? true : `http ${res.statusCode}`
        }
        try {
          const probe = await get()
          if (probe !== true) throw new Error(`${server.name}: GET ${path} answered ${probe}`)
          let cpu0: CpuTimeLike = { user: 0, system: 0 }
          let cpu1: CpuTimeLike = { user: 0, system: 0 }
          const load = await closedLoop({
            connections: s.connections,
            durationMs,
            warmupMs,
            op: get,
            onStart: async () => { cpu0 = await server.cpu() },
            onEnd: async () => { cpu1 = await server.cpu() }
          })
          const cpuUs = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
          return { load, serverCpuUsPerCall: round(cpuUs / Math.max(1, load.ok)) }
        } finally {
          await pool.close()
        }
      }

      ctx.log('warm-up round (not counted)')
      await measure(bare, false, s.warmupMs * 2, 0)
      await measure(api, true, s.warmupMs * 2, 0)
      const rounds: Array<{ bare: Side, api: Side }> = []
      for (let r = 0; r < s.rounds; r++) {
        const b = await measure(bare, false, s.durationMs, s.warmupMs)
        const a = await measure(api, true, s.durationMs, s.warmupMs)
        ctx.log(`round ${r + 1}/${s.rounds}: bare ${b.load.rps}/s, api ${a.load.rps}/s`)
        rounds.push({ bare: b, api: a })
      }
      const median = (xs: number[]): number => { const v = [...xs].sort((a, b) => a - b); const m = Math.floor(v.length / 2); return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2 }
      const mid = (f: (x: { bare: Side, api: Side }) => number): number => round(median(rounds.map(f)), 3)
      const roundRatios = rounds.map((x) => ratio(x.api.load.rps, x.bare.load.rps))
      const tput = round(median(roundRatios), 3)
      const aCpu = mid((x) => x.api.serverCpuUsPerCall)
      const bCpu = mid((x) => x.bare.serverCpuUsPerCall)
      const capacity = ratio(bCpu, aCpu)
      result.metrics.push(
        { name: 'throughput (GET per s)', value: mid((x) => x.api.load.rps), baseline: mid((x) => x.bare.load.rps), ratio: tput, unit: '/s', note: `median over rounds; ratio: median of the per-round ratios (${roundRatios.join(', ')}); ${s.connections} keep-alive connections` },
        { name: 'GETs per server CPU-second (per core)', value: round(1e6 / aCpu), baseline: round(1e6 / bCpu), ratio: capacity, unit: '/s', note: 'what one saturated core of each server would serve' },
        { name: 'latency p50', value: mid((x) => x.api.load.latency.p50), baseline: mid((x) => x.bare.load.latency.p50), unit: 'ms', note: 'api / bare' },
        { name: 'latency p99', value: mid((x) => x.api.load.latency.p99), baseline: mid((x) => x.bare.load.latency.p99), unit: 'ms', note: 'api / bare' },
        { name: 'server CPU per GET', value: aCpu, baseline: bCpu, ratio: ratio(aCpu, bCpu), unit: 'µs', note: 'user+system CPU time of the server process in the window / requests' }
      )
      result.targets.push(
        { name: 'throughput ratio api/bare, same client load', target: '>= 0.9', value: tput, unit: '', met: tput >= 0.9 },
        { name: 'throughput ratio per core (GETs per server CPU-second)', target: '>= 0.9', value: capacity, unit: '', met: capacity >= 0.9 }
      )
      const errors = rounds.flatMap((x) => [x.bare, x.api]).reduce((a, x) => a + (x.load.requests - x.load.ok), 0)
      if (errors > 0) result.notes.push(`${errors} requests failed during the measured windows`)
      result.notes.push('The API side authenticates a personal key on every request: it waits for the cache fence (one PING in flight at a time, shared by the requests that arrived before it was sent), judges the key, its user and the role from the cache Redis keeps true (live-cache.ts), counts both rate limits (two @fastify/rate-limit limiters on the shared store, synced to Redis every 100 ms), then reads the recording; the bare side is the same Fastify base and serializer with the recording read only.')
      result.details = { size: s, rounds }

      if (shouldProfile(ctx, result)) {
        ctx.log('profiling the API and the bare read under the same load')
        await profileDuring(ctx, result, [api], `${s.connections} connections of authenticated GETs for ${s.profileMs / 1000} s`, async () => measure(api, true, s.profileMs, 0))
        await profileDuring(ctx, result, [bare], 'the baseline under the same load, for comparison', async () => measure(bare, false, s.profileMs, 0))
      }
    } finally {
      await group.stopAll()
    }
  }
}
