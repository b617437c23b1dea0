/**
 * 6. Faults (issue 10), on a private redis-server the benchmark starts itself (a free port, AOF on), so
 * killing it touches nothing else:
 *
 * Three gateway replicas throughout.
 *
 * a. Redis killed (SIGKILL) for a few seconds under load on the gateways: every request started during
 *    the outage answers 503 with Retry-After; each gateway is ready again (GET /health/ready 200) soon
 *    after redis-server accepts connections again; every write acknowledged before the kill (recording
 *    links created through the tool, revocations) is there after the restart (AOF).
 * b. Pub/sub blip: CLIENT KILL TYPE pubsub drops every gateway's revocation subscription, and the revoke is
 *    queued right behind the kill on the same connection, so Redis publishes it while no gateway listens:
 *    from just before that revoke to the victim's SSE stream ending (the replica reconnects and replays),
 *    against the same revocations with no drop.
 * c. Replica SIGKILL: three gateways, one of them holding a grant's sessions up to MAX_SESSIONS_PER_GRANT;
 *    it is killed while other clients call tools on the two others: their errors, the time until the
 *    grant may open a session again on a survivor, the dead replica's sessions answering 404 there, and
 *    the time until a survivor has swept its index entries.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import { request, type Dispatcher } from 'undici'
import { PrivateRedis, freePort } from '@uspl/testing'
import { Revoker, RedisWorkspaceRepository, keys, type RevokeOptions } from '@uspl/core'
import { LocalIssuer } from '../lib/jwt.ts'
import { McpSession, requestPool, streamPool, toolFailed, type RpcReply } from '../lib/mcp.ts'
import { BenchRedis, seedWorkspace, seedGrants, type SeededGrant, type Workspace } from '../lib/seed.ts'
import { ProcessGroup, gatewayOptions, RESOURCE, type ServerProcess } from '../lib/services.ts'
import { TOOL, toolArgs } from '../lib/tool.ts'
import { profileDuring, shouldProfile } from '../lib/profiling.ts'
import { summarize, Counter, round } from '../lib/stats.ts'
import { connect, mapLimit, within, type Benchmark, type BenchResult, type Connected, type RunContext } from './common.ts'

const SIZES = {
  tiny: { outageMs: 1000, loadWorkers: 4, warmMs: 500, blips: 8, baseline: 8, profileBlips: 4, bystanders: 6, cap: 3, heartbeat: { interval: 200, ttl: 1000 } },
  full: { outageMs: 5000, loadWorkers: 16, warmMs: 1500, blips: 200, baseline: 100, profileBlips: 40, bystanders: 60, cap: 5, heartbeat: { interval: 2000, ttl: 6000 } }
}
const TIMEOUT_MS = 5000
// as an operator revoking through the connections API would (the revocation module, called from the harness)
const how: RevokeOptions = { path: 'connections_operator', actor: { type: 'operator', id: 'bench' } }

type Size = typeof SIZES.full

interface Client extends Connected { grant: SeededGrant, token: string, gw: number }

async function readyStatus (url: string): Promise<number> {
  try {
    const res = await request(`${url}/health/ready`)
    await res.body.dump()
    return res.statusCode
  } catch {
    return 0
  }
}

/** Polls readiness (state seen over HTTP, no event) until 200; resolves with the time it answered. */
async function readyAgain (url: string, deadlineMs: number): Promise<number> {
  const stop = performance.now() + deadlineMs
  while (performance.now() < stop) {
    if (await readyStatus(url) === 200) return performance.now()
    await delay(10)
  }
  return NaN
}

interface Env { ctx: RunContext, issuer: LocalIssuer, bench: BenchRedis, redis: PrivateRedis, ws: Workspace }

function openClient (env: Env, gateways: ServerProcess[], req: Dispatcher[], str: Dispatcher[]) {
  return async (g: SeededGrant, i: number): Promise<Client> => {
    const gw = i % gateways.length
    const token = env.issuer.mint({ sub: g.userId, clientId: g.clientId, grantId: g.grantId })
    return { ...await connect(req[gw], str[gw], token), grant: g, token, gw }
  }
}

