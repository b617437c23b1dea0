/**
 * The Shared Signals receiver by poll (RFC 8936): a local IdP poll endpoint (TestPollEndpoint) holds SETs
 * signed by the TestIdp; the token service's poller, driven by `pollOnce()` (SSF_POLL_INTERVAL_S=0: no
 * timer), takes them in exactly as pushed ones (the same reader, action and audit), acknowledges accepted
 * ones and reports refused ones in `setErrs`, drains `moreAvailable` in one round, keeps unsent acks in
 * Redis across an IdP outage, polls a given issuer from one replica at a time, and fetches only
 * allow-listed origins. Real HTTP, real Redis.
 */
import t from 'tap'
import { once } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import { AccountStore, EnterpriseIssuerStore, GrantStore, CAEP_SESSION_REVOKED, RISC_ACCOUNT_DISABLED, enterpriseIssuerId, keys, nowSeconds, validateEnterpriseIssuer, type User } from '@uspl/core'
import { TestIdp, TestPollEndpoint } from '@uspl/testing/enterprise-idp'
import { SsfPoller, MAX_EVENTS } from '../src/lib/ssf-poller.ts'
import { startStack, type Stack } from './helpers.ts'

interface Setup { stack: Stack, idp: TestIdp, endpoint: TestPollEndpoint, user: User, grants: GrantStore, secret: string }

async function setup (tt: Parameters<typeof startStack>[0], opts: { allowListed?: boolean } = {}): Promise<Setup> {
  const endpoint = new TestPollEndpoint()
  const url = await endpoint.serve(tt)
  const origin = new URL(url).origin
  const stack = await startStack(tt, { SSF_POLL_INTERVAL_S: '0', ENTERPRISE_JWKS_ORIGINS: opts.allowListed === false ? 'https://idp.corp.example' : origin })
  const idp = new TestIdp('https://idp.corp.example', 'corp.example')
  const secret = `Bearer poll-${Math.random().toString(36).slice(2)}`
  await new EnterpriseIssuerStore(stack.r.redis).put({ issuer: idp.issuer, domains: ['corp.example'], jwks: idp.jwks, pollUrl: url, pollAuthorization: secret })
  const user = await new AccountStore(stack.r.redis).createUser({ email: `lee-${Math.random().toString(36).slice(2, 7)}@corp.example`, name: 'Lee', password: 'pw-not-used-here' })
  return { stack, idp, endpoint, user, grants: new GrantStore(stack.r.redis, stack.r.prefix), secret }
}

const grant = (s: Setup, clientId: string): ReturnType<GrantStore['ensure']> => s.grants.ensure({ userId: s.user.id, clientId, scope: 'mcp:tools', resource: s.stack.resource, authTime: nowSeconds(), ttlS: 3600 })

async function auditEntries (s: Setup): Promise<Array<Record<string, string>>> {
  const entries = await s.stack.r.redis.xrange(keys.ssfReceiverAudit(), '-', '+') as Array<[string, string[]]>
  return entries.map(([, f]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]])))
}

/** A logger that keeps every line it is given (as JSON), to count them and search them for secrets. */
function recordingLog (): { log: FastifyBaseLogger, lines: Array<{ level: string, text: string }> } {
  const lines: Array<{ level: string, text: string }> = []
  const at = (level: string) => (...args: unknown[]) => { lines.push({ level, text: JSON.stringify(args, (_k, v) => v instanceof Error ? { ...v, message: v.message } : v) }) }
  const log = { warn: at('warn'), info: at('info'), error: at('error'), debug: at('debug'), trace: at('trace'), fatal: at('fatal'), child: () => log, level: 'info' }
  return { log: log as unknown as FastifyBaseLogger, lines }
}

const poller = (s: Setup): SsfPoller => s.stack.token.enterprise.poller

