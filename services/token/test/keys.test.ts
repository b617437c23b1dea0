// Signing keys: created once even when replicas start together, rotated with an activation delay, the old
// key kept in the JWKS until its tokens expired, or read from a mounted JWK set.
import t from 'tap'
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { testRedis, testEnv } from '@uspl/testing'
import { build } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { ensureKeyRecords, rotateKeys, selectKeys, parseKek, type KeyRecord } from '@uspl/core/signing-keys'
import { startStack, registerClient, obtainTokens, tokenRequest, decodeJwt, verifyWithJwks } from './helpers.ts'

type Jwks = { keys: Array<Record<string, unknown>> }

t.test('replicas starting at once agree on one key', async (t) => {
  const r = await testRedis(t)
  const apps = await Promise.all([0, 1, 2].map(() => build(loadConfig(testEnv(r)), { redis: r.redis, logger: false })))
  t.teardown(() => Promise.all(apps.map((a) => a.close())))
  const answers = await Promise.all(apps.map(async (a) => (await a.inject('/.well-known/jwks.json')).json() as Jwks))
  t.equal(answers[0].keys.length, 1)
  t.same(answers[1], answers[0])
  t.same(answers[2], answers[0])
  const [key] = answers[0].keys
  t.same(Object.keys(key).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'], 'public parts only')
  t.equal(key.alg, 'ES256')
  t.equal(Object.keys(await r.redis.hgetall('keys:signing')).length, 1)
  const more = await Promise.all([ensureKeyRecords(r.redis), ensureKeyRecords(r.redis)])
  t.same(more[0].map((k) => k.kid), [key.kid])
  t.same(more[1].map((k) => k.kid), [key.kid])
})

t.test('rotation publishes the new key before it signs and keeps the old one while its tokens live', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const before = await obtainTokens(stack, client.client_id)
  const oldKid = decodeJwt(before.access_token).header.kid

  // with an activation delay: published now, not yet signing
  const pending = await rotateKeys(stack.r.redis, { activationDelayS: 600, accessTokenTtlS: 900 })
  let jwks = (await stack.token.inject('/.well-known/jwks.json')).json() as Jwks
  t.same(jwks.keys.map((k) => k.kid).sort(), [oldKid, pending.kid].sort(), 'new key published ahead')
  const stillOld = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: before.refresh_token, client_id: client.client_id })
  t.equal(decodeJwt(String(stillOld.body.access_token)).header.kid, oldKid, 'the old key signs until activation')

  // activating now: the newest active key signs, the old one stays published
  const active = await rotateKeys(stack.r.redis, { activationDelayS: 0, accessTokenTtlS: 900 })
  const after = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: String(stillOld.body.refresh_token), client_id: client.client_id })
  t.equal(decodeJwt(String(after.body.access_token)).header.kid, active.kid, 'the new key signs')
  jwks = (await stack.token.inject('/.well-known/jwks.json')).json() as Jwks
  t.ok(jwks.keys.some((k) => k.kid === oldKid), 'the old kid is still in the JWKS')
  t.ok(verifyWithJwks(before.access_token, jwks), 'a token signed before the rotation still verifies')
  t.ok(verifyWithJwks(String(after.body.access_token), jwks))
})

t.test('key selection: retirement once the successor has signed longer than a token lives', async (t) => {
  const rec = (kid: string, activatesAt: number, seq = 0): KeyRecord => ({ kid, activatesAt, seq, createdAt: 0, privateJwk: { kty: 'EC', crv: 'P-256', x: '', y: '', d: '' } })
  const keys = [rec('a', 1000), rec('b', 2000, 1), rec('c', 5000, 2)]
  let s = selectKeys(keys, 2500, 900)
  t.equal(s.signer.kid, 'b')
  t.same(s.published.map((k) => k.kid), ['a', 'b', 'c'], 'a: tokens may live until 2000+900+60; c: pending')
  s = selectKeys(keys, 2961, 900)
  t.same(s.published.map((k) => k.kid), ['b', 'c'])
  t.same(s.retired.map((k) => k.kid), ['a'])
  s = selectKeys(keys, 5001, 900)
  t.equal(s.signer.kid, 'c')
  t.same(s.published.map((k) => k.kid), ['b', 'c'])
  t.equal(selectKeys([rec('x', 10, 0), rec('y', 10, 1)], 10, 900).signer.kid, 'y', 'same second: the later rotation signs')
})

