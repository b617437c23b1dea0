/**
 * MCP Streamable HTTP (protocol 2025-03-26 … 2025-11-25), server side, for one session, written directly
 * on node:http's request and response. It implements the SDK's Transport interface, so the SDK's Server
 * (initialize, ping, cancellation, progress, the request handlers) runs on it unchanged.
 *
 * Why not the SDK's StreamableHTTPServerTransport: that class converts every node request into a web
 * Request and every answer into a ReadableStream piped back through @hono/node-server, which cost more CPU
 * per request than the gateway's whole authentication. The wire behaviour here is the SDK's (its status
 * codes and messages): POST answers each request on an SSE stream of its own, notifications and responses
 * alone get 202, GET opens the session's one standalone stream (409 for a second), DELETE ends the
 * session; Accept, Content-Type and MCP-Protocol-Version are checked the same way. Event replay
 * (Last-Event-ID) is not offered, as before: the gateway configures no event store.
 *
 * An answer is written when its response is ready: headers and the one SSE event in a single write when
 * nothing came before it. A handler that sends related notifications first, or takes longer than
 * HEADERS_AFTER_MS, turns the answer into a live stream (headers sent, events as they come), so clients and
 * proxies see a slow call's stream open. Session lookup and authentication happen before this
 * (routes/mcp.ts).
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js'
import { RpcError, RpcCode, writeError } from '@uspl/errors'

/** a POST's SSE answer starts (headers sent) after this long even when no event is ready yet */
export const HEADERS_AFTER_MS = 50

/** the SDK's limit on one POST's batch */
export const MAX_BATCH_SIZE = 100

type Kind = 'request' | 'notification' | 'response' | null

/** A cheap structural check of one JSON-RPC 2.0 message; the SDK's Server validates params per method. */
export function messageKind (m: unknown): Kind {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return null
  const msg = m as Record<string, unknown>
  if (msg.jsonrpc !== '2.0') return null
  const id = msg.id
  const hasId = typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id))
  if (typeof msg.method === 'string') {
    if (msg.params !== undefined && (typeof msg.params !== 'object' || msg.params === null || Array.isArray(msg.params))) return null
    if (hasId) return 'request'
    return id === undefined ? 'notification' : null
  }
  if (!hasId) return null
  if (typeof msg.result === 'object' && msg.result !== null) return 'response'
  const err = msg.error as Record<string, unknown> | undefined
  if (typeof err === 'object' && err !== null && Number.isInteger(err.code) && typeof err.message === 'string') return 'response'
  return null
}

const SSE_HEADERS: OutgoingHttpHeaders = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  // nginx and other proxies must not buffer a stream
  'x-accel-buffering': 'no'
}

