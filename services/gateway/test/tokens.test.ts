// Every bad token is refused with the right status and challenge; the JWKS is fetched once and a flood of
// unknown kids does not refetch it; logs never carry a token.
import t from 'tap'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import { testRedis } from '@uspl/testing'
import { Revoker, nowSeconds } from '@uspl/core'
import { loggerOptions } from '@uspl/logger'
import { REQUIRED_CLAIMS } from '../src/auth/verifier.ts'
import { startIssuer, startGateway, grantFor, claimsFor, tokenFor, mcpHeaders, initializeBody, rawSession, type Gateway } from './helpers.ts'

async function initialize (gw: Gateway, token: string): Promise<Response> {
  const res = await fetch(gw.mcpUrl, { method: 'POST', headers: mcpHeaders(token), body: initializeBody() })
  await res.arrayBuffer()
  return res
}

t.test('bad tokens are refused with RFC 6750 challenges', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const grant = await grantFor(r, 'usr_alice')
  const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => claimsFor(issuer, gw, grant, extra)
  const good = tokenFor(issuer, gw, grant)
  t.equal((await initialize(gw, good)).status, 200, 'the good token works')

  const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  const now = nowSeconds()
  const without = (name: string): Record<string, unknown> => { const c = claims(); delete c[name]; return c }
  const cases: Array<[string, string, string]> = [
    ['wrong signature', issuer.sign(claims(), { key: otherKey }), 'bad_signature'],
    ['alg none', issuer.sign(claims(), { unsigned: true }), 'bad_algorithm'],
    ['HS256 signed with the public key', issuer.sign(claims(), { hmacSecret: issuer.publicPem }), 'bad_algorithm'],
    ['wrong iss', issuer.sign(claims({ iss: 'https://evil.example' })), 'wrong_issuer'],
    ['iss with a trailing slash', issuer.sign(claims({ iss: `${issuer.url}/` })), 'wrong_issuer'],
    ['wrong aud', issuer.sign(claims({ aud: 'https://other.example/mcp' })), 'wrong_audience'],
    ['expired beyond the skew', issuer.sign(claims({ iat: now - 1000, exp: now - 61 })), 'expired'],
    ['not valid yet', issuer.sign(claims({ nbf: now + 120 })), 'not_yet_valid'],
    ['typ JWT (an ID token, not an access token)', issuer.sign(claims(), { header: { typ: 'JWT' } }), 'bad_type'],
    ['unknown kid', issuer.sign(claims(), { header: { kid: 'nope' } }), 'unknown_kid'],
    ['no kid', issuer.sign(claims(), { header: { kid: undefined } }), 'malformed_token'],
    ['not a JWT', 'abc.def', 'malformed_token'],
    ['scope as a number', issuer.sign(claims({ scope: 7 })), 'invalid_claim'],
    ...REQUIRED_CLAIMS.map((name): [string, string, string] => [`missing ${name}`, issuer.sign(without(name)), 'missing_claim'])
  ]
  for (const [name, token, reason] of cases) {
    const res = await initialize(gw, token)
    t.equal(res.status, 401, `${name}: 401`)
    const challenge = res.headers.get('www-authenticate') ?? ''
    t.match(challenge, /^Bearer resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp", scope="mcp:tools", error="invalid_token"/, `${name}: invalid_token challenge`)
    t.equal(res.headers.get('cache-control'), 'no-store')
    const metrics = await (await fetch(`${gw.url}/metrics`)).text()
    t.match(metrics, `gateway_auth_failures_total{reason="${reason}"}`, `${name}: counted as ${reason}`)
  }

  const { authorization: _, ...anonymous } = mcpHeaders(good)
  const noToken = await fetch(gw.mcpUrl, { method: 'POST', headers: anonymous, body: initializeBody() })
  t.equal(noToken.status, 401, 'no token: 401')
  t.notMatch(noToken.headers.get('www-authenticate') ?? '', 'error=')

  const basic = await fetch(gw.mcpUrl, { method: 'POST', headers: { ...mcpHeaders(good), authorization: 'Basic dXNlcjpwYXNz' }, body: initializeBody() })
  t.equal(basic.status, 401, 'another scheme: 401')

  const inQuery = await fetch(`${gw.mcpUrl}?access_token=${good}`, { method: 'POST', headers: { ...mcpHeaders(good), authorization: '' }, body: initializeBody() })
  t.equal(inQuery.status, 400, 'a token in the query string is refused')
  t.match(inQuery.headers.get('www-authenticate') ?? '', 'error="invalid_request"')
  const both = await fetch(`${gw.mcpUrl}?access_token=${good}`, { method: 'POST', headers: mcpHeaders(good), body: initializeBody() })
  t.equal(both.status, 400, 'even alongside a good header')

  const noScope = await initialize(gw, issuer.sign(claims({ scope: 'profile' })))
  t.equal(noScope.status, 403, 'a valid token without mcp:tools: 403')
  t.match(noScope.headers.get('www-authenticate') ?? '', /^Bearer resource_metadata="[^"]+", scope="mcp:tools", error="insufficient_scope"/)

  t.equal((await initialize(gw, issuer.sign(claims({ aud: ['https://other.example', gw.mcpUrl] })))).status, 200, 'aud as an array containing this resource')
  t.equal((await initialize(gw, issuer.sign(claims({ iat: now - 1000, exp: now - 30 })))).status, 200, 'expired within the 60 s skew still passes')
  t.equal((await initialize(gw, issuer.sign(claims(), { header: { typ: 'application/at+jwt' } }))).status, 200, 'typ application/at+jwt (RFC 9068)')
})

