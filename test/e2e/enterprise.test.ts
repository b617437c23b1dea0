// Enterprise-managed authorization end to end: a local test IdP (its own keys) issues an ID-JAG, the
// client exchanges it at the token endpoint (no browser step), and the MCP SDK's own Client and Streamable
// HTTP transport call a tool on a gateway replica with that access token. All services, real HTTP, one
// real Redis (the suite's prefix).
import t from 'tap'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { EnterpriseIssuerStore, emailDomain, enterpriseIssuerId } from '@uspl/core'
import { TestIdp } from '@uspl/testing/enterprise-idp'
import { startSuite, type Suite, type Person } from './suite.ts'

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

interface Enterprise { s: Suite, idp: TestIdp, person: Person, clientId: string }

async function enterprise (t: Parameters<typeof startSuite>[0]): Promise<Enterprise> {
  const s = await startSuite(t)
  const person = await s.person('Eve')
  const idp = new TestIdp('https://idp.e2e.example', String(emailDomain(person.user.email)))
  await new EnterpriseIssuerStore(s.r.redis).put({ issuer: idp.issuer, name: 'E2E IdP', jwks: idp.jwks, domains: [idp.domain] })
  const reg = await fetch(`${s.registrationUrl}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_name: 'Managed Agent', redirect_uris: ['http://127.0.0.1:41999/callback'] }) })
  const { client_id: clientId } = await reg.json() as { client_id: string }
  return { s, idp, person, clientId }
}

/** The client's half of the flow: trade an ID-JAG from the IdP for an access token at our token endpoint. */
async function exchange (e: Enterprise): Promise<{ access_token: string, refresh_token?: string }> {
  const assertion = e.idp.idJag(e.idp.idJagClaims({ audience: e.s.issuer, clientId: e.clientId, resource: e.s.resource, email: e.person.user.email }))
  const res = await fetch(`${e.s.issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: JWT_BEARER, assertion, client_id: e.clientId, resource: e.s.resource }) })
  if (res.status !== 200) throw new Error(`exchange failed: ${res.status} ${await res.text()}`)
  return await res.json() as { access_token: string }
}

async function connect (t: { teardown: (fn: () => unknown) => void }, url: string, token: string): Promise<Client> {
  const client = new Client({ name: 'managed-agent', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }))
  t.teardown(() => client.close())
  return client
}

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
