// Enterprise-managed authorization end to end: a local test IdP (its own keys) issues an ID-JAG, the
// client exchanges it at the token endpoint (no browser step), and the MCP SDK's own Client and Streamable
// HTTP transport call a tool on a gateway replica with that access token. All services, real HTTP, one
// real Redis (the suite's prefix). The same IdP, as a Shared Signals transmitter, cuts the session off.
import t from 'tap'
import { CAEP_SESSION_REVOKED, enterpriseIssuerId } from '@uspl/core'
import { enterprise, exchange, connect } from './enterprise-fixtures.ts'

t.test('an ID-JAG from the company IdP gives the MCP SDK client a working session, with no browser step', async (t) => {
  const e = await enterprise(t)
  const tokens = await exchange(e)
  t.equal(tokens.refresh_token, undefined)
  const client = await connect(t, e.s.gateways[0], tokens.access_token)
  const result = await client.callTool({ name: 'list_workspaces', arguments: {} })
  t.notOk(result.isError, 'the tool call succeeds')
  t.match(JSON.stringify(result.content), 'E2E Workspace')
  // the connection shows as managed by the IdP in the operator API
  const list = await fetch(`${e.s.connectionsUrl}/v1/connections?user_id=${e.person.user.id}`, { headers: { authorization: `Bearer ${e.s.operatorKey}` } })
  const items = (await list.json() as { items: Array<{ client_id: string, managed_by: { issuer_id: string } | null }> }).items
  t.same(items.map((i) => [i.client_id, i.managed_by?.issuer_id]), [[e.clientId, enterpriseIssuerId(e.idp.issuer)]])
})

t.test('the company IdP pushes a CAEP session-revoked SET: the user\'s MCP session loses access at once', async (t) => {
  const e = await enterprise(t)
  const tokens = await exchange(e)
  const client = await connect(t, e.s.gateways[1], tokens.access_token)
  t.notOk((await client.callTool({ name: 'list_workspaces', arguments: {} })).isError, 'working before the signal')
  const set = e.idp.securityEvent(e.idp.setClaims({ audience: e.s.issuer, eventType: CAEP_SESSION_REVOKED, email: e.person.user.email, event: { initiating_entity: 'admin', reason_admin: { en: 'device lost' } } }))
  const res = await fetch(`${e.s.issuer}/ssf/receiver`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: set })
  t.equal(res.status, 202)
  // the revocation was written before the 202: the very next call with the old session and token is refused
  await t.rejects(client.callTool({ name: 'list_workspaces', arguments: {} }), 'the session lost access')
  const again = await fetch(e.s.gateways[0], { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) })
  t.equal(again.status, 401, 'the token is dead on every replica')
  // the same SET again is a replay
  const replay = await fetch(`${e.s.issuer}/ssf/receiver`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: set })
  t.equal(replay.status, 400)
  t.equal((await replay.json() as { err: string }).err, 'invalid_request')
  // a fresh ID-JAG from the IdP (it decides again) gives access back
  const fresh = await exchange(e)
  const back = await connect(t, e.s.gateways[0], fresh.access_token)
  t.notOk((await back.callTool({ name: 'list_workspaces', arguments: {} })).isError)
})
