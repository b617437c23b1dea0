/**
 * The Shared Signals receiver: a local test IdP pushes SETs (RFC 8935) to /ssf/receiver. Verified events
 * revoke through the pipeline (session-revoked for one client, or all the user's grants); every
 * unverifiable, replayed, stale or foreign SET is refused with its RFC 8935 error code and audited.
 * Real HTTP (the token service listening), real Redis.
 */
import t from 'tap'
import { AccountStore, EnterpriseIssuerStore, GrantStore, CAEP_SESSION_REVOKED, CAEP_CREDENTIAL_CHANGE, RISC_ACCOUNT_DISABLED, RISC_ACCOUNT_PURGED, enterpriseIssuerId, keys, nowSeconds, type User } from '@uspl/core'
import { TestIdp } from '@uspl/testing/enterprise-idp'
import { startStack, type Stack } from './helpers.ts'

interface Setup { stack: Stack, idp: TestIdp, user: User, grants: GrantStore }

async function setup (tt: { teardown: (fn: () => unknown) => void }): Promise<Setup> {
  const stack = await startStack(tt)
  const idp = new TestIdp('https://idp.corp.example', 'corp.example')
  await new EnterpriseIssuerStore(stack.r.redis).put({ issuer: idp.issuer, domains: ['corp.example'], jwks: idp.jwks })
  const user = await new AccountStore(stack.r.redis).createUser({ email: `lee-${Math.random().toString(36).slice(2, 7)}@corp.example`, name: 'Lee', password: 'pw-not-used-here' })
  return { stack, idp, user, grants: new GrantStore(stack.r.redis, stack.r.prefix) }
}

async function push (s: Setup, set: string, contentType = 'application/secevent+jwt'): Promise<{ status: number, body: any }> {
  const res = await fetch(`${s.stack.issuer}/ssf/receiver`, { method: 'POST', headers: { 'content-type': contentType, accept: 'application/json' }, body: set })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

const grant = (s: Setup, clientId: string): ReturnType<GrantStore['ensure']> => s.grants.ensure({ userId: s.user.id, clientId, scope: 'mcp:tools', resource: s.stack.resource, authTime: nowSeconds(), ttlS: 3600 })

async function auditEntries (s: Setup): Promise<Array<Record<string, string>>> {
  const entries = await s.stack.r.redis.xrange(keys.ssfReceiverAudit(), '-', '+') as Array<[string, string[]]>
  return entries.map(([, f]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]])))
}

t.test('session-revoked naming a client revokes that grant only; credential-change and RISC events revoke all', async (tt) => {
  const s = await setup(tt)
  const a = await grant(s, 'cli_a')
  const b = await grant(s, 'cli_b')
  const claims = s.idp.setClaims({ audience: s.stack.issuer, eventType: CAEP_SESSION_REVOKED, email: s.user.email })
  claims.sub_id = { format: 'complex', user: { format: 'email', email: s.user.email }, application: { format: 'opaque', id: 'cli_a' } }
  const res = await push(s, s.idp.securityEvent(claims))
  tt.equal(res.status, 202, JSON.stringify(res.body))
  tt.equal(res.body, null, 'no body')
  tt.not((await s.grants.get(a.id))?.revokedAt, null, 'the named client\'s grant is revoked')
  tt.equal((await s.grants.get(b.id))?.revokedAt, null, 'the other client is untouched')
  const [entry] = await auditEntries(s)
  tt.match(entry, { outcome: 'accepted', issuer: s.idp.issuer, event: CAEP_SESSION_REVOKED, user: s.user.id, client: 'cli_a' })
  const stream = await s.stack.r.redis.xrange(keys.revocationStream(), '-', '+') as Array<[string, string[]]>
  tt.match(JSON.parse(stream[stream.length - 1][1][1]), { path: 'enterprise_signal', actorType: 'system', actorId: enterpriseIssuerId(s.idp.issuer) })

  for (const type of [CAEP_CREDENTIAL_CHANGE, RISC_ACCOUNT_DISABLED, RISC_ACCOUNT_PURGED]) {
    const g = await grant(s, `cli_${type.length}`)
    const r = await push(s, s.idp.securityEvent(s.idp.setClaims({ audience: s.stack.issuer, eventType: type, email: s.user.email, event: type === CAEP_CREDENTIAL_CHANGE ? { credential_type: 'password', change_type: 'update' } : {} })))
    tt.equal(r.status, 202, type)
    tt.not((await s.grants.get(g.id))?.revokedAt, null, `${type} revokes the user's grants`)
    if (type === CAEP_CREDENTIAL_CHANGE) tt.equal((await new AccountStore(s.stack.r.redis).getUser(s.user.id))?.disabledAt, null, 'a credential change leaves the account enabled')
    else tt.not((await new AccountStore(s.stack.r.redis).getUser(s.user.id))?.disabledAt, null, `${type} disables the account (no sign-in, no personal key)`)
  }
  tt.not((await s.grants.get(b.id))?.revokedAt, null)

  // an event type it does not act on is acknowledged and ignored; a user it governs but does not know is a no-op
  tt.equal((await push(s, s.idp.securityEvent(s.idp.setClaims({ audience: s.stack.issuer, eventType: 'https://schemas.openid.net/secevent/caep/event-type/assurance-level-change', email: s.user.email })))).status, 202)
  tt.equal((await push(s, s.idp.securityEvent(s.idp.setClaims({ audience: s.stack.issuer, eventType: CAEP_SESSION_REVOKED, email: 'ghost@corp.example' })))).status, 202)
  const outcomes = (await auditEntries(s)).map((e) => e.outcome)
  tt.same(outcomes.slice(-2), ['ignored', 'accepted_no_change'])
})

