// Denylist against a real Redis: what Redis holds decides, and a replica's memory of the revocations it
// applied only ever adds refusals (bounded, oldest forgotten first).
import t from 'tap'
import { testRedis } from '@uspl/testing'
import { Denylist, keys } from '../src/index.ts'

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