t.test('keys from SIGNING_KEYS_FILE: the first signs, all are published', async (t) => {
  const r = await testRedis(t)
  const dir = mkdtempSync(join(tmpdir(), 'uspl-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const jwk = (kid: string): Record<string, unknown> => ({ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid })
  const file = join(dir, 'jwks.json')
  writeFileSync(file, JSON.stringify({ keys: [jwk('prod-2'), jwk('prod-1')] }))
  const app = await build(loadConfig(testEnv(r, { SIGNING_KEYS_FILE: file })), { redis: r.redis, logger: false })
  t.teardown(() => app.close())
  const jwks = (await app.inject('/.well-known/jwks.json')).json() as Jwks
  t.same(jwks.keys.map((k) => k.kid), ['prod-2', 'prod-1'])
  t.notOk(jwks.keys.some((k) => 'd' in k), 'no private part published')
  t.equal(await r.redis.exists('keys:signing'), 0, 'nothing generated in Redis')
  writeFileSync(file, JSON.stringify({ keys: [{ kty: 'RSA', n: 'x', e: 'AQAB' }] }))
  await t.rejects(build(loadConfig(testEnv(r, { SIGNING_KEYS_FILE: file })), { redis: r.redis, logger: false }), /not a private EC P-256 key/)
})

t.test('signing keys at rest: sealed with SIGNING_KEYS_KEK, plaintext ones migrated, production refuses to start without it', async (t) => {
  const kekValue = randomBytes(32).toString('base64')
  // production without a KEK (and without a mounted key file): one line naming the variable
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), /^invalid configuration: SIGNING_KEYS_KEK is required when NODE_ENV=production/)
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'production', SIGNING_KEYS_KEK: kekValue }))
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'production', SIGNING_KEYS_FILE: '/etc/keys.json' }), 'a mounted key file needs none')
  t.throws(() => loadConfig({ SIGNING_KEYS_KEK: 'short' }), /SIGNING_KEYS_KEK/)

  // a key stored in plaintext before the KEK was set
  const r = await testRedis(t)
  const [legacy] = await ensureKeyRecords(r.redis)
  t.ok(JSON.parse(await r.redis.hget('keys:signing', legacy.kid) ?? '{}').privateJwk?.d, 'before: the private key is readable in Redis')
  const app = await build(loadConfig(testEnv(r, { SIGNING_KEYS_KEK: kekValue })), { redis: r.redis, logger: false })
  t.teardown(() => app.close())
  const jwks = (await app.inject('/.well-known/jwks.json')).json() as Jwks
  t.same(jwks.keys.map((k) => k.kid), [legacy.kid], 'the same key, still published')
  const raw = await r.redis.hget('keys:signing', legacy.kid) ?? ''
  t.notMatch(raw, legacy.privateJwk.d, 'after: the private part is not in Redis in the clear')
  t.match(JSON.parse(raw), { kid: legacy.kid, sealed: { alg: 'A256GCM' } })
  t.notOk(JSON.parse(raw).privateJwk, 'no plaintext copy kept')
  // a rotation with the KEK writes a sealed key
  const rotated = await rotateKeys(r.redis, { activationDelayS: 0, accessTokenTtlS: 900, kek: parseKek(kekValue) })
  t.ok(JSON.parse(await r.redis.hget('keys:signing', rotated.kid) ?? '{}').sealed, 'rotated keys are sealed')
  // and what a thief with Redis but not the KEK gets
  await t.rejects(ensureKeyRecords(r.redis), /encrypted at rest: set SIGNING_KEYS_KEK/, 'without the KEK: refused, naming the variable')
  await t.rejects(ensureKeyRecords(r.redis, parseKek(randomBytes(32).toString('base64'))), /SIGNING_KEYS_KEK does not decrypt signing key/, 'another KEK: refused')
  const moved = JSON.parse(raw)
  await r.redis.hset('keys:signing', 'someone-elses-kid', JSON.stringify({ ...moved, kid: 'someone-elses-kid' }))
  await t.rejects(ensureKeyRecords(r.redis, parseKek(kekValue)), /does not decrypt signing key someone-elses-kid/, 'a sealed key moved to another kid does not open')
})
