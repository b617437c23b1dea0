/**
 * 4. Session cost, on one gateway process (started with --expose-gc): heap and RSS after full GCs before
 * and after opening N idle sessions, then after opening each one's GET stream, at two sizes (1,000 and
 * 10,000). At each size, with all N sessions and streams open, the time to revoke one more grant: from
 * the revocation module's call (the shared Revoker, as every revoking path uses) to that client's stream
 * ending. Target: that time does not grow with the number of other sessions.
 */
import { performance } from 'node:perf_hooks'
import { join, relative, dirname } from 'node:path'
import { Revoker } from '@uspl/core'
import { LocalIssuer } from '../lib/jwt.ts'
import { McpSession, requestPool, streamPool, type SseStream } from '../lib/mcp.ts'
import { seedWorkspace, seedGrants, type SeededGrant } from '../lib/seed.ts'
import { ProcessGroup, gatewayOptions, RESOURCE, type ServerProcess } from '../lib/services.ts'
import type { MemoryReading } from '../lib/proc.ts'
import { profileDuring, shouldProfile } from '../lib/profiling.ts'
import { summarize, ratio, round, type LatencySummary } from '../lib/stats.ts'
import { connect, mapLimit, within, type Benchmark } from './common.ts'

const SIZES = {
  tiny: { sessions: [30, 120], probes: 4, warm: 4 },
  full: { sessions: [1000, 10000], probes: 25, warm: 50 }
}
const CONCURRENCY = 48

interface SizeResult {
  sessions: number
  baseline: MemoryReading
  idle: MemoryReading
  streams: MemoryReading
  perIdleSession: { heapKb: number, rssKb: number }
  perStream: { heapKb: number, rssKb: number }
  revoke: LatencySummary
  openSeconds: { sessions: number, streams: number }
}

const kb = (bytes: number, n: number): number => round(bytes / n / 1024, 2)

