/**
 * The jwt-bearer grant with ID-JAGs from a local test IdP: a valid assertion issues an access token for
 * the gateway (no browser step, no refresh token) on a grant marked managed by the issuer; every hostile
 * input is refused with its own RFC 6749 §5.2 error; the JWKS URL is fetched only from an allow-listed
 * origin. Real HTTP (token + registration services listening), real Redis.
 */
import t from 'tap'
import { EnterpriseIssuerStore, GrantStore, AccountStore, enterpriseIssuerId, keys } from '@uspl/core'
import { TestIdp } from '@uspl/testing/enterprise-idp'
import { startStack, registerClient, tokenRequest, decodeJwt, verifyWithJwks, type Stack } from './helpers.ts'

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

interface Setup { stack: Stack, idp: TestIdp, clientId: string, email: string, claims: (extra?: Record<string, unknown>) => Record<string, unknown> }

async function setup (tt: { teardown: (fn: () => unknown) => void }, opts: { jwksUri?: boolean, env?: Record<string, string>, tenant?: string, subject?: 'email' | 'sub' } = {}): Promise<Setup> {
  const idp = new TestIdp('https://idp.corp.example', 'corp.example')
  const jwksUri = opts.jwksUri ? await idp.serveJwks(tt) : undefined
  const stack = await startStack(tt, opts.env ?? {})
  const email = `ada-${Math.random().toString(36).slice(2, 8)}@corp.example`
  await new AccountStore(stack.r.redis).createUser({ email, name: 'Ada Corp', password: 'pw-not-used-here' })
  await new EnterpriseIssuerStore(stack.r.redis).put({ issuer: idp.issuer, domains: ['corp.example'], ...(jwksUri ? { jwksUri } : { jwks: idp.jwks }), tenant: opts.tenant, subject: opts.subject })
  const { client_id: clientId } = await registerClient(stack)
  const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...idp.idJagClaims({ audience: stack.issuer, clientId, resource: stack.resource, email }), ...extra })
  return { stack, idp, clientId, email, claims }
}

function exchange (s: Setup, assertion: string, extra: Record<string, string> = {}): ReturnType<typeof tokenRequest> {
  return tokenRequest(s.stack, { grant_type: JWT_BEARER, assertion, client_id: s.clientId, ...extra })
}

t.test('metadata advertises the jwt-bearer grant and the ID-JAG profile', async (tt) => {
  const stack = await startStack(tt)
  const doc = (await stack.token.inject({ url: '/.well-known/oauth-authorization-server' })).json()
  tt.ok(doc.grant_types_supported.includes(JWT_BEARER))
  tt.same(doc.authorization_grant_profiles_supported, ['urn:ietf:params:oauth:grant-profile:id-jag'])
})

t.test('a valid ID-JAG issues an access token for the gateway on a managed grant, without a refresh token', async (tt) => {
  const s = await setup(tt)
  const res = await exchange(s, s.idp.idJag(s.claims()))
  tt.equal(res.status, 200, JSON.stringify(res.body))
  tt.equal(res.headers['cache-control'], 'no-store')
  tt.equal(res.body.token_type, 'Bearer')
  tt.equal(res.body.scope, 'mcp:tools')
  tt.equal(res.body.refresh_token, undefined, 'no refresh token: the IdP decides again at the next exchange')
  const token = res.body.access_token as string
  const jwks = (await s.stack.token.inject({ url: '/.well-known/jwks.json' })).json()
  tt.ok(verifyWithJwks(token, jwks))
  const { header, claims } = decodeJwt(token)
  tt.equal(header.typ, 'at+jwt')
  tt.equal(claims.aud, s.stack.resource)
  tt.equal(claims.client_id, s.clientId)
  const user = await new AccountStore(s.stack.r.redis).findUserByEmail(s.email)
  tt.equal(claims.sub, user?.id)
  const grant = await new GrantStore(s.stack.r.redis, s.stack.r.prefix).get(String(claims.grant_id))
  tt.equal(grant?.managedBy, enterpriseIssuerId(s.idp.issuer))
  tt.equal(grant?.userId, user?.id)
  // a narrower scope in the request is honoured; a second assertion reuses the same grant
  const again = await exchange(s, s.idp.idJag(s.claims()), { scope: 'mcp:tools' })
  tt.equal(again.status, 200)
  tt.equal(decodeJwt(again.body.access_token as string).claims.grant_id, claims.grant_id)
})

t.test('the jwks_uri is fetched from an allow-listed origin only', async (tt) => {
  const listed = await setup(tt, { jwksUri: true, env: {} })
  // not listed: the token service refuses to fetch it at all
  const refused = await exchange(listed, listed.idp.idJag(listed.claims()))
  tt.equal(refused.status, 503)
  tt.equal(refused.body.error, 'temporarily_unavailable')
  tt.equal(listed.idp.jwksHits, 0, 'nothing was fetched')

  const idp = new TestIdp('https://login.corp.example', 'corp.example')
  const origin = new URL(await idp.serveJwks(tt)).origin
  const stack = await startStack(tt, { ENTERPRISE_JWKS_ORIGINS: origin })
  const email = 'grace@corp.example'
  await new AccountStore(stack.r.redis).createUser({ email, name: 'Grace', password: 'pw-not-used-here' })
  await new EnterpriseIssuerStore(stack.r.redis).put({ issuer: idp.issuer, domains: ['corp.example'], jwksUri: idp.jwksUrl })
  const { client_id: clientId } = await registerClient(stack)
  for (let i = 0; i < 2; i++) {
    const res = await tokenRequest(stack, { grant_type: JWT_BEARER, client_id: clientId, assertion: idp.idJag(idp.idJagClaims({ audience: stack.issuer, clientId, resource: stack.resource, email })) })
    tt.equal(res.status, 200, JSON.stringify(res.body))
  }
  tt.equal(idp.jwksHits, 1, 'the JWKS is cached')
})