t.test('a polled session-revoked SET revokes the grant as a pushed one does; acks follow with the next poll', async (tt) => {
  const s = await setup(tt)
  const a = await grant(s, 'cli_a')
  const b = await grant(s, 'cli_b')
  const claims = s.idp.setClaims({ audience: s.stack.issuer, eventType: CAEP_SESSION_REVOKED, email: s.user.email })
  claims.sub_id = { format: 'complex', user: { format: 'email', email: s.user.email }, application: { format: 'opaque', id: 'cli_a' } }
  const jti = s.endpoint.add(s.idp.securityEvent(claims))

  const [round] = await poller(s).pollOnce()
  tt.match(round, { issuer: s.idp.issuer, status: 'polled', requests: 1, accepted: 1, refused: 0 })
  tt.not((await s.grants.get(a.id))?.revokedAt, null, 'the named client\'s grant is revoked')
  tt.equal((await s.grants.get(b.id))?.revokedAt, null, 'the other client is untouched')
  const [entry] = await auditEntries(s)
  tt.match(entry, { outcome: 'accepted', via: 'poll', issuer: s.idp.issuer, jti, event: CAEP_SESSION_REVOKED, user: s.user.id, client: 'cli_a' })
  const stream = await s.stack.r.redis.xrange(keys.revocationStream(), '-', '+') as Array<[string, string[]]>
  tt.match(JSON.parse(stream[stream.length - 1][1][1]), { path: 'enterprise_signal', actorType: 'system', actorId: enterpriseIssuerId(s.idp.issuer) })

  // the request, as RFC 8936 §2.2 has it, with the configured Authorization value
  const [first] = s.endpoint.requests
  tt.equal(first.authorization, s.secret, 'the authorization value reaches the IdP')
  tt.match(first.contentType, /^application\/json/)
  tt.same(first.body, { maxEvents: MAX_EVENTS, returnImmediately: true, ack: [], setErrs: {} })

  // account-disabled disables the user and revokes the rest; the first SET's ack goes with this poll
  const jti2 = s.endpoint.add(s.idp.securityEvent(s.idp.setClaims({ audience: s.stack.issuer, eventType: RISC_ACCOUNT_DISABLED, email: s.user.email })))
  tt.match((await poller(s).pollOnce())[0], { status: 'polled', accepted: 1 })
  tt.same(s.endpoint.requests[1].body.ack, [jti], 'the accepted SET is acknowledged with the next poll')
  tt.not((await new AccountStore(s.stack.r.redis).getUser(s.user.id))?.disabledAt, null, 'account-disabled disables the user')
  tt.not((await s.grants.get(b.id))?.revokedAt, null, 'and revokes the user\'s other grants')

  tt.match((await poller(s).pollOnce())[0], { status: 'polled', accepted: 0 })
  tt.same(s.endpoint.requests[2].body.ack, [jti2])
  tt.equal(s.endpoint.held.size, 0, 'the IdP holds nothing unacknowledged')
  tt.same(await s.stack.r.redis.hgetall(keys.ssfPollPendingAcks(enterpriseIssuerId(s.idp.issuer))), {}, 'no ack is left to send')
})

t.test('forged, replayed and foreign-audience SETs are reported in setErrs with their codes and do nothing', async (tt) => {
  const s = await setup(tt)
  const g = await grant(s, 'cli_keep')
  const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...s.idp.setClaims({ audience: s.stack.issuer, eventType: CAEP_SESSION_REVOKED, email: s.user.email }), ...extra })
  // a SET pushed first, then offered again by poll: the jti replay record is shared by both deliveries
  const pushed = s.idp.securityEvent(claims({ sub_id: { format: 'email', email: 'ghost@corp.example' } }))
  const res = await fetch(`${s.stack.issuer}/ssf/receiver`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: pushed })
  tt.equal(res.status, 202)
  const cases: Array<[string, string, string, RegExp]> = [
    ['forged', s.idp.securityEvent(claims(), { key: new TestIdp('x').privateKey }), 'authentication_failed', /signature/],
    ['unsigned', s.idp.securityEvent(claims(), { unsigned: true }), 'invalid_key', /alg none/],
    ['foreign audience', s.idp.securityEvent(claims({ aud: 'https://someone-else.example' })), 'invalid_audience', /aud/],
    ['replayed', pushed, 'invalid_request', /already received/],
    ['not a SET', 'hello', 'invalid_request', /not a SET/]
  ]
  const jtis = cases.map(([name, set]) => s.endpoint.add(set, `jti-${name.replace(/ /g, '-')}`))
  tt.match((await poller(s).pollOnce())[0], { status: 'polled', accepted: 0, refused: cases.length })
  await poller(s).pollOnce()
  cases.forEach(([name, , err, description], i) => {
    tt.equal(s.endpoint.setErrs[jtis[i]]?.err, err, `${name}: err`)
    tt.match(s.endpoint.setErrs[jtis[i]]?.description, description, `${name}: description`)
  })
  tt.same(s.endpoint.requests[1].body.ack, [], 'nothing refused is acknowledged')
  tt.equal((await s.grants.get(g.id))?.revokedAt, null, 'no refused SET revoked anything')
  const refused = (await auditEntries(s)).filter((e) => e.outcome === 'refused')
  tt.same(refused.map((e) => [e.via, e.err]), cases.map((c) => ['poll', c[2]]), 'every refusal is audited, as by poll')
})

