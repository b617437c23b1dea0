// The MCP transport's Origin rule, as a drive-by page or a DNS-rebinding attacker sends it: a foreign
// Origin with a stolen (valid) token is refused 403 with a JSON-RPC error before the token is used;
// no Origin (SDK and desktop clients), the gateway's own and configured origins pass.
import t from 'tap'
import { testRedis } from '@uspl/testing'
import { startIssuer, startGateway, grantFor, tokenFor, mcpHeaders, initializeBody, rawSession } from './helpers.ts'
import { loadConfig } from '../src/config.ts'
import { allowedOrigins } from '../src/origin.ts'

t.test('the gateway accepts any Origin: a foreign one gets 403 (JSON-RPC), none and allowed ones pass', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gateway = await startGateway(t, r, issuer, { ALLOWED_ORIGINS: 'https://inspector.example, http://localhost:6274' })
  const token = tokenFor(issuer, gateway, await grantFor(r, 'usr_origin'))
  for (const origin of ['https://evil.example', 'null', 'http://127.0.0.1:1', 'https://inspector.example.evil.example']) {
    const res = await fetch(gateway.mcpUrl, { method: 'POST', headers: { ...mcpHeaders(token), origin }, body: initializeBody() })
    t.equal(res.status, 403, `${origin}: 403`)
    t.same(await res.json(), { jsonrpc: '2.0', error: { code: -32000, message: 'Forbidden: this Origin may not call the MCP endpoint' }, id: null }, `${origin}: a JSON-RPC error`)
    t.equal(res.headers.get('mcp-session-id'), null, 'no session opened')
  }
  const get = await fetch(gateway.mcpUrl, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', origin: 'https://evil.example' } })
  t.equal(get.status, 403, 'the GET stream too')
  await get.text()
  for (const origin of [undefined, gateway.url, issuer.url, 'https://inspector.example', 'http://localhost:6274']) {
    const headers: Record<string, string> = { ...mcpHeaders(token) }
    if (origin) headers.origin = origin
    const res = await fetch(gateway.mcpUrl, { method: 'POST', headers, body: initializeBody() })
    await res.text()
    t.equal(res.status, 200, `${origin ?? 'no Origin'}: initialize answered`)
  }
  t.ok(await rawSession(gateway, token), 'an SDK-style client without Origin works')
  const metadata = await fetch(`${gateway.url}/.well-known/oauth-protected-resource/mcp`, { headers: { origin: 'https://evil.example' } })
  t.equal(metadata.status, 200, 'public discovery documents stay open to any origin (CORS)')
  t.equal(metadata.headers.get('access-control-allow-origin'), '*')
})

t.test('ALLOWED_ORIGINS: defaults to the gateway and issuer origins; * allows any', async (t) => {
  const base = { GATEWAY_RESOURCE_URL: 'https://mcp.example.com/mcp', ISSUER_URL: 'https://auth.example.com' }
  t.same([...allowedOrigins(loadConfig(base)) ?? []], ['https://mcp.example.com', 'https://auth.example.com'])
  t.equal(allowedOrigins(loadConfig({ ...base, ALLOWED_ORIGINS: '*' })), null)
  t.throws(() => loadConfig({ ...base, ALLOWED_ORIGINS: 'evil.example' }), /ALLOWED_ORIGINS/)
})