t.test('hostile assertions are each refused', async (tt) => {
  const s = await setup(tt)
  const refusal = async (name: string, assertion: string, error: string, match: RegExp, extra: Record<string, string> = {}): Promise<void> => {
    const res = await exchange(s, assertion, extra)
    tt.equal(res.status, 400, `${name}: status`)
    tt.equal(res.body.error, error, `${name}: error`)
    tt.match(String(res.body.error_description), match, `${name}: description`)
  }
  await refusal('wrong aud', s.idp.idJag(s.claims({ aud: 'https://other-as.example' })), 'invalid_grant', /aud/)
  const once = s.idp.idJag(s.claims())
  tt.equal((await exchange(s, once)).status, 200)
  await refusal('replayed jti', once, 'invalid_grant', /already used/)
  const now = Math.floor(Date.now() / 1000)
  await refusal('expired', s.idp.idJag(s.claims({ iat: now - 600, exp: now - 300 })), 'invalid_grant', /expired/)
  await refusal('too long-lived', s.idp.idJag(s.claims({ iat: now, exp: now + 3600 })), 'invalid_grant', /longer than/)
  await refusal('unsigned (alg none)', s.idp.idJag(s.claims(), { unsigned: true }), 'invalid_grant', /alg none/)
  await refusal('alg confusion (HS256 keyed with the public key)', s.idp.idJag(s.claims(), { hmacSecret: s.idp.publicPem }), 'invalid_grant', /alg HS256/)
  await refusal('another key', s.idp.idJag(s.claims(), { key: new TestIdp('x').privateKey }), 'invalid_grant', /signature/)
  await refusal('wrong typ', s.idp.sign(s.claims(), 'JWT'), 'invalid_grant', /typ/)
  await refusal('unknown issuer', new TestIdp('https://evil.example').idJag(s.claims({ iss: 'https://evil.example' })), 'invalid_grant', /not a trusted enterprise issuer/)
  await refusal('governed-domain mismatch', s.idp.idJag(s.claims({ email: 'ada@elsewhere.example' })), 'invalid_grant', /does not govern the domain elsewhere\.example/)
  await refusal('unknown user', s.idp.idJag(s.claims({ email: 'nobody@corp.example' })), 'invalid_grant', /no user/)
  await refusal('wrong client_id', s.idp.idJag(s.claims({ client_id: 'cli_someone_else' })), 'invalid_grant', /another client/)
  await refusal('wrong resource', s.idp.idJag(s.claims({ resource: 'https://other.example/mcp' })), 'invalid_target', /resource/)
  await refusal('scope beyond mcp:tools', s.idp.idJag(s.claims({ scope: 'mcp:tools admin' })), 'invalid_scope', /admin/)
  await refusal('request scope beyond the assertion', s.idp.idJag(s.claims()), 'invalid_scope', /exceeds/, { scope: 'mcp:tools other' })
  await refusal('no jti', s.idp.idJag(s.claims({ jti: undefined })), 'invalid_grant', /jti/)
  await refusal('not a JWT', 'not-a-jwt', 'invalid_grant', /not a JWT/)
  const missing = await tokenRequest(s.stack, { grant_type: JWT_BEARER, client_id: s.clientId })
  tt.equal(missing.body.error, 'invalid_request')
  const unknownClient = await tokenRequest(s.stack, { grant_type: JWT_BEARER, client_id: 'cli_nope', assertion: s.idp.idJag(s.claims()) })
  tt.equal(unknownClient.status, 401)
  tt.equal(unknownClient.body.error, 'invalid_client')
  // refused assertions burned no jti: only the one accepted above is recorded
  tt.equal((await s.stack.r.raw.keys(`${s.stack.r.prefix}${keys.idJagJti(enterpriseIssuerId(s.idp.issuer), '*')}`)).length, 1)
})

t.test('a tenant-bound issuer refuses another tenant; a sub-mapped issuer needs a link', async (tt) => {
  const s = await setup(tt, { tenant: 'acme' })
  const wrong = await exchange(s, s.idp.idJag(s.claims({ tenant: 'other' })))
  tt.equal(wrong.body.error, 'invalid_grant')
  tt.match(String(wrong.body.error_description), /tenant/)
  tt.equal((await exchange(s, s.idp.idJag(s.claims({ tenant: 'acme' })))).status, 200)

  const m = await setup(tt, { subject: 'sub' })
  const store = new EnterpriseIssuerStore(m.stack.r.redis)
  const unlinked = await exchange(m, m.idp.idJag(m.claims({ sub: 'okta-123' })))
  tt.match(String(unlinked.body.error_description), /no user/)
  const user = await new AccountStore(m.stack.r.redis).findUserByEmail(m.email)
  await store.linkSubject(enterpriseIssuerId(m.idp.issuer), 'okta-123', String(user?.id))
  // the email claim is ignored by a sub-mapped issuer: the link decides
  const linked = await exchange(m, m.idp.idJag(m.claims({ sub: 'okta-123', email: 'someone@else.example' })))
  tt.equal(linked.status, 200, JSON.stringify(linked.body))
  tt.equal(decodeJwt(linked.body.access_token as string).claims.sub, user?.id)
})
