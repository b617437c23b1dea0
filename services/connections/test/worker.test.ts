// The revocation follow-up worker: the audit record is written once however often its job runs, webhooks
// are signed and a failing one is retried without re-sending the others or holding up the revocation, the
// sweeper re-queues an event whose job was never queued, and cleanup touches only revoked grants.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { testRedis, listen, type TestRedis } from '@uspl/testing'
import {
  Revoker, GrantStore, createFollowupQueue, startRevocationWorker, verifyWebhookSignature, followupJobOptions,
  keys, nowSeconds, writeAudit, SIGNATURE_HEADER, EVENT_ID_HEADER,
  type RevocationWorker, type FollowupResult, type AuditRecord, type Webhook, type RevocationEvent
} from '@uspl/core'
import { setup, bearer, type Teardown } from './helper.ts'

const SECRET = 'whsec-test-0123456789abcdef'
const quiet = { info () {}, warn () {}, error () {} }

/** Records every job outcome so a test can wait for one by event id (no matter when it finished). */
function jobLog (worker: RevocationWorker): {
  completed: (eventId: string, nth?: number) => Promise<FollowupResult>
  failed: (eventId: string) => Promise<Error>
} {
  const done = new Map<string, FollowupResult[]>()
  const failures = new Map<string, Error[]>()
  const waiters: Array<() => void> = []
  const wake = (): void => { for (const w of waiters.splice(0)) w() }
  worker.on('completed', (job, result) => { done.set(job.data.id, [...(done.get(job.data.id) ?? []), result]); wake() })
  worker.on('failed', (job, err) => { if (job) failures.set(job.data.id, [...(failures.get(job.data.id) ?? []), err]); wake() })
  const wait = async <T>(get: () => T | undefined): Promise<T> => {
    for (;;) {
      const v = get()
      if (v !== undefined) return v
      await new Promise<void>((resolve) => waiters.push(resolve))
    }
  }
  return {
    completed: (id, nth = 1) => wait(() => done.get(id)?.[nth - 1]),
    failed: (id) => wait(() => failures.get(id)?.[0])
  }
}

interface Received { body: string, headers: Record<string, string | string[] | undefined> }

/** A webhook receiver on loopback; `answer` decides each response (status), in order of arrival. */
async function receiver (t: Teardown, answer: (n: number) => Promise<number> | number = () => 204): Promise<{ url: string, got: Received[], next: (n: number) => Promise<Received> }> {
  const app: FastifyInstance = Fastify()
  const got: Received[] = []
  const waiters: Array<() => void> = []
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body))
  app.post('/hook', async (request, reply) => {
    got.push({ body: request.body as string, headers: request.headers })
    for (const w of waiters.splice(0)) w()
    return reply.code(await answer(got.length)).send()
  })
  const base = await listen(t, app)
  return {
    url: `${base}/hook`,
    got,
    next: async (n) => {
      while (got.length < n) await new Promise<void>((resolve) => waiters.push(resolve))
      return got[n - 1]
    }
  }
}

async function fixture (t: Teardown, r: TestRedis, webhooks: Webhook[], withQueue = true): Promise<{ revoker: Revoker, grant: (user?: string) => Promise<string>, start: () => RevocationWorker }> {
  const queue = withQueue ? createFollowupQueue(r.url, r.prefix) : undefined
  if (queue) t.teardown(() => queue.close())
  const revoker = new Revoker({ redis: r.redis, prefix: r.prefix, accessTokenTtlS: 900, queue, log: quiet })
  const grants = new GrantStore(r.redis, r.prefix)
  let n = 0
  return {
    revoker,
    grant: async (user = `usr_${++n}`) => (await grants.ensure({ userId: user, clientId: `cli_${++n}`, scope: 'recordings:read', resource: 'http://localhost:3000/mcp', authTime: nowSeconds(), ttlS: 3600 })).id,
    start: () => {
      const worker = startRevocationWorker({ redisUrl: r.url, prefix: r.prefix, redis: r.redis, webhooks, log: quiet, sweepIntervalMs: 0, sweepGraceMs: 0 })
      t.teardown(() => worker.close())
      return worker
    }
  }
}