async function redisOutage (env: Env, s: Size, gateways: ServerProcess[], clients: Client[], result: BenchResult): Promise<void> {
  const { ctx, ws } = env
  const args = toolArgs(ws.workspaceId, ws.recordingId)
  interface Call { t0: number, t1: number, status: number, retryAfter: boolean, write: boolean, linkId: string | null }
  const calls: Call[] = []
  let stopping = false
  const worker = async (w: number): Promise<void> => {
    for (let n = 0; !stopping; n++) {
      // the last two clients' grants are revoked before the kill
      const c = clients[(w + n * s.loadWorkers) % (clients.length - 2)]
      const write = w % 2 === 0
      const t0 = performance.now()
      let reply: RpcReply | null = null
      try {
        reply = write
          ? await c.session.callTool('create_recording_link', { workspace_id: ws.workspaceId, recording_id: ws.recordingId, title: `fault ${w}-${n}` })
          : await c.session.callTool(TOOL.name, args)
      } catch { /* a connection error counts as status 0 */ }
      const t1 = performance.now()
      const link = reply && !toolFailed(reply) ? (reply.message?.result?.structuredContent as { link?: { id?: string } } | undefined)?.link?.id ?? null : null
      calls.push({ t0, t1, status: reply?.status ?? 0, retryAfter: Boolean(reply?.headers['retry-after']), write, linkId: link })
      // while Redis is away every answer is an immediate 503: do not spin
      if (reply?.status === 503) await delay(5)
    }
  }
  // revocations acknowledged before the kill must survive it too
  const revoker = new Revoker({ redis: env.bench.redis, prefix: env.bench.prefix, accessTokenTtlS: 900 })
  const revokedBefore = clients.slice(-2)
  for (const c of revokedBefore) await revoker.revokeGrant(c.grant.grantId, how)
  const workers = Array.from({ length: s.loadWorkers }, async (_, w) => worker(w))
  await delay(s.warmMs)
  ctx.log(`killing redis-server (SIGKILL) for ${s.outageMs} ms under load`)
  await env.redis.stop()
  const tKill = performance.now()
  await delay(s.outageMs)
  await env.redis.start()
  const tUp = performance.now()
  const ready = await Promise.all(gateways.map(async (g) => readyAgain(g.url, 15000)))
  await delay(s.warmMs)
  stopping = true
  await Promise.all(workers)

  const during = calls.filter((c) => c.t0 >= tKill && c.t1 <= tUp)
  const during503 = during.filter((c) => c.status === 503 && c.retryAfter).length
  const readyMs = ready.map((t) => round(t - tUp))
  const allReady = Math.max(...ready)
  const after = calls.filter((c) => c.t0 >= allReady + 100)
  const afterOk = after.filter((c) => c.status === 200).length
  const outageStatuses = new Counter()
  for (const c of during) outageStatuses.add(c.retryAfter ? `${c.status} with Retry-After` : c.status)

  const acked = calls.filter((c) => c.t1 <= tKill && c.linkId).map((c) => c.linkId!)
  const repo = new RedisWorkspaceRepository(env.bench.redis)
  const present = (await mapLimit(acked, 32, async (id) => Boolean(await repo.getRecordingLink(ws.workspaceId, id)))).filter(Boolean).length
  const denied = (await mapLimit(revokedBefore, 8, async (c) => await env.bench.redis.exists(keys.denyGrant(c.grant.grantId)) === 1)).filter(Boolean).length
  const lost = acked.length - present + revokedBefore.length - denied
  const maxReady = Math.max(...readyMs)

  result.metrics.push(
    { name: 'Redis down: requests answered 503 with Retry-After', value: during503, baseline: during.length, ratio: during.length ? round(during503 / during.length, 3) : NaN, unit: '', note: `requests started after the kill and answered before redis-server was back (${s.outageMs} ms, SIGKILL): ${JSON.stringify(outageStatuses.counts)}` },
    { name: 'Redis back → every gateway ready, max', value: maxReady, unit: 'ms', note: `per gateway: ${readyMs.join(', ')} ms, from redis-server accepting connections (AOF loaded) to GET /health/ready 200` },
    { name: 'Redis back: requests ok once ready', value: afterOk, baseline: after.length, ratio: after.length ? round(afterOk / after.length, 3) : NaN, unit: '' },
    { name: 'writes acknowledged before the kill, lost', value: lost, unit: '', note: `${acked.length} recording links created through the tool and ${revokedBefore.length} revocations, read back after the restart (appendonly yes, appendfsync everysec)` }
  )
  result.targets.push(
    { name: 'Redis down: 503 with Retry-After throughout', target: '= 1', value: during.length ? round(during503 / during.length, 3) : 0, unit: 'share', met: during.length > 0 && during503 === during.length },
    { name: 'ready again after Redis returns', target: '< 1000 ms', value: maxReady, unit: 'ms', met: maxReady < 1000 },
    { name: 'acknowledged writes lost (AOF)', target: '= 0', value: lost, unit: '', met: lost === 0 }
  )
  result.details.redisOutage = { outageMs: s.outageMs, during: during.length, during503, outageStatuses: outageStatuses.counts, readyMs, after: after.length, afterOk, acked: acked.length, present, revokedBefore: revokedBefore.length, denied, calls: calls.length }
}

