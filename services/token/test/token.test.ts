// The token endpoint: each refusal with its RFC 6749 error, nothing half-written, replays that revoke,
// and the access token exactly as the contract fixes it.
import t from 'tap'
import { hashSecret } from '@uspl/core'
import { startStack, registerClient, obtainCode, obtainTokens, tokenRequest, decodeJwt, keysMatching } from './helpers.ts'

t.test('access token: header and claims exactly as the contract says; no-store', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const { code, verifier, redirectUri } = await obtainCode(stack, client.client_id)
  const res = await tokenRequest(stack, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri, client_id: client.client_id, resource: stack.resource })
  t.equal(res.status, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.same(Object.keys(res.body).sort(), ['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type'])
  t.equal(res.body.token_type, 'Bearer')
  t.equal(res.body.expires_in, 900)
  t.equal(res.body.scope, 'mcp:tools')
  const { header, claims } = decodeJwt(String(res.body.access_token))
  t.same(Object.keys(header).sort(), ['alg', 'kid', 'typ'])
  t.equal(header.alg, 'ES256')
  t.equal(header.typ, 'at+jwt')
  const jwks = (await stack.token.inject('/.well-known/jwks.json')).json() as { keys: Array<{ kid: string }> }
  t.ok(jwks.keys.some((k) => k.kid === header.kid), 'the JWKS has the kid')
  t.same(Object.keys(claims).sort(), ['aud', 'auth_time', 'client_id', 'exp', 'grant_id', 'iat', 'iss', 'jti', 'scope', 'sub'])
  t.equal(claims.iss, stack.issuer, 'iss is ISSUER_URL exactly')
  t.equal(claims.sub, stack.user.id)
  t.equal(claims.aud, stack.resource)
  t.equal(claims.client_id, client.client_id)
  t.match(String(claims.scope).split(' '), ['mcp:tools'])
  t.equal(Number(claims.exp) - Number(claims.iat), 900)
  t.ok(Number(claims.auth_time) <= Number(claims.iat))
  t.match(claims.grant_id, /^grt_/)
  const grant = await stack.token.tokenContext.grants.get(String(claims.grant_id))
  t.equal(grant?.userId, stack.user.id)
  // the refresh token is stored only hashed, in the grant's set
  const rts = await stack.r.redis.smembers(`grant:${String(claims.grant_id)}:rts`)
  t.equal(rts.length, 1)
  t.same(await keysMatching(stack.r, 'rt:*'), [`rt:${rts[0]}`])
  t.not(rts[0], res.body.refresh_token)
})

t.test('authorization_code refusals: each its error, the code burned, no refresh token written', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const other = await registerClient(stack)
  const cases: Array<{ name: string, change: (f: Record<string, string>) => Record<string, string>, status: number, error: string }> = [
    { name: 'wrong verifier', change: (f) => ({ ...f, code_verifier: 'x'.repeat(43) }), status: 400, error: 'invalid_grant' },
    { name: 'missing verifier', change: ({ code_verifier: _, ...f }) => f, status: 400, error: 'invalid_request' },
    { name: 'wrong redirect_uri', change: (f) => ({ ...f, redirect_uri: 'http://127.0.0.1:9999/other' }), status: 400, error: 'invalid_grant' },
    { name: 'another client', change: (f) => ({ ...f, client_id: other.client_id }), status: 400, error: 'invalid_grant' },
    { name: 'unknown client', change: (f) => ({ ...f, client_id: 'cli_unknown' }), status: 401, error: 'invalid_client' },
    { name: 'no client', change: ({ client_id: _, ...f }) => f, status: 401, error: 'invalid_client' },
    { name: 'other resource', change: (f) => ({ ...f, resource: 'https://elsewhere.example/mcp' }), status: 400, error: 'invalid_target' },
    { name: 'unknown code', change: (f) => ({ ...f, code: 'not-a-code' }), status: 400, error: 'invalid_grant' }
  ]
  for (const c of cases) {
    const { code, verifier, redirectUri } = await obtainCode(stack, client.client_id)
    const form = { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri, client_id: client.client_id, resource: stack.resource }
    const res = await tokenRequest(stack, c.change(form))
    t.equal(res.status, c.status, `${c.name}: ${c.status}`)
    t.equal(res.body.error, c.error, `${c.name}: ${c.error}`)
    t.ok(res.body.error_description, `${c.name}: described`)
    t.equal(res.headers['cache-control'], 'no-store')
    t.notOk(res.body.access_token)
    t.same(await keysMatching(stack.r, 'rt:*'), [], `${c.name}: no refresh token written`)
    t.same(await keysMatching(stack.r, 'dl:*'), [], `${c.name}: nothing revoked`)
    if (c.name === 'wrong verifier') {
      const retry = await tokenRequest(stack, form)
      t.equal(retry.body.error, 'invalid_grant', 'a code presented with a wrong verifier is burned')
    }
  }
  t.same(await keysMatching(stack.r, 'code:used:*'), [], 'no code was redeemed')
})

