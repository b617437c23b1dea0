// Revocation closes exactly the revoked sessions, on every replica, within a stated bound; a replica whose
// subscription dropped replays what it missed before it reports ready again.
import t from 'tap'
import { once } from 'node:events'
import { testRedis, privateRedis } from '@uspl/testing'
import { createRedis, closeRedis, waitReady } from '@uspl/redis'
import { Revoker, keys } from '@uspl/core'
import { startIssuer, startGateway, stuckGateway, grantFor, tokenFor, claimsFor, connect, rawSession, rawCall, openStream, mcpHeaders, type Gateway } from './helpers.ts'

/** From the revoke call to the last stream's end, on every replica. */
const BOUND_MS = 1000
const how = { path: 'connections_user' as const, actor: { type: 'user' as const, id: 'test' } }

/** Resolves once every one of `ids` has been closed by the registry (its 'closed' event). */
function closedAll (registry: { on: (e: 'closed', f: (s: { id: string }) => void) => unknown, off: (e: 'closed', f: (s: { id: string }) => void) => unknown }, ids: string[]): Promise<void> {
  const waiting = new Set(ids)
  return new Promise((resolve) => {
    const onClosed = (session: { id: string }): void => {
      waiting.delete(session.id)
      if (waiting.size === 0) { registry.off('closed', onClosed); resolve() }
    }
    registry.on('closed', onClosed)
  })
}

t.test('two gateways on one Redis: revoking a grant closes its sessions and streams on both, and only those', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gwA = await startGateway(t, r, issuer, { REPLICA_ID: 'a' })
  // same Redis, same prefix, same public resource URL: two replicas behind one ingress
  const gwB = await startGateway(t, r, issuer, { REPLICA_ID: 'b', GATEWAY_RESOURCE_URL: gwA.mcpUrl })
  const revoked = await grantFor(r, 'usr_alice', 'cli_claude')
  const kept = await grantFor(r, 'usr_alice', 'cli_cursor')
  const revokedToken = tokenFor(issuer, gwA, revoked)
  const keptToken = tokenFor(issuer, gwA, kept)

  // the revoked grant: a session with an open GET stream on each replica
  const doomed: Array<{ gw: Gateway, sessionId: string, stream: Awaited<ReturnType<typeof openStream>> }> = []
  for (const gw of [gwA, { ...gwB, mcpUrl: `${gwB.url}/mcp` }]) {
    const sessionId = await rawSession(gw, revokedToken)
    const stream = await openStream(t, gw, revokedToken, sessionId)
    t.equal(stream.status, 200)
    doomed.push({ gw, sessionId, stream })
  }
  // the other grant of the same user: one SDK client on each replica
  const survivors = [await connect(t, gwA, keptToken), await connect(t, { ...gwB, mcpUrl: `${gwB.url}/mcp` }, keptToken)]
  t.equal(gwA.app.mcpSessions.size, 2)
  t.equal(gwB.app.mcpSessions.size, 2)
  t.equal(await r.redis.scard(keys.grantSessions(revoked.id)), 2, 'the index lists the grant\'s sessions on both replicas')

  const revoker = new Revoker({ redis: r.redis, prefix: r.prefix, accessTokenTtlS: 900 })
  const started = Date.now()
  const result = await revoker.revokeGrant(revoked.id, how)
  t.equal(result.status, 'revoked')
  const ended = await Promise.all(doomed.map((d) => d.stream.ended))
  const elapsed = Math.max(...ended) - started
  t.ok(elapsed < BOUND_MS, `both streams ended ${elapsed} ms after the revoke call (bound ${BOUND_MS} ms)`)
  t.comment(`revocation propagation: ${elapsed} ms to close the streams on two replicas`)

  for (const d of doomed) {
    t.notOk(d.gw.app.mcpSessions.get(d.sessionId), 'the session is forgotten')
    t.equal(await r.redis.exists(keys.mcpSession(d.sessionId)), 0, 'and gone from the index')
    const res = await rawCall(d.gw, revokedToken, d.sessionId, 'tools/list')
    t.equal(res.status, 401, 'the old token answers 401')
    t.match(res.headers.get('www-authenticate') ?? '', 'error="invalid_token"')
  }
  t.equal(await r.redis.scard(keys.grantSessions(revoked.id)), 0)
  for (const [i, s] of survivors.entries()) {
    const res = await s.client.callTool({ name: 'list_workspaces', arguments: {} })
    t.notOk(res.isError, `the other grant's session on replica ${i === 0 ? 'a' : 'b'} keeps working`)
  }
  t.equal(gwA.app.mcpSessions.size, 1)
  t.equal(gwB.app.mcpSessions.size, 1)
  for (const gw of [gwA, gwB]) {
    const metrics = await (await fetch(`${gw.url}/metrics`)).text()
    t.match(metrics, 'gateway_revocations_applied_total{scope="grant",source="live"} 1')
    t.match(metrics, 'gateway_revoked_sessions_closed_total 1')
    t.match(metrics, /gateway_revocation_lag_seconds_count 1/)
    t.match(metrics, /gateway_mcp_sessions_open 1\n/, 'open sessions: only the other grant\'s')
    t.match(metrics, /gateway_http_requests_total\{method="POST",route="\/mcp",status="200"\} \d+/, 'requests by route and status')
  }
  t.comment(`body done at ${Date.now() - started} ms`)
  t.teardown(() => t.comment(`teardown start at ${Date.now() - started} ms`))
})

