// The end-to-end proof (issue 5): two AI clients, A and B, registered separately and authorized by the same
// person through the real flow with the MCP SDK's OAuth client, each with an open session and GET stream,
// A on gateway replica 1 and B on replica 2. Revoking A, by each path a person or operator has, ends A's
// stream, forgets its session on both replicas, kills its access and refresh tokens, and leaves B's stream
// open and its tool calls succeeding throughout. All services, one real Redis, real HTTP.
import t, { type Test } from 'tap'
import { chromium } from 'playwright-core'
import { SESSION_COOKIE, keys } from '@uspl/core'
import { testCa, documentServer, loopbackResolver } from '@uspl/testing/documents'
// the apps' loopback redirect ports: never listened on, and below Linux's ephemeral range (32768–60999),
// so no service of the suite (listening on a free port) can take one of them
const REDIRECT_PORT_A = 7001
const REDIRECT_PORT_B = 7002
import { startSuite, AppClient, connectViaChallenge, connectToReplica, rawPost, refresh, type Suite, type Connected, type Person } from './suite.ts'

/** From the revoke request leaving its sender to A's stream ending; loopback, one Redis, two replicas. */
const PROPAGATION_BOUND_MS = 1000

interface World {
  s: Suite
  ada: Person
  a: AppClient
  b: AppClient
  connA: Connected
  connB: Connected
}