t.test('a reused code answers invalid_grant and revokes the grant it created', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const { code, verifier, redirectUri } = await obtainCode(stack, client.client_id)
  const form = { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri, client_id: client.client_id }
  const first = await tokenRequest(stack, form)
  t.equal(first.status, 200)
  const grantId = String(decodeJwt(String(first.body.access_token)).claims.grant_id)
  t.equal(await stack.r.redis.get(`code:used:${hashSecret(code)}`), grantId, 'the used-code marker holds the grant id')
  t.equal(await stack.r.redis.exists(`code:${hashSecret(code)}`), 0, 'the code is gone')
  const second = await tokenRequest(stack, form)
  t.equal(second.status, 400)
  t.equal(second.body.error, 'invalid_grant')
  t.ok(await stack.r.redis.get(`dl:g:${grantId}`), 'grant denylisted')
  t.ok((await stack.token.tokenContext.grants.get(grantId))?.revokedAt, 'grant revoked')
  const refresh = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: String(first.body.refresh_token), client_id: client.client_id })
  t.equal(refresh.body.error, 'invalid_grant', 'its refresh token is dead')
  const events = await stack.r.redis.xrange('events:revocations', '-', '+')
  t.equal(events.length, 1)
  t.match(events[0][1][1], /"path":"code_reuse"/)
})

t.test('refresh: rotation, the grace period, and reuse after it revoking the grant', async (t) => {
  t.test('within the grace period a rotated token still refreshes (concurrent retries), to the same successor', async (t) => {
    const stack = await startStack(t, { REFRESH_REUSE_GRACE_S: '10' })
    const client = await registerClient(stack)
    const tokens = await obtainTokens(stack, client.client_id)
    const form = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id }
    const [a, b] = await Promise.all([tokenRequest(stack, form), tokenRequest(stack, form)])
    t.equal(a.status, 200)
    t.equal(b.status, 200)
    t.equal(a.body.refresh_token, b.body.refresh_token, 'one live refresh token')
    t.same(await keysMatching(stack.r, 'dl:*'), [], 'nothing revoked')
  })

  t.test('after the grace period, reuse revokes the grant and every refresh token of it', async (t) => {
    const stack = await startStack(t, { REFRESH_REUSE_GRACE_S: '0' })
    const client = await registerClient(stack)
    const tokens = await obtainTokens(stack, client.client_id)
    const grantId = String(decodeJwt(tokens.access_token).claims.grant_id)
    const rotated = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id })
    t.equal(rotated.status, 200)
    t.not(rotated.body.refresh_token, tokens.refresh_token, 'rotated')
    const replay = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id })
    t.equal(replay.status, 400)
    t.equal(replay.body.error, 'invalid_grant')
    t.ok(await stack.r.redis.get(`dl:g:${grantId}`), 'grant denylisted')
    const latest = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: String(rotated.body.refresh_token), client_id: client.client_id })
    t.equal(latest.body.error, 'invalid_grant', 'the newest refresh token died with the grant')
    t.same(await keysMatching(stack.r, 'rt:*'), [], 'no refresh token left')
    const events = await stack.r.redis.xrange('events:revocations', '-', '+')
    t.match(events[0][1][1], /"path":"refresh_token_reuse"/)
  })
})

t.test('refresh refusals: scope widening, resource, client, revoked grant, disabled client', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const other = await registerClient(stack)
  const tokens = await obtainTokens(stack, client.client_id)
  const base = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id }
  const rtCount = async (): Promise<number> => (await keysMatching(stack.r, 'rt:*')).length

  const before = await rtCount()
  const widen = await tokenRequest(stack, { ...base, scope: 'mcp:tools mcp:admin' })
  t.equal(widen.status, 400)
  t.equal(widen.body.error, 'invalid_scope', 'scope can only narrow')
  const resource = await tokenRequest(stack, { ...base, resource: 'https://elsewhere.example/mcp' })
  t.equal(resource.body.error, 'invalid_target', 'resource must match')
  const otherClient = await tokenRequest(stack, { ...base, client_id: other.client_id })
  t.equal(otherClient.body.error, 'invalid_grant', 'bound to its client')
  const unknown = await tokenRequest(stack, { ...base, refresh_token: 'nope' })
  t.equal(unknown.body.error, 'invalid_grant')
  t.equal(await rtCount(), before, 'refusals wrote no refresh token')
  t.equal((await stack.r.redis.hgetall(`rt:${(await stack.r.redis.smembers(`grant:${String(decodeJwt(tokens.access_token).claims.grant_id)}:rts`))[0]}`)).rotated_at, undefined, 'the presented token was not rotated by a refusal')

  const same = await tokenRequest(stack, { ...base, scope: 'mcp:tools', resource: stack.resource })
  t.equal(same.status, 200, 'the same scope and resource are fine')
  t.equal(same.body.scope, 'mcp:tools')

  // disabled client: refresh answers invalid_grant
  await stack.token.tokenContext.clients.setDisabled(client.client_id, true)
  const disabled = await tokenRequest(stack, { ...base, refresh_token: String(same.body.refresh_token) })
  t.equal(disabled.status, 400)
  t.equal(disabled.body.error, 'invalid_grant')
  t.match(disabled.body.error_description, /operator disabled/)
  await stack.token.tokenContext.clients.setDisabled(client.client_id, false)

  // revoked grant
  const grantId = String(decodeJwt(String(same.body.access_token)).claims.grant_id)
  await stack.token.tokenContext.revoker.revokeGrant(grantId, { path: 'cli', actor: { type: 'operator', id: 'test' } })
  const revoked = await tokenRequest(stack, { ...base, refresh_token: String(same.body.refresh_token) })
  t.equal(revoked.body.error, 'invalid_grant', 'a revoked grant answers invalid_grant')
})