t.test('denylisted tokens: by grant, by client, by jti', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const revoker = new Revoker({ redis: r.redis, prefix: r.prefix, accessTokenTtlS: 900 })
  const how = { path: 'cli' as const, actor: { type: 'system' as const, id: 'test' } }

  const g1 = await grantFor(r, 'usr_a')
  const t1 = tokenFor(issuer, gw, g1)
  t.equal((await initialize(gw, t1)).status, 200)
  await revoker.revokeGrant(g1.id, how)
  const denied = await initialize(gw, t1)
  t.equal(denied.status, 401, 'grant revoked')
  t.match(denied.headers.get('www-authenticate') ?? '', 'error="invalid_token"')

  const g2 = await grantFor(r, 'usr_b')
  const t2 = tokenFor(issuer, gw, g2, { iat: nowSeconds() - 5 })
  await revoker.revokeClient(g2.clientId, how)
  t.equal((await initialize(gw, t2)).status, 401, 'client revoked (its grants are revoked with it)')
  // a token of that client naming no revoked grant is still caught by the client entry
  const t2b = issuer.sign(claimsFor(issuer, gw, g2, { grant_id: 'grt_unknown', iat: nowSeconds() - 5 }))
  t.equal((await initialize(gw, t2b)).status, 401, 'client denylisted')

  const g3 = await grantFor(r, 'usr_c')
  const claims3 = claimsFor(issuer, gw, g3)
  const t3 = issuer.sign(claims3)
  const sibling = tokenFor(issuer, gw, g3)
  await revoker.revokeAccessToken({ jti: claims3.jti as string, exp: claims3.exp as number, grantId: g3.id, clientId: g3.clientId, userId: g3.userId }, how)
  t.equal((await initialize(gw, t3)).status, 401, 'this token revoked')
  t.equal((await initialize(gw, sibling)).status, 200, 'another token of the same grant still works')
  const metrics = await (await fetch(`${gw.url}/metrics`)).text()
  for (const [reason, n] of [['grant_revoked', 2], ['client_revoked', 1], ['token_revoked', 1]]) t.match(metrics, `gateway_auth_failures_total{reason="${reason}"} ${n}`)
})

t.test('the JWKS is fetched once, and a flood of unknown kids does not refetch it', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer, { JWKS_REFETCH_MIN_INTERVAL_MS: '60000' })
  const grant = await grantFor(r, 'usr_a')
  for (let i = 0; i < 5; i++) t.equal((await initialize(gw, tokenFor(issuer, gw, grant))).status, 200)
  t.equal(issuer.jwksHits, 1, 'one fetch for five requests')
  const flood = await Promise.all(Array.from({ length: 50 }, () => initialize(gw, issuer.sign(claimsFor(issuer, gw, grant), { header: { kid: randomUUID() } }))))
  t.ok(flood.every((res) => res.status === 401), 'every random kid refused')
  t.equal(issuer.jwksHits, 1, 'and none of them reached the issuer')
  t.equal((await initialize(gw, tokenFor(issuer, gw, grant))).status, 200, 'the real key still verifies')
})

t.test('logs never contain a token', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _e, cb) { lines.push(chunk.toString()); cb() } })
  const gw = await startGateway(t, r, issuer, {}, { ...loggerOptions('gateway', { LOG_LEVEL: 'trace', LOG_PRETTY: false }), stream })
  const grant = await grantFor(r, 'usr_a')
  const good = tokenFor(issuer, gw, grant)
  const bad = issuer.sign(claimsFor(issuer, gw, grant, { aud: 'x' }))
  const sessionId = await rawSession(gw, good)
  await (await fetch(gw.mcpUrl, { method: 'POST', headers: mcpHeaders(good, sessionId), body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list_workspaces', arguments: {} } }) })).text()
  await initialize(gw, bad)
  await (await fetch(`${gw.mcpUrl}?access_token=${good}`, { method: 'POST', headers: mcpHeaders(bad), body: initializeBody() })).text()
  await (await fetch(gw.mcpUrl, { method: 'POST', headers: mcpHeaders(good, 'unknown'), body: '{}' })).text()
  const text = lines.join('')
  t.ok(text.length > 0, 'something was logged')
  for (const token of [good, bad]) {
    t.notMatch(text, token.split('.')[2], 'no signature')
    t.notMatch(text, token.split('.')[1], 'no payload')
  }
})