t.test('moreAvailable drains in one round, bounded', async (tt) => {
  const s = await setup(tt)
  const count = 2 * MAX_EVENTS + 10
  for (let i = 0; i < count; i++) s.endpoint.add(s.idp.securityEvent(s.idp.setClaims({ audience: s.stack.issuer, eventType: CAEP_SESSION_REVOKED, email: `ghost${i}@corp.example` })))
  const [round] = await poller(s).pollOnce()
  tt.match(round, { status: 'polled', requests: 3, accepted: count, refused: 0 })
  tt.same(s.endpoint.requests.map((r) => r.body.ack?.length), [0, MAX_EVENTS, MAX_EVENTS], 'each request acknowledges the batch before it')
  tt.equal(s.endpoint.held.size, 10, 'only the last batch waits for its ack')
  const outcomes = (await auditEntries(s)).map((e) => `${e.via} ${e.outcome}`)
  tt.same(new Set(outcomes), new Set(['poll accepted_no_change']))
  tt.equal(outcomes.length, count)
})

t.test('an IdP that is down: no crash, one log line per streak without the secret, acks kept, the next round delivers', async (tt) => {
  const s = await setup(tt)
  const { log, lines } = recordingLog()
  // a second replica's poller over the same Redis: it sends the acks the first one could not
  const first = poller(s)
  const second = new SsfPoller(s.stack.token.enterprise.intake, log, { intervalS: 0, origins: s.stack.token.enterprise.keys.origins })
  const jti = s.endpoint.add(s.idp.securityEvent(s.idp.setClaims({ audience: s.stack.issuer, eventType: CAEP_SESSION_REVOKED, email: 'ghost@corp.example' })))
  tt.match((await first.pollOnce())[0], { status: 'polled', accepted: 1 })

  s.endpoint.down = true
  const g = await grant(s, 'cli_later')
  const later = s.endpoint.add(s.idp.securityEvent(s.idp.setClaims({ audience: s.stack.issuer, eventType: CAEP_SESSION_REVOKED, email: s.user.email })))
  for (let i = 0; i < 3; i++) tt.match((await second.pollOnce())[0], { status: 'failed', error: /poll_url answered 503/ })
  tt.equal(second.stats.failures, 3, 'every failure is counted')
  tt.equal(lines.filter((l) => l.level === 'warn').length, 1, 'logged once for the streak')
  tt.same(await s.stack.r.redis.hkeys(keys.ssfPollPendingAcks(enterpriseIssuerId(s.idp.issuer))), [jti], 'the unsent ack is kept in Redis')
  tt.equal((await s.grants.get(g.id))?.revokedAt, null)

  s.endpoint.down = false
  tt.match((await second.pollOnce())[0], { status: 'polled', accepted: 1 })
  tt.same(s.endpoint.requests[s.endpoint.requests.length - 1].body.ack, [jti], 'the kept ack reaches the IdP')
  tt.not((await s.grants.get(g.id))?.revokedAt, null, 'the SET sent during the outage is delivered')
  tt.equal(lines.filter((l) => l.level === 'info' && l.text.includes('recovered')).length, 1)
  tt.same(await s.stack.r.redis.hkeys(keys.ssfPollPendingAcks(enterpriseIssuerId(s.idp.issuer))), [later], 'its own ack waits for the next poll')

  // an answer that is not a poll response is a failure too (a new streak: logged again), then it recovers
  for (const raw of ['not json', '[]', '{"moreAvailable":false}']) {
    s.endpoint.raw = raw
    tt.match((await second.pollOnce())[0], { status: 'failed', error: /poll_url did not answer JSON|poll_url did not answer a JSON object|no "sets" object/ }, raw)
  }
  tt.equal(lines.filter((l) => l.level === 'warn').length, 2, 'one line for the second streak')
  s.endpoint.raw = null
  tt.match((await second.pollOnce())[0], { status: 'polled' })
  tt.equal(s.endpoint.held.size, 0, 'the acks kept through the bad answers reached the IdP')
  tt.equal(lines.filter((l) => l.text.includes(s.secret)).length, 0, 'no log line carries the authorization value')
})

