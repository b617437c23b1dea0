/**
 * 2. Revocation to drop: three gateway replicas (separate processes) on one Redis, each holding sessions
 * with open GET streams of clients that are not revoked. One at a time, an operator revokes a victim's
 * connection through the connections service's API (POST /v1/connections/:grantId/revoke); measured from
 * just before that call, on the client's clock: its SSE GET stream ending, and its next request (sent the
 * moment the stream ended, with its old token) answering 401. Target: p99 < 10 ms on loopback.
 */
import { performance } from 'node:perf_hooks'
import { request } from 'undici'
import { LocalIssuer } from '../lib/jwt.ts'
import { requestPool, streamPool, toolFailed } from '../lib/mcp.ts'
import { seedWorkspace, seedGrants, operatorKey, type SeededGrant } from '../lib/seed.ts'
import { ProcessGroup, gatewayOptions, connectionsOptions, workerOptions, RESOURCE } from '../lib/services.ts'
import { TOOL, toolArgs } from '../lib/tool.ts'
import { profileDuring, shouldProfile } from '../lib/profiling.ts'
import { summarize, Counter } from '../lib/stats.ts'
import { BULL_QUEUE } from '@uspl/core/keys'
import { connect, mapLimit, within, type Benchmark, type Connected } from './common.ts'

const SIZES = {
  tiny: { victims: 20, warmup: 3, bystandersPerGateway: 5, profileVictims: 6, floorRequests: 50 },
  full: { victims: 240, warmup: 20, bystandersPerGateway: 100, profileVictims: 90, floorRequests: 3000 }
}
const GATEWAYS = 3
const TIMEOUT_MS = 5000
const msOf = (t: { user: number, system: number }): number => (t.user + t.system) / 1000
const round2 = (x: number): number => Math.round(x * 100) / 100

interface Sample { streamMs: number, unauthorizedMs: number, apiMs: number, nextStatus: number, apiStatus: number, followUpMs: number }

