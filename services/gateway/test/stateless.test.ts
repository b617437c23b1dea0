// Protocol revision 2026-07-28 (stateless) at the same /mcp URL as the 2025 sessions: the v2 SDK's own
// client (pinned to 2026-07-28) discovers, lists and calls tools over real HTTP with a real token, while a
// 2025-11-25 session works on the same gateway; the exact wire format; the same 401 challenge for a bad
// token; revoking a grant aborts its in-flight stateless calls and nothing else.
import t from 'tap'
import { once } from 'node:events'
import { testRedis } from '@uspl/testing'
import { AccountStore, Revoker, RedisWorkspaceRepository, keys } from '@uspl/core'
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client'
import { startIssuer, startGateway, stuckGateway, grantFor, tokenFor, connect, rawSession, rawCall, text, type Gateway } from './helpers.ts'

const MODERN = '2026-07-28'
const how = { path: 'connections_user' as const, actor: { type: 'user' as const, id: 'test' } }

/** A v2 SDK client pinned to the stateless revision. */
async function modernClient (t: { teardown: (fn: () => unknown) => void }, gw: Gateway, token: string): Promise<ClientV2> {
  const client = new ClientV2({ name: 'stateless-test', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } })
  await client.connect(new TransportV2(new URL(gw.mcpUrl), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }))
  t.teardown(() => client.close())
  return client
}

/** A 2026-07-28 request exactly as the spec puts it on the wire. */
function modernRequest (token: string, method: string, params: Record<string, unknown> = {}, id = 1): RequestInit {
  return {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': MODERN,
      'mcp-method': method,
      ...(method === 'tools/call' ? { 'mcp-name': String(params.name) } : {})
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method,
      params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1.0.0' } } }
    })
  }
}

t.test('2026-07-28 with the v2 client, next to a 2025-11-25 session', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const accounts = new AccountStore(r.redis)
  const ws = await accounts.createWorkspace('Stateless')
  await accounts.setRole(ws.id, 'usr_alice', 'member')
  await accounts.setRole(ws.id, 'usr_owner', 'owner')
  const grant = await grantFor(r, 'usr_alice', 'cli_modern')
  const token = tokenFor(issuer, gw, grant)

  // a 2025-11-25 session of another client of the same user, open throughout
  const legacyGrant = await grantFor(r, 'usr_alice', 'cli_legacy')
  const legacy = await connect(t, gw, tokenFor(issuer, gw, legacyGrant))

  const client = await modernClient(t, gw, token)
  t.equal(client.getNegotiatedProtocolVersion(), MODERN, 'the client speaks 2026-07-28')
  const discovered = await client.discover()
  t.ok(discovered.supportedVersions.includes(MODERN), 'server/discover lists 2026-07-28')
  t.match(client.getServerVersion(), { name: 'uspl-workspace' }, 'and the server\'s identity')
  t.ok(discovered.capabilities.tools, 'and the tools capability')
  t.match(discovered.instructions ?? '', 'list_workspaces')

  const { tools } = await client.listTools()
  t.same(tools.map((x) => x.name).sort(), ['create_recording_link', 'delete_recording', 'delete_recording_link', 'get_recording', 'get_recording_link', 'list_recording_links', 'list_recordings', 'list_workspaces', 'update_recording_link'], 'the same nine tools')
  t.ok(tools.find((x) => x.name === 'list_recordings')?.inputSchema.properties?.cursor, 'with their schemas')

  const listed = await client.callTool({ name: 'list_workspaces', arguments: {} })
  t.notOk(listed.isError)
  t.match(text(listed), 'Stateless', 'tools/call acts as the token\'s user')
  t.match(listed.structuredContent, { workspaces: [{ id: ws.id, role: 'member' }] })

  // the same role rules: a member may create a link, may not delete someone else's recording
  const repo = new RedisWorkspaceRepository(r.redis)
  const rec = await repo.createRecording(ws.id, { title: 'Owner\'s', durationSeconds: 10 }, 'usr_owner')
  const created = await client.callTool({ name: 'create_recording_link', arguments: { workspace_id: ws.id, recording_id: rec.id, title: 'Share' } })
  t.notOk(created.isError, 'a member creates a link')
  const refused = await client.callTool({ name: 'delete_recording', arguments: { workspace_id: ws.id, recording_id: rec.id } })
  t.ok(refused.isError, 'a member may not delete another member\'s recording')
  t.match(text(refused), 'needs the owner or admin role')
  const bad = await client.callTool({ name: 'list_recordings', arguments: { workspace_id: ws.id, limit: 0 } })
  t.ok(bad.isError, 'bad arguments are a tool error')

  t.equal(gw.app.mcpSessions.size, 1, 'no session was opened for the stateless client')
  t.equal(await r.redis.scard(keys.grantSessions(grant.id)), 0, 'nor indexed')
  t.equal(gw.app.mcpSessions.requestCount, 0, 'nothing left in flight')

  const legacyCall = await legacy.client.callTool({ name: 'list_workspaces', arguments: {} })
  t.notOk(legacyCall.isError, 'the 2025-11-25 session works alongside')
  t.match(text(legacyCall), 'Stateless')
  t.equal(legacy.client.getServerVersion()?.name, 'uspl-workspace')

  const metrics = await (await fetch(`${gw.url}/metrics`)).text()
  t.match(metrics, /gateway_mcp_stateless_requests_total\{outcome="completed"\} \d+/, 'stateless requests counted')
})

