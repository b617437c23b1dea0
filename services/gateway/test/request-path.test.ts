// The /mcp request path piece by piece: the tool catalogue lists exactly what the SDK's McpServer lists for
// the same tools; the node:http transport answers the Streamable HTTP wire cases the way the SDK's transport
// does (status codes and JSON-RPC errors); verified tokens are remembered until they expire; the access
// index finds what a revocation names.
import t from 'tap'
import { once } from 'node:events'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { testRedis } from '@uspl/testing'
import { AccountStore, RedisWorkspaceRepository, type RevocationEvent } from '@uspl/core'
import { ToolCatalog } from '../src/mcp/catalog.ts'
import { registerTools } from '../src/mcp/server.ts'
import { v1Host } from '../src/tools/host.ts'
import { messageKind } from '../src/mcp/http-transport.ts'
import { AccessIndex } from '../src/mcp/access-index.ts'
import { VerifiedTokens, type AccessToken } from '../src/auth/verifier.ts'
import { startIssuer, startGateway, stuckGateway, grantFor, tokenFor, rawSession, mcpHeaders, initializeBody, PROTOCOL } from './helpers.ts'

t.test('the catalogue lists what the SDK\'s McpServer lists for the same tools, computed once', async (t) => {
  const r = await testRedis(t)
  const deps = { accounts: new AccountStore(r.redis), repo: new RedisWorkspaceRepository(r.redis) }
  const catalog = new ToolCatalog(deps)
  const server = new McpServer({ name: 'reference', version: '1' })
  registerTools(v1Host(server), deps)
  const [a, b] = InMemoryTransport.createLinkedPair()
  await server.connect(a)
  const client = new Client({ name: 'c', version: '1' })
  await client.connect(b)
  t.teardown(() => client.close())
  const reference = await client.listTools()
  t.same(JSON.parse(JSON.stringify(catalog.listResult)), JSON.parse(JSON.stringify({ tools: reference.tools })), 'the same tools, titles, descriptions, JSON Schemas and annotations')
  t.ok(Object.isFrozen(catalog.listResult.tools[0].inputSchema), 'shared by every session, so never mutated')

  const unknown = await catalog.call('no_such_tool', {}, {})
  t.same(unknown, { content: [{ type: 'text', text: 'MCP error -32602: Tool no_such_tool not found' }], isError: true }, 'an unknown tool is a tool error, worded as the SDK words it')
  const bad = await catalog.call('list_recordings', { workspace_id: 'ws_x', limit: 0 }, {})
  t.equal(bad.isError, true)
  t.match((bad.content[0] as { text: string }).text, /^MCP error -32602: Input validation error: Invalid arguments for tool list_recordings: .+ at limit$/, 'invalid arguments name the field')
  const noCaller = await catalog.call('list_workspaces', {}, {})
  t.match(noCaller, { isError: true }, 'a call without a caller is refused by the tool, not crashed')
})

t.test('messageKind: a structural JSON-RPC 2.0 check', async (t) => {
  t.equal(messageKind({ jsonrpc: '2.0', id: 1, method: 'ping' }), 'request')
  t.equal(messageKind({ jsonrpc: '2.0', id: 'a', method: 'tools/call', params: { name: 'x' } }), 'request')
  t.equal(messageKind({ jsonrpc: '2.0', method: 'notifications/initialized' }), 'notification')
  t.equal(messageKind({ jsonrpc: '2.0', id: 1, result: {} }), 'response')
  t.equal(messageKind({ jsonrpc: '2.0', id: 1, error: { code: -1, message: 'x' } }), 'response')
  for (const bad of [null, 1, 'x', [], {}, { jsonrpc: '1.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', id: 1.5, method: 'ping' }, { jsonrpc: '2.0', id: null, method: 'ping' },
    { jsonrpc: '2.0', id: 1, method: 'ping', params: [1] }, { jsonrpc: '2.0', id: 1, method: 'ping', params: null }, { jsonrpc: '2.0', id: 1 }, { jsonrpc: '2.0', id: 1, error: { code: 'x', message: 'y' } }, { jsonrpc: '2.0', method: 5 }]) {
    t.equal(messageKind(bad), null, `refused: ${JSON.stringify(bad)}`)
  }
})