/** One revocation, queued behind a CLIENT KILL of every subscriber when `drop`; ms to the stream's end. */
async function revokeOne (env: Env, v: Client, drop: boolean): Promise<number> {
  const revoker = new Revoker({ redis: env.bench.redis, prefix: env.bench.prefix, accessTokenTtlS: 900 })
  const killed = drop ? env.bench.redis.client('KILL', 'TYPE', 'pubsub') : Promise.resolve(0)
  const t0 = performance.now()
  const revoked = revoker.revokeGrant(v.grant.grantId, how)
  const [, , endedAt] = await Promise.all([killed, revoked, within(v.stream.ended, TIMEOUT_MS, NaN)])
  return endedAt - t0
}

async function blip (env: Env, s: Size, gateways: ServerProcess[], victims: Client[], result: BenchResult): Promise<void> {
  const settle = async (): Promise<void> => { await Promise.all(gateways.map(async (g) => readyAgain(g.url, 10000))) }
  // revocations without a drop first: the baseline, and the revoke script cached in Redis
  const base: number[] = []
  for (const v of victims.slice(0, s.baseline)) base.push(await revokeOne(env, v, false))
  const dropped: number[] = []
  for (const v of victims.slice(s.baseline, s.baseline + s.blips)) {
    await settle()
    dropped.push(await revokeOne(env, v, true))
  }
  await settle()
  const b = summarize(base.filter(Number.isFinite))
  const d = summarize(dropped.filter(Number.isFinite))
  const missed = dropped.filter((x) => !Number.isFinite(x)).length + base.filter((x) => !Number.isFinite(x)).length
  result.metrics.push(
    { name: 'revocation during a subscription drop → stream ended, p50', value: d.p50, unit: 'ms', baseline: b.p50, ratio: round(d.p50 / b.p50, 2), note: 'baseline: the same revocation with no drop' },
    { name: 'revocation during a subscription drop → stream ended, p99', value: d.p99, unit: 'ms', baseline: b.p99, ratio: round(d.p99 / b.p99, 2) },
    { name: 'revocation during a subscription drop → stream ended, max', value: d.max, unit: 'ms', baseline: b.max },
    { name: 'drops', value: d.count, unit: '', note: `CLIENT KILL TYPE pubsub (every gateway's subscription at once), the revoke queued behind it on one connection; ${missed} stream(s) did not end within ${TIMEOUT_MS / 1000} s` }
  )
  result.targets.push({ name: 'revocation through a blip p99', target: '<= 25 ms', value: d.p99, unit: 'ms', met: d.p99 <= 25 && missed === 0 })
  result.details.blip = { baseline: b, dropped: d, missed, samples: { base, dropped } }
}