t.test('the audit record is written once and webhooks are signed, even when the job runs again', async (t) => {
  const r = await testRedis(t)
  const hook = await receiver(t)
  const f = await fixture(t, r, [{ url: hook.url, secret: SECRET }])
  const worker = f.start()
  const log = jobLog(worker)
  const gid = await f.grant('usr_ann')
  const result = await f.revoker.revokeGrant(gid, { path: 'connections_user', actor: { type: 'user', id: 'usr_ann' } })
  const eventId = result.eventId!

  const first = await log.completed(eventId)
  t.same(first, { audit: 'written', webhooks: { delivered: 1, skipped: 0 }, sessionIndexEntriesDropped: 0 })
  const record = JSON.parse((await r.redis.get(keys.auditEntry(eventId)))!) as AuditRecord
  t.match(record, { event_id: eventId, at: result.revokedAt, scope: 'grant', target: gid, grant_ids: [gid], path: 'connections_user', actor: { type: 'user', id: 'usr_ann' } })
  t.equal(await r.redis.zscore(keys.audit(), eventId), String(result.revokedAt), 'indexed by time')

  const delivery = await hook.next(1)
  t.ok(verifyWebhookSignature(delivery.headers[SIGNATURE_HEADER] as string, delivery.body, SECRET), 'signature verifies over the exact body')
  t.notOk(verifyWebhookSignature(delivery.headers[SIGNATURE_HEADER] as string, delivery.body, 'another-secret-123456'), 'not with another secret')
  t.notOk(verifyWebhookSignature(delivery.headers[SIGNATURE_HEADER] as string, delivery.body.replace(gid, 'grt_other'), SECRET), 'not over another body')
  t.match(delivery.headers[SIGNATURE_HEADER], /^t=\d+,v1=[0-9a-f]{64}$/)
  t.equal(delivery.headers[EVENT_ID_HEADER], eventId)
  t.match(JSON.parse(delivery.body), { type: 'revocation', id: eventId, scope: 'grant', target: gid, grant_ids: [gid], user_id: 'usr_ann', path: 'connections_user' })

  // re-queue the same event (what the sweeper does for a completed job): nothing is written or sent twice
  const queue = createFollowupQueue(r.url, r.prefix)
  t.teardown(() => queue.close())
  const options = followupJobOptions(eventId)
  await (await queue.getJob(options.jobId))!.remove()
  await queue.add('revocation', result.event!, options)
  const second = await log.completed(eventId, 2)
  t.same(second, { audit: 'existing', webhooks: { delivered: 0, skipped: 1 }, sessionIndexEntriesDropped: 0 })
  t.same(JSON.parse((await r.redis.get(keys.auditEntry(eventId)))!), record, 'the record is unchanged')
  t.equal(await r.redis.zcard(keys.audit()), 1)
  t.equal(hook.got.length, 1, 'delivered once')

  // queueing the same job id while it exists is a no-op too
  await queue.add('revocation', result.event!, options)
  t.equal((await queue.getJobCounts('waiting', 'active', 'delayed')).waiting, 0)
})

t.test('a failing webhook is retried with backoff, never blocks the revocation, and does not re-send the others', async (t) => {
  const r = await testRedis(t)
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const good = await receiver(t)
  const flaky = await receiver(t, async (n) => {
    if (n === 1) { await gate; return 503 }
    return 200
  })
  const f = await fixture(t, r, [{ url: good.url, secret: SECRET }, { url: flaky.url, secret: SECRET }])
  const worker = f.start()
  const log = jobLog(worker)
  const gid = await f.grant()
  const result = await f.revoker.revokeGrant(gid, { path: 'connections_operator', actor: { type: 'operator', id: 'key_1' } })
  t.equal(result.status, 'revoked', 'the revocation is answered')
  t.ok(await r.redis.get(keys.denyGrant(gid)), 'and in force')
  await flaky.next(1)
  t.equal(await r.redis.exists(keys.auditEntry(result.eventId!)), 1, 'audit written before the webhooks answered')
  release()

  const err = await log.failed(result.eventId!)
  t.match(err.message, /1 of 2 webhook deliveries failed/)
  const done = await log.completed(result.eventId!)
  t.same(done, { audit: 'existing', webhooks: { delivered: 1, skipped: 1 }, sessionIndexEntriesDropped: 0 }, 'the retry sent only the failed delivery')
  t.equal(good.got.length, 1, 'the good webhook got it once')
  t.equal(flaky.got.length, 2, 'the failing one got it again')
  t.ok(verifyWebhookSignature(flaky.got[1].headers[SIGNATURE_HEADER] as string, flaky.got[1].body, SECRET))
  t.equal(await r.redis.zcard(keys.audit()), 1)
})

