// Denylist against a real Redis: what Redis holds decides, and a replica's memory of the revocations it
// applied only ever adds refusals (bounded, oldest forgotten first); checks asked for together, or while an
// MGET is out, share one MGET.
import t from 'tap'
import { once } from 'node:events'
import { testRedis, privateRedis } from '@uspl/testing'
import { createRedis, closeRedis, waitReady } from '@uspl/redis'
import { Denylist, DENYLIST_BATCH, keys } from '../src/index.ts'

const ref = (grantId: string, jti = `jti-${grantId}`, iat = 1000) => ({ grantId, clientId: 'cli_a', jti, iat })

t.test('Redis decides: grant, token and client entries', async (t) => {
  const r = await testRedis(t)
  const d = new Denylist(r.redis)
  t.equal(await d.check(ref('g1')), null)
  await r.redis.set(keys.denyGrant('g1'), '1')
  t.equal(await d.check(ref('g1')), 'grant_revoked')
  await r.redis.set(keys.denyJti('jti-g2'), '1')
  t.equal(await d.check(ref('g2')), 'token_revoked')
  await r.redis.set(keys.denyClient('cli_a'), '2000')
  t.equal(await d.check(ref('g3', 'j3', 1999)), 'client_revoked', 'issued before the client\'s revocation')
  t.equal(await d.check(ref('g3', 'j3', 2000)), null, 'issued after it')
})

t.test('remembered revocations are refused without Redis; nothing is allowed from memory', async (t) => {
  const r = await testRedis(t)
  const d = new Denylist(r.redis, 2)
  d.remember({ scope: 'user', grantIds: ['g1', 'g2'], jti: null })
  d.remember({ scope: 'token', grantIds: ['g9'], jti: 'jti-x' })
  r.redis.disconnect() // any trip to Redis now fails
  t.equal(await d.check(ref('g1')), 'grant_revoked')
  t.equal(await d.check(ref('g2')), 'grant_revoked')
  t.equal(await d.check(ref('g9', 'jti-x')), 'token_revoked')
  await t.rejects(d.check(ref('g9', 'jti-other')), 'the token event leaves its grant to Redis')
  await t.rejects(d.check(ref('g5')), 'an unknown grant goes to Redis (and fails closed)')

  d.remember({ scope: 'grant', grantIds: ['g3'], jti: null })
  t.equal(await d.check(ref('g3')), 'grant_revoked')
  await t.rejects(d.check(ref('g1')), 'past its bound the oldest is forgotten: back to Redis')
  d.remember({ scope: 'grant', grantIds: ['g3'], jti: null })
  t.equal(await d.check(ref('g2')), 'grant_revoked', 'remembering one again does not push another out')
})

t.test('checks share MGETs (one in flight at a time), each answered as if alone', async (t) => {
  const server = await privateRedis(t)
  const redis = createRedis({ url: server.url, prefix: 'test:dl-batch:', name: 'test-dl-batch', offlineQueue: false })
  t.teardown(() => closeRedis(redis))
  await waitReady(redis)
  const mgets = async (): Promise<number> => {
    const stats = await redis.info('commandstats')
    return Number(/cmdstat_mget:calls=(\d+)/.exec(stats)?.[1] ?? 0)
  }
  for (let i = 0; i < 300; i += 3) await redis.set(keys.denyGrant(`g${i}`), '1')
  await redis.set(keys.denyJti('jti-g1'), '1')
  await redis.set(keys.denyClient('cli_late'), '2000')
  const d = new Denylist(redis)

  const before = await mgets()
  const refs = Array.from({ length: 300 }, (_, i) => i === 2 ? { grantId: 'g2', clientId: 'cli_late', jti: 'jti-g2', iat: 1999 } : ref(`g${i}`))
  const answers = await Promise.all(refs.map(async (r) => await d.check(r)))
  t.same(answers, refs.map((_, i) => i % 3 === 0 ? 'grant_revoked' : i === 1 ? 'token_revoked' : i === 2 ? 'client_revoked' : null), 'each check gets its own answer')
  t.equal(await mgets() - before, Math.ceil(300 / DENYLIST_BATCH), `300 checks in one turn: ${Math.ceil(300 / DENYLIST_BATCH)} MGETs of at most ${DENYLIST_BATCH} checks`)

  const one = await mgets()
  t.equal(await d.check(ref('g4')), null)
  t.equal(await d.check(ref('g3')), 'grant_revoked')
  t.equal(await mgets() - one, 2, 'checks of different turns: one MGET each')

  // while one MGET is out, the checks that arrive share the next one
  const during = await mgets()
  const first = d.check(ref('g6'))
  await new Promise((resolve) => setImmediate(resolve)) // the first check's MGET has been sent
  const later = Array.from({ length: 50 }, async (_, i) => await d.check(ref(`g${i + 100}`)))
  t.equal(await first, 'grant_revoked')
  t.same(await Promise.all(later), Array.from({ length: 50 }, (_, i) => (i + 100) % 3 === 0 ? 'grant_revoked' : null))
  t.equal(await mgets() - during, 2, '50 checks asked for while an MGET was out: one more MGET for all of them')

  // every check of a batch fails when Redis cannot answer it (fail closed)
  const closed = once(redis, 'close')
  await server.stop()
  await closed
  const failing = refs.slice(0, 5).map(async (r) => await d.check(r).then(() => 'answered', () => 'rejected'))
  t.same(await Promise.all(failing), Array(5).fill('rejected'), 'Redis away: every check of the batch rejects')
})