async function replicaKill (env: Env, s: Size, gateways: ServerProcess[], req: Dispatcher[], str: Dispatcher[], result: BenchResult): Promise<void> {
  const { ctx, issuer, ws } = env
  const [held, ...others] = await seedGrants(env.bench.redis, env.bench.prefix, ws.userId, 1 + s.bystanders, { resource: RESOURCE, name: 'Kill' })
  const token = issuer.mint({ sub: held.userId, clientId: held.clientId, grantId: held.grantId })
  const onDead = await mapLimit(Array.from({ length: s.cap }), 4, async () => new McpSession(req[2], '/mcp', token).open())
  // bystanders on the two survivors only: "others" are the clients of the replicas that stay
  const survivors = gateways.slice(0, 2)
  const bystanders = await mapLimit(others, 16, openClient(env, survivors, req.slice(0, 2), str.slice(0, 2)))
  const refused = (await new McpSession(req[0], '/mcp', token).open().then(() => 200, (err: { status?: number }) => err.status ?? 0))
  const args = toolArgs(ws.workspaceId, ws.recordingId)
  const outcomes = new Counter()
  let stopping = false
  const worker = async (w: number): Promise<void> => {
    for (let n = 0; !stopping; n++) {
      const c = bystanders[(w + n * 8) % bystanders.length]
      const reply = await c.session.callTool(TOOL.name, args).catch(() => null)
      outcomes.add(reply && !toolFailed(reply) ? 'ok' : `http ${reply?.status ?? 0}`)
    }
  }
  const workers = Array.from({ length: 8 }, async (_, w) => worker(w))
  await delay(s.warmMs)
  ctx.log('SIGKILL of one gateway replica holding a grant at its session cap')
  gateways[2].kill('SIGKILL')
  await gateways[2].exited
  const tKill = performance.now()
  let freedMs = NaN
  let polls = 0
  while (performance.now() - tKill < 30000) {
    polls++
    const opened = await new McpSession(req[0], '/mcp', token).open().then(() => true, () => false)
    if (opened) { freedMs = performance.now() - tKill; break }
    await delay(50)
  }
  const dead404 = (await mapLimit(onDead, 4, async (d) => {
    // the dead replica's session id, asked of a survivor
    const probe = new McpSession(req[1], '/mcp', token)
    probe.id = d.id
    return (await probe.request('tools/list')).status === 404
  })).filter(Boolean).length
  let sweptMs = NaN
  while (performance.now() - tKill < 30000) {
    if (await env.bench.redis.sismember(keys.replicas(), 'fault-gw-3') === 0 && await env.bench.redis.exists(keys.replicaSessions('fault-gw-3')) === 0) { sweptMs = performance.now() - tKill; break }
    await delay(50)
  }
  stopping = true
  await Promise.all(workers)
  const errors = outcomes.total - outcomes.get('ok')
  for (const b of bystanders) b.stream.close()
  result.metrics.push(
    { name: 'replica SIGKILL: other clients\' tool calls failed', value: errors, baseline: outcomes.total, unit: '', note: `${outcomes.total} calls on the two surviving replicas during the kill: ${JSON.stringify(outcomes.counts)}` },
    { name: 'replica SIGKILL → the grant may open a session again', value: round(freedMs), unit: 'ms', note: `the grant held ${s.cap} sessions (its cap) on the killed replica (a new one was refused with ${refused} before); heartbeat every ${s.heartbeat.interval} ms, TTL ${s.heartbeat.ttl} ms; ${polls} initialize attempts on a survivor` },
    { name: 'dead replica\'s sessions answering 404 on a survivor', value: dead404, baseline: onDead.length, unit: '' },
    { name: 'replica SIGKILL → its index entries swept', value: round(sweptMs), unit: 'ms' }
  )
  result.targets.push(
    { name: 'replica SIGKILL: other clients\' errors', target: '= 0', value: errors, unit: '', met: errors === 0 },
    { name: 'replica SIGKILL: cap freed', target: `<= ${(s.heartbeat.ttl + 2 * s.heartbeat.interval) / 1000} s`, value: round(freedMs / 1000, 2), unit: 's', met: freedMs <= s.heartbeat.ttl + 2 * s.heartbeat.interval }
  )
  result.details.replicaKill = { heartbeat: s.heartbeat, cap: s.cap, refused, freedMs, polls, dead404, sweptMs, outcomes: outcomes.counts }
}