t.test('the sweeper re-queues a stream event that has no audit record', async (t) => {
  const r = await testRedis(t)
  const hook = await receiver(t)
  // revoked with no queue at all: the event is in the stream, no job exists (as when queueing failed)
  const f = await fixture(t, r, [{ url: hook.url, secret: SECRET }], false)
  const gid = await f.grant()
  const result = await f.revoker.revokeGrant(gid, { path: 'client_disable', actor: { type: 'system', id: 'test' } })
  t.equal(await r.redis.exists(keys.auditEntry(result.eventId!)), 0, 'no audit yet')

  const worker = f.start() // sweeps at start
  const log = jobLog(worker)
  t.match(await log.completed(result.eventId!), { audit: 'written', webhooks: { delivered: 1 } })
  t.equal(await r.redis.exists(keys.auditEntry(result.eventId!)), 1)
  t.equal(await worker.sweep(), 0, 'a later sweep finds nothing to do')
  t.equal(await r.redis.get('audit:revocations:swept'), result.eventId, 'the cursor moved past it')
  t.equal(hook.got.length, 1)

  // a second event without a job, swept on demand
  const next = await f.revoker.revokeGrant(await f.grant(), { path: 'user_revoke', actor: { type: 'operator', id: 'k' } })
  t.equal(await worker.sweep(), 1)
  t.match(await log.completed(next.eventId!), { audit: 'written' })
})

t.test('cleanup drops index entries of closed sessions and dead replicas of revoked grants only', async (t) => {
  const r = await testRedis(t)
  const f = await fixture(t, r, [])
  const worker = f.start()
  const log = jobLog(worker)
  const revoked = await f.grant()
  const alive = await f.grant()
  // replica "live" keeps its heartbeat; replica "dead" was killed (no heartbeat)
  await r.redis.set(keys.replicaAlive('live'), 'boot', 'PX', 600000)
  for (const gid of [revoked, alive]) {
    await r.redis.multi()
      .hset(keys.mcpSession(`${gid}-open`), { grant: gid, replica: 'live' })
      .hset(keys.mcpSession(`${gid}-dead`), { grant: gid, replica: 'dead' })
      .sadd(keys.replicaSessions('dead'), `${gid}-dead`)
      .sadd(keys.grantSessions(gid), `${gid}-open`, `${gid}-closed`, `${gid}-dead`)
      .exec()
  }
  const result = await f.revoker.revokeGrant(revoked, { path: 'connections_user', actor: { type: 'user', id: 'u' } })
  t.equal((await log.completed(result.eventId!)).sessionIndexEntriesDropped, 2)
  t.same(await r.redis.smembers(keys.grantSessions(revoked)), [`${revoked}-open`], 'the closed one and the dead replica\'s dropped; the gateway closes the open one')
  t.equal(await r.redis.exists(keys.mcpSession(`${revoked}-dead`)), 0, 'the dead replica\'s entry is deleted')
  t.same(await r.redis.smembers(keys.replicaSessions('dead')), [`${alive}-dead`], 'and gone from its replica\'s set')
  t.ok(await r.redis.ttl(keys.grantSessions(revoked)) > 0, 'the index expires')

  // a token-scope event names a grant that stays alive: its index is left alone
  const token = await f.revoker.revokeAccessToken({ jti: 'jti-1', exp: nowSeconds() + 600, grantId: alive, clientId: 'cli_x', userId: 'u' }, { path: 'oauth_revoke', actor: { type: 'client', id: 'cli_x' } })
  t.equal((await log.completed(token.eventId!)).sessionIndexEntriesDropped, 0)
  t.equal(await r.redis.scard(keys.grantSessions(alive)), 3)
  t.equal(await r.redis.ttl(keys.grantSessions(alive)), -1)
})

