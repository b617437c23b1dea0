/**
 * The baseline for the authenticated tool call: a bare MCP server on the SDK's documented stateful pattern
 * (McpServer + StreamableHTTPServerTransport, one per session, in a plain node:http server), with no
 * authentication at all, serving the same tool over the same Redis data through the same repository the
 * gateway uses. What the gateway adds on top of this (token verification, the denylist, the session's
 * grant check, the role read) is what the benchmark prices.
 *
 * Env: PORT, HOST, REDIS_URL, REDIS_PREFIX, BARE_JSON_RESPONSE (1: answer POSTs as JSON, like the gateway
 * when it does; otherwise as SSE, the SDK default).
 */
import { createServer, type IncomingMessage } from 'node:http'
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import { createRedis } from '@uspl/redis'
import { RedisWorkspaceRepository } from '@uspl/core'
import { TOOL } from '../lib/tool.ts'

// zod as the SDK itself resolves it (it is the SDK's peer, not a dependency of the workspace root)
const requireFromSdk = createRequire(import.meta.resolve('@modelcontextprotocol/sdk/server/mcp.js'))
const { z } = requireFromSdk('zod') as { z: { string: () => { min: (n: number) => { describe: (d: string) => unknown } } } }

const redis = createRedis({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: process.env.REDIS_PREFIX ?? 'bench:', name: 'bench-bare-mcp' })
redis.on('error', () => {})
const repo = new RedisWorkspaceRepository(redis)
const jsonResponse = process.env.BARE_JSON_RESPONSE === '1'

function makeServer (): McpServer {
  const server = new McpServer({ name: 'bare-mcp', version: '1.0.0' })
  const shape: Record<string, unknown> = {}
  for (const arg of TOOL.argNames) shape[arg] = z.string().min(1).describe(arg)
  server.registerTool(TOOL.name, {
    description: 'Get one recording of a workspace by id.',
    inputSchema: shape as never
  }, (async (args: Record<string, string>) => {
    const recording = await repo.getRecording(args[TOOL.argNames[0]], args[TOOL.argNames[1]])
    if (!recording) return { isError: true, content: [{ type: 'text', text: 'not found' }] }
    // the same result shape as the gateway's tools (text plus structured content)
    const data = { recording }
    return { content: [{ type: 'text', text: `Recording "${recording.title}".\n${JSON.stringify(data, null, 2)}` }], structuredContent: data }
  }) as never)
  return server
}

const transports = new Map<string, StreamableHTTPServerTransport>()

async function readJson (req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString())
}

const http = createServer((req, res) => {
  void (async () => {
    if (req.url === '/health/ready' || req.url === '/health/live') {
      const ok = req.url === '/health/live' || redis.status === 'ready'
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'not_ready' }))
      return
    }
    if (!req.url?.startsWith('/mcp')) { res.writeHead(404).end(); return }
    const sid = req.headers['mcp-session-id']
    const body = req.method === 'POST' ? await readJson(req) : undefined
    let transport = typeof sid === 'string' ? transports.get(sid) : undefined
    if (!transport) {
      if (req.method === 'POST' && sid === undefined && isInitializeRequest(body)) {
        const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: randomUUID,
          enableJsonResponse: jsonResponse,
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
    await transport.handleRequest(req, res, body)
  })().catch((err: Error) => {
    if (!res.headersSent) res.writeHead(500).end(err.message)
  })
})
http.keepAliveTimeout = 72000
http.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1')

process.once('SIGTERM', () => {
  for (const t of transports.values()) void t.close()
  http.closeAllConnections()
  http.close(() => { redis.disconnect(); process.exit(0) })
})
