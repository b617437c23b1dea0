/**
 * The baseline of the MCP-methods benchmark for protocol 2026-07-28: a bare stateless server on the v2
 * SDK's documented pattern (createMcpHandler with a fresh McpServer per request, in a plain node:http
 * server converting to and from web Request/Response) with no authentication, serving the gateway's own
 * nine tools (the same registration the gateway used before its tool catalogue) for one fixed user.
 *
 * Env: PORT, HOST, REDIS_URL, REDIS_PREFIX, BARE_USER_ID.
 */
import { createServer } from 'node:http'
import { createMcpHandler, McpServer, type AuthInfo } from '@modelcontextprotocol/server'
import { registerTools, SERVER_INFO, INSTRUCTIONS } from '@uspl/gateway/mcp/server'
import { v2Host } from '@uspl/gateway/tools/host'
import { bareDeps, bareCaller, health, listen, readJson } from './bare-common.ts'

const { redis, deps } = bareDeps('bench-bare-stateless')
const authInfo = bareCaller() as AuthInfo
// the documented pattern: a fresh McpServer with its tools for every request
const handler = createMcpHandler(() => {
  const server = new McpServer(SERVER_INFO, { capabilities: { tools: {} }, instructions: INSTRUCTIONS })
  registerTools(v2Host(server), deps)
  return server
}, { legacy: 'reject' })

const http = createServer((req, res) => {
  void (async () => {
    if (health(req, res, redis)) return
    if (!req.url?.startsWith('/mcp') || req.method !== 'POST') { res.writeHead(404).end(); return }
    const body = await readJson(req)
    const headers = new Headers()
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string' && name !== 'content-length' && name !== 'connection' && name !== 'host') headers.set(name, value)
    const response = await handler.fetch(new Request(`http://${req.headers.host ?? 'localhost'}${req.url}`, { method: 'POST', headers }), { authInfo, parsedBody: body })
    const out: Record<string, string> = {}
    response.headers.forEach((value, name) => { out[name] = value })
    res.writeHead(response.status, out)
    if (!response.body) { res.end(); return }
    for await (const chunk of response.body) res.write(chunk)
    res.end()
  })().catch((err: Error) => {
    if (!res.headersSent) res.writeHead(500).end(err.message)
  })
})
listen(http, () => { void handler.close() }, redis)
