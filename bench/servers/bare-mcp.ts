/**
 * The baseline of the MCP-methods benchmark for the 2025 sessions: a bare MCP server on the SDK's
 * documented stateful pattern (McpServer + StreamableHTTPServerTransport, one per session, in a plain
 * node:http server) with no authentication at all, serving the gateway's own nine tools (the same
 * definitions, bodies and repository reads: role check included) for one fixed user. What the gateway adds
 * on top of this (token verification, the denylist, the session's grant binding, its own transport) is
 * what the benchmark prices.
 *
 * Env: PORT, HOST, REDIS_URL, REDIS_PREFIX, BARE_USER_ID (the caller the tools see).
 */
import { createServer, type IncomingMessage } from 'node:http'
import { randomUUID } from 'node:crypto'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { registerTools, SERVER_INFO, INSTRUCTIONS } from '@uspl/gateway/mcp/server'
import { v1Host } from '@uspl/gateway/tools/host'
import { bareDeps, bareCaller, health, listen, readJson } from './bare-common.ts'

const { redis, deps } = bareDeps('bench-bare-mcp')
const auth: AuthInfo = bareCaller()

function makeServer (): McpServer {
  const server = new McpServer(SERVER_INFO, { capabilities: { tools: {} }, instructions: INSTRUCTIONS })
  registerTools(v1Host(server), deps)
  return server
}

const transports = new Map<string, StreamableHTTPServerTransport>()

const http = createServer((req, res) => {
  void (async () => {
    if (health(req, res, redis)) return
    if (!req.url?.startsWith('/mcp')) { res.writeHead(404).end(); return }
    const sid = req.headers['mcp-session-id']
    const body = req.method === 'POST' ? await readJson(req) : undefined
    let transport = typeof sid === 'string' ? transports.get(sid) : undefined
    if (!transport) {
      if (req.method === 'POST' && sid === undefined && isInitializeRequest(body)) {
        const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: randomUUID,
          onsessioninitialized: (id) => { transports.set(id, t) }
        })
        t.onclose = () => { if (t.sessionId) transports.delete(t.sessionId) }
        await makeServer().connect(t)
        transport = t
      } else {
        res.writeHead(sid === undefined ? 400 : 404, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: sid === undefined ? 'no session' : 'session not found' }, id: null }))
        return
      }
    }
    ;(req as IncomingMessage & { auth?: AuthInfo }).auth = auth
    await transport.handleRequest(req, res, body)
  })().catch((err: Error) => {
    if (!res.headersSent) res.writeHead(500).end(err.message)
  })
})
listen(http, () => { for (const t of transports.values()) void t.close() }, redis)
