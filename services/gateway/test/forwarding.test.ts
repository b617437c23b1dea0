// A session reached through the wrong replica: the ingress hashes Mcp-Session-Id, but initialize carries
// none, so later requests often reach a replica that does not hold the session. That replica reads the
// session's index entry (on the miss only) and forwards the request to the owner, streams included; the
// owner authenticates it as always, revocation and DELETE end what the client sees, and a forwarded request
// is never forwarded again.
import t from 'tap'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { testRedis, freePort, type TestRedis } from '@uspl/testing'
import { AccountStore, Revoker, keys } from '@uspl/core'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startIssuer, startGateway, grantFor, tokenFor, rawSession, rawCall, openStream, mcpHeaders, bodylessHeaders, text, type Gateway, type Issuer } from './helpers.ts'

const how = { path: 'connections_user' as const, actor: { type: 'user' as const, id: 'test' } }

interface Pair { r: TestRedis, issuer: Issuer, a: Gateway, b: Gateway }

/** Two replicas on one Redis prefix behind one public resource URL, each with its own REPLICA_URL. */
async function pair (t: { teardown: (fn: () => unknown) => void }): Promise<Pair> {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const a = await startGateway(t, r, issuer, { REPLICA_ID: 'a' })
  const b = await startGateway(t, r, issuer, { REPLICA_ID: 'b', GATEWAY_RESOURCE_URL: a.mcpUrl })
  return { r, issuer, a, b }
}
async function metricsOf (gw: Gateway): Promise<string> {
  return (await fetch(`${gw.url}/metrics`)).text()
}

function forwardedCount (metrics: string, method: string, outcome: string): number {
  const m = new RegExp(`gateway_mcp_forwarded_requests_total\\{method="${method}",outcome="${outcome}"\\} (\\d+)`).exec(metrics)
  return m ? Number(m[1]) : 0
}

t.test('a session opened on A is served through B: tool calls, the GET stream, revocation', async (t) => {
  const { r, issuer, a, b } = await pair(t)
  const accounts = new AccountStore(r.redis)
  const ws = await accounts.createWorkspace('Forwarded')
  await accounts.setRole(ws.id, 'usr_alice', 'member')
  const grant = await grantFor(r, 'usr_alice', 'cli_claude')
  const token = tokenFor(issuer, a, grant)

  // the ingress's view: initialize (no id) lands on A, everything with the id is hashed to B
  const routed: string[] = []
  const client = new Client({ name: 'forwarding-test', version: '1.0.0' })
  const transport = new StreamableHTTPClientTransport(new URL(b.mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: async (url, init) => {
      const toA = init?.method === 'POST' && typeof init.body === 'string' && init.body.includes('"method":"initialize"')
      routed.push(`${init?.method ?? 'GET'} ${toA ? 'A' : 'B'}`)
      return fetch(toA ? a.mcpUrl : url, init)
    }
  })
  await client.connect(transport)
  t.teardown(() => client.close())
  const sessionId = transport.sessionId!
  t.ok(a.app.mcpSessions.get(sessionId), 'the session lives on A')
  t.notOk(b.app.mcpSessions.get(sessionId), 'not on B')
  t.match(await r.redis.hgetall(keys.mcpSession(sessionId)), { replica: 'a', url: a.url }, 'the index records the owner and its URL')

  const listed = await client.listTools()
  t.equal(listed.tools.length, 9, 'tools/list through B')
  const res = await client.callTool({ name: 'list_workspaces', arguments: {} })
  t.notOk(res.isError)
  t.match(text(res), 'Forwarded', 'tools/call through B reaches the owner with the caller')
  t.ok(routed.includes('POST A') && routed.filter((x) => x.endsWith('B')).length >= 3, `routed: ${routed.join(', ')}`)

  // a POST answered as SSE streams through B
  const sse = await rawCall(b, token, sessionId, 'tools/call', { name: 'list_workspaces', arguments: {} })
  t.equal(sse.status, 200)
  t.match(sse.headers.get('content-type') ?? '', 'text/event-stream', 'an SSE answer through B')
  t.match(await sse.text(), /event: message\ndata: .*Forwarded/)

  // the GET stream, opened through B, is the owner's stream
  const session = a.app.mcpSessions.get(sessionId)!
  if (session.stream) {
    // the SDK client opened its own GET stream already; close it to open ours
    const closed = once(a.app.mcpSessions, 'stream-closed')
    session.transport.closeStandaloneSSEStream()
    session.stream.res.end()
    await closed
  }
  const stream = await openStream(t, b, token, sessionId)
  t.equal(stream.status, 200, 'GET through B opens the stream')
  t.ok(a.app.mcpSessions.get(sessionId)?.stream, 'held by A')
  t.equal(b.app.mcpSessions.requestsOfGrant(grant.id).length, 1, 'B tracks the forwarded stream under its grant')

  const metrics = await metricsOf(b)
  t.ok(forwardedCount(metrics, 'POST', 'proxied') >= 3, 'forwarded POSTs counted')
  t.ok(forwardedCount(metrics, 'GET', 'proxied') >= 1, 'forwarded GETs counted')
  t.equal(forwardedCount(await metricsOf(a), 'POST', 'proxied'), 0, 'A forwarded nothing')

  const started = Date.now()
  await new Revoker({ redis: r.redis, prefix: r.prefix, accessTokenTtlS: 900 }).revokeGrant(grant.id, how)
  const endedAt = await stream.ended
  t.ok(endedAt - started < 1000, `the stream seen through B ended ${endedAt - started} ms after the revoke`)
  t.notOk(a.app.mcpSessions.get(sessionId), 'the session is gone on A')
  const after = await rawCall(b, token, sessionId, 'tools/list')
  t.equal(after.status, 401, 'the old token answers 401 on B, before any forwarding')
})

