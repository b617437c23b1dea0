// Enterprise-managed authorization end to end: a local test IdP (its own keys) issues an ID-JAG, the
// client exchanges it at the token endpoint (no browser step), and the MCP SDK's own Client and Streamable
// HTTP transport call a tool on a gateway replica with that access token. All services, real HTTP, one
// real Redis (the suite's prefix).
import t from 'tap'
import { enterpriseIssuerId } from '@uspl/core'
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
