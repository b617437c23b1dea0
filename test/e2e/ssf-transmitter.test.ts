// Shared Signals out: operators configure streams at the issuer (operator keys only); every revocation
// becomes a CAEP session-revoked SET signed with the issuer's keys, pushed (RFC 8935) to a local receiver
// by the follow-up worker and queued for a poll stream (RFC 8936); the SET is verified here independently
// (node:crypto against the issuer's published JWKS). Delivery is retried and exactly once per stream.
import t from 'tap'
import { createPublicKey, verify as cryptoVerify } from 'node:crypto'
import {
  CAEP_SESSION_REVOKED, SSF_VERIFICATION, SsfStreamStore, deliverSecurityEvents, keys, type RevocationEvent
} from '@uspl/core'
import { enterprise, exchange, PushReceiver, type Enterprise } from './enterprise-fixtures.ts'

interface Jwks { keys: Array<Record<string, unknown>> }

/** A strict, independent check of a SET: ES256 over the issuer's JWKS, typ secevent+jwt, one event. */
function readSet (set: string, jwks: Jwks): { header: Record<string, unknown>, claims: Record<string, unknown> } {
  const [h, c, s] = set.split('.')
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>
  const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, unknown>
  if (header.alg !== 'ES256' || header.typ !== 'secevent+jwt') throw new Error(`bad header ${JSON.stringify(header)}`)
  const jwk = jwks.keys.find((k) => k.kid === header.kid)
  if (!jwk) throw new Error('unknown kid')
  if (!cryptoVerify('sha256', Buffer.from(`${h}.${c}`), { key: createPublicKey({ key: jwk as never, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))) throw new Error('bad signature')
  if (Object.keys(claims.events as object).length !== 1) throw new Error('a SET carries one event')
  return { header, claims }
}

async function operator (e: Enterprise, method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> {
  const res = await fetch(`${e.s.issuer}${path}`, { method, headers: { authorization: `Bearer ${e.s.operatorKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, json: text ? JSON.parse(text) : null }
}

t.test('streams are managed by operators, and each revocation is pushed and polled as a signed session-revoked SET', async (t) => {
  const e = await enterprise(t)
  const receiver = new PushReceiver()
  await receiver.start(t)
  const jwks = await (await fetch(`${e.s.issuer}/.well-known/jwks.json`)).json() as Jwks

  // the transmitter configuration
  const conf = await (await fetch(`${e.s.issuer}/.well-known/ssf-configuration`)).json() as Record<string, unknown>
  t.equal(conf.issuer, e.s.issuer)
  t.equal(conf.configuration_endpoint, `${e.s.issuer}/ssf/streams`)
  t.same(conf.delivery_methods_supported, ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'])

  // stream management: operator keys only
  t.equal((await fetch(`${e.s.issuer}/ssf/streams`)).status, 401)
  const push = await operator(e, 'POST', '/ssf/streams', { aud: 'https://receiver.example', delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: receiver.url, authorization_header: 'Bearer rx-secret' }, events_requested: [CAEP_SESSION_REVOKED, SSF_VERIFICATION, 'https://unknown.example/event'], description: 'SIEM' })
  t.equal(push.status, 201)
  t.same(push.json.events_delivered, [CAEP_SESSION_REVOKED, SSF_VERIFICATION])
  t.equal(push.json.delivery.authorization_header, undefined, 'the stored credential is never read back')
  const poll = await operator(e, 'POST', '/ssf/streams', { aud: 'https://poller.example', delivery: { method: 'urn:ietf:rfc:8936' } })
  t.equal(poll.status, 201)
  t.equal(poll.json.delivery.endpoint_url, `${e.s.issuer}/ssf/streams/${poll.json.stream_id}/poll`)
  t.equal((await operator(e, 'GET', `/ssf/streams?stream_id=${push.json.stream_id}`)).json.description, 'SIEM')
  t.equal((await operator(e, 'GET', '/ssf/streams')).json.length, 2)
  const patched = await operator(e, 'PATCH', '/ssf/streams', { stream_id: push.json.stream_id, description: 'SIEM (prod)' })
  t.equal(patched.json.description, 'SIEM (prod)')
  t.same(patched.json.events_delivered, [CAEP_SESSION_REVOKED, SSF_VERIFICATION], 'PATCH keeps what it does not name')
  t.equal((await operator(e, 'POST', '/ssf/streams', { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'not a url' } })).status, 400)
  t.same((await operator(e, 'GET', `/ssf/status?stream_id=${push.json.stream_id}`)).json, { stream_id: push.json.stream_id, status: 'enabled' })
  t.equal((await operator(e, 'GET', '/ssf/status?stream_id=str_nope')).status, 404)

  // verification event, pushed after the 204
  const verification = receiver.next()
  t.equal((await operator(e, 'POST', '/ssf/verify', { stream_id: push.json.stream_id, state: 'abc123' })).status, 204)
  const v = readSet((await verification).set, jwks)
  t.same(v.claims.events, { [SSF_VERIFICATION]: { state: 'abc123' } })
  t.equal(v.claims.aud, 'https://receiver.example')

  // a revocation: the operator cuts the user off
  const tokens = await exchange(e)
  const grantId = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString()).grant_id
  const arrived = receiver.next()
  const revoke = await fetch(`${e.s.connectionsUrl}/v1/connections/${grantId}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${e.s.operatorKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ confirm: 'Managed Agent' }) })
  t.equal(revoke.status, 200, await revoke.clone().text())
  const pushed = await arrived
  t.equal(pushed.authorization, 'Bearer rx-secret')
  t.equal(pushed.contentType, 'application/secevent+jwt')
  const { claims } = readSet(pushed.set, jwks)
  t.equal(claims.iss, e.s.issuer)
  t.equal(claims.aud, 'https://receiver.example')
  t.same(claims.sub_id, { format: 'complex', user: { format: 'email', email: e.person.user.email }, application: { format: 'opaque', id: e.clientId }, session: { format: 'opaque', id: grantId } })
  const event = (claims.events as Record<string, Record<string, unknown>>)[CAEP_SESSION_REVOKED]
  t.equal(event.initiating_entity, 'admin')
  t.type(event.event_timestamp, 'number')

  // the poll stream holds the same event until acknowledged
  const polled = await operator(e, 'POST', `/ssf/streams/${poll.json.stream_id}/poll`, { maxEvents: 10, returnImmediately: true })
  const jtis = Object.keys(polled.json.sets)
  t.equal(jtis.length, 1)
  t.equal(polled.json.moreAvailable, false)
  const p = readSet(polled.json.sets[jtis[0]], jwks)
  t.equal(p.claims.jti, jtis[0])
  t.equal(p.claims.aud, 'https://poller.example')
  t.ok((p.claims.events as Record<string, unknown>)[CAEP_SESSION_REVOKED])
  t.same((await operator(e, 'POST', `/ssf/streams/${poll.json.stream_id}/poll`, { ack: jtis })).json, { sets: {}, moreAvailable: false })

  // a paused stream gets nothing; deleting it removes it
  t.equal((await operator(e, 'POST', '/ssf/status', { stream_id: push.json.stream_id, status: 'paused', reason: 'maintenance' })).json.status, 'paused')
  t.equal((await operator(e, 'DELETE', `/ssf/streams?stream_id=${push.json.stream_id}`)).status, 204)
  t.equal((await operator(e, 'GET', `/ssf/streams?stream_id=${push.json.stream_id}`)).status, 404)
})

t.test('delivery is retried on failure and exactly once per event per stream; a receiver refusal is not retried', async (t) => {
  const e = await enterprise(t)
  const receiver = new PushReceiver()
  await receiver.start(t)
  const streams = new SsfStreamStore(e.s.r.redis)
  const stream = await streams.create({ delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: receiver.url } }, e.s.issuer)
  const { generateKeyPairSync } = await import('node:crypto')
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const tx = { issuer: e.s.issuer, streams, signingKey: async () => ({ privateKey, kid: 'k1' }) }
  const event: RevocationEvent = { id: `${Date.now()}-0`, scope: 'grant', target: 'grt_x', grantIds: ['grt_x'], clientId: 'cli_x', userId: 'usr_x', jti: null, path: 'cli', actor: { type: 'system', id: 'test' }, at: Date.now() }

  receiver.status = 503
  await t.rejects(deliverSecurityEvents(e.s.r.redis, tx, event), /1 of 1 Shared Signals deliveries failed/)
  t.equal(receiver.received.length, 0)
  receiver.status = 202
  t.same(await deliverSecurityEvents(e.s.r.redis, tx, event), { pushed: 1, queued: 0, refused: 0, skipped: 0 })
  t.same(await deliverSecurityEvents(e.s.r.redis, tx, event), { pushed: 0, queued: 0, refused: 0, skipped: 1 }, 'a retried job sends nothing twice')
  t.equal(receiver.received.length, 1)
  t.match(await e.s.r.redis.hget(keys.ssfDeliveries(event.id), stream.stream_id), /^pushed:/)

  // the same event and stream always give the same jti (what a receiver de-duplicates by)
  const again = { ...event, id: `${Date.now() + 1}-0` }
  receiver.status = 400
  t.same(await deliverSecurityEvents(e.s.r.redis, tx, again), { pushed: 0, queued: 0, refused: 1, skipped: 0 })
  t.equal(await e.s.r.redis.hget(keys.ssfDeliveries(again.id), stream.stream_id), 'refused:invalid_audience')
  t.same(await deliverSecurityEvents(e.s.r.redis, tx, again), { pushed: 0, queued: 0, refused: 0, skipped: 1 }, 'a refusal is final')
  // a token-scope event (one access token) ends no session: nothing is sent
  t.same(await deliverSecurityEvents(e.s.r.redis, tx, { ...event, id: `${Date.now() + 2}-0`, scope: 'token' }), { pushed: 0, queued: 0, refused: 0, skipped: 0 })
})