export const sessionCost: Benchmark = {
  name: 'session-cost',
  title: '4. Session cost',
  async run (ctx, result) {
    const s = SIZES[ctx.size]
    const issuer = new LocalIssuer(RESOURCE)
    const revoker = new Revoker({ redis: ctx.bench.redis, prefix: ctx.prefix, accessTokenTtlS: 900 })
    const ws = await seedWorkspace(ctx.bench.redis)
    await issuer.start()
    const max = Math.max(...s.sessions)
    const perSizeExtra = s.probes + s.warm + (ctx.profile === 'never' ? 0 : s.probes)
    ctx.log(`seeding ${max + perSizeExtra * s.sessions.length} clients and grants`)
    const grants = await seedGrants(ctx.bench.redis, ctx.prefix, ws.userId, max + perSizeExtra * s.sessions.length, { resource: RESOURCE })
    const sessionGrants = grants.slice(0, max)
    const tokens = new Map(grants.map((g) => [g.grantId, issuer.mint({ sub: g.userId, clientId: g.clientId, grantId: g.grantId })]))
    const sizes: SizeResult[] = []
    let lastGateway: { gateway: ServerProcess, revokeProbes: (gs: SeededGrant[]) => Promise<number[]> } | null = null
    const group = new ProcessGroup()
    try {
      for (const [k, n] of s.sessions.entries()) {
        const extra = grants.slice(max + k * perSizeExtra, max + (k + 1) * perSizeExtra)
        const gateway = await group.start(gatewayOptions(ctx, issuer.url, { exposeGc: true, env: { SESSION_IDLE_TIMEOUT_S: '86400', LOG_LEVEL: 'error' } }))
        const req = requestPool(gateway.url, CONCURRENCY)
        const str = streamPool(gateway.url)
        const revokeProbes = async (gs: SeededGrant[]): Promise<number[]> => {
          const out: number[] = []
          for (const g of gs) {
            const c = await connect(req, str, tokens.get(g.grantId) as string)
            const t0 = performance.now()
            await revoker.revokeGrant(g.grantId, { path: 'cli', actor: { type: 'system', id: 'bench' } })
            out.push(await within(c.stream.ended, 5000, NaN) - t0)
          }
          return out
        }
        // warm the process up (JIT, pools) with a few sessions that it then closes on revocation
        await revokeProbes(extra.slice(0, s.warm))
        const baseline = await gateway.memory()
        const heapProfile = ctx.profile !== 'never' && k === s.sessions.length - 1
        if (heapProfile) await gateway.startHeapProfile()
        ctx.log(`${n} sessions: opening`)
        const t0 = performance.now()
        const sessions = await mapLimit(sessionGrants.slice(0, n), CONCURRENCY, (g) => new McpSession(req, '/mcp', tokens.get(g.grantId)).open())
        const t1 = performance.now()
        const idle = await gateway.memory()
        ctx.log(`${n} sessions: opening their GET streams`)
        const streams: SseStream[] = await mapLimit(sessions, CONCURRENCY, (x) => x.stream(str))
        const t2 = performance.now()
        const withStreams = await gateway.memory()
        if (heapProfile) {
          const file = join(ctx.profilesDir, `${ctx.stamp}-${result.name}-gateway.heapprofile`)
          const heap = await gateway.stopHeapProfile(file)
          result.details.heap = { file: relative(dirname(ctx.profilesDir), file), sessions: n, ...heap }
          const perSession = (kb: number): number => round(kb / n, 2)
          result.notes.push(`What holds the memory of ${n.toLocaleString('en-US')} sessions with their streams (sampling heap profile of the gateway, live allocations after GC, ${heap.totalKb.toLocaleString('en-US')} KB sampled; file \`${relative(dirname(ctx.profilesDir), file)}\`), KB per session by the library that allocated it: ` +
            heap.byOwner.slice(0, 8).map((o) => `${o.package} ${perSession(o.kb)}`).join(', ') + '. Largest allocation sites (KB per session): ' +
            heap.top.slice(0, 6).map((f) => `${f.function} (${f.location || f.package}) ${perSession(f.kb)}`).join(', ') + '.')
        }
        ctx.log(`${n} sessions: revoking ${s.probes} other grants`)
        const times = await revokeProbes(extra.slice(s.warm, s.warm + s.probes))
        const lost = streams.filter((x) => !x.open).length
        if (lost > 0) result.notes.push(`at ${n} sessions, ${lost} of the other sessions' streams ended during the probes (they should not have)`)
        sizes.push({
          sessions: n,
          baseline,
          idle,
          streams: withStreams,
          perIdleSession: { heapKb: kb(idle.heapUsed - baseline.heapUsed, n), rssKb: kb(idle.rss - baseline.rss, n) },
          perStream: { heapKb: kb(withStreams.heapUsed - idle.heapUsed, n), rssKb: kb(withStreams.rss - idle.rss, n) },
          revoke: summarize(times.filter(Number.isFinite)),
          openSeconds: { sessions: round((t1 - t0) / 1000, 2), streams: round((t2 - t1) / 1000, 2) }
        })
        if (times.some((x) => !Number.isFinite(x))) result.notes.push(`at ${n} sessions, ${times.filter((x) => !Number.isFinite(x)).length} probe stream(s) did not end within 5 s`)
        lastGateway = { gateway, revokeProbes }
        if (k < s.sessions.length - 1) {
          for (const x of streams) x.close()
          await Promise.all([req.close(), str.destroy()])
          await group.stopAll()
        } else {
          const [small, large] = [sizes[0], sizes[sizes.length - 1]]
          for (const z of sizes) {
            result.metrics.push(
              { name: `memory per idle session at ${z.sessions.toLocaleString('en-US')}`, value: z.perIdleSession.heapKb, unit: 'KB heap', note: `RSS ${z.perIdleSession.rssKb} KB per session; heap after GC ${round(z.idle.heapUsed / 2 ** 20)} MB, RSS ${round(z.idle.rss / 2 ** 20)} MB` },
              { name: `memory per open GET stream at ${z.sessions.toLocaleString('en-US')}`, value: z.perStream.heapKb, unit: 'KB heap', note: `RSS ${z.perStream.rssKb} KB per stream (socket and buffers included)` },
              { name: `revoke one grant with ${z.sessions.toLocaleString('en-US')} other sessions open, p50`, value: z.revoke.p50, unit: 'ms', note: `max ${z.revoke.max} ms over ${z.revoke.count}; revocation module call → the client's stream ended` }
            )
          }
          const growth = ratio(large.revoke.p50, small.revoke.p50)
          result.metrics.push({ name: `revoke time at ${large.sessions.toLocaleString('en-US')} vs ${small.sessions.toLocaleString('en-US')} sessions (p50)`, value: large.revoke.p50, baseline: small.revoke.p50, ratio: growth, unit: 'ms', note: `${large.sessions / small.sessions}× the sessions` })
          result.targets.push({ name: `revoke time does not grow (p50 at ${large.sessions.toLocaleString('en-US')} / at ${small.sessions.toLocaleString('en-US')})`, target: '<= 1.5 (flat within noise)', value: growth, unit: '', met: growth <= 1.5 })
          result.notes.push('Memory: process.memoryUsage() in the gateway after two full GCs (--expose-gc), before and after; one grant per session (each a registered client), so the per-grant session cap does not apply. Revocation: the shared Revoker (what every revoking path calls) straight from the harness, so this isolates the gateway\'s lookup by index from the connections API (benchmark 2 includes it).')
          if (shouldProfile(ctx, result)) {
            ctx.log('profiling the gateway during revocations with every session open')
            await profileDuring(ctx, result, [gateway], `${s.probes} revocations with ${large.sessions} other sessions and streams open`, () => lastGateway?.revokeProbes(extra.slice(s.warm + s.probes)) ?? Promise.resolve())
          }
          for (const x of streams) x.close()
          await Promise.all([req.close(), str.destroy()])
        }
      }
      result.details = { ...result.details, size: s, sizes }
    } finally {
      await group.stopAll()
      await issuer.stop()
    }
  }
}