/** With `cimd`, A identifies itself by a metadata document served over https (test CA), B registers. */
async function world (t: Test, opts: { cimd?: boolean } = {}): Promise<World> {
  const ca = opts.cimd ? testCa(t) : null
  const docs = ca ? await documentServer(t, ca) : null
  const s = await startSuite(t, ca ? { tokenEnv: { CIMD_ALLOW_PRIVATE_HOSTS: 'claude.test' }, tokenOptions: { cimdFetch: { ca: ca.ca, resolver: loopbackResolver } } } : {})
  const ada = await s.person('Ada')
  const a = new AppClient('Client A', ada, s.issuer, REDIRECT_PORT_A)
  if (docs) {
    a.clientMetadataUrl = `${docs.origin('claude.test')}/oauth/client-a.json`
    docs.json('/oauth/client-a.json', { client_id: a.clientMetadataUrl, client_name: 'Client A', redirect_uris: ['http://127.0.0.1/callback'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' })
  }
  const b = new AppClient('Client B', ada, s.issuer, REDIRECT_PORT_B)
  const connA = await connectViaChallenge(t, s.gateways[0], a)
  const connB = await connectToReplica(t, s.resource, s.gateways[1], b)
  t.not(a.clientId, b.clientId, 'A and B registered separately')
  if (a.clientMetadataUrl) t.equal(a.clientId, a.clientMetadataUrl, 'A uses its metadata document URL as client_id')
  t.not(a.grantId, b.grantId, 'one grant each')
  t.equal(a.consents, 1, 'A was authorized through consent')
  t.equal(b.consents, 1, 'B was authorized through consent')
  return { s, ada, a, b, connA, connB }
}

/** RFC 7009: A revokes its own refresh token (and so its grant). */
async function revokeThroughRfc7009 (t: Test, w: World): Promise<void> {
  const res = await fetch(`${w.s.issuer}/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: String(w.a.saved?.refresh_token), token_type_hint: 'refresh_token', client_id: w.a.clientId })
  })
  t.equal(res.status, 200)
}

/** A disabled A cannot be authorized again: an error page, never a redirect. */
async function authorizationRefused (t: Test, w: World): Promise<void> {
  const authorize = new URL(`${w.s.issuer}/authorize`)
  authorize.search = new URLSearchParams({ response_type: 'code', client_id: w.a.clientId, redirect_uri: w.a.redirectUrl, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', state: 's' }).toString()
  const refused = await w.ada.browser.request(authorize.toString())
  t.equal(refused.status, 403, 'authorization refused on an error page (the client is disabled)')
  t.equal(refused.headers.get('location'), null, 'never redirected')
}

async function bCalls (t: Test, w: World, when: string): Promise<void> {
  const result = await w.connB.client.callTool({ name: 'list_workspaces', arguments: {} })
  t.notOk(result.isError, `B's tool call succeeds ${when}`)
  t.match(JSON.stringify(result.content), 'E2E Workspace')
}

/**
 * Revokes A with `revoke`, while B keeps calling tools, then checks everything the issue lists.
 * Returns A's old tokens for path-specific checks.
 */
async function proveRevocation (t: Test, w: World, revoke: (sent: () => void) => Promise<void>, opts: { reconnect: 'consent' | 'refused' }): Promise<void> {
  const { s, a, connA, connB } = w
  const oldAccess = connA.token
  const oldRefresh = String(a.saved?.refresh_token)
  await bCalls(t, w, 'before the revocation')
  t.equal(connA.watcher.ended, 0, "A's stream is open")

  const aEnded = new Promise<number>((resolve) => connA.watcher.once('end', resolve))
  // the clock starts when the revoke request is sent (a page first takes its clicks and typing)
  let started = Date.now()
  const sent = (): void => { started = Date.now() }
  // B keeps working while A is being revoked
  await Promise.all([revoke(sent), bCalls(t, w, 'during the revocation')])
  const endedAt = await aEnded
  const elapsed = endedAt - started
  t.ok(elapsed < PROPAGATION_BOUND_MS, `A's stream ended ${elapsed} ms after the revocation started (bound ${PROPAGATION_BOUND_MS} ms)`)
  t.comment(`revocation to A's stream end: ${elapsed} ms`)

  for (const [i, url] of s.gateways.entries()) {
    const res = await rawPost(url, oldAccess, connA.sessionId)
    t.equal(res.status, 401, `A's old access token answers 401 on replica ${i + 1}`)
    t.match(res.headers.get('www-authenticate'), /error="invalid_token"/)
  }
  t.equal(await s.r.redis.exists(keys.mcpSession(connA.sessionId)), 0, "A's session is gone from the index")
  const refreshed = await refresh(s.issuer, a.clientId, oldRefresh)
  t.equal(refreshed.status, 400)
  t.equal(refreshed.body.error, 'invalid_grant', "A's refresh token answers invalid_grant")

  await bCalls(t, w, 'after the revocation')
  t.equal(connB.watcher.ended, 0, "B's stream stayed open throughout")
  t.equal(await s.r.redis.exists(keys.mcpSession(connB.sessionId)), 1, "B's session is still indexed")

  if (opts.reconnect === 'consent') {
    // A's stored tokens are dead: the SDK refreshes, is refused, and must send the person through consent
    const again = await connectViaChallenge(t, s.gateways[0], a)
    t.equal(a.consents, 2, 'A connects again only through consent')
    t.not(a.grantId, JSON.parse(Buffer.from(oldAccess.split('.')[1], 'base64url').toString()).grant_id, 'under a new grant')
    for (const [i, url] of s.gateways.entries()) {
      const res = await rawPost(url, again.token, connA.sessionId)
      t.equal(res.status, 404, `A's old session id answers 404 on replica ${i + 1}`)
    }
    const ok = await again.client.callTool({ name: 'list_workspaces', arguments: {} })
    t.notOk(ok.isError, 'the reconnected A works')
  }
  await bCalls(t, w, 'at the end')
  t.equal(connB.watcher.ended, 0, "B's stream is still open at the end")
}

t.test('revoking A through the connections API (the signed-in person)', async (t) => {
  const w = await world(t)
  const sid = w.ada.browser.cookies.get(SESSION_COOKIE)
  t.ok(sid, 'the person is signed in from the authorization flow')
  const page = await fetch(`${w.s.connectionsUrl}/connections`, { headers: { cookie: `${SESSION_COOKIE}=${sid}` } })
  t.equal(page.status, 200)
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await page.text())?.[1]
  t.ok(csrf)
  const list = await fetch(`${w.s.connectionsUrl}/v1/connections`, { headers: { cookie: `${SESSION_COOKIE}=${sid}` } })
  const items = (await list.json() as { items?: Array<{ grant_id: string, client_name: string, open_sessions: number }>, connections?: unknown })
  const rows = (items.items ?? items.connections ?? items) as Array<{ grant_id: string, client_name: string, open_sessions: number }>
  t.same(rows.map((c) => c.client_name).sort(), ['Client A', 'Client B'], 'both apps listed')
  t.equal(rows.find((c) => c.grant_id === w.a.grantId)?.open_sessions, 1, "A's open session counted")

  await proveRevocation(t, w, async () => {
    const res = await fetch(`${w.s.connectionsUrl}/v1/connections/${w.a.grantId}/revoke`, {
      method: 'POST',
      headers: { cookie: `${SESSION_COOKIE}=${sid}`, 'x-csrf-token': String(csrf), origin: w.s.connectionsUrl, 'content-type': 'application/json' },
      body: JSON.stringify({ confirm: 'Client A' })
    })
    t.equal(res.status, 200, 'revoked')
    const body = await res.json() as { revoked_at: string, sessions_closed: number }
    t.ok(body.revoked_at)
    t.equal(body.sessions_closed, 1, 'one session closed')
  }, { reconnect: 'consent' })
})

t.test('revoking A through the Connected Apps page in a real browser', async (t) => {
  const w = await world(t)
  const sid = String(w.ada.browser.cookies.get(SESSION_COOKIE))
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] })
  t.teardown(() => browser.close())
  const context = await browser.newContext()
  await context.route('**/*', (route) => route.request().url().startsWith(w.s.connectionsUrl + '/') ? route.continue() : route.abort())
  await context.addCookies([{ name: SESSION_COOKIE, value: sid, url: w.s.connectionsUrl, httpOnly: true, sameSite: 'Lax' }])
  const page = await context.newPage()
  await page.goto(`${w.s.connectionsUrl}/connections`)
  t.equal(await page.locator('li.app').count(), 2, 'both apps listed on the page')

  await proveRevocation(t, w, async (sent) => {
    page.on('request', (request) => { if (request.url().endsWith(`/v1/connections/${w.a.grantId}/revoke`)) sent() })
    await page.getByRole('button', { name: 'Actions for Client A' }).click()
    await page.getByRole('menuitem', { name: 'Revoke access' }).click()
    await page.getByLabel('Type Client A to confirm').fill('Client A')
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke access' }).click()
    await page.locator(`[data-grant-id="${w.a.grantId}"]`).waitFor({ state: 'detached' })
  }, { reconnect: 'consent' })
  t.equal(await page.locator('li.app').count(), 1, 'only B is left on the page')
})

