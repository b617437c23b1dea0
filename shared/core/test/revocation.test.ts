// The revocation module against a real Redis: what one call writes, atomically, and what it publishes.
import t from 'tap'
import { once, EventEmitter } from 'node:events'
import { createRedis, closeRedis } from '@uspl/redis'
import { testRedis } from '@uspl/testing'
import {
  Revoker, GrantStore, ClientStore, Denylist, RevocationFeed, keys, hashSecret, parseMessage, nowSeconds,
  createRevocationPipeline, createFollowupQueue, closeQueue,
  type RevocationEvent
} from '../src/index.ts'

async function setup (t: Parameters<typeof testRedis>[0]) {
  const r = await testRedis(t)
  const grants = new GrantStore(r.redis, r.prefix)
  const clients = new ClientStore(r.redis, 86400)
  const revoker = new Revoker({ redis: r.redis, prefix: r.prefix, accessTokenTtlS: 900 })
  const grant = async (userId: string, clientId: string, refreshTokens = ['rt-a', 'rt-b']) => {
    const g = await grants.ensure({ userId, clientId, scope: 'mcp:tools', resource: 'http://localhost:3000/mcp', authTime: nowSeconds(), ttlS: 3600 })
    for (const rt of refreshTokens) {
      const h = hashSecret(`${g.id}:${rt}`)
      await r.redis.multi().hset(keys.refreshToken(h), { grant_id: g.id }).sadd(keys.grantRefreshTokens(g.id), h).exec()
    }
    return g
  }
  return { ...r, grants, clients, revoker, grant }
}

t.test('revoking a grant writes the denylist, deletes its refresh tokens, records and publishes one event', async (t) => {
  const s = await setup(t)
  const g = await s.grant('usr_1', 'cli_a')
  const other = await s.grant('usr_1', 'cli_b')
  const sub = createRedis({ url: s.url, prefix: s.prefix, offlineQueue: true })
  t.teardown(() => closeRedis(sub))
  await sub.subscribe(keys.revocationChannel(s.prefix))
  const message = once(sub, 'message')

  const result = await s.revoker.revokeGrant(g.id, { path: 'connections_user', actor: { type: 'user', id: 'usr_1' } })
  t.equal(result.status, 'revoked')
  t.ok(result.eventId)

  const ttl = await s.redis.ttl(keys.denyGrant(g.id))
  t.ok(ttl > 900 && ttl <= 960, `denylist entry lives as long as the longest token could (ttl ${ttl})`)
  t.equal(await s.redis.exists(keys.grantRefreshTokens(g.id)), 0, 'refresh token set gone')
  t.equal(await s.redis.keys(`${s.prefix}rt:*`).then((k) => k.length), 2, "only the other grant's refresh tokens remain")
  t.equal(await s.redis.get(keys.activeGrant('usr_1', 'cli_a')), null, 'the next consent creates a new grant')
  const stored = await s.grants.get(g.id)
  t.equal(stored?.revokedBy, 'connections_user')
  t.equal(stored?.revocationId, result.eventId)

  const entries = await s.redis.xrange(keys.revocationStream(), '-', '+')
  t.equal(entries.length, 1)
  t.equal(entries[0][0], result.eventId)
  const [, published] = await message as [string, string]
  const event = parseMessage(published)
  t.match(event, { id: result.eventId, scope: 'grant', target: g.id, grantIds: [g.id], clientId: 'cli_a', userId: 'usr_1', path: 'connections_user', actor: { type: 'user', id: 'usr_1' } })

  const deny = new Denylist(s.redis)
  t.equal(await deny.check({ grantId: g.id, clientId: 'cli_a', jti: 'j1', iat: nowSeconds() }), 'grant_revoked')
  t.equal(await deny.check({ grantId: other.id, clientId: 'cli_b', jti: 'j2', iat: nowSeconds() }), null, 'the other grant is untouched')
})

t.test('revoking twice is harmless and reports the first revocation', async (t) => {
  const s = await setup(t)
  const g = await s.grant('usr_1', 'cli_a')
  const first = await s.revoker.revokeGrant(g.id, { path: 'oauth_revoke', actor: { type: 'client', id: 'cli_a' } })
  const second = await s.revoker.revokeGrant(g.id, { path: 'connections_user', actor: { type: 'user', id: 'usr_1' } })
  t.equal(second.status, 'already_revoked')
  t.equal(second.eventId, first.eventId)
  t.equal(second.revokedAt, first.revokedAt)
  t.equal(await s.redis.xlen(keys.revocationStream()), 1, 'no second event')
  t.equal((await s.revoker.revokeGrant('grt_missing', { path: 'cli', actor: { type: 'system', id: 'x' } })).status, 'not_found')
})