function frame (message: JSONRPCMessage): string {
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`
}

/** One POST's answer: the requests it carried, answered on one SSE response. */
interface Exchange {
  res: ServerResponse
  headers: OutgoingHttpHeaders
  pending: number
  timer: NodeJS.Timeout | null
}

function start (exchange: Exchange): void {
  if (exchange.timer !== null) clearTimeout(exchange.timer)
  exchange.timer = null
  const { res } = exchange
  if (res.headersSent || res.writableEnded) return
  res.writeHead(200, exchange.headers)
}

/** Headers an answer carries besides its own (CORS, request id), set by the route. */
export interface HandleOptions {
  authInfo: AuthInfo
  headers: Record<string, string | number | string[] | undefined>
}

export class HttpServerTransport implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: Transport['onmessage']
  private initialized = false
  private closed = false
  private standalone: ServerResponse | null = null
  private readonly exchanges = new Map<RequestId, Exchange>()

  constructor (readonly sessionId: string) {}

  async start (): Promise<void> {}

  /** Whether the session's standalone GET stream is open. */
  get streaming (): boolean {
    return this.standalone !== null
  }

  /** Serves one HTTP request of this session; `body` is the parsed JSON of a POST. */
  handle (req: IncomingMessage, res: ServerResponse, body: unknown, opts: HandleOptions): void {
    if (this.closed) return this.refuse(res, opts, 404, -32001, 'Session not found')
    switch (req.method) {
      case 'POST': return this.post(req, res, body, opts)
      case 'GET': return this.get(req, res, opts)
      case 'DELETE': return this.delete(req, res, opts)
      default:
        writeError(res, new RpcError(405, RpcCode.ServerError, 'Method not allowed.'), { ...opts.headers, allow: 'GET, POST, DELETE' })
    }
  }

  private refuse (res: ServerResponse, opts: HandleOptions, status: number, code: number, message: string): void {
    this.onerror?.(new Error(message))
    writeError(res, new RpcError(status, code, message), opts.headers)
  }

  private badVersion (req: IncomingMessage, res: ServerResponse, opts: HandleOptions): boolean {
    const version = req.headers['mcp-protocol-version']
    if (version === undefined || SUPPORTED_PROTOCOL_VERSIONS.includes(version as string)) return false
    this.refuse(res, opts, 400, -32000, `Bad Request: Unsupported protocol version: ${String(version)} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`)
    return true
  }

  private post (req: IncomingMessage, res: ServerResponse, body: unknown, opts: HandleOptions): void {
    const accept = req.headers.accept
    if (!accept?.includes('application/json') || !accept.includes('text/event-stream')) {
      return this.refuse(res, opts, 406, -32000, 'Not Acceptable: Client must accept both application/json and text/event-stream')
    }
    const messages = (Array.isArray(body) ? body : [body]) as JSONRPCMessage[]
    if (messages.length > MAX_BATCH_SIZE) return this.refuse(res, opts, 400, -32600, `Invalid Request: Batch must not exceed ${MAX_BATCH_SIZE} messages`)
    let requests = 0
    let initialize = false
    const seen = new Set<RequestId>()
    for (const m of messages) {
      const kind = messageKind(m)
      if (kind === null) return this.refuse(res, opts, 400, -32700, 'Parse error: Invalid JSON-RPC message')
      if (kind === 'request') {
        requests++
        const { id, method } = m as { id: RequestId, method: string }
        if (method === 'initialize') initialize = true
        // an id is the requester's to keep unique in a session (MCP basic/messages): a second request with the id
        // of one still in flight could only be answered on the wrong stream, so it is refused, and the first is kept
        if (seen.has(id) || this.exchanges.has(id)) return this.refuse(res, opts, 400, -32600, `Invalid Request: request id ${JSON.stringify(id)} is already in use in this session`)
        seen.add(id)
      }
    }
    if (initialize) {
      if (this.initialized) return this.refuse(res, opts, 400, -32600, 'Invalid Request: Server already initialized')
      if (messages.length > 1) return this.refuse(res, opts, 400, -32600, 'Invalid Request: Only one initialization request is allowed')
      this.initialized = true
    } else {
      if (!this.initialized) return this.refuse(res, opts, 400, -32000, 'Bad Request: Server not initialized')
      if (this.badVersion(req, res, opts)) return
    }
    const extra = { authInfo: opts.authInfo, requestInfo: { headers: req.headers } }
    if (requests === 0) {
      res.writeHead(202, opts.headers)
      res.end()
      for (const m of messages) this.onmessage?.(m, extra)
      return
    }
    const exchange: Exchange = { res, headers: { ...opts.headers, ...SSE_HEADERS, 'mcp-session-id': this.sessionId }, pending: requests, timer: null }
    exchange.timer = setTimeout(() => {
      start(exchange)
      res.flushHeaders()
    }, HEADERS_AFTER_MS)
    const ids: RequestId[] = []
    for (const m of messages) {
      if ('id' in m && 'method' in m) {
        this.exchanges.set(m.id, exchange)
        ids.push(m.id)
      }
    }
    res.once('close', () => {
      // answered, or the client went away: either way nothing more can be written for these ids
      if (exchange.timer !== null) clearTimeout(exchange.timer)
      for (const id of ids) if (this.exchanges.get(id) === exchange) this.exchanges.delete(id)
    })
    for (const m of messages) this.onmessage?.(m, extra)
  }

  private get (req: IncomingMessage, res: ServerResponse, opts: HandleOptions): void {
    if (!req.headers.accept?.includes('text/event-stream')) {
      return this.refuse(res, opts, 406, -32000, 'Not Acceptable: Client must accept text/event-stream')
    }
    if (!this.initialized) return this.refuse(res, opts, 400, -32000, 'Bad Request: Server not initialized')
    if (this.badVersion(req, res, opts)) return
    if (this.standalone !== null) return this.refuse(res, opts, 409, -32000, 'Conflict: Only one SSE stream is allowed per session')
    res.writeHead(200, { ...opts.headers, ...SSE_HEADERS, 'mcp-session-id': this.sessionId })
    res.flushHeaders()
    this.standalone = res
    res.once('close', () => { if (this.standalone === res) this.standalone = null })
  }

  private delete (req: IncomingMessage, res: ServerResponse, opts: HandleOptions): void {
    if (!this.initialized) return this.refuse(res, opts, 400, -32000, 'Bad Request: Server not initialized')
    if (this.badVersion(req, res, opts)) return
    res.writeHead(200, opts.headers)
    res.end()
    void this.close()
  }

  async send (message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const isResponse = 'result' in message || 'error' in message
    const id = isResponse ? (message as { id: RequestId }).id : options?.relatedRequestId
    if (id === undefined) {
      if (isResponse) throw new Error('Cannot send a response on a standalone SSE stream unless resuming a previous client request')
      // server-initiated: the standalone stream if the client holds one, otherwise it is dropped (no event store)
      if (this.standalone !== null && !this.standalone.writableEnded) this.standalone.write(frame(message))
      return
    }
    const exchange = this.exchanges.get(id)
    // its POST has already ended (the client went away, or the session closed)
    if (exchange === undefined) return
    const { res } = exchange
    if (res.writableEnded) return
    start(exchange)
    if (!isResponse) return void res.write(frame(message))
    this.exchanges.delete(id)
    if (--exchange.pending === 0) res.end(frame(message))
    else res.write(frame(message))
  }

  /** Ends the standalone GET stream (the session stays). */
  closeStandaloneSSEStream (): void {
    const res = this.standalone
    this.standalone = null
    if (res !== null && !res.writableEnded) res.end()
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.closeStandaloneSSEStream()
    for (const exchange of this.exchanges.values()) {
      start(exchange)
      if (!exchange.res.writableEnded) exchange.res.end()
    }
    this.exchanges.clear()
    this.onclose?.()
  }
}