t.test('DELETE through B ends the session on A, and the stream seen through B; a client leaving aborts the upstream', async (t) => {
  const { r, issuer, a, b } = await pair(t)
  const grant = await grantFor(r, 'usr_a')
  const token = tokenFor(issuer, a, grant)
  const sessionId = await rawSession(a, token)

  // the client going away: B aborts its upstream request, and A's stream closes
  const first = await openStream(t, b, token, sessionId)
  t.equal(first.status, 200)
  const streamClosed = once(a.app.mcpSessions, 'stream-closed')
  const forgotten = once(b.app.mcpSessions, 'request-closed')
  first.abort()
  await streamClosed
  t.pass('the client leaving B closed the stream on A')
  await forgotten
  t.equal(b.app.mcpSessions.requestCount, 0, 'and B forgot it')

  const stream = await openStream(t, b, token, sessionId)
  t.equal(stream.status, 200)
  const del = await fetch(b.mcpUrl, { method: 'DELETE', headers: bodylessHeaders(token, sessionId) })
  t.equal(del.status, 200, 'DELETE through B')
  await stream.ended
  t.pass('the owner closing the session ended the stream seen through B')
  t.notOk(a.app.mcpSessions.get(sessionId), 'gone on A')
  t.equal(await r.redis.exists(keys.mcpSession(sessionId)), 0, 'and from the index')
  t.equal((await rawCall(b, token, sessionId, 'tools/list')).status, 404, 'the ended id answers 404 through B')
})

t.test('what B does not forward: unknown ids, another grant, bad tokens, already forwarded requests', async (t) => {
  const { r, issuer, a, b } = await pair(t)
  const grant = await grantFor(r, 'usr_alice', 'cli_claude')
  const other = await grantFor(r, 'usr_mallory', 'cli_evil')
  const token = tokenFor(issuer, a, grant)
  const sessionId = await rawSession(a, token)
  const before = await metricsOf(b)

  const unknown = await rawCall(b, token, 'no-such-session', 'tools/list')
  t.equal(unknown.status, 404, 'an id unknown everywhere: 404 on B')
  t.match(await unknown.json(), { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' } })

  const foreign = await rawCall(b, tokenFor(issuer, a, other), sessionId, 'tools/call', { name: 'list_workspaces', arguments: {} })
  t.equal(foreign.status, 404, 'another grant\'s token: refused on B')
  const foreignGet = await fetch(b.mcpUrl, { headers: { ...bodylessHeaders(tokenFor(issuer, a, other), sessionId), accept: 'text/event-stream' } })
  t.equal(foreignGet.status, 404, 'and its GET')
  // the owner refuses it too when it does arrive (a stale or lying index cannot grant anything)
  const direct = await fetch(a.mcpUrl, { method: 'POST', headers: { ...mcpHeaders(tokenFor(issuer, a, other), sessionId), 'x-uspl-forwarded-by': 'b' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) })
  t.equal(direct.status, 404, 'the owner refuses another grant\'s forwarded request')

  const bad = await rawCall(b, 'not-a-jwt', sessionId, 'tools/list')
  t.equal(bad.status, 401, 'a bad token is refused on B')
  t.match(bad.headers.get('www-authenticate') ?? '', 'error="invalid_token"')
  const none = await fetch(b.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId }, body: '{}' })
  t.equal(none.status, 401, 'no token: 401 on B')

  const marked = await fetch(b.mcpUrl, { method: 'POST', headers: { ...mcpHeaders(token, sessionId), 'x-uspl-forwarded-by': 'c' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) })
  t.equal(marked.status, 404, 'a request already forwarded is not forwarded again')

  const after = await metricsOf(b)
  t.equal(forwardedCount(after, 'POST', 'proxied'), forwardedCount(before, 'POST', 'proxied'), 'B forwarded none of them')
  t.equal(forwardedCount(after, 'GET', 'proxied'), 0)
  t.match(after, /gateway_mcp_session_refusals_total\{reason="other_grant"\} 2/)
  t.ok(a.app.mcpSessions.get(sessionId), 'the session is intact')
  t.equal((await rawCall(b, token, sessionId, 'tools/list')).status, 200, 'and its own token still goes through B')
})

