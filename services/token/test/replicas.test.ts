// Two token service replicas on one Redis behave as one issuer: a code issued by one is redeemed at the
// other, a refresh rotated on one is recognised as replayed on the other, and both sign with the same
// keys. And with Redis gone, the token endpoint answers 503 with Retry-After rather than guessing.
import t from 'tap'
import { privateRedis, testEnv, until } from '@uspl/testing'
import { build } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { startStack, registerClient, obtainCode, decodeJwt, keysMatching } from './helpers.ts'

t.test('two replicas share codes, refresh tokens, replay detection and keys', async (t) => {
  const stack = await startStack(t, { REFRESH_REUSE_GRACE_S: '0' })
  const replica = await build(stack.config, { redis: stack.r.redis, logger: false })
  t.teardown(() => replica.close())
  const post = async (app: typeof replica, form: Record<string, string>): Promise<{ status: number, body: Record<string, unknown> }> => {
    const res = await app.inject({ method: 'POST', url: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(form).toString() })
    return { status: res.statusCode, body: res.json() }
  }
  const client = await registerClient(stack)
  const { code, verifier, redirectUri } = await obtainCode(stack, client.client_id)
  const exchanged = await post(replica, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri, client_id: client.client_id })
  t.equal(exchanged.status, 200, 'a code issued through replica A is redeemed at replica B')
  const jwksA = (await stack.token.inject('/.well-known/jwks.json')).json()
  const jwksB = (await replica.inject('/.well-known/jwks.json')).json()
  t.same(jwksA, jwksB, 'same keys')
  t.ok(jwksA.keys.some((k: { kid: string }) => k.kid === decodeJwt(String(exchanged.body.access_token)).header.kid))
  const rotated = await post(stack.token, { grant_type: 'refresh_token', refresh_token: String(exchanged.body.refresh_token), client_id: client.client_id })
  t.equal(rotated.status, 200, 'rotated on A')
  const replay = await post(replica, { grant_type: 'refresh_token', refresh_token: String(exchanged.body.refresh_token), client_id: client.client_id })
  t.equal(replay.body.error, 'invalid_grant', 'the replay is recognised on B')
  t.equal((await post(stack.token, { grant_type: 'refresh_token', refresh_token: String(rotated.body.refresh_token), client_id: client.client_id })).body.error, 'invalid_grant', 'and the grant is dead on A')
  t.same(await keysMatching(stack.r, 'rt:*'), [])
})

t.test('Redis unavailable: /token answers 503 with Retry-After, never a token', async (t) => {
  const redis = await privateRedis(t)
  const app = await build(loadConfig(testEnv({ url: redis.url, prefix: 'test:token-down:' })), { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  await until(async () => (await app.inject('/health/ready')).statusCode === 200, 10000, 'ready')
  await redis.stop()
  await until(async () => (await app.inject('/health/ready')).statusCode === 503, 5000, 'not ready')
  const res = await app.inject({ method: 'POST', url: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=refresh_token&refresh_token=abc&client_id=cli_x' })
  t.equal(res.statusCode, 503)
  t.ok(res.headers['retry-after'])
  t.equal(res.json().error, 'temporarily_unavailable')
  await redis.start()
  await until(async () => (await app.inject('/health/ready')).statusCode === 200, 10000, 'ready again')
})
