/**
 * A minimal MCP Streamable HTTP client over undici keep-alive pools, for load: JSON-RPC POSTs (answered as
 * JSON or as an SSE stream, whichever the server picks), sessions (Mcp-Session-Id), and the GET stream.
 * It speaks the wire protocol directly so the client side costs the same against every server.
 */
import { performance } from 'node:perf_hooks'
import { Pool, type Dispatcher } from 'undici'

export const PROTOCOL_VERSION = '2025-06-18'

export interface RpcReply {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** the JSON-RPC response, when one came back */
  message: { id?: number | string, result?: Record<string, unknown>, error?: { code: number, message: string } } | null
  text: string
}

/** A keep-alive pool for request/response traffic: `connections` sockets, no pipelining. */
export function requestPool (origin: string, connections: number): Pool {
  return new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60000, keepAliveMaxTimeout: 600000 })
}

/** A pool for long-lived GET streams: one socket per stream, no body timeout. */
export function streamPool (origin: string): Pool {
  return new Pool(origin, { connections: null, pipelining: 1, bodyTimeout: 0, headersTimeout: 30000, keepAliveTimeout: 60000 })
}

function header (h: RpcReply['headers'], name: string): string | undefined {
  const v = h[name]
  return Array.isArray(v) ? v[0] : v
}

function parseBody (contentType: string | undefined, text: string): RpcReply['message'] {
  if (!text) return null
  if (contentType?.includes('text/event-stream')) {
    let found: RpcReply['message'] = null
    for (const block of text.split(/\r?\n\r?\n/)) {
      const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n')
      if (!data) continue
      try {
        const m = JSON.parse(data) as NonNullable<RpcReply['message']>
        if (m.id !== undefined) found = m
      } catch { /* not JSON-RPC */ }
    }
    return found
  }
  try { return JSON.parse(text) as RpcReply['message'] } catch { return null }
}

export async function rpc (pool: Dispatcher, path: string, message: unknown, headers: Record<string, string>): Promise<RpcReply> {
  const res = await pool.request({
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(message)
  })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, message: parseBody(header(res.headers, 'content-type'), text), text }
}

export class McpError extends Error {
  constructor (message: string, readonly status: number, readonly body: string) { super(`${message}: HTTP ${status} ${body.slice(0, 300)}`) }
}

/** One streamable streamed response (the GET stream): resolves `ended` with the time it ended. */
export class SseStream {
  readonly ended: Promise<number>
  endedAt: number | null = null
  constructor (readonly status: number, private readonly body: Dispatcher.ResponseData['body']) {
    this.ended = new Promise((resolve) => {
      const done = (): void => {
        if (this.endedAt === null) this.endedAt = performance.now()
        resolve(this.endedAt)
      }
      body.on('data', () => {})
      body.once('end', done)
      body.once('error', done)
      body.once('close', done)
    })
  }

  get open (): boolean { return this.endedAt === null }
  close (): void { this.body.destroy() }
}

export class McpSession {
  id = ''
  private nextId = 1
  constructor (readonly pool: Dispatcher, readonly path: string, public token?: string) {}

  headers (): Record<string, string> {
    const h: Record<string, string> = {}
    if (this.token) h.authorization = `Bearer ${this.token}`
    if (this.id) {
      h['mcp-session-id'] = this.id
      h['mcp-protocol-version'] = PROTOCOL_VERSION
    }
    return h
  }

  /** initialize, then notifications/initialized */
  async open (): Promise<this> {
    const init = await rpc(this.pool, this.path, {
      jsonrpc: '2.0',
      id: this.nextId++,
      method: 'initialize',
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'uspl-bench', version: '1.0.0' } }
    }, this.headers())
    const sid = header(init.headers, 'mcp-session-id')
    if (init.status !== 200 || !sid || !init.message?.result) throw new McpError('initialize failed', init.status, init.text)
    this.id = sid
    const note = await rpc(this.pool, this.path, { jsonrpc: '2.0', method: 'notifications/initialized' }, this.headers())
    if (note.status >= 300) throw new McpError('notifications/initialized refused', note.status, note.text)
    return this
  }

  request (method: string, params: Record<string, unknown> = {}): Promise<RpcReply> {
    return rpc(this.pool, this.path, { jsonrpc: '2.0', id: this.nextId++, method, params }, this.headers())
  }

  callTool (name: string, args: Record<string, unknown>): Promise<RpcReply> {
    return this.request('tools/call', { name, arguments: args })
  }

  /** Opens the session's GET stream on `pool` (a stream pool); resolves once the response headers arrived. */
  async stream (pool: Dispatcher): Promise<SseStream> {
    const res = await pool.request({ method: 'GET', path: this.path, headers: { accept: 'text/event-stream', ...this.headers() } })
    if (res.statusCode !== 200) {
      const text = await res.body.text()
      throw new McpError('GET stream refused', res.statusCode, text)
    }
    return new SseStream(res.statusCode, res.body)
  }

  async close (): Promise<number> {
    const res = await this.pool.request({ method: 'DELETE', path: this.path, headers: this.headers() })
    await res.body.dump()
    return res.statusCode
  }
}

/** The tool result's isError, or true when the reply was not a tool result at all. */
export function toolFailed (reply: RpcReply): boolean {
  return reply.status !== 200 || !reply.message?.result || reply.message.result.isError === true
}