t.test('the owner gone: 404; the owner failing: 502', async (t) => {
  const { r, issuer, a, b } = await pair(t)
  const grant = await grantFor(r, 'usr_a')
  const token = tokenFor(issuer, a, grant)

  // an index entry whose replica no longer listens (it crashed; its entries have not expired yet)
  const deadPort = await freePort()
  await r.redis.hset(keys.mcpSession('ghost-session'), { grant: grant.id, client: grant.clientId, user: grant.userId, replica: 'ghost', url: `http://127.0.0.1:${deadPort}`, opened: '1', last_active: '1' })
  const gone = await rawCall(b, token, 'ghost-session', 'tools/list')
  t.equal(gone.status, 404, 'no connection to the owner: 404')
  t.match(await gone.json(), { error: { code: -32001, message: 'Session not found' } })

  // a replica that accepts the connection and drops it without an answer
  const sockets = new Set<Socket>()
  const broken = createServer((socket) => { sockets.add(socket); socket.on('data', () => socket.destroy()) })
  broken.listen(0, '127.0.0.1')
  await once(broken, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); broken.close() })
  const port = (broken.address() as { port: number }).port
  await r.redis.hset(keys.mcpSession('broken-session'), { grant: grant.id, client: grant.clientId, user: grant.userId, replica: 'broken', url: `http://127.0.0.1:${port}`, opened: '1', last_active: '1' })
  const failed = await rawCall(b, token, 'broken-session', 'tools/list')
  t.equal(failed.status, 502, 'the owner failing before answering: 502')
  t.match(await failed.json(), { jsonrpc: '2.0', error: { code: -32603 }, id: null })

  const metrics = await metricsOf(b)
  t.equal(forwardedCount(metrics, 'POST', 'owner_gone'), 1)
  t.equal(forwardedCount(metrics, 'POST', 'upstream_error'), 1)
  t.equal(b.app.mcpSessions.requestCount, 0, 'nothing left tracked')
})

t.test('an absolute-form request target (POST http://host/mcp) is forwarded to the owner, not left hanging', async (t) => {
  const { r, issuer, a, b } = await pair(t)
  const accounts = new AccountStore(r.redis)
  const ws = await accounts.createWorkspace('Absolute')
  await accounts.setRole(ws.id, 'usr_alice', 'member')
  const grant = await grantFor(r, 'usr_alice')
  const token = tokenFor(issuer, a, grant)
  const sessionId = await rawSession(a, token)
  const body = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'list_workspaces', arguments: {} } })
  const { connect } = await import('node:net')
  const socket = connect(Number(new URL(b.url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  socket.write(`POST http://evil.example/mcp HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: ${sessionId}\r\nMcp-Protocol-Version: 2025-06-18\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  let answer = ''
  socket.on('data', (chunk: Buffer) => { answer += chunk.toString() })
  const closed = once(socket, 'close').then(() => 'closed')
  const stuck = new Promise<string>((resolve) => { const timer = setTimeout(() => resolve('no answer'), 5000); timer.unref() })
  t.equal(await Promise.race([closed, stuck]), 'closed', 'B answered and closed the connection')
  t.match(answer, /^HTTP\/1\.1 200 /, 'the owner answered through B')
  t.match(answer, 'Absolute', 'with the caller\'s workspace')
  t.equal(b.app.mcpSessions.requestCount, 0, 'nothing left tracked')
})