t.test('the wire format of 2026-07-28, and what is not served statelessly', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const token = tokenFor(issuer, gw, await grantFor(r, 'usr_a'))

  const discover = await fetch(gw.mcpUrl, modernRequest(token, 'server/discover'))
  t.equal(discover.status, 200)
  t.equal(discover.headers.get('mcp-session-id'), null, 'no session id')
  t.ok(discover.headers.get('x-request-id'), 'the request id header as on every answer')
  const body = await discover.json() as { result: { supportedVersions: string[], capabilities: Record<string, unknown>, resultType?: string, _meta: Record<string, { name: string }> } }
  t.ok(body.result.supportedVersions.includes(MODERN), 'server/discover: the supported versions')
  t.ok(body.result.capabilities.tools, 'the capabilities')
  t.equal(body.result.resultType, 'complete', 'results carry resultType')
  t.equal(body.result._meta['io.modelcontextprotocol/serverInfo'].name, 'uspl-workspace', 'server info in _meta')

  const list = await fetch(gw.mcpUrl, modernRequest(token, 'tools/list'))
  t.equal(list.status, 200)
  const listed = await list.json() as { result: { tools: unknown[], resultType?: string } }
  t.equal(listed.result.tools.length, 9)
  t.equal(listed.result.resultType, 'complete', 'results carry resultType')

  const call = await fetch(gw.mcpUrl, modernRequest(token, 'tools/call', { name: 'list_workspaces', arguments: {} }))
  t.equal(call.status, 200)
  t.match(await call.json(), { result: { content: [{ type: 'text', text: /not a member of any workspace/ }] } })

  // the 2026-07-28 header without the _meta envelope: the v2 SDK answers the error, no session opens
  const noMeta = await fetch(gw.mcpUrl, { ...modernRequest(token, 'tools/list'), body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }) })
  t.equal(noMeta.status, 400, 'a 2026-07-28 header without the envelope is refused')
  t.match(await noMeta.json(), { error: { code: -32602 } })

  // a request with neither a session nor a 2026-07-28 claim is still the 2025 error
  t.equal((await rawCall(gw, token, undefined, 'tools/list')).status, 400, '2025 request without a session id: 400 as before')
  // a 2025 session is not served statelessly, and a session id with a 2025 request still works
  const sessionId = await rawSession(gw, token, '2025-11-25')
  t.equal((await rawCall(gw, token, sessionId, 'tools/list')).status, 200)

  // auth: the same challenge as for a 2025 request
  const bad = await fetch(gw.mcpUrl, modernRequest('not-a-jwt', 'tools/list'))
  t.equal(bad.status, 401, 'a bad token is refused')
  const legacyBad = await rawCall(gw, 'not-a-jwt', undefined, 'tools/list')
  t.equal(bad.headers.get('www-authenticate'), legacyBad.headers.get('www-authenticate'), 'with the same challenge as a 2025 request')
  t.match(bad.headers.get('www-authenticate') ?? '', /^Bearer resource_metadata="[^"]+", scope="mcp:tools", error="invalid_token"/)
  const none = await fetch(gw.mcpUrl, { ...modernRequest(token, 'tools/list'), headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/list' } })
  t.equal(none.status, 401, 'no token: 401')
  t.notMatch(none.headers.get('www-authenticate') ?? '', 'error=', 'without an error code, as for a 2025 request')

  // the v2 client with a bad token is refused too
  const refused = new ClientV2({ name: 'bad', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } })
  const attempt = (async () => {
    await refused.connect(new TransportV2(new URL(gw.mcpUrl), { requestInit: { headers: { Authorization: 'Bearer not-a-jwt' } } }))
    await refused.listTools()
  })()
  await t.rejects(attempt, 'the v2 client cannot use a bad token')
  await refused.close()
})