t.test('a new consent after revocation creates a new grant; the old id stays dead', async (t) => {
  const s = await setup(t)
  const g = await s.grant('usr_1', 'cli_a')
  await s.revoker.revokeGrant(g.id, { path: 'cli', actor: { type: 'system', id: 'test' } })
  const again = await s.grant('usr_1', 'cli_a')
  t.not(again.id, g.id)
  t.equal(again.revokedAt, null)
  const reused = await s.grant('usr_1', 'cli_a', [])
  t.equal(reused.id, again.id, 'while active, the grant is reused')
})

t.test('a client-wide revoke cuts every user of that client and nothing else, and disables it', async (t) => {
  const s = await setup(t)
  const { client } = await s.clients.create({ redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'] })
  const u1 = await s.grant('usr_1', client.clientId)
  const u2 = await s.grant('usr_2', client.clientId)
  const b = await s.grant('usr_1', 'cli_other')
  // read before the revoke: a second boundary between the revoke and this read would otherwise make
  // "now" later than the cutoff the revoke wrote
  const issuedBefore = nowSeconds()
  const result = await s.revoker.revokeClient(client.clientId, { path: 'client_disable', actor: { type: 'operator', id: 'key_1' }, disable: true })
  t.equal(result.status, 'revoked')
  t.same(new Set(result.event?.grantIds), new Set([u1.id, u2.id]))
  t.equal((await s.grants.get(b.id))?.revokedAt, null)
  t.ok((await s.clients.get(client.clientId))?.disabledAt, 'client disabled')
  const deny = new Denylist(s.redis)
  t.equal(await deny.check({ grantId: 'grt_raced', clientId: client.clientId, jti: 'j', iat: issuedBefore }), 'client_revoked', 'a token of the client issued up to now is dead')
  t.equal(await deny.check({ grantId: 'grt_raced', clientId: client.clientId, jti: 'j', iat: issuedBefore + 5 }), null, 'a later one is not')
  t.equal((await s.revoker.revokeClient(client.clientId, { path: 'client_disable', actor: { type: 'operator', id: 'key_1' }, disable: true })).status, 'noop')
})

t.test('a user-wide revoke cuts every client of that user', async (t) => {
  const s = await setup(t)
  const a = await s.grant('usr_1', 'cli_a')
  const b = await s.grant('usr_1', 'cli_b')
  const c = await s.grant('usr_2', 'cli_a')
  const result = await s.revoker.revokeUser('usr_1', { path: 'user_revoke', actor: { type: 'operator', id: 'key_1' } })
  t.same(new Set(result.event?.grantIds), new Set([a.id, b.id]))
  t.equal(result.event?.userId, 'usr_1')
  t.equal((await s.grants.get(c.id))?.revokedAt, null)
})

t.test('revoking one access token denylists its jti until it expires', async (t) => {
  const s = await setup(t)
  const exp = nowSeconds() + 300
  const r1 = await s.revoker.revokeAccessToken({ jti: 'jti-1', exp, grantId: 'grt_x', clientId: 'cli_a', userId: 'usr_1' }, { path: 'oauth_revoke', actor: { type: 'client', id: 'cli_a' } })
  t.equal(r1.status, 'revoked')
  t.equal(r1.event?.scope, 'token')
  t.equal(r1.event?.jti, 'jti-1')
  const ttl = await s.redis.ttl(keys.denyJti('jti-1'))
  t.ok(ttl > 300 && ttl <= 360, `ttl ${ttl}`)
  t.equal((await s.revoker.revokeAccessToken({ jti: 'jti-1', exp, grantId: 'grt_x', clientId: 'cli_a', userId: 'usr_1' }, { path: 'oauth_revoke', actor: { type: 'client', id: 'cli_a' } })).status, 'already_revoked')
  t.equal(await new Denylist(s.redis).check({ grantId: 'grt_x', clientId: 'cli_a', jti: 'jti-1', iat: nowSeconds() }), 'token_revoked')
})

t.test('the feed delivers live events, and replays what it missed while its subscription was down', async (t) => {
  const s = await setup(t)
  const seen: Array<{ event: RevocationEvent, source: string }> = []
  const applied = new EventEmitter()
  const feed = new RevocationFeed({
    url: s.url,
    prefix: s.prefix,
    redis: s.redis,
    onEvent: (event, source) => { seen.push({ event, source }); applied.emit('event') }
  })
  t.teardown(() => feed.close())
  await feed.start()
  await feed.waitReady()

  const g1 = await s.grant('usr_1', 'cli_a')
  const delivered = once(applied, 'event')
  const live = await s.revoker.revokeGrant(g1.id, { path: 'cli', actor: { type: 'system', id: 't' } })
  await delivered
  t.match(seen[0], { event: { id: live.eventId }, source: 'live' })

  // drop the feed's subscription, revoke in the reconnect gap, and watch it catch up before it is ready
  const clients = (await s.raw.client('LIST') as string).split('\n')
  const mine = clients.find((line) => line.includes(`name=revocation-feed:${s.prefix}`))
  t.ok(mine, 'the feed connection is named after its prefix')
  const id = /id=(\d+)/.exec(mine ?? '')?.[1]
  const g2 = await s.grant('usr_2', 'cli_a')
  const lost = once(feed, 'lost')
  const reconnecting = once(feed, 'reconnecting')
  const ready = once(feed, 'ready')
  const killed = s.redis.client('KILL', 'ID', id ?? '0')
  // sent right behind the kill on the same connection (the script is cached: one EVALSHA), so Redis
  // publishes the event while the subscriber is gone, before it can reconnect: it can only be replayed
  const revoking = s.revoker.revokeGrant(g2.id, { path: 'cli', actor: { type: 'system', id: 't' } })
  await killed
  await lost
  t.equal(feed.ready, false, 'not ready while the subscription is down')
  t.same(await reconnecting, [0], 'it reconnects at once, without a backoff delay')
  const missed = await revoking
  await ready
  const replayed = seen.find((x) => x.event.id === missed.eventId)
  t.ok(replayed, 'the missed event was applied')
  t.equal(replayed?.source, 'replay', 'from the stream, before the feed reported ready')
  t.equal(seen.filter((x) => x.event.id === missed.eventId).length, 1, 'applied once')
  t.equal(feed.lastEventId, missed.eventId)
})

t.test('the caller is answered before the follow-up is queued; settled() waits for the queueing', async (t) => {
  const s = await setup(t)
  const g = await s.grant('usr_1', 'cli_a')
  // a queue whose add is held until released: the revocation must not wait on it
  const added: Array<{ name: string, data: RevocationEvent, jobId: string }> = []
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  const queue = { add: async (name: string, data: RevocationEvent, opts: { jobId: string }) => { await held; added.push({ name, data, jobId: opts.jobId }) } }
  const revoker = new Revoker({ redis: s.redis, prefix: s.prefix, accessTokenTtlS: 900, queue: queue as never })

  const result = await revoker.revokeGrant(g.id, { path: 'connections_operator', actor: { type: 'operator', id: 'key_1' } })
  t.equal(result.status, 'revoked', 'answered while the queue still holds the add')
  t.equal(added.length, 0)
  let settled = false
  const waiting = revoker.settled().then(() => { settled = true })
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(settled, 'settled() waits for the pending add')
  release()
  await waiting
  t.same(added, [{ name: 'revocation', data: result.event, jobId: `rev-${result.eventId}` }], 'queued once, keyed by the event id')
})

t.test('a queue that refuses the follow-up is logged and never fails the revocation', async (t) => {
  const s = await setup(t)
  const g = await s.grant('usr_1', 'cli_a')
  const errors: Array<{ obj: object, msg: string }> = []
  const queue = { add: async () => { throw new Error('queue down') } }
  const revoker = new Revoker({ redis: s.redis, prefix: s.prefix, accessTokenTtlS: 900, queue: queue as never, log: { error: (obj, msg) => { errors.push({ obj, msg }) } } })
  const result = await revoker.revokeGrant(g.id, { path: 'connections_operator', actor: { type: 'operator', id: 'key_1' } })
  t.equal(result.status, 'revoked')
  await revoker.settled()
  t.equal(errors.length, 1)
  t.equal(errors[0].msg, 'could not queue revocation follow-up')
  t.match(errors[0].obj, { eventId: result.eventId })
  t.equal(await s.redis.xlen(keys.revocationStream()), 1, 'the event stays in the stream for the sweeper')
})

t.test('closing the pipeline queues the follow-ups of revocations already answered, on a real BullMQ queue', async (t) => {
  const s = await setup(t)
  const g = await s.grant('usr_1', 'cli_a')
  const log = { warn: () => {}, error: () => {} }
  const pipeline = createRevocationPipeline({ redis: s.redis, redisUrl: s.url, prefix: s.prefix, accessTokenTtlS: 900, log })
  const result = await pipeline.revoker.revokeGrant(g.id, { path: 'connections_operator', actor: { type: 'operator', id: 'key_1' } })
  await pipeline.close()
  const queue = createFollowupQueue(s.url, s.prefix)
  t.teardown(() => closeQueue(queue))
  const job = await queue.getJob(`rev-${result.eventId}`)
  t.ok(job, 'the job is in the queue')
  t.same(job?.data, result.event)
})