t.test('client and user revocations close all their sessions; one revoked token closes its stream only', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const revoker = new Revoker({ redis: r.redis, prefix: r.prefix, accessTokenTtlS: 900 })

  // client scope: both users of cli_bad lose their sessions; cli_good's stay
  const bad1 = await grantFor(r, 'usr_1', 'cli_bad')
  const bad2 = await grantFor(r, 'usr_2', 'cli_bad')
  const good = await grantFor(r, 'usr_1', 'cli_good')
  const s1 = await rawSession(gw, tokenFor(issuer, gw, bad1))
  const s2 = await rawSession(gw, tokenFor(issuer, gw, bad2))
  const sg = await rawSession(gw, tokenFor(issuer, gw, good))
  const clientClosed = closedAll(gw.app.mcpSessions, [s1, s2])
  await revoker.revokeClient('cli_bad', { ...how, disable: true })
  await clientClosed
  t.ok(gw.app.mcpSessions.get(sg), 'another client of the same user is untouched')

  // user scope: every grant of usr_3 goes; usr_1's cli_good stays
  const u3a = await grantFor(r, 'usr_3', 'cli_x')
  const u3b = await grantFor(r, 'usr_3', 'cli_y')
  const sa = await rawSession(gw, tokenFor(issuer, gw, u3a))
  const sb = await rawSession(gw, tokenFor(issuer, gw, u3b))
  const userClosed = closedAll(gw.app.mcpSessions, [sa, sb])
  await revoker.revokeUser('usr_3', how)
  await userClosed
  t.ok(gw.app.mcpSessions.get(sg), 'another user is untouched')

  // token scope (RFC 7009 on an access token): the stream opened with it ends; the session stays for fresh tokens
  const claims = claimsFor(issuer, gw, good)
  const token = issuer.sign(claims)
  const stream = await openStream(t, gw, token, sg)
  t.equal(stream.status, 200)
  await revoker.revokeAccessToken({ jti: claims.jti as string, exp: claims.exp as number, grantId: good.id, clientId: good.clientId, userId: good.userId }, how)
  await stream.ended
  t.pass('the stream opened with the revoked token ended')
  t.equal((await rawCall(gw, token, sg, 'tools/list')).status, 401, 'that token answers 401')
  t.equal((await rawCall(gw, tokenFor(issuer, gw, good), sg, 'tools/list')).status, 200, 'the session serves the grant\'s other tokens')
})

t.test('a dropped subscription replays missed events before the replica is ready again', async (t) => {
  const redis = await privateRedis(t)
  const r = { url: redis.url, prefix: 'test:gw-replay:' }
  const main = createRedis({ url: redis.url, prefix: r.prefix, name: 'test', offlineQueue: true })
  const admin = createRedis({ url: redis.url, prefix: '', noPrefix: true, name: 'test-admin', offlineQueue: true })
  t.teardown(async () => { await closeRedis(main); await closeRedis(admin) })
  await Promise.all([waitReady(main), waitReady(admin)])
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const revoker = new Revoker({ redis: main, prefix: r.prefix, accessTokenTtlS: 900 })
  const testRedisLike = { redis: main, prefix: r.prefix, url: r.url, raw: admin }
  const doomed = await grantFor(testRedisLike, 'usr_a', 'cli_a')
  const kept = await grantFor(testRedisLike, 'usr_b', 'cli_b')
  const doomedToken = tokenFor(issuer, gw, doomed)
  const sessionId = await rawSession(gw, doomedToken)
  const keptSession = await rawSession(gw, tokenFor(issuer, gw, kept))
  const stream = await openStream(t, gw, doomedToken, sessionId)
  t.equal((await gw.app.inject('/health/ready')).statusCode, 200)

  // cut the feed's subscriber connection; revoke while it is down, before it resubscribes
  const lost = once(gw.app.revocationFeed, 'lost')
  const reconnecting = once(gw.app.revocationFeed, 'reconnecting')
  const list = await admin.client('LIST') as string
  const ids = list.split('\n').filter((l) => / name=revocation-feed[: ]/.test(l)).map((l) => /id=(\d+)/.exec(l)![1])
  t.equal(ids.length, 1, 'one subscriber connection'); if (ids.length !== 1) t.comment(list)
  await admin.client('KILL', 'ID', ids[0])
  await lost
  // read in the same tick as 'lost': the feed reconnects at once, so an HTTP round trip could miss the window
  t.equal(await gw.app.readiness.get('revocation-feed')!(), 'replaying revocation events', 'not ready while the subscription is down')
  const [delayMs] = await reconnecting as [number]
  t.equal(delayMs, 0, 'it reconnects without waiting for a backoff delay')
  // listening first: the feed may be back and apply the event before the revoke call returns
  const closed = once(gw.app.mcpSessions, 'closed')
  const result = await revoker.revokeGrant(doomed.id, how)
  t.equal(result.status, 'revoked')

  await gw.app.revocationFeed.waitReady()
  const [session, reason] = await closed as [{ id: string }, string]
  t.equal(session.id, sessionId, 'the replayed event closed the revoked session')
  t.equal(reason, 'revoked')
  await stream.ended
  t.pass('and ended its stream')
  t.equal((await gw.app.inject('/health/ready')).statusCode, 200, 'ready again after the replay')
  t.ok(gw.app.mcpSessions.get(keptSession), 'the other session is untouched')
  const metrics = await (await fetch(`${gw.url}/metrics`)).text()
  t.match(metrics, /gateway_revocations_applied_total\{scope="grant",source="(replay|live)"\} 1/)
  t.comment(metrics.includes('source="replay"') ? 'the event arrived by replay' : 'the event arrived live (resubscribed before the revoke)')
})