t.test('the transport answers the Streamable HTTP wire cases as the SDK does', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const token = tokenFor(issuer, gw, await grantFor(r, 'usr_a'))
  const sessionId = await rawSession(gw, token)
  const post = (body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(gw.mcpUrl, { method: 'POST', headers: { ...mcpHeaders(token, sessionId), ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) })
  const error = async (res: Response): Promise<{ code: number, message: string }> => ((await res.json()) as { error: { code: number, message: string } }).error

  const notAcceptable = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { accept: 'application/json' })
  t.equal(notAcceptable.status, 406, 'a POST that does not accept SSE: 406')
  t.same(await error(notAcceptable), { code: -32000, message: 'Not Acceptable: Client must accept both application/json and text/event-stream' })
  const notRpc = await post({ hello: 'world' })
  t.equal(notRpc.status, 400)
  t.same(await error(notRpc), { code: -32700, message: 'Parse error: Invalid JSON-RPC message' }, 'not JSON-RPC: -32700')
  const reinit = await post(JSON.parse(initializeBody()))
  t.equal(reinit.status, 400)
  t.match(await error(reinit), { code: -32600, message: 'Invalid Request: Server already initialized' }, 'a second initialize on a session')
  const version = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-protocol-version': '1999-01-01' })
  t.equal(version.status, 400)
  t.match((await error(version)).message, /^Bad Request: Unsupported protocol version: 1999-01-01/, 'an unknown protocol version: 400')
  const tooMany = await post(Array.from({ length: 101 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' })))
  t.equal(tooMany.status, 400, 'a batch over 100 messages')

  const note = await post({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 0 } })
  t.equal(note.status, 202, 'notifications alone: 202')
  t.equal(await note.text(), '', 'with no body')

  const ping = await post({ jsonrpc: '2.0', id: 7, method: 'ping' })
  t.equal(ping.status, 200)
  t.match(ping.headers.get('content-type'), 'text/event-stream', 'a request is answered on an SSE stream')
  t.equal(ping.headers.get('mcp-session-id'), sessionId)
  t.equal(ping.headers.get('x-accel-buffering'), 'no', 'which proxies must not buffer')
  t.equal(await ping.text(), 'event: message\ndata: {"result":{},"jsonrpc":"2.0","id":7}\n\n', 'one event, then the end')

  const batch = await post([{ jsonrpc: '2.0', id: 'a', method: 'ping' }, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 0 } }, { jsonrpc: '2.0', id: 'b', method: 'tools/list' }])
  const events = (await batch.text()).split('\n\n').filter(Boolean).map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)) as { id: string })
  t.same(events.map((e) => e.id).sort(), ['a', 'b'], 'a batch: every request answered on the one stream')

  const unknownMethod = await post({ jsonrpc: '2.0', id: 8, method: 'no/such/method' })
  t.match(await unknownMethod.text(), '"code":-32601', 'an unknown method: the SDK\'s JSON-RPC error, on the stream')

  const first = await fetch(gw.mcpUrl, { headers: { ...mcpHeaders(token, sessionId), accept: 'text/event-stream' } })
  t.equal(first.status, 200, 'GET opens the standalone stream')
  const second = await fetch(gw.mcpUrl, { headers: { ...mcpHeaders(token, sessionId), accept: 'text/event-stream' } })
  t.equal(second.status, 409, 'a second GET stream: 409')
  const noSse = await fetch(gw.mcpUrl, { headers: { ...mcpHeaders(token, sessionId), accept: 'application/json' } })
  t.equal(noSse.status, 406, 'a GET that does not accept SSE: 406')
  const put = await fetch(gw.mcpUrl, { method: 'PUT', headers: mcpHeaders(token, sessionId), body: '{}' })
  t.equal(put.status, 404, 'PUT has no route')

  const closed = once(gw.app.mcpSessions, 'closed')
  const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: mcpHeaders(token, sessionId) })
  t.equal(del.status, 200, 'DELETE ends the session')
  await closed
  const reader = first.body!.getReader()
  while (!(await reader.read()).done);
  t.pass('and its GET stream ends')
  t.equal((await post({ jsonrpc: '2.0', id: 9, method: 'ping' })).status, 404, 'the ended session: 404')
  t.equal(PROTOCOL, '2025-06-18')
})