t.test('revoking a grant aborts its in-flight stateless calls, and only those', async (t) => {
  const { r, issuer, repo, gw, ws } = await stuckGateway(t)
  const doomed = await grantFor(r, 'usr_a', 'cli_doomed')
  const kept = await grantFor(r, 'usr_a', 'cli_kept')
  const doomedToken = tokenFor(issuer, gw, doomed)
  const keptToken = tokenFor(issuer, gw, kept)

  // two stuck calls in flight: one per grant, one through the v2 client, one raw
  const client = await modernClient(t, gw, doomedToken)
  const bothEntered = new Promise<void>((resolve) => {
    let n = 0
    repo.entered.on('call', () => { if (++n === 2) resolve() })
  })
  const doomedCall = client.callTool({ name: 'list_recordings', arguments: { workspace_id: ws.id } })
  const doomedSettled = doomedCall.then(() => 'answered', (err: Error) => err.message)
  const keptController = new AbortController()
  t.teardown(() => keptController.abort())
  const keptCall = fetch(gw.mcpUrl, { ...modernRequest(keptToken, 'tools/call', { name: 'list_recordings', arguments: { workspace_id: ws.id } }), signal: keptController.signal })
  keptCall.catch(() => {})
  await bothEntered
  t.equal(gw.app.mcpSessions.requestsOfGrant(doomed.id).length, 1, 'the doomed grant\'s call is tracked')
  t.equal(gw.app.mcpSessions.requestsOfGrant(kept.id).length, 1, 'and the other one')

  const closed = once(gw.app.mcpSessions, 'request-closed')
  const started = Date.now()
  await new Revoker({ redis: r.redis, prefix: r.prefix, accessTokenTtlS: 900 }).revokeGrant(doomed.id, how)
  const [request] = await closed as [{ grantId: string }]
  t.equal(request.grantId, doomed.id, 'the revoked grant\'s call was aborted')
  const outcome = await doomedSettled
  const elapsed = Date.now() - started
  t.not(outcome, 'answered', `the client saw its call fail (${outcome})`)
  t.ok(elapsed < 1000, `${elapsed} ms after the revoke call`)
  t.equal(gw.app.mcpSessions.requestsOfGrant(doomed.id).length, 0)
  t.equal(gw.app.mcpSessions.requestsOfGrant(kept.id).length, 1, 'the other grant\'s call is still in flight')

  const after = await fetch(gw.mcpUrl, modernRequest(doomedToken, 'tools/list'))
  t.equal(after.status, 401, 'the revoked token answers 401')
  t.match(after.headers.get('www-authenticate') ?? '', 'error="invalid_token"')
  const metrics = await (await fetch(`${gw.url}/metrics`)).text()
  t.match(metrics, 'gateway_mcp_stateless_requests_total{outcome="revoked"} 1')
  t.match(metrics, 'gateway_revoked_sessions_closed_total 1')
})

t.test('a raw in-flight stateless call ends with 401 and the challenge when its grant is revoked', async (t) => {
  const { r, issuer, repo, gw, ws } = await stuckGateway(t)
  const grant = await grantFor(r, 'usr_a')
  const token = tokenFor(issuer, gw, grant)
  const entered = once(repo.entered, 'call')
  const pending = fetch(gw.mcpUrl, modernRequest(token, 'tools/call', { name: 'list_recordings', arguments: { workspace_id: ws.id } }))
  await entered
  await new Revoker({ redis: r.redis, prefix: r.prefix, accessTokenTtlS: 900 }).revokeGrant(grant.id, how)
  const res = await pending
  t.equal(res.status, 401, 'the unanswered call answers 401')
  t.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/)
  t.match(await res.json(), { error: 'invalid_token' })
})
