// Sessions (2025-06-18 and 2025-11-25): initialize opens one, GET streams, DELETE ends, unknown ids 404,
// a missing id 400; a session answers only its own grant; the per-grant cap; idle expiry; a GET stream
// ends when its token expires; the Redis index; Redis down answers 503 with Retry-After.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { testRedis, privateRedis, type TestRedis } from '@uspl/testing'
import { keys, nowSeconds, type Grant } from '@uspl/core'
import { startIssuer, startGateway, grantFor, tokenFor, connect, rawSession, rawCall, openStream, mcpHeaders, bodylessHeaders, initializeBody, text, type Issuer, type Gateway, type OpenStream } from './helpers.ts'
import type { McpSession } from '../src/mcp/sessions.ts'

t.test('session lifecycle for both protocol versions', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer, { REPLICA_ID: 'replica-a' })
  const grant = await grantFor(r, 'usr_a')
  const token = tokenFor(issuer, gw, grant)
  for (const version of ['2025-06-18', '2025-11-25']) {
    const sessionId = await rawSession(gw, token, version)
    const index = await r.redis.hgetall(keys.mcpSession(sessionId))
    t.match(index, { grant: grant.id, client: grant.clientId, user: 'usr_a', replica: 'replica-a' }, `${version}: indexed in Redis`)
    t.ok(Number(index.opened) > 0 && Number(index.last_active) > 0)
    const ttl = await r.redis.ttl(keys.mcpSession(sessionId))
    t.ok(ttl > 0 && ttl <= 1800, 'expires with the idle timeout')
    t.ok(await r.redis.sismember(keys.grantSessions(grant.id), sessionId), 'listed under its grant')
    const list = await rawCall(gw, token, sessionId, 'tools/list')
    t.equal(list.status, 200)
    t.match(await list.text(), 'list_workspaces')
    const stream = await openStream(t, gw, token, sessionId)
    t.equal(stream.status, 200, 'GET opens the stream')
    // one client sends Content-Type on its bodyless DELETE, the other does not: both end the session
    const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: version === '2025-06-18' ? mcpHeaders(token, sessionId) : bodylessHeaders(token, sessionId) })
    t.equal(del.status, 200, 'DELETE ends the session')
    await stream.ended
    t.pass('and its stream')
    const after = await rawCall(gw, token, sessionId, 'tools/list')
    t.equal(after.status, 404, 'the ended id answers 404')
    t.equal(await r.redis.exists(keys.mcpSession(sessionId)), 0, 'and is gone from the index')
  }
  const missing = await rawCall(gw, token, undefined, 'tools/list')
  t.equal(missing.status, 400, 'no session id on a non-initialize request: 400')
  const unknown = await rawCall(gw, token, 'not-a-session', 'tools/list')
  t.equal(unknown.status, 404, 'an unknown id: 404')
  const getWithout = await fetch(gw.mcpUrl, { headers: { ...bodylessHeaders(token), accept: 'text/event-stream' } })
  t.equal(getWithout.status, 400, 'GET without a session id: 400')
})

t.test('a session answers only the grant that opened it', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const alice = await grantFor(r, 'usr_alice', 'cli_claude')
  const mallory = await grantFor(r, 'usr_mallory', 'cli_evil')
  const aliceOtherClient = await grantFor(r, 'usr_alice', 'cli_cursor')
  const { client, sessionId } = await connect(t, gw, tokenFor(issuer, gw, alice))
  for (const [who, grant] of [['another user', mallory], ['the same user through another client', aliceOtherClient]] as const) {
    const token = tokenFor(issuer, gw, grant)
    const post = await rawCall(gw, token, sessionId, 'tools/call', { name: 'list_workspaces', arguments: {} })
    t.equal(post.status, 404, `${who}: POST refused`)
    const get = await fetch(gw.mcpUrl, { headers: { ...bodylessHeaders(token, sessionId), accept: 'text/event-stream' } })
    t.equal(get.status, 404, `${who}: GET refused`)
    const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: bodylessHeaders(token, sessionId) })
    t.equal(del.status, 404, `${who}: DELETE refused`)
  }
  t.ok(gw.app.mcpSessions.get(sessionId), 'the session is intact')
  const res = await client.callTool({ name: 'list_workspaces', arguments: {} })
  t.notOk(res.isError, 'and its owner keeps using it')
  t.match(text(res), 'not a member of any workspace')
  t.match(await (await fetch(`${gw.url}/metrics`)).text(), 'gateway_mcp_session_refusals_total{reason="other_grant"} 6')
})