t.test("revoking A through RFC 7009 /revoke with A's refresh token", async (t) => {
  const w = await world(t)
  await proveRevocation(t, w, async () => revokeThroughRfc7009(t, w), { reconnect: 'consent' })
})

t.test("an operator's client-wide revoke of A cuts every user's grant of A, and nothing else", async (t) => {
  const w = await world(t)
  // a second person who uses both apps, on the same replicas
  const bob = await w.s.person('Bob')
  const bobA = new AppClient('Client A', bob, w.s.issuer, REDIRECT_PORT_A)
  bobA.info = w.a.info
  const bobB = new AppClient('Client B', bob, w.s.issuer, REDIRECT_PORT_B)
  bobB.info = w.b.info
  const bobConnA = await connectToReplica(t, w.s.resource, w.s.gateways[1], bobA)
  const bobConnB = await connectToReplica(t, w.s.resource, w.s.gateways[0], bobB)
  const bobAEnded = new Promise<number>((resolve) => bobConnA.watcher.once('end', resolve))

  await proveRevocation(t, w, async () => {
    const res = await fetch(`${w.s.connectionsUrl}/v1/clients/${w.a.clientId}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${w.s.operatorKey}` } })
    t.equal(res.status, 200, 'operator revoked the client')
  }, { reconnect: 'refused' })

  await bobAEnded
  t.pass("Bob's stream with A ended too (other replica)")
  t.equal((await rawPost(w.s.gateways[1], bobConnA.token, bobConnA.sessionId)).status, 401, "Bob's A token answers 401")
  const bobB2 = await bobConnB.client.callTool({ name: 'list_workspaces', arguments: {} })
  t.notOk(bobB2.isError, "Bob's B keeps working")
  t.equal(bobConnB.watcher.ended, 0, "Bob's B stream stays open")

  // the client is disabled: it cannot be authorized again
  await authorizationRefused(t, w)
})

t.test('a metadata-document client (https client_id): revoked through RFC 7009 /revoke, reconnects only through consent', async (t) => {
  const w = await world(t, { cimd: true })
  await proveRevocation(t, w, async () => revokeThroughRfc7009(t, w), { reconnect: 'consent' })
  t.equal(w.a.clientId, w.a.clientMetadataUrl, 'still the document URL after reconnecting (never registered)')
})

t.test("a metadata-document client: an operator's client-wide revoke by its URL cuts it and disables it", async (t) => {
  const w = await world(t, { cimd: true })
  await proveRevocation(t, w, async () => {
    const res = await fetch(`${w.s.connectionsUrl}/v1/clients/${encodeURIComponent(w.a.clientId)}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${w.s.operatorKey}` } })
    t.equal(res.status, 200, 'operator revoked the client')
  }, { reconnect: 'refused' })
  await authorizationRefused(t, w)
})
