// Two API replicas on one Redis: revoking a key, disabling its user, or its expiry is refused by the very
// next request on both (nothing about a key is kept in a process).
import t from 'tap'
import { hashSecret, keys as redisKeys } from '@uspl/core'
import { setup, apiApp, bearer } from './helper.ts'

t.test('a revoked key is refused on both replicas by the next request', async (t) => {
  const f = await setup(t)
  const second = await apiApp(t, f.r)
  const mia = await f.member('mia', 'member')
  const replicas = [f.app, second]
  for (const app of replicas) t.equal((await app.inject({ url: '/v1/workspaces', headers: bearer(mia.key) })).statusCode, 200, 'accepted before')

  t.ok(await f.keys.revoke(mia.keyId, { actor: { type: 'user', id: mia.user.id } }))
  const after = await Promise.all(replicas.map((app) => app.inject({ url: '/v1/workspaces', headers: bearer(mia.key) })))
  t.same(after.map((res) => res.statusCode), [401, 401], 'both replicas, the next request')
  for (const res of after) t.match(res.headers['www-authenticate'], /error="invalid_token"/)

  const audit = await f.r.redis.get(redisKeys.auditEntry(`kr-${mia.keyId}`))
  t.match(JSON.parse(audit ?? '{}'), { scope: 'api_key', path: 'api_key_revoke', target: mia.keyId, user_id: mia.user.id, actor: { type: 'user', id: mia.user.id } }, 'the revoke is in the audit trail')
  t.ok(await f.r.redis.zscore(redisKeys.audit(), `kc-${mia.keyId}`), 'and so is the create')
})

t.test('a disabled user and an expired key: refused on both replicas by the next request', async (t) => {
  const f = await setup(t)
  const second = await apiApp(t, f.r)
  const replicas = [f.app, second]
  const bob = await f.member('bob', 'member')
  for (const app of replicas) t.equal((await app.inject({ url: '/v1/workspaces', headers: bearer(bob.key) })).statusCode, 200)
  await f.accounts.setDisabled(bob.user.id, true)
  t.same((await Promise.all(replicas.map((app) => app.inject({ url: '/v1/workspaces', headers: bearer(bob.key) })))).map((r) => r.statusCode), [401, 401])

  const cara = await f.member('cara', 'member')
  for (const app of replicas) t.equal((await app.inject({ url: '/v1/workspaces', headers: bearer(cara.key) })).statusCode, 200)
  await f.r.redis.hset(redisKeys.apiKey(hashSecret(cara.key)), 'expires_at', String(Date.now() - 1))
  t.same((await Promise.all(replicas.map((app) => app.inject({ url: '/v1/workspaces', headers: bearer(cara.key) })))).map((r) => r.statusCode), [401, 401])
})