export const faults: Benchmark = {
  name: 'faults',
  title: '6. Faults: Redis killed, pub/sub blip, replica SIGKILL',
  async run (ctx, result) {
    const s = SIZES[ctx.size]
    // a private Redis: nothing else runs on it, so it may be killed; AOF so that a kill loses nothing acknowledged
    const redis = new PrivateRedis(await freePort(), { args: ['--appendonly', 'yes', '--appendfsync', 'everysec'] })
    await redis.start()
    const bench = await BenchRedis.open(redis.url, ctx.prefix)
    const issuer = new LocalIssuer(RESOURCE)
    const group = new ProcessGroup()
    const pools: Dispatcher[] = []
    try {
      await issuer.start()
      const ws = await seedWorkspace(bench.redis)
      const env: Env = { ctx, issuer, bench, redis, ws }
      // three replicas for the whole benchmark; the third is the one killed in c
      const hb = { REPLICA_HEARTBEAT_INTERVAL_MS: String(s.heartbeat.interval), REPLICA_HEARTBEAT_TTL_MS: String(s.heartbeat.ttl), MAX_SESSIONS_PER_GRANT: String(s.cap) }
      const gateways = await Promise.all([1, 2, 3].map(async (i) => group.start(gatewayOptions(ctx, issuer.url, { name: `gateway-${i}`, env: { REDIS_URL: redis.url, REPLICA_ID: `fault-gw-${i}`, ...hb } }))))
      const req = gateways.map((g) => requestPool(g.url, 16))
      const str = gateways.map((g) => streamPool(g.url))
      pools.push(...req, ...str)
      const loadClients = s.loadWorkers + 2
      const victimsN = s.baseline + s.blips + s.profileBlips
      const grants = await seedGrants(bench.redis, ctx.prefix, ws.userId, loadClients + victimsN, { resource: RESOURCE, name: 'Fault' })
      const open = openClient(env, gateways, req, str)
      const load = await mapLimit(grants.slice(0, loadClients), 16, open)

      ctx.log('a. Redis killed under load')
      await redisOutage(env, s, gateways, load, result)
      for (const c of load) c.stream.close()

      ctx.log(`b. ${s.baseline} revocations without a drop, then ${s.blips} during a pub/sub drop`)
      const victims = await mapLimit(grants.slice(loadClients), 16, open)
      await blip(env, s, gateways, victims, result)

      ctx.log('c. replica SIGKILL')
      await replicaKill(env, s, gateways, req, str, result)

      result.notes.push('A private redis-server (started by the benchmark on a free port, appendonly yes) so it can be killed; every process shares the machine\'s cores with the load generator.')
      if (shouldProfile(ctx, result)) {
        ctx.log('profiling a gateway during more pub/sub drops')
        const extra = victims.slice(s.baseline + s.blips)
        await profileDuring(ctx, result, [gateways[0]], `${extra.length} revocations during pub/sub drops`, async () => {
          for (const v of extra) {
            // the third replica was killed in c
            await Promise.all(gateways.slice(0, 2).map(async (g) => readyAgain(g.url, 10000)))
            await revokeOne(env, v, true)
          }
        })
      }
      for (const v of victims) v.stream.close()
    } finally {
      await Promise.all(pools.map(async (p) => p.destroy().catch(() => {})))
      await group.stopAll()
      await issuer.stop()
      await bench.close().catch(() => {})
      await redis.cleanup()
    }
  }
}