t.test('cleanup retires every grant of a user-scope event, past one batch of scripts', async (t) => {
  const r = await testRedis(t)
  const f = await fixture(t, r, [])
  const worker = f.start()
  const log = jobLog(worker)
  const grants: string[] = []
  for (let i = 0; i < 130; i++) grants.push(await f.grant('usr_many'))
  const tx = r.redis.multi()
  for (const gid of grants) tx.sadd(keys.grantSessions(gid), `${gid}-closed`)
  await tx.exec()
  const result = await f.revoker.revokeUser('usr_many', { path: 'user_revoke', actor: { type: 'operator', id: 'k' } })
  t.equal(result.event?.grantIds.length, 130)
  t.equal((await log.completed(result.eventId!)).sessionIndexEntriesDropped, 130, 'each grant\'s closed entry went')
  for (const gid of [grants[0], grants[99], grants[100], grants[129]]) {
    t.equal(await r.redis.scard(keys.grantSessions(gid)), 0)
  }
})

t.test('the service runs the worker; operators read the audit trail page by page', async (t) => {
  const hook = await receiver(t)
  const f = await setup(t, { WORKER_ENABLED: 'true', WEBHOOK_URLS: hook.url, WEBHOOK_SECRET: SECRET })
  const worker = f.app.connectionsContext.worker!
  t.ok(worker, 'started')
  const log = jobLog(worker)
  const ann = await f.user('Ann')
  const [claude, cursor] = [await f.client('Claude'), await f.client('Cursor')]
  const g1 = await f.grant(ann, claude)
  const g2 = await f.grant(ann, cursor)
  const key = await f.operatorKey()
  const ids: string[] = []
  for (const [g, name] of [[g1, 'Claude'], [g2, 'Cursor']] as const) {
    const res = await f.app.inject({ method: 'POST', url: `/v1/connections/${g.id}/revoke`, headers: bearer(key), payload: { confirm: name } })
    ids.push(res.json().event_id)
    await log.completed(res.json().event_id)
  }
  const user = await f.app.inject({ method: 'POST', url: `/v1/clients/${claude.clientId}/revoke`, headers: bearer(key) })
  t.match(user.json(), { status: 'revoked', grants_revoked: 0, disabled: true }, 'no grants left of that client, but the disable is an event')
  ids.push(user.json().event_id)
  await log.completed(user.json().event_id)
  t.equal(hook.got.length, 3)

  const page1 = (await f.app.inject({ url: '/v1/audit?limit=2', headers: bearer(key) })).json()
  t.same(page1.items.map((i: { event_id: string }) => i.event_id), [ids[2], ids[1]], 'newest first')
  t.match(page1.items[1], { path: 'connections_operator', scope: 'grant', target: g2.id, actor: { type: 'operator' }, user_id: ann.id, client_id: cursor.clientId })
  t.ok(Date.parse(page1.items[0].at) > 0)
  t.equal(page1.next_cursor, ids[1])
  const page2 = (await f.app.inject({ url: `/v1/audit?limit=2&cursor=${page1.next_cursor}`, headers: bearer(key) })).json()
  // the oldest record is the operator key's creation: API key changes share this trail
  const [operatorKey] = await f.app.connectionsContext.apiKeys.list()
  t.same(page2.items.map((i: { event_id: string }) => i.event_id), [ids[0], `kc-${operatorKey.id}`])
  t.match(page2.items[1], { path: 'api_key_create', scope: 'api_key', target: operatorKey.id })
  t.equal(page2.next_cursor, null)
  t.equal((await f.app.inject({ url: '/v1/audit?cursor=1-1', headers: bearer(key) })).statusCode, 400, 'an unknown cursor')
})

t.test('audit records expire after the retention period, and the index forgets older ones', async (t) => {
  const r = await testRedis(t)
  const now = Date.now()
  const event = (id: string, at: number): RevocationEvent => ({ id, scope: 'grant', target: 'grt_x', grantIds: ['grt_x'], clientId: 'cli_x', userId: 'usr_x', jti: null, path: 'cli', actor: { type: 'system', id: 'test' }, at })
  t.equal(await writeAudit(r.redis, event(`${now - 3 * 86400_000}-0`, now - 3 * 86400_000), 2 * 86400), 'written')
  t.equal(await writeAudit(r.redis, event(`${now}-0`, now), 2 * 86400), 'written')
  const ttl = await r.redis.ttl(keys.auditEntry(`${now}-0`))
  t.ok(ttl > 2 * 86400 - 10 && ttl <= 2 * 86400, `the record expires with the retention (ttl ${ttl} s)`)
  t.same(await r.redis.zrange(keys.audit(), 0, -1), [`${now}-0`], 'an entry older than the retention leaves the index')
})
