// readConnection against a real Redis: the grant, its client and its open sessions in one script, counted
// (and pruned) as the session index counts them.
import t from 'tap'
import { testRedis } from '@uspl/testing'
import { ClientStore, GrantStore, Revoker, readConnection, keys, nowSeconds } from '../src/index.ts'

async function setup (t: Parameters<typeof testRedis>[0]) {
  const r = await testRedis(t)
  const clients = new ClientStore(r.redis, 86400)
  const grants = new GrantStore(r.redis, r.prefix)
  const { client } = await clients.create({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'], client_name: 'Claude' })
  const grant = await grants.ensure({ userId: 'usr_a', clientId: client.clientId, scope: 'recordings:read', resource: 'http://localhost:3000/mcp', authTime: nowSeconds(), ttlS: 3600 })
  // one live session, one whose hash expired, one on a replica whose heartbeat lapsed
  await r.redis.multi()
    .set(keys.replicaAlive('live'), 'boot', 'PX', 600000)
    .hset(keys.mcpSession('s-open'), { grant: grant.id, replica: 'live' })
    .hset(keys.mcpSession('s-dead'), { grant: grant.id, replica: 'dead' })
    .sadd(keys.replicaSessions('dead'), 's-dead')
    .sadd(keys.grantSessions(grant.id), 's-open', 's-closed', 's-dead')
    .exec()
  return { r, clients, grant, client }
}

t.test('a grant, its client and its live sessions, pruned on the way', async (t) => {
  const { r, grant, client } = await setup(t)
  const view = await readConnection(r.redis, r.prefix, grant.id)
  t.ok(view)
  t.match(view!.grant, { id: grant.id, userId: 'usr_a', clientId: client.clientId, revokedAt: null })
  t.match(view!.client, { clientId: client.clientId, metadata: { client_name: 'Claude' } })
  t.equal(view!.openSessions, 1)
  t.same(await r.redis.smembers(keys.grantSessions(grant.id)), ['s-open'], 'the closed and the dead replica\'s entries went')
  t.equal(await r.redis.exists(keys.mcpSession('s-dead')), 0)
})

t.test('a revoked grant counts no sessions and its index is left to the follow-up', async (t) => {
  const { r, grant } = await setup(t)
  await new Revoker({ redis: r.redis, prefix: r.prefix, accessTokenTtlS: 600 }).revokeGrant(grant.id, { path: 'cli', actor: { type: 'system', id: 'test' } })
  const view = await readConnection(r.redis, r.prefix, grant.id)
  t.ok(view!.grant.revokedAt)
  t.equal(view!.openSessions, 0)
  t.equal(await r.redis.scard(keys.grantSessions(grant.id)), 3, 'nothing pruned')
})

t.test('a grant whose client is gone, an unknown grant and a malformed id', async (t) => {
  const { r, clients, grant, client } = await setup(t)
  await clients.remove(client.clientId)
  const view = await readConnection(r.redis, r.prefix, grant.id)
  t.equal(view!.grant.id, grant.id)
  t.equal(view!.client, null)
  t.equal(await readConnection(r.redis, r.prefix, 'grt_nope'), null)
  t.equal(await readConnection(r.redis, r.prefix, 'a b'), null)
  t.equal(await readConnection(r.redis, r.prefix, 'x'.repeat(65)), null)
})