t.test('a grant holds at most MAX_SESSIONS_PER_GRANT sessions', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer, { MAX_SESSIONS_PER_GRANT: '2' })
  const grant = await grantFor(r, 'usr_a')
  const token = tokenFor(issuer, gw, grant)
  const first = await rawSession(gw, token)
  await rawSession(gw, token)
  const third = await fetch(gw.mcpUrl, { method: 'POST', headers: mcpHeaders(token), body: initializeBody() })
  t.equal(third.status, 429, 'the third is refused')
  t.ok(third.headers.get('retry-after'))
  t.match(await third.text(), 'Too many open sessions')
  t.ok(await rawSession(gw, tokenFor(issuer, gw, await grantFor(r, 'usr_b'))), 'another grant is not affected')
  await (await fetch(gw.mcpUrl, { method: 'DELETE', headers: bodylessHeaders(token, first) })).text()
  t.ok(await rawSession(gw, token), 'after a DELETE there is room again')
})

t.test('idle sessions expire', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer, { SESSION_IDLE_TIMEOUT_S: '1' })
  const token = tokenFor(issuer, gw, await grantFor(r, 'usr_a'))
  const sessionId = await rawSession(gw, token)
  const [session, reason] = await once(gw.app.mcpSessions, 'closed') as [McpSession, string]
  t.equal(session.id, sessionId)
  t.equal(reason, 'idle')
  t.equal((await rawCall(gw, token, sessionId, 'tools/list')).status, 404, 'its id answers 404')
  t.equal(await r.redis.exists(keys.mcpSession(sessionId)), 0, 'and it left the index')
})

/** A session and its GET stream, both opened with a token that expires in a second. */
async function sessionWithExpiringStream (t: Test): Promise<{ r: TestRedis, issuer: Issuer, gw: Gateway, grant: Grant, exp: number, sessionId: string, stream: OpenStream }> {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const grant = await grantFor(r, 'usr_a')
  const exp = nowSeconds() + 1
  const shortLived = tokenFor(issuer, gw, grant, { exp })
  const sessionId = await rawSession(gw, shortLived)
  const stream = await openStream(t, gw, shortLived, sessionId)
  t.equal(stream.status, 200)
  return { r, issuer, gw, grant, exp, sessionId, stream }
}

t.test('a session whose token expires while its GET stream is open is closed at expiry', async (t) => {
  const { r, issuer, gw, grant, exp, sessionId, stream } = await sessionWithExpiringStream(t)
  const endedAt = await stream.ended
  t.ok(endedAt >= exp * 1000 - 50 && endedAt < exp * 1000 + 1000, `ended at expiry (${endedAt - exp * 1000} ms after exp)`)
  const fresh = tokenFor(issuer, gw, grant)
  t.equal((await rawCall(gw, fresh, sessionId, 'tools/list')).status, 404, 'the session is gone: the client starts a new one')
  t.equal(await r.redis.exists(keys.mcpSession(sessionId)), 0, 'and its index entry')
})

t.test('a client that refreshed keeps its session; only the stream opened with the old token ends', async (t) => {
  const { issuer, gw, grant, exp, sessionId, stream } = await sessionWithExpiringStream(t)
  const fresh = tokenFor(issuer, gw, grant)
  t.equal((await rawCall(gw, fresh, sessionId, 'tools/list')).status, 200, 'the client uses its refreshed token on the session')
  const endedAt = await stream.ended
  t.ok(endedAt >= exp * 1000 - 50 && endedAt < exp * 1000 + 1000, `the old stream ended at expiry (${endedAt - exp * 1000} ms after exp)`)
  t.equal((await rawCall(gw, fresh, sessionId, 'tools/list')).status, 200, 'the session goes on')
  const again = await openStream(t, gw, fresh, sessionId)
  t.equal(again.status, 200, 'and can open a new stream')
  again.abort()
})

t.test('Redis down: 503 with Retry-After, never an unchecked pass', async (t) => {
  const redis = await privateRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, { url: redis.url, prefix: 'test:gw-down:' }, issuer)
  const grant = { id: 'grt_x', userId: 'usr_a', clientId: 'cli_x' } as Parameters<typeof tokenFor>[2]
  const token = tokenFor(issuer, gw, grant)
  const sessionId = await rawSession(gw, token)
  await redis.stop()
  for (const [what, res] of [
    ['initialize', await fetch(gw.mcpUrl, { method: 'POST', headers: mcpHeaders(token), body: initializeBody() })],
    ['a request on a session', await rawCall(gw, token, sessionId, 'tools/list')]
  ] as const) {
    t.equal(res.status, 503, `${what}: 503`)
    t.ok(Number(res.headers.get('retry-after')) > 0, `${what}: Retry-After`)
  }
  t.match(await (await fetch(`${gw.url}/metrics`)).text(), 'gateway_auth_failures_total{reason="store_unavailable"} 2')
})