t.test('revocation aborts the grant\'s in-flight requests', async (t) => {
  const { r, issuer, repo, gw, ws } = await stuckGateway(t)
  const grant = await grantFor(r, 'usr_a')
  const token = tokenFor(issuer, gw, grant)
  const sessionId = await rawSession(gw, token)
  const entered = once(repo.entered, 'call')
  const res = await fetch(gw.mcpUrl, {
    method: 'POST',
    headers: mcpHeaders(token, sessionId),
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'list_recordings', arguments: { workspace_id: ws.id } } })
  })
  t.equal(res.status, 200, 'the call is in flight (an SSE response)')
  const ended = (async () => {
    try {
      const reader = res.body!.getReader()
      for (;;) if ((await reader.read()).done) break
    } catch { /* destroyed */ }
    return Date.now()
  })()
  await entered
  const started = Date.now()
  await new Revoker({ redis: r.redis, prefix: r.prefix, accessTokenTtlS: 900 }).revokeGrant(grant.id, how)
  const elapsed = (await ended) - started
  t.ok(elapsed < BOUND_MS, `the in-flight response ended ${elapsed} ms after the revoke call`)
  t.notOk(gw.app.mcpSessions.get(sessionId), 'and its session is gone')
})

t.test('a replica refuses a token it saw revoked from memory: 401 even while Redis is away, when every other token is 503', async (t) => {
  const redis = await privateRedis(t)
  const r = { url: redis.url, prefix: 'test:gw-remember:' }
  const main = createRedis({ url: redis.url, prefix: r.prefix, name: 'test', offlineQueue: true })
  t.teardown(async () => { main.disconnect() })
  await waitReady(main)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const testRedisLike = { redis: main, prefix: r.prefix, url: r.url, raw: main }
  const [doomed, kept, tokenOnly] = [await grantFor(testRedisLike, 'usr_a', 'cli_a'), await grantFor(testRedisLike, 'usr_b', 'cli_b'), await grantFor(testRedisLike, 'usr_c', 'cli_c')]
  const doomedToken = tokenFor(issuer, gw, doomed)
  const keptToken = tokenFor(issuer, gw, kept)
  const revokedJti = `jti-${Date.now()}`
  const revokedOne = tokenFor(issuer, gw, tokenOnly, { jti: revokedJti })
  const sibling = tokenFor(issuer, gw, tokenOnly)
  // a GET stream for each: its end is the event's arrival at this replica
  const stream = await openStream(t, gw, doomedToken, await rawSession(gw, doomedToken))
  const oneStream = await openStream(t, gw, revokedOne, await rawSession(gw, revokedOne))

  const revoker = new Revoker({ redis: main, prefix: r.prefix, accessTokenTtlS: 900 })
  await revoker.revokeGrant(doomed.id, how)
  await stream.ended
  await revoker.revokeAccessToken({ jti: revokedJti, exp: Math.floor(Date.now() / 1000) + 600, grantId: tokenOnly.id, clientId: tokenOnly.clientId, userId: tokenOnly.userId }, { path: 'oauth_revoke', actor: { type: 'client', id: tokenOnly.clientId } })
  await oneStream.ended

  await redis.stop()
  const revokedGrant = await rawCall(gw, doomedToken, undefined, 'tools/list')
  t.equal(revokedGrant.status, 401, 'the revoked grant\'s token: 401 from memory')
  t.match(revokedGrant.headers.get('www-authenticate') ?? '', 'error="invalid_token"')
  t.equal((await rawCall(gw, revokedOne, undefined, 'tools/list')).status, 401, 'the one revoked token: 401 from memory')
  t.equal((await rawCall(gw, keptToken, undefined, 'tools/list')).status, 503, 'any other token cannot be checked: 503, never allowed from memory')
  t.equal((await rawCall(gw, sibling, undefined, 'tools/list')).status, 503, 'nor another token of the grant whose one token was revoked')
})
