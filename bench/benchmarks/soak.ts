/**
 * 7. Soak: sessions with open GET streams spread over three gateway replicas (1,000 at full size), other
 * clients calling a tool all along, and an operator revoking one connection every 200 ms through the
 * connections API for the whole run (60 s at full size). The other clients' calls come at a fixed rate
 * (open loop), so the figures show revocation under steady load rather than on a saturated machine. Per revocation, on the client's clock: from just
 * before the API call to the victim's stream ending; the victim's next request with its old token and
 * session must not answer 200 (nor, afterwards, on any replica). Reported: other clients' errors (tool calls
 * that did not succeed, GET streams that ended), revoked sessions still answering, revoke → stream end
 * p50/p99, and each gateway's heap (after full GCs) before and after.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import { request, type Dispatcher } from 'undici'
import { LocalIssuer } from '../lib/jwt.ts'
import { McpSession, requestPool, streamPool, toolFailed } from '../lib/mcp.ts'
import { seedWorkspace, seedGrants, operatorKey, type SeededGrant } from '../lib/seed.ts'
import { ProcessGroup, gatewayOptions, connectionsOptions, RESOURCE } from '../lib/services.ts'
import { TOOL, toolArgs } from '../lib/tool.ts'
import { profileDuring, shouldProfile } from '../lib/profiling.ts'
import { summarize, Counter, round } from '../lib/stats.ts'
import { openLoop } from '../lib/load.ts'
import { connect, mapLimit, within, type Benchmark, type Connected } from './common.ts'

const SIZES = {
  tiny: { sessions: 60, warmupMs: 1000, durationMs: 5000, everyMs: 200, callsPerS: 50, profileRevocations: 5 },
  full: { sessions: 1000, warmupMs: 5000, durationMs: 60000, everyMs: 200, callsPerS: 200, profileRevocations: 25 }
}
const GATEWAYS = 3
const TIMEOUT_MS = 5000

interface Client extends Connected { grant: SeededGrant, token: string, gw: number }
interface Sample { streamMs: number, apiMs: number, apiStatus: number, nextStatus: number }

export const soak: Benchmark = {
  name: 'soak',
  title: '7. Soak: three replicas, a revocation every 200 ms',
  async run (ctx, result) {
    const s = SIZES[ctx.size]
    const revocations = Math.floor(s.durationMs / s.everyMs)
    // the first seconds (load and revocations alike) warm the processes up and are not counted
    const warmups = Math.floor(s.warmupMs / s.everyMs)
    const group = new ProcessGroup()
    const issuer = new LocalIssuer(RESOURCE)
    const pools: Dispatcher[] = []
    try {
      const ws = await seedWorkspace(ctx.bench.redis)
      const victimsN = warmups + revocations + s.profileRevocations
      const grants = await seedGrants(ctx.bench.redis, ctx.prefix, ws.userId, s.sessions, { resource: RESOURCE, name: 'Soak App' })
      const key = await operatorKey(ctx.bench.redis)
      await issuer.start()
      const [connections, ...gateways] = await Promise.all([
        group.start(connectionsOptions(ctx)),
        ...Array.from({ length: GATEWAYS }, async (_, i) => group.start(gatewayOptions(ctx, issuer.url, { name: `gateway-${i + 1}`, exposeGc: true, env: { REPLICA_ID: `soak-gw-${i + 1}` } })))
      ])
      const req = gateways.map((g) => requestPool(g.url, 16))
      const str = gateways.map((g) => streamPool(g.url))
      const api = requestPool(connections.url, 4)
      pools.push(...req, ...str, api)
      const args = toolArgs(ws.workspaceId, ws.recordingId)

      const open = async (g: SeededGrant, i: number): Promise<Client> => {
        const gw = i % GATEWAYS
        const token = issuer.mint({ sub: g.userId, clientId: g.clientId, grantId: g.grantId, ttlS: 3600 })
        return { ...await connect(req[gw], str[gw], token), grant: g, token, gw }
      }
      ctx.log(`opening ${grants.length} sessions with GET streams on ${GATEWAYS} gateways`)
      const clients = await mapLimit(grants, 32, open)
      const victims = clients.slice(0, victimsN)
      const others = clients.slice(victimsN)
      const memBefore = await Promise.all(gateways.map(async (g) => g.memory()))

      const revokeOne = async (v: Client): Promise<Sample> => {
        const t0 = performance.now()
        const call = request(`${connections.url}/v1/connections/${encodeURIComponent(v.grant.grantId)}/revoke`, {
          method: 'POST',
          dispatcher: api,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ confirm: v.grant.clientName })
        }).then(async (res) => { await res.body.dump(); return { status: res.statusCode, at: performance.now() } }, () => ({ status: 0, at: NaN }))
        const endedAt = await within(v.stream.ended, TIMEOUT_MS, NaN)
        const next = await v.session.callTool(TOOL.name, args).then((r) => r.status, () => 0)
        const answered = await call
        return { streamMs: endedAt - t0, apiMs: answered.at - t0, apiStatus: answered.status, nextStatus: next }
      }

      // other clients call a tool all along, at a fixed rate (open loop: a soak, not a saturation test),
      // round-robin over every other session
      let nextCall = 0
      const call = async (): Promise<true | string> => {
        const c = others[nextCall++ % others.length]
        const reply = await c.session.callTool(TOOL.name, args)
        return toolFailed(reply) ? `http ${reply.status}${reply.status === 200 ? ' isError' : ''}` : true
      }

      const schedule = async (list: Client[]): Promise<Sample[]> => {
        const begin = performance.now()
        const pending: Array<Promise<Sample>> = []
        for (let i = 0; i < list.length; i++) {
          const wait = begin + i * s.everyMs - performance.now()
          if (wait > 1) await delay(wait)
          pending.push(revokeOne(list[i]))
        }
        return Promise.all(pending)
      }
      ctx.log(`${warmups} revocations to warm up, then ${revocations}, one every ${s.everyMs} ms, for ${s.durationMs / 1000} s, while ${others.length} other clients call ${TOOL.name} ${s.callsPerS} times a second`)
      const warm = openLoop({ ratePerS: s.callsPerS, durationMs: s.warmupMs, op: call })
      await schedule(victims.slice(0, warmups))
      const warmCalls = await warm
      const start = performance.now()
      const load = openLoop({ ratePerS: s.callsPerS, durationMs: s.durationMs, op: call })
      const measured = victims.slice(warmups, warmups + revocations)
      const samples = await schedule(measured)
      const elapsedS = (performance.now() - start) / 1000
      const calls = await load

      // afterwards: no revoked session answers, on any replica, with its old token
      const answering = (await mapLimit(victims.slice(0, warmups + revocations), 32, async (v) => {
        const statuses = await Promise.all(req.map(async (pool) => {
          const probe = new McpSession(pool, '/mcp', v.token)
          probe.id = v.session.id
          return (await probe.request('tools/list')).status
        }))
        return statuses.some((st) => st === 200)
      })).filter(Boolean).length
      const streamsEnded = others.filter((c) => !c.stream.open).length
      const memAfter = await Promise.all(gateways.map(async (g) => g.memory()))

      const stream = summarize(samples.map((x) => x.streamMs).filter(Number.isFinite))
      const apiLatency = summarize(samples.map((x) => x.apiMs).filter(Number.isFinite))
      const missed = samples.filter((x) => !Number.isFinite(x.streamMs)).length
      const nextAnswered = samples.filter((x) => x.nextStatus === 200).length
      const apiStatuses = new Counter()
      const nextStatuses = new Counter()
      for (const x of samples) { apiStatuses.add(x.apiStatus); nextStatuses.add(x.nextStatus) }
      // the warm-up's calls count for errors too: no other client may fail at any time
      const errors = calls.requests - calls.ok + warmCalls.requests - warmCalls.ok
      const mb = (x: number): number => round(x / 2 ** 20)
      const heapBefore = memBefore.map((m) => mb(m.heapUsed))
      const heapAfter = memAfter.map((m) => mb(m.heapUsed))

      result.metrics.push(
        { name: 'revoke call → SSE stream ended, p50', value: stream.p50, unit: 'ms' },
        { name: 'revoke call → SSE stream ended, p99', value: stream.p99, unit: 'ms' },
        { name: 'revoke call → SSE stream ended, max', value: stream.max, unit: 'ms' },
        { name: 'revoke API response, p50 / p99', value: apiLatency.p50, unit: 'ms', note: `p99 ${apiLatency.p99} ms, max ${apiLatency.max} ms` },
        { name: 'revocations', value: samples.length, unit: '', note: `after ${warmups} not counted (${s.warmupMs / 1000} s of warm-up); one every ${s.everyMs} ms over ${round(elapsedS)} s through the connections API: ${JSON.stringify(apiStatuses.counts)}; ${missed} stream(s) did not end within ${TIMEOUT_MS / 1000} s; next request with the old token: ${JSON.stringify(nextStatuses.counts)}` },
        { name: 'revoked sessions answering', value: answering + nextAnswered, unit: '', note: 'a 200 to the victim\'s next request, or afterwards to tools/list on any replica with its old token and session id' },
        { name: 'other clients\' tool calls failed', value: errors, baseline: calls.requests + warmCalls.requests, unit: '', note: `${calls.requests} calls at ${s.callsPerS}/s over ${others.length} sessions: ${JSON.stringify(calls.outcomes)} (warm-up: ${JSON.stringify(warmCalls.outcomes)})` },
        { name: 'other clients\' tool calls, p50 / p99', value: calls.latency.p50, unit: 'ms', note: `p99 ${calls.latency.p99} ms, max ${calls.latency.max} ms, from the scheduled start` },
        { name: 'other clients\' GET streams ended', value: streamsEnded, baseline: others.length, unit: '' },
        { name: 'gateway heap used after full GCs, before → after, max', value: Math.max(...heapAfter), baseline: Math.max(...heapBefore), unit: 'MB', note: `per gateway: ${heapBefore.join(', ')} → ${heapAfter.join(', ')} MB; RSS ${memBefore.map((m) => mb(m.rss)).join(', ')} → ${memAfter.map((m) => mb(m.rss)).join(', ')} MB` }
      )
      result.targets.push(
        { name: 'soak: other clients\' errors', target: '= 0', value: errors + streamsEnded, unit: '', met: errors === 0 && streamsEnded === 0 },
        { name: 'soak: revoked sessions answering', target: '= 0', value: answering + nextAnswered, unit: '', met: answering + nextAnswered === 0 && missed === 0 },
        { name: 'soak: revoke → stream end p99', target: '< 10 ms', value: stream.p99, unit: 'ms', met: stream.p99 < 10 }
      )
      result.notes.push(`${clients.length} sessions with GET streams over ${GATEWAYS} gateway processes and one connections process on the run's Redis; the load generator, the operator and every client share the machine with them. The stream-end target is benchmark 2's, here under continuous load and revocations.`)
      result.details = { size: s, stream, apiLatency, missed, answering, nextAnswered, calls, streamsEnded, apiStatuses: apiStatuses.counts, nextStatuses: nextStatuses.counts, memBefore, memAfter, samples }

      if (shouldProfile(ctx, result)) {
        ctx.log('profiling a gateway and the connections service during more revocations')
        const extra = victims.slice(warmups + revocations)
        await profileDuring(ctx, result, [gateways[0], connections], `${extra.length} more revocations, one every ${s.everyMs} ms`, async () => {
          const more: Array<Promise<Sample>> = []
          for (const v of extra) { more.push(revokeOne(v)); await delay(s.everyMs) }
          await Promise.all(more)
        })
      }
      for (const c of clients) c.stream.close()
    } finally {
      await Promise.all(pools.map(async (p) => p.destroy().catch(() => {})))
      await group.stopAll()
      await issuer.stop()
    }
  }
}