t.test('one replica polls a given issuer at a time', async (tt) => {
  const s = await setup(tt)
  s.endpoint.add(s.idp.securityEvent(s.idp.setClaims({ audience: s.stack.issuer, eventType: CAEP_SESSION_REVOKED, email: 'ghost@corp.example' })))
  const other = new SsfPoller(s.stack.token.enterprise.intake, recordingLog().log, { intervalS: 0, origins: s.stack.token.enterprise.keys.origins })
  let release = (): void => {}
  s.endpoint.hold = new Promise((resolve) => { release = resolve })
  const arrived = once(s.endpoint, 'request')
  const holding = poller(s).pollOnce()
  await arrived
  tt.match((await other.pollOnce())[0], { status: 'locked', requests: 0 }, 'the other replica skips the issuer while the lock is held')
  release()
  s.endpoint.hold = null
  tt.match((await holding)[0], { status: 'polled', accepted: 1 })
  tt.equal(s.endpoint.requests.length, 1, 'the IdP was asked once')
  tt.equal(await s.stack.r.redis.exists(keys.ssfPollLock(enterpriseIssuerId(s.idp.issuer))), 0, 'the lock is released after the round')
  tt.match((await other.pollOnce())[0], { status: 'polled' }, 'and the next round may be anyone\'s')
})

t.test('a poll URL outside ENTERPRISE_JWKS_ORIGINS is never fetched; a non-https one is refused at configuration', async (tt) => {
  const s = await setup(tt, { allowListed: false })
  s.endpoint.add(s.idp.securityEvent(s.idp.setClaims({ audience: s.stack.issuer, eventType: CAEP_SESSION_REVOKED, email: s.user.email })))
  tt.match((await poller(s).pollOnce())[0], { status: 'failed', requests: 1, error: /the origin of poll_url http:\/\/127\.0\.0\.1:\d+ is not in ENTERPRISE_JWKS_ORIGINS/ })
  tt.equal(s.endpoint.requests.length, 0, 'nothing reached the endpoint')

  const base = { issuer: 'https://idp.x.example', domains: ['x.example'], jwks: s.idp.jwks }
  tt.throws(() => validateEnterpriseIssuer({ ...base, pollUrl: 'http://idp.x.example/poll' }), /poll_url must be an https URL/)
  tt.throws(() => validateEnterpriseIssuer({ ...base, pollUrl: 'ftp://idp.x.example/poll' }), /poll_url must be an https URL/)
  tt.throws(() => validateEnterpriseIssuer({ ...base, pollUrl: 'https://u:p@idp.x.example/poll' }), /no credentials/)
  tt.throws(() => validateEnterpriseIssuer({ ...base, pollAuthorization: 'Bearer x' }), /poll_authorization needs poll_url/)
  tt.throws(() => validateEnterpriseIssuer({ ...base, pollUrl: 'https://idp.x.example/poll', pollAuthorization: 'Bearer x\r\nX-Injected: 1' }), /one line/)
  tt.equal(validateEnterpriseIssuer({ ...base, pollUrl: 'https://idp.x.example/poll' }).pollUrl, 'https://idp.x.example/poll')
})
