// The whole flow as a real MCP client does it: the MCP SDK's auth() discovers the authorization server
// from the resource, registers itself, sends the user through sign-in and consent (done over HTTP by a
// small browser), exchanges the code, refreshes with rotation, and finally revokes.
import t from 'tap'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { startStack, TestProvider, decodeJwt, verifyWithJwks, keysMatching, tokenRequest } from './helpers.ts'


t.test('an MCP SDK client goes through discovery, registration, consent, code exchange, refresh and revocation', async (t) => {
  const stack = await startStack(t)
  const provider = new TestProvider({ issuer: stack.issuer, email: stack.user.email, password: stack.password })

  // discovery + registration + authorization (the browser signs in and allows)
  t.equal(await auth(provider, { serverUrl: stack.resource }), 'REDIRECT')
  t.ok(provider.client?.client_id, 'registered dynamically')
  const callback = provider.lastCallback
  if (!callback) throw new Error('no callback')
  t.equal(callback.origin + callback.pathname, provider.redirectUrl, 'sent back to the registered redirect URI')
  t.equal(callback.searchParams.get('state'), 'sdk-state-1', 'state returned')
  t.equal(callback.searchParams.get('iss'), stack.issuer, 'iss returned (RFC 9207)')
  const code = callback.searchParams.get('code')
  if (!code) throw new Error('no code')

  // code exchange
  t.equal(await auth(provider, { serverUrl: stack.resource, authorizationCode: code }), 'AUTHORIZED')
  const first = provider.saved
  if (!first?.refresh_token) throw new Error('no tokens')
  t.equal(first.token_type.toLowerCase(), 'bearer')
  t.equal(first.scope, 'mcp:tools')
  const { header, claims } = decodeJwt(first.access_token)
  t.same(Object.keys(header).sort(), ['alg', 'kid', 'typ'])
  t.equal(header.typ, 'at+jwt')
  t.equal(claims.aud, stack.resource, 'audience is the resource the SDK asked for')
  t.equal(claims.client_id, provider.client?.client_id)
  const jwks = await (await fetch(`${stack.issuer}/.well-known/jwks.json`)).json() as { keys: Array<Record<string, unknown>> }
  t.ok(verifyWithJwks(first.access_token, jwks), 'the access token verifies against the published JWKS')

  // refresh with rotation: auth() refreshes when it holds a refresh token
  t.equal(await auth(provider, { serverUrl: stack.resource }), 'AUTHORIZED')
  const second = provider.saved
  if (!second?.refresh_token) throw new Error('no refreshed tokens')
  t.not(second.refresh_token, first.refresh_token, 'refresh token rotated')
  t.not(second.access_token, first.access_token, 'new access token')
  t.equal(decodeJwt(second.access_token).claims.grant_id, claims.grant_id, 'same grant')

  // revocation (RFC 7009) with the refresh token: the grant dies, its refresh tokens are gone
  const revoked = await fetch(`${stack.issuer}/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: second.refresh_token, token_type_hint: 'refresh_token', client_id: String(provider.client?.client_id) }) })
  t.equal(revoked.status, 200)
  t.same(await keysMatching(stack.r, 'rt:*'), [], 'no refresh token survives the revocation')
  t.ok(await stack.r.redis.get(`dl:g:${String(claims.grant_id)}`), 'the grant is on the denylist')
  const again = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: second.refresh_token, client_id: String(provider.client?.client_id) })
  t.equal(again.status, 400)
  t.equal(again.body.error, 'invalid_grant')
})