t.test('a disabled client cannot exchange a code (invalid_client)', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const { code, verifier, redirectUri } = await obtainCode(stack, client.client_id)
  await stack.token.tokenContext.clients.setDisabled(client.client_id, true)
  const res = await tokenRequest(stack, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri, client_id: client.client_id })
  t.equal(res.status, 401)
  t.equal(res.body.error, 'invalid_client')
  t.same(await keysMatching(stack.r, 'rt:*'), [])
})

t.test('grant types, missing parameters, client_id through Basic', async (t) => {
  const stack = await startStack(t)
  t.equal((await tokenRequest(stack, {})).body.error, 'invalid_request')
  const unsupported = await tokenRequest(stack, { grant_type: 'client_credentials' })
  t.equal(unsupported.status, 400)
  t.equal(unsupported.body.error, 'unsupported_grant_type')
  t.equal((await tokenRequest(stack, { grant_type: 'password', username: 'a', password: 'b' })).body.error, 'unsupported_grant_type')
  const client = await registerClient(stack)
  const { code, verifier, redirectUri } = await obtainCode(stack, client.client_id)
  const res = await stack.token.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.client_id}:`).toString('base64')}` },
    payload: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri }).toString()
  })
  t.equal(res.statusCode, 200, 'client_id read from Basic credentials')
})

t.test('metadata and CORS', async (t) => {
  const stack = await startStack(t)
  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    const res = await stack.token.inject({ url: path, headers: { origin: 'https://app.example' } })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['access-control-allow-origin'], '*', `${path}: CORS open`)
    t.match(res.headers['cache-control'], /max-age=\d+/)
    const doc = res.json()
    t.equal(doc.issuer, stack.issuer)
    t.equal(doc.authorization_endpoint, `${stack.issuer}/authorize`)
    t.equal(doc.token_endpoint, `${stack.issuer}/token`)
    t.equal(doc.registration_endpoint, `${stack.registrationUrl}/register`)
    t.equal(doc.revocation_endpoint, `${stack.issuer}/revoke`)
    t.equal(doc.introspection_endpoint, `${stack.issuer}/introspect`)
    t.equal(doc.jwks_uri, `${stack.issuer}/.well-known/jwks.json`)
    t.same(doc.scopes_supported, ['mcp:tools'])
    t.same(doc.response_types_supported, ['code'])
    t.same(doc.grant_types_supported, ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer'])
    t.same(doc.code_challenge_methods_supported, ['S256'])
    t.same(doc.token_endpoint_auth_methods_supported, ['none', 'private_key_jwt'], 'public clients, and metadata-document clients with keys')
    t.equal(doc.client_id_metadata_document_supported, true, 'https client_ids (CIMD) are accepted')
    t.equal(doc.authorization_response_iss_parameter_supported, true)
  }
  for (const path of ['/.well-known/jwks.json', '/jwks.json']) {
    const res = await stack.token.inject({ url: path, headers: { origin: 'https://app.example' } })
    t.equal(res.headers['access-control-allow-origin'], '*')
    t.match(res.headers['cache-control'], /max-age=300/)
  }
  for (const path of ['/token', '/revoke']) {
    const pre = await stack.token.inject({ method: 'OPTIONS', url: path, headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } })
    t.equal(pre.statusCode, 204, `${path}: preflight`)
    t.equal(pre.headers['access-control-allow-origin'], '*')
    const res = await stack.token.inject({ method: 'POST', url: path, headers: { origin: 'https://app.example', 'content-type': 'application/x-www-form-urlencoded' }, payload: '' })
    t.equal(res.headers['access-control-allow-origin'], '*', `${path}: CORS on errors too`)
  }
  const page = await stack.token.inject({ url: '/authorize?client_id=x', headers: { origin: 'https://app.example' } })
  t.equal(page.headers['access-control-allow-origin'], undefined, 'no CORS on /authorize')
  const introspect = await stack.token.inject({ method: 'POST', url: '/introspect', headers: { origin: 'https://app.example' } })
  t.equal(introspect.headers['access-control-allow-origin'], undefined, 'no CORS on /introspect')
})