export const revocation: Benchmark = {
  name: 'revocation',
  title: '2. Revocation to drop',
  async run (ctx, result) {
    const s = SIZES[ctx.size]
    const group = new ProcessGroup()
    const issuer = new LocalIssuer(RESOURCE)
    const pools: Array<{ destroy: () => Promise<void> }> = []
    try {
      const ws = await seedWorkspace(ctx.bench.redis)
      const totalVictims = s.warmup + s.victims + s.profileVictims
      const grants = await seedGrants(ctx.bench.redis, ctx.prefix, ws.userId, totalVictims + s.bystandersPerGateway * GATEWAYS, { resource: RESOURCE, name: 'Bench App' })
      const key = await operatorKey(ctx.bench.redis)
      await issuer.start()
      const [connections, worker, ...gateways] = await Promise.all([
        group.start(connectionsOptions(ctx)),
        group.start(workerOptions(ctx)),
        ...Array.from({ length: GATEWAYS }, (_, i) => group.start(gatewayOptions(ctx, issuer.url, { name: `gateway-${i + 1}`, env: { REPLICA_ID: `bench-gw-${i + 1}` } })))
      ])
      const req = gateways.map((g) => requestPool(g.url, 16))
      const str = gateways.map((g) => streamPool(g.url))
      const api = requestPool(connections.url, 4)
      pools.push(...req, ...str, api)
      const args = toolArgs(ws.workspaceId, ws.recordingId)

      interface Client extends Connected { grant: SeededGrant, token: string, gw: number }
      const open = (g: SeededGrant, i: number): Promise<Client> => {
        const gw = i % GATEWAYS
        const token = issuer.mint({ sub: g.userId, clientId: g.clientId, grantId: g.grantId })
        return connect(req[gw], str[gw], token).then((c) => ({ ...c, grant: g, token, gw }))
      }
      const victimGrants = grants.slice(0, totalVictims)
      const bystanderGrants = grants.slice(totalVictims)
      ctx.log(`opening ${victimGrants.length} victim and ${bystanderGrants.length} bystander sessions with GET streams on ${GATEWAYS} gateways`)
      const victims = await mapLimit(victimGrants, 32, open)
      const bystanders = await mapLimit(bystanderGrants, 32, open)

      /** Waits (polling Redis every millisecond) until the event's BullMQ job has finished; ms since `t0`. */
      const followUpDone = async (eventId: string, t0: number): Promise<number> => {
        const job = `bull:${BULL_QUEUE}:rev-${eventId}`
        for (;;) {
          if (await ctx.bench.redis.hexists(job, 'finishedOn') === 1) return performance.now() - t0
          if (performance.now() - t0 > TIMEOUT_MS) return NaN
          await new Promise((resolve) => setTimeout(resolve, 1))
        }
      }
      const revokeOne = async (v: Client): Promise<Sample> => {
        const t0 = performance.now()
        const call = request(`${connections.url}/v1/connections/${encodeURIComponent(v.grant.grantId)}/revoke`, {
          method: 'POST',
          dispatcher: api,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ confirm: v.grant.clientName })
        }).then(async (res) => {
          const at = performance.now()
          const body = await res.body.json() as { event_id?: string }
          return { status: res.statusCode, at, eventId: body.event_id ?? null }
        })
        const next = v.stream.ended.then(async (endedAt) => {
          const reply = await v.session.callTool(TOOL.name, args)
          return { endedAt, status: reply.status, at: performance.now() }
        })
        const [apiRes, nextRes] = await Promise.all([call, within(next, TIMEOUT_MS, null)])
        // the revocation is over when its follow-up job (audit, cleanup, webhooks) has completed: the next
        // one starts then, so each is measured alone rather than beside its predecessor's follow-up
        const followUpMs = apiRes.eventId ? await followUpDone(apiRes.eventId, t0) : NaN
        return {
          followUpMs,
          apiMs: apiRes.at - t0,
          apiStatus: apiRes.status,
          streamMs: nextRes ? nextRes.endedAt - t0 : NaN,
          unauthorizedMs: nextRes && nextRes.status === 401 ? nextRes.at - t0 : NaN,
          nextStatus: nextRes?.status ?? 0
        }
      }

      // the machine's own floor: one HTTP round trip to a service process that does nothing (the
      // connections service's liveness probe), sequential, with every session open; the revoke path
      // chains several such hops (client → connections → Redis → gateway → client)
      const floor: number[] = []
      for (let i = 0; i < s.floorRequests; i++) {
        const t0 = performance.now()
        const res = await request(`${connections.url}/health/live`, { dispatcher: api })
        await res.body.dump()
        floor.push(performance.now() - t0)
      }
      const floorStats = summarize(floor.slice(Math.floor(floor.length / 10)))

      ctx.log(`revoking ${s.warmup} connections to warm up, then ${s.victims} measured, one at a time`)
      for (const v of victims.slice(0, s.warmup)) await revokeOne(v)
      const samples: Sample[] = []
      // CPU per revocation of every process on the path (all threads, GC included), to see where the box's
      // cores go while the latencies above are measured
      const procs = [['connections', connections], ['follow-up worker', worker], ...gateways.map((g, i) => [`gateway-${i + 1}`, g] as const)] as const
      const redisCpu = async (): Promise<number> => {
        const info = await ctx.bench.redis.info('cpu')
        const field = (name: string): number => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? NaN)
        return (field('used_cpu_user') + field('used_cpu_sys')) * 1000
      }
      const cpuBefore = await Promise.all(procs.map(([, p]) => p.cpu()))
      const redisBefore = await redisCpu()
      const benchBefore = process.cpuUsage()
      for (const v of victims.slice(s.warmup, s.warmup + s.victims)) samples.push(await revokeOne(v))
      const benchCpuMs = msOf(process.cpuUsage(benchBefore))
      const cpuAfter = await Promise.all(procs.map(([, p]) => p.cpu()))
      const redisCpuMs = (await redisCpu()) - redisBefore
      const cpuPerRevoke: Record<string, number> = Object.fromEntries([
        ...procs.map(([name], i) => [name, round2((msOf(cpuAfter[i]) - msOf(cpuBefore[i])) / samples.length)]),
        ['redis', round2(redisCpuMs / samples.length)],
        ['bench client', round2(benchCpuMs / samples.length)]
      ])

      // every other client is untouched: its stream is open and its next call succeeds
      const streamsOpen = bystanders.filter((b) => b.stream.open).length
      const calls = await mapLimit(bystanders, 32, async (b) => !toolFailed(await b.session.callTool(TOOL.name, args)))
      const callsOk = calls.filter(Boolean).length

      const stream = summarize(samples.map((x) => x.streamMs).filter(Number.isFinite))
      const unauthorized = summarize(samples.map((x) => x.unauthorizedMs).filter(Number.isFinite))
      const apiLatency = summarize(samples.map((x) => x.apiMs))
      const followUp = summarize(samples.map((x) => x.followUpMs).filter(Number.isFinite))
      const followUpMissing = samples.filter((x) => !Number.isFinite(x.followUpMs)).length
      const nextStatuses = new Counter()
      const apiStatuses = new Counter()
      for (const x of samples) { nextStatuses.add(x.nextStatus === 0 ? 'no stream end within 5 s' : x.nextStatus); apiStatuses.add(x.apiStatus) }
      const missedStreams = samples.filter((x) => !Number.isFinite(x.streamMs)).length
      const not401 = samples.filter((x) => !Number.isFinite(x.unauthorizedMs)).length

      result.metrics.push(
        { name: 'revoke call → SSE stream ended, p50', value: stream.p50, unit: 'ms' },
        { name: 'revoke call → SSE stream ended, p99', value: stream.p99, unit: 'ms' },
        { name: 'revoke call → SSE stream ended, max', value: stream.max, unit: 'ms' },
        { name: 'revoke call → next request 401, p50', value: unauthorized.p50, unit: 'ms', note: 'the next request is sent the moment the stream ends' },
        { name: 'revoke call → next request 401, p99', value: unauthorized.p99, unit: 'ms' },
        { name: 'revoke call → next request 401, max', value: unauthorized.max, unit: 'ms' },
        { name: 'revoke API response, p50 / p99', value: apiLatency.p50, unit: 'ms', note: `p99 ${apiLatency.p99} ms, max ${apiLatency.max} ms` },
        { name: 'machine floor: one HTTP round trip to an idle route, p50 / p99', value: floorStats.p50, unit: 'ms', note: `p99 ${floorStats.p99} ms, max ${floorStats.max} ms over ${floorStats.count} sequential GET /health/live to the connections process, just before the revocations: what this machine's scheduler adds to any hop` },
        { name: 'revoke call → follow-up job done, p50 / p99', value: followUp.p50, unit: 'ms', note: `p99 ${followUp.p99} ms (audit record, session index cleanup, webhooks; seen by polling Redis every ms); ${followUpMissing} not done within ${TIMEOUT_MS / 1000} s` },
        { name: 'CPU per revocation, all processes', value: round2(Object.values(cpuPerRevoke).reduce((a, b) => a + b, 0)), unit: 'ms', note: Object.entries(cpuPerRevoke).map(([k, v]) => `${k} ${v}`).join(', ') + ' (ms each, follow-up included)' },
        { name: 'revocations', value: samples.length, unit: '', note: `${GATEWAYS} gateway processes; victims spread round-robin; ${missedStreams} stream(s) did not end within 5 s; ${not401} next request(s) not 401` },
        { name: 'other clients intact', value: callsOk, baseline: bystanders.length, ratio: callsOk / Math.max(1, bystanders.length), unit: '', note: `${streamsOpen}/${bystanders.length} of their GET streams still open; tool calls succeeding after all revocations` }
      )
      result.targets.push(
        { name: 'stream end p99', target: '< 10 ms', value: stream.p99, unit: 'ms', met: stream.p99 < 10 && missedStreams === 0 },
        { name: 'next request 401 p99', target: '< 10 ms', value: unauthorized.p99, unit: 'ms', met: unauthorized.p99 < 10 && not401 === 0 }
      )
      result.notes.push(`Measured on the client\'s clock (one process holds every client and the operator): from just before the revoke API call to the client seeing its stream end, and to the 401 of the request it then sends with its old session and token. Each revocation runs alone: the next starts once this one's follow-up job has completed, with every other session and stream still open on the three replicas (the soak benchmark revokes on a timer instead, under load); the first ${s.warmup} revocations warm the processes up and are not counted.`)
      if (streamsOpen !== bystanders.length || callsOk !== bystanders.length) result.notes.push(`Revocations touched other clients: ${bystanders.length - streamsOpen} bystander stream(s) ended and ${bystanders.length - callsOk} bystander call(s) failed.`)
      result.details = { size: s, floor: floorStats, cpuPerRevoke, followUp, stream, unauthorized, apiLatency, nextStatuses: nextStatuses.counts, apiStatuses: apiStatuses.counts, bystanders: { total: bystanders.length, streamsOpen, callsOk }, samples }

      if (shouldProfile(ctx, result)) {
        ctx.log('profiling the connections service, its follow-up worker and a gateway during more revocations')
        const extra = victims.slice(s.warmup + s.victims)
        await profileDuring(ctx, result, [connections, worker, gateways[0]], `${extra.length} more revocations one at a time`, async () => {
          for (const v of extra) await revokeOne(v)
        })
      }
      for (const c of [...victims, ...bystanders]) c.stream.close()
    } finally {
      await Promise.all(pools.map(async (p) => p.destroy().catch(() => {})))
      await group.stopAll()
      await issuer.stop()
    }
  }
}
