// ApiKeyStore.authenticate against a real Redis: one script reads the record, a personal key's user and the
// minute's last-used marker; the judging (unknown, expired, disabled user) and the once-a-minute write of
// last used stay as they were.
import t from 'tap'
import { testRedis } from '@uspl/testing'
import { ApiKeyStore, AccountStore, keys, hashSecret } from '../src/index.ts'

t.test('an operator key: known, last used written once a minute, unknown and revoked keys refused', async (t) => {
  const r = await testRedis(t)
  const store = new ApiKeyStore(r.redis)
  const { key, apiKey } = await store.create('ops')
  const first = await store.authenticate(key)
  t.match(first, { ok: true, key: { id: apiKey.id, kind: 'operator', userId: null } })
  const used = Number(await r.redis.hget(keys.apiKey(hashSecret(key)), 'last_used_at'))
  t.ok(used > 0, 'the first use writes last used')
  t.ok(await r.redis.pttl(keys.apiKeyUsed(apiKey.id)) > 0, 'and takes the minute\'s marker')

  await r.redis.hset(keys.apiKey(hashSecret(key)), 'last_used_at', '1')
  t.match(await store.authenticate(key), { ok: true })
  t.equal(await r.redis.hget(keys.apiKey(hashSecret(key)), 'last_used_at'), '1', 'a second use within the minute writes nothing')
  await r.redis.del(keys.apiKeyUsed(apiKey.id))
  const again = await store.authenticate(key)
  t.ok(again.ok && again.key.lastUsedAt !== null && again.key.lastUsedAt > 1, 'the key read reports the new last used')
  t.not(await r.redis.hget(keys.apiKey(hashSecret(key)), 'last_used_at'), '1', 'once the marker is gone, the next use writes it')

  t.same(await store.authenticate('uspl_' + 'x'.repeat(43)), { ok: false, reason: 'unknown' })
  t.same(await store.authenticate('not-a-key'), { ok: false, reason: 'unknown' })
  t.ok(await store.revoke(apiKey.id))
  t.same(await store.authenticate(key), { ok: false, reason: 'unknown' }, 'a revoked key is unknown')
  t.equal(await r.redis.exists(keys.apiKey(hashSecret(key))), 0, 'and no use recreated its record')
})

t.test('a record stored under another hash is not the presented key', async (t) => {
  const r = await testRedis(t)
  const store = new ApiKeyStore(r.redis)
  const { key } = await store.create('ops')
  await r.redis.hset(keys.apiKey(hashSecret(key)), 'hash', hashSecret(key + 'x'))
  t.same(await store.authenticate(key), { ok: false, reason: 'unknown' })
})

t.test('a personal key acts while its user is active and unexpired', async (t) => {
  const r = await testRedis(t)
  const store = new ApiKeyStore(r.redis)
  const user = await new AccountStore(r.redis).createUser({ email: 'mia@example.com', name: 'Mia', password: 'correct horse battery' })
  const { key, apiKey } = await store.create('ci', { userId: user.id })
  const soon = await store.create('short', { userId: user.id, expiresAt: Date.now() + 60_000 })
  t.match(await store.authenticate(key), { ok: true, key: { kind: 'personal', userId: user.id } })

  await new AccountStore(r.redis).setDisabled(user.id, true)
  t.same(await store.authenticate(key), { ok: false, reason: 'user_disabled' })
  await new AccountStore(r.redis).setDisabled(user.id, false)
  t.match(await store.authenticate(key), { ok: true })
  await r.redis.del(keys.user(user.id))
  t.same(await store.authenticate(key), { ok: false, reason: 'user_disabled' }, 'a deleted user is no user')

  await r.redis.hset(keys.apiKey(hashSecret(soon.key)), 'expires_at', String(Date.now() - 1))
  t.same(await store.authenticate(soon.key), { ok: false, reason: 'expired' })
  t.equal(await r.redis.hget(keys.apiKey(hashSecret(soon.key)), 'last_used_at'), null, 'a refused key records no use')
  t.ok(apiKey.id)
})
