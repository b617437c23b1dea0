// Discovery from a 401 (RFC 9728 via the challenge, as MCP clients do it), CORS for browser clients.
import t from 'tap'
import { discoverOAuthProtectedResourceMetadata, extractResourceMetadataUrl } from '@modelcontextprotocol/sdk/client/auth.js'
import { testRedis } from '@uspl/testing'
import { startIssuer, startGateway, mcpHeaders, initializeBody, grantFor, tokenFor } from './helpers.ts'

t.test('a 401 leads a client to the protected resource metadata and the issuer', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const res = await fetch(gw.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: initializeBody() })
  t.equal(res.status, 401)
  const challenge = res.headers.get('www-authenticate') ?? ''
  t.match(challenge, /^Bearer /)
  t.match(challenge, `resource_metadata="${gw.url}/.well-known/oauth-protected-resource/mcp"`)
  t.match(challenge, 'scope="mcp:tools"')
  t.notMatch(challenge, 'error=', 'no error code when no token was presented')

  const metadataUrl = extractResourceMetadataUrl(res)
  t.equal(metadataUrl?.href, `${gw.url}/.well-known/oauth-protected-resource/mcp`)
  const metadata = await discoverOAuthProtectedResourceMetadata(gw.mcpUrl, { resourceMetadataUrl: metadataUrl })
  t.same(metadata, {
    resource: gw.mcpUrl,
    authorization_servers: [issuer.url],
    scopes_supported: ['mcp:tools'],
    bearer_methods_supported: ['header'],
    resource_name: 'uspl workspace MCP server'
  })
  // without the challenge, the SDK's own probing (path-aware first) finds it too
  t.equal((await discoverOAuthProtectedResourceMetadata(gw.mcpUrl)).resource, gw.mcpUrl)
  const root = await fetch(`${gw.url}/.well-known/oauth-protected-resource`)
  t.equal(root.status, 200)
  t.equal((await root.json() as { resource: string }).resource, gw.mcpUrl, 'also at the root')
})

t.test('browsers may call /mcp and read the challenge and the session id', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  // a browser-based client's origin is allowed by configuration (origin.test.ts: others are refused)
  const gw = await startGateway(t, r, issuer, { ALLOWED_ORIGINS: 'https://inspector.example' })
  const preflight = await fetch(gw.mcpUrl, {
    method: 'OPTIONS',
    headers: { origin: 'https://inspector.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, mcp-session-id, mcp-protocol-version' }
  })
  t.equal(preflight.status, 204, 'preflight needs no token')
  t.equal(preflight.headers.get('access-control-allow-origin'), '*')
  t.match(preflight.headers.get('access-control-allow-headers') ?? '', /mcp-session-id/)
  const res = await fetch(gw.mcpUrl, { method: 'POST', headers: { ...mcpHeaders('x'), authorization: '', origin: 'https://inspector.example' }, body: initializeBody() })
  t.equal(res.status, 401)
  t.equal(res.headers.get('access-control-allow-origin'), '*')
  const exposed = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase()
  t.match(exposed, 'www-authenticate')
  t.match(exposed, 'mcp-session-id')
  const meta = await fetch(`${gw.url}/.well-known/oauth-protected-resource/mcp`, { headers: { origin: 'https://inspector.example' } })
  t.equal(meta.headers.get('access-control-allow-origin'), '*')
  // the MCP responses themselves are written by the SDK (reply hijacked): they carry the CORS headers too
  const token = tokenFor(issuer, gw, await grantFor(r, 'usr_browser'))
  const init = await fetch(gw.mcpUrl, { method: 'POST', headers: { ...mcpHeaders(token), origin: 'https://inspector.example' }, body: initializeBody() })
  await init.text()
  t.equal(init.status, 200)
  t.ok(init.headers.get('mcp-session-id'))
  t.equal(init.headers.get('access-control-allow-origin'), '*')
  t.match((init.headers.get('access-control-expose-headers') ?? '').toLowerCase(), 'mcp-session-id')
  t.ok(init.headers.get('x-request-id'), 'and the request id')
})
