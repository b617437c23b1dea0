// The unknown-kid refetch limit was global: a flood of random kids could hold back a newly rotated key
// for the whole refetch interval. A kid the issuer publishes must never wait behind that limit.
import t from 'tap'
import Fastify from 'fastify'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { listen } from '@uspl/testing'
import { KeySource, UnknownKeyError } from '../src/auth/jwks.ts'

function jwk (kid: string): Record<string, unknown> {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }
}

async function issuer (t: Parameters<typeof listen>[0]): Promise<{ url: string, keys: Array<Record<string, unknown>>, hits: () => number }> {
  const keys = [jwk('old')]
  let hits = 0
  const app = Fastify()
  app.get('/jwks', async (_request, reply) => { hits++; return reply.header('cache-control', 'public, max-age=300').send({ keys }) })
  return { url: `${await listen(t, app)}/jwks`, keys, hits: () => hits }
}

t.test('a flood of random kids cannot hold back a key the issuer has published', async (t) => {
  const iss = await issuer(t)
  let now = 1_000_000
  const source = new KeySource({ jwksUrl: iss.url, ttlMs: 600_000, refetchMinIntervalMs: 10_000, fetchTimeoutMs: 2000, now: () => now })
  t.ok(await source.publicKey('old'), 'the first token fetches the set')
  t.equal(iss.hits(), 1)
  // the attacker floods random kids: one fetch at most per interval, the rest refused without one
  now += 10_000
  const flood = await Promise.allSettled(Array.from({ length: 50 }, () => source.publicKey(randomUUID())))
  t.ok(flood.every((r) => r.status === 'rejected' && r.reason instanceof UnknownKeyError), 'every random kid refused')
  t.equal(iss.hits(), 2, 'with one fetch for the whole flood')
  // rotation: the token service publishes the new key ahead of signing with it
  iss.keys.push(jwk('new'))
  // while the flood goes on, the held set passes its max-age (300 s): the next request refreshes it in the background
  now += 300_000
  await Promise.allSettled(Array.from({ length: 20 }, () => source.publicKey(randomUUID())))
  t.equal(iss.hits(), 3, 'a stale set is refetched once even though the limiter is busy')
  now += 1000
  const before = iss.hits()
  for (let i = 0; i < 20; i++) await source.publicKey(randomUUID()).catch(() => {})
  t.ok(await source.publicKey('new'), 'the first token with the new kid verifies at once')
  t.equal(iss.hits(), before, 'from the held set, without waiting for the limiter')
})

t.test('past max-age a known kid is served at once and the set refreshed behind it; a retired key stops verifying', async (t) => {
  const iss = await issuer(t)
  let now = 5_000_000
  let fetched: () => void = () => {}
  const source = new KeySource({ jwksUrl: iss.url, ttlMs: 600_000, refetchMinIntervalMs: 60_000, fetchTimeoutMs: 2000, now: () => now, onFetch: () => fetched() })
  await source.publicKey('old')
  iss.keys.push(jwk('new'))
  now += 301_000
  t.ok(await source.publicKey('old'), 'served from memory')
  // the background refresh shares its fetch with the next unknown-kid lookup
  t.ok(await source.publicKey('new'), 'the new key is there')
  t.equal(iss.hits(), 2, 'one background fetch, nothing more')
  iss.keys.splice(0, 1)
  now += 301_000
  const refreshed = new Promise<void>((resolve) => { fetched = resolve })
  t.ok(await source.publicKey('old'), 'still served from memory past max-age')
  await refreshed
  await t.rejects(source.publicKey('old'), UnknownKeyError, 'the retired key is refused once the refreshed set lacks it')
  t.ok(await source.publicKey('new'))
})
