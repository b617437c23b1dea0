// RFC 7009 revocation and RFC 7662 introspection.
import t from 'tap'
import { ApiKeyStore } from '@uspl/core'
import { startStack, registerClient, obtainTokens, tokenRequest, decodeJwt, keysMatching, type Stack } from './helpers.ts'

async function post (stack: Stack, url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number, body: string, json: () => Record<string, unknown>, headers: Record<string, unknown> }> {
  const res = await stack.token.inject({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload: new URLSearchParams(form).toString() })
  return { status: res.statusCode, body: res.body, json: () => res.json(), headers: res.headers }
}

t.test('/revoke with an access token denylists its jti; the grant keeps working', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const tokens = await obtainTokens(stack, client.client_id)
  const { claims } = decodeJwt(tokens.access_token)
  const res = await post(stack, '/revoke', { token: tokens.access_token, token_type_hint: 'access_token', client_id: client.client_id })
  t.equal(res.status, 200)
  t.equal(res.body, '')
  const ttl = await stack.r.redis.ttl(`dl:j:${String(claims.jti)}`)
  t.ok(ttl > 900 && ttl <= 960, 'denylisted until it expires (plus skew)')
  t.notOk(await stack.r.redis.get(`dl:g:${String(claims.grant_id)}`), 'the grant is not revoked')
  const refreshed = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id })
  t.equal(refreshed.status, 200, 'refresh still works')
  const events = await stack.r.redis.xrange('events:revocations', '-', '+')
  t.equal(events.length, 1)
  t.match(events[0][1][1], /"scope":"token"/)
  t.match(events[0][1][1], /"path":"oauth_revoke"/)
})

t.test('/revoke with a refresh token revokes the grant (and without a hint)', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const tokens = await obtainTokens(stack, client.client_id)
  const { claims } = decodeJwt(tokens.access_token)
  const res = await post(stack, '/revoke', { token: tokens.refresh_token, client_id: client.client_id })
  t.equal(res.status, 200)
  t.ok(await stack.r.redis.get(`dl:g:${String(claims.grant_id)}`), 'grant denylisted')
  t.same(await keysMatching(stack.r, 'rt:*'), [])
  t.equal((await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id })).body.error, 'invalid_grant')
})

t.test('/revoke: unknown tokens answer 200; another client is refused (unauthorized_client); bad requests are RFC 6749 errors', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const other = await registerClient(stack)
  const tokens = await obtainTokens(stack, client.client_id)
  t.equal((await post(stack, '/revoke', { token: 'no-such-token', client_id: client.client_id })).status, 200)
  for (const token of [tokens.refresh_token, tokens.access_token]) {
    const refused = await post(stack, '/revoke', { token, client_id: other.client_id })
    t.equal(refused.status, 400, 'RFC 7009 §2.1: refused')
    t.equal(refused.json().error, 'unauthorized_client')
  }
  t.same(await keysMatching(stack.r, 'dl:*'), [], 'nothing revoked for another client')
  const missing = await post(stack, '/revoke', {})
  t.equal(missing.status, 400)
  t.equal(missing.json().error, 'invalid_request')
  const hint = await post(stack, '/revoke', { token: 'x', token_type_hint: 'id_token' })
  t.equal(hint.json().error, 'unsupported_token_type')
})

t.test('/introspect needs an operator API key and reports revoked tokens inactive', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const tokens = await obtainTokens(stack, client.client_id)
  const { key } = await new ApiKeyStore(stack.r.redis).create('test')

  const noKey = await post(stack, '/introspect', { token: tokens.access_token })
  t.equal(noKey.status, 401)
  t.equal(noKey.json().error, 'invalid_client')
  t.match(noKey.headers['www-authenticate'], /^Bearer/)
  t.equal((await post(stack, '/introspect', { token: tokens.access_token }, { authorization: 'Bearer uspl_wrong' })).status, 401, 'wrong key')
  t.equal((await post(stack, '/introspect', { token: tokens.access_token }, { authorization: `Bearer ${tokens.access_token}` })).status, 401, 'an access token is not an operator key')

  const auth = { authorization: `Bearer ${key}` }
  const active = await post(stack, '/introspect', { token: tokens.access_token }, auth)
  t.equal(active.status, 200)
  t.equal(active.headers['cache-control'], 'no-store')
  const body = active.json()
  t.equal(body.active, true)
  t.equal(body.client_id, client.client_id)
  t.equal(body.sub, stack.user.id)
  t.equal(body.scope, 'mcp:tools')
  t.equal(body.aud, stack.resource)
  t.equal(body.iss, stack.issuer)
  t.equal(body.token_type, 'Bearer')

  const rt = (await post(stack, '/introspect', { token: tokens.refresh_token, token_type_hint: 'refresh_token' }, auth)).json()
  t.equal(rt.active, true)
  t.equal(rt.token_type, 'refresh_token')
  t.same((await post(stack, '/introspect', { token: 'garbage' }, auth)).json(), { active: false })

  // revoke the access token: inactive; the refresh token is still active
  await post(stack, '/revoke', { token: tokens.access_token })
  t.same((await post(stack, '/introspect', { token: tokens.access_token }, auth)).json(), { active: false }, 'denylisted jti: inactive')
  t.equal((await post(stack, '/introspect', { token: tokens.refresh_token }, auth)).json().active, true)

  // revoke the grant: everything inactive
  const fresh = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id })
  await post(stack, '/revoke', { token: String(fresh.body.refresh_token) })
  t.same((await post(stack, '/introspect', { token: String(fresh.body.access_token) }, auth)).json(), { active: false }, 'revoked grant: inactive')
  t.same((await post(stack, '/introspect', { token: String(fresh.body.refresh_token) }, auth)).json(), { active: false })

  // a revoked API key no longer works
  const keys = new ApiKeyStore(stack.r.redis)
  const [record] = await keys.list()
  await keys.revoke(record.id)
  t.equal((await post(stack, '/introspect', { token: tokens.access_token }, auth)).status, 401)
})

t.test('a JWT-shaped token whose header or claims are not JSON objects is an unknown token, not a server error', async (t) => {
  const stack = await startStack(t)
  const { key } = await new ApiKeyStore(stack.r.redis).create('test')
  const part = (json: string): string => Buffer.from(json).toString('base64url')
  for (const header of ['null', '1', '"x"', '[]']) {
    const token = `${part(header)}.${part('{}')}.c2ln`
    for (const hint of ['access_token', 'refresh_token']) {
      const revoked = await post(stack, '/revoke', { token, token_type_hint: hint })
      t.equal(revoked.status, 200, `/revoke with header ${header} (${hint} first): 200`)
      const introspected = await post(stack, '/introspect', { token, token_type_hint: hint }, { authorization: `Bearer ${key}` })
      t.equal(introspected.status, 200, `/introspect with header ${header}: 200`)
      t.same(introspected.json(), { active: false })
    }
  }
})