t.test('verified tokens are remembered by their exact text until they expire', async (t) => {
  const tokens = new VerifiedTokens(2, 60)
  const now = 1_000_000
  const token = (jti: string, exp: number): AccessToken => ({ jti, exp } as AccessToken)
  tokens.set('a', token('a', now + 10))
  t.equal(tokens.get('a', now)?.jti, 'a')
  t.equal(tokens.get('a ', now), undefined, 'another text is another token')
  t.equal(tokens.get('a', now + 69)?.jti, 'a', 'within the clock skew after exp')
  t.equal(tokens.get('a', now + 70), undefined, 'gone once exp + skew has passed')
  t.equal(tokens.size, 0, 'and forgotten')
  tokens.set('b', token('b', now + 10))
  tokens.set('c', token('c', now + 10))
  tokens.set('d', token('d', now + 10))
  t.equal(tokens.size, 2, 'bounded')
  t.equal(tokens.get('b', now), undefined, 'the oldest goes first')
})

t.test('the access index finds exactly what a revocation names', async (t) => {
  const index = new AccessIndex<{ grantId: string, clientId: string, userId: string, name: string }>()
  const a = { grantId: 'g1', clientId: 'c1', userId: 'u1', name: 'a' }
  const b = { grantId: 'g2', clientId: 'c1', userId: 'u2', name: 'b' }
  const c = { grantId: 'g3', clientId: 'c2', userId: 'u1', name: 'c' }
  for (const x of [a, b, c]) index.add(x)
  index.trackToken('j1', a)
  const names = (e: Partial<RevocationEvent>): string[] => [...index.matching({ grantIds: [], clientId: null, userId: null, jti: null, ...e } as RevocationEvent)].map((x) => x.name).sort()
  t.same(names({ scope: 'grant', grantIds: ['g2'] }), ['b'], 'a grant')
  t.same(names({ scope: 'client', clientId: 'c1', grantIds: [] }), ['a', 'b'], 'a client')
  t.same(names({ scope: 'user', userId: 'u1', grantIds: ['g1'] }), ['a', 'c'], 'a user')
  t.same(names({ scope: 'token', jti: 'j1', grantIds: ['g1'] }), ['a'], 'a token: only what ends with it')
  index.untrackToken('j1', a)
  t.same(names({ scope: 'token', jti: 'j1', grantIds: ['g1'] }), [], 'untracked')
  index.remove(b)
  t.same(names({ scope: 'client', clientId: 'c1', grantIds: [] }), ['a'], 'removed')
  t.same(index.ofGrant('g3').map((x) => x.name), ['c'])
})

t.test('duplicate-request-id: a request id still in flight in the session is refused, and the first request still gets its answer', async (t) => {
  const { r, issuer, repo, gw, ws } = await stuckGateway(t)
  const token = tokenFor(issuer, gw, await grantFor(r, 'usr_a'))
  const sessionId = await rawSession(gw, token)
  const post = (body: unknown): Promise<Response> => fetch(gw.mcpUrl, { method: 'POST', headers: mcpHeaders(token, sessionId), body: JSON.stringify(body) })

  const inBatch = await post([{ jsonrpc: '2.0', id: 5, method: 'ping' }, { jsonrpc: '2.0', id: 5, method: 'ping' }])
  t.equal(inBatch.status, 400, 'one id twice in a batch')
  t.match(await inBatch.json(), { error: { code: -32600, message: 'Invalid Request: request id 5 is already in use in this session' } })

  // id 7 stays in flight (the repository never answers), then the same id again
  const entered = once(repo.entered, 'call')
  const slow = await post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'list_recordings', arguments: { workspace_id: ws.id } } })
  await entered
  const again = await post({ jsonrpc: '2.0', id: 7, method: 'ping' })
  t.equal(again.status, 400, 'the id of a request in flight')
  t.match(await again.json(), { error: { code: -32600 } })
  const other = await post({ jsonrpc: '2.0', id: 8, method: 'ping' })
  t.equal(other.status, 200)
  t.match(await other.text(), '"id":8', 'another id is answered as usual')
  // the slow call is still the one its stream answers: cancelling it ends that stream, not another
  await post({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'test' } })
  const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: mcpHeaders(token, sessionId) })
  t.equal(del.status, 200)
  await slow.text()
  t.pass('the first request\'s stream ends with the session')
})