t.test('unverifiable, replayed, stale and foreign SETs are refused with RFC 8935 codes and audited', async (tt) => {
  const s = await setup(tt)
  const g = await grant(s, 'cli_keep')
  const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...s.idp.setClaims({ audience: s.stack.issuer, eventType: CAEP_SESSION_REVOKED, email: s.user.email }), ...extra })
  const cases: Array<[string, string, string, RegExp, string?]> = [
    ['unsigned (alg none)', s.idp.securityEvent(claims(), { unsigned: true }), 'invalid_key', /alg none/],
    ['alg confusion (HS256 keyed with the public key)', s.idp.securityEvent(claims(), { hmacSecret: s.idp.publicPem }), 'invalid_key', /alg HS256/],
    ['signed by another key', s.idp.securityEvent(claims(), { key: new TestIdp('x').privateKey }), 'authentication_failed', /signature/],
    ['unknown kid', s.idp.securityEvent(claims(), { header: { kid: 'other' } }), 'invalid_key', /kid/],
    ['unknown issuer', new TestIdp('https://evil.example').securityEvent(claims({ iss: 'https://evil.example' })), 'invalid_issuer', /not a trusted/],
    ['foreign audience', s.idp.securityEvent(claims({ aud: 'https://someone-else.example' })), 'invalid_audience', /aud/],
    ['stale', s.idp.securityEvent(claims({ iat: nowSeconds() - 3600 })), 'invalid_request', /stale/],
    ['from the future', s.idp.securityEvent(claims({ iat: nowSeconds() + 3600 })), 'invalid_request', /future/],
    ['no jti', s.idp.securityEvent(claims({ jti: undefined })), 'invalid_request', /jti/],
    ['two events', s.idp.securityEvent(claims({ events: { [CAEP_SESSION_REVOKED]: {}, [CAEP_CREDENTIAL_CHANGE]: {} } })), 'invalid_request', /exactly one event/],
    ['ungoverned domain', s.idp.securityEvent(claims({ sub_id: { format: 'email', email: 'boss@other.example' } })), 'access_denied', /does not govern the domain other\.example/],
    ['another issuer\'s subject', s.idp.securityEvent(claims({ sub_id: { format: 'iss_sub', iss: 'https://evil.example', sub: 'x' } })), 'access_denied', /another issuer/],
    ['wrong typ', s.idp.sign(claims(), 'JWT'), 'invalid_request', /typ/],
    ['not a JWT', 'hello', 'invalid_request', /not a SET/],
    ['wrong content type', s.idp.securityEvent(claims()), 'invalid_request', /application\/secevent\+jwt/, 'application/json']
  ]
  for (const [name, set, err, description, type] of cases) {
    const res = await push(s, set, type)
    tt.equal(res.status, 400, `${name}: status`)
    tt.equal(res.body?.err, err, `${name}: err`)
    tt.match(String(res.body?.description), description, `${name}: description`)
  }
  // replay: accepted once, refused after
  const once = s.idp.securityEvent(claims({ sub_id: { format: 'email', email: 'ghost@corp.example' } }))
  tt.equal((await push(s, once)).status, 202)
  const replay = await push(s, once)
  tt.equal(replay.status, 400)
  tt.equal(replay.body.err, 'invalid_request')
  tt.match(replay.body.description, /already received/)

  tt.equal((await s.grants.get(g.id))?.revokedAt, null, 'no refused SET revoked anything')
  const refused = (await auditEntries(s)).filter((e) => e.outcome === 'refused')
  tt.equal(refused.length, cases.length + 1, 'every refusal is audited')
  tt.same(refused.map((e) => e.err), [...cases.map((c) => c[2]), 'invalid_request'])
})
