/**
 * 6. Shared Signals push: the connections service (its real server entry, with the revocation follow-up
 * worker) and a local RFC 8935 receiver in this process, configured as one push stream. One at a time, an
 * operator revokes a connection (POST /v1/connections/:grantId/revoke); measured from just before that
 * call to the receiver accepting the CAEP session-revoked SET naming that grant (202), on one clock.
 * Target: p99 < 50 ms on loopback. The SET is checked (ES256 over the issuer's key, typ, the grant as the
 * subject's session) before it counts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createPublicKey, verify as cryptoVerify } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { request } from 'undici'
import { CAEP_SESSION_REVOKED, SsfStreamStore } from '@uspl/core'
import { ensureKeyRecords } from '@uspl/core/signing-keys'
import { requestPool } from '../lib/mcp.ts'
import { seedWorkspace, seedGrants, operatorKey } from '../lib/seed.ts'
import { ProcessGroup, connectionsOptions, workerOptions, RESOURCE } from '../lib/services.ts'
import { profileDuring, shouldProfile } from '../lib/profiling.ts'
import { summarize } from '../lib/stats.ts'
import { within, type Benchmark } from './common.ts'

const SIZES = {
  tiny: { revocations: 20, warmup: 3, profiled: 6 },
  full: { revocations: 300, warmup: 20, profiled: 60 }
}
const TIMEOUT_MS = 5000
const ISSUER = 'http://localhost:3001'

interface Receiver { url: string, arrivals: Map<string, (at: number) => void>, bad: number, close: () => Promise<void> }

/** The receiver: verifies each SET against the issuer's public key and resolves the waiter of its grant. */
async function startReceiver (publicJwks: Array<Record<string, unknown>>): Promise<Receiver> {
  const keys = new Map(publicJwks.map((j) => [String(j.kid), createPublicKey({ key: j as never, format: 'jwk' })]))
  const arrivals = new Map<string, (at: number) => void>()
  const rx: Receiver = { url: '', arrivals, bad: 0, close: async () => {} }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d: string) => { body += d })
    req.on('end', () => {
      const at = performance.now()
      const [h, c, s] = body.split('.')
      try {
        const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { typ?: string, kid?: string }
        const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as { sub_id?: { session?: { id?: string } }, events?: Record<string, unknown> }
        const key = keys.get(String(header.kid))
        if (!key || header.typ !== 'secevent+jwt' || !claims.events?.[CAEP_SESSION_REVOKED] ||
          !cryptoVerify('sha256', Buffer.from(`${h}.${c}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))) throw new Error('bad SET')
        res.writeHead(202).end()
        const grantId = String(claims.sub_id?.session?.id)
        arrivals.get(grantId)?.(at)
        arrivals.delete(grantId)
      } catch {
        rx.bad++
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"err":"invalid_request","description":"bad SET"}')
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  rx.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`
  rx.close = () => new Promise((resolve) => server.close(() => resolve()))
  return rx
}

export const ssfPush: Benchmark = {
  name: 'ssf-push',
  title: '6. Shared Signals push',
  async run (ctx, result) {
    const s = SIZES[ctx.size]
    const group = new ProcessGroup()
    let receiver: Receiver | null = null
    const api = { pool: null as ReturnType<typeof requestPool> | null }
    try {
      const ws = await seedWorkspace(ctx.bench.redis)
      const total = s.warmup + s.revocations + s.profiled
      const grants = await seedGrants(ctx.bench.redis, ctx.prefix, ws.userId, total, { resource: RESOURCE, name: 'SSF Bench App' })
      const key = await operatorKey(ctx.bench.redis)
      // the issuer's keys, as the token service would create them; the receiver trusts their public half
      const records = await ensureKeyRecords(ctx.bench.redis)
      receiver = await startReceiver(records.map((r) => ({ kty: r.privateJwk.kty, crv: r.privateJwk.crv, x: r.privateJwk.x, y: r.privateJwk.y, kid: r.kid })))
      await new SsfStreamStore(ctx.bench.redis).create({ aud: 'https://receiver.bench', delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: receiver.url } }, ISSUER)
      // the follow-up worker (which transmits) in its own process, as production runs it
      const [connections] = await Promise.all([
        group.start(connectionsOptions(ctx, { env: { ISSUER_URL: ISSUER } })),
        group.start(workerOptions(ctx, { env: { ISSUER_URL: ISSUER } }))
      ])
      api.pool = requestPool(connections.url, 4)
      const rx = receiver
      const pool = api.pool

      const revokeOne = async (g: typeof grants[number]): Promise<{ ms: number, apiMs: number, afterAnswerMs: number, status: number }> => {
        const arrived = new Promise<number>((resolve) => rx.arrivals.set(g.grantId, resolve))
        const t0 = performance.now()
        const res = await request(`${connections.url}/v1/connections/${encodeURIComponent(g.grantId)}/revoke`, {
          method: 'POST', dispatcher: pool, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ confirm: g.clientName })
        })
        await res.body.dump()
        const apiMs = performance.now() - t0
        const at = await within(arrived, TIMEOUT_MS, NaN)
        return { ms: at - t0, apiMs, afterAnswerMs: at - t0 - apiMs, status: res.statusCode }
      }

      ctx.log(`revoking ${s.warmup} connections to warm up, then ${s.revocations} measured, one at a time`)
      for (const g of grants.slice(0, s.warmup)) await revokeOne(g)
      const samples = []
      for (const g of grants.slice(s.warmup, s.warmup + s.revocations)) samples.push(await revokeOne(g))
      const accepted = summarize(samples.map((x) => x.ms).filter(Number.isFinite))
      const apiLatency = summarize(samples.map((x) => x.apiMs))
      const afterAnswer = summarize(samples.map((x) => x.afterAnswerMs).filter(Number.isFinite))
      const missed = samples.filter((x) => !Number.isFinite(x.ms)).length
      result.metrics.push(
        { name: 'revoke call → SET accepted by the receiver, p50', value: accepted.p50, unit: 'ms' },
        { name: 'revoke call → SET accepted by the receiver, p99', value: accepted.p99, unit: 'ms' },
        { name: 'revoke call → SET accepted by the receiver, max', value: accepted.max, unit: 'ms' },
        { name: 'revoke API response, p50 / p99', value: apiLatency.p50, unit: 'ms', note: `p99 ${apiLatency.p99} ms: the SET is delivered after the answer, by the follow-up worker` },
        { name: 'revoke API answered → SET accepted, p50 / p99', value: afterAnswer.p50, unit: 'ms', note: `p99 ${afterAnswer.p99} ms: the worker's share (job pickup, signing, push)` },
        { name: 'revocations', value: samples.length, unit: '', note: `${missed} SET(s) not accepted within 5 s; ${rx.bad} SET(s) the receiver refused` }
      )
      result.targets.push({ name: 'SET accepted p99', target: '< 50 ms', value: accepted.p99, unit: 'ms', met: accepted.p99 < 50 && missed === 0 && rx.bad === 0 })
      result.notes.push(`One push stream; the connections service runs the follow-up worker (audit, cleanup, webhooks and Shared Signals) as deployed. Measured in this process from just before the revoke API call to the receiver having read and verified the SET (ES256 against the issuer's key) and answering 202. The first ${s.warmup} revocations warm the process up and are not counted.`)
      result.details = { size: s, accepted, apiLatency, afterAnswer, missed, refused: rx.bad, samples }

      if (shouldProfile(ctx, result)) {
        ctx.log('profiling the connections service during more revocations')
        const extra = grants.slice(s.warmup + s.revocations)
        await profileDuring(ctx, result, [connections], `${extra.length} more revocations one at a time`, async () => {
          for (const g of extra) await revokeOne(g)
        })
      }
    } finally {
      await api.pool?.close().catch(() => {})
      await group.stopAll()
      await receiver?.close()
    }
  }
}
