/**
 * Forwarding a request to the replica that holds its session. The ingress hashes Mcp-Session-Id to pick a
 * replica, but initialize carries no id, so the replica a session's requests are hashed to is often not
 * the one that created it. On a registry miss (and only then) routes/mcp.ts reads the session's index entry;
 * when another replica owns it, the request is proxied there:
 *   - streamed both ways (SSE included), hop-by-hop headers dropped, Authorization passed unchanged: the
 *     owner authenticates it fully (token, denylist, grant binding), so forwarding grants nothing;
 *   - marked with x-uspl-forwarded-by: <replica id>; a marked request is never forwarded again;
 *   - the client going away aborts the upstream request; the owner ending its response (DELETE,
 *     revocation, token expiry) ends the client's;
 *   - no connection to the owner (refused, unreachable, FORWARD_CONNECT_TIMEOUT_MS) answers 404 Session
 *     not found (the owner is gone, and its sessions with it); any other upstream failure before the
 *     answer 502, both in JSON-RPC error form; a failure mid-stream destroys the client's response.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { FastifyBaseLogger } from 'fastify'
import type { GatewayMetrics } from '../metrics.ts'
import { RpcError, RpcCode, writeError } from '@uspl/errors'

export const FORWARDED_BY = 'x-uspl-forwarded-by'

/** RFC 9110 §7.6.1 connection-specific fields, and what the proxy sets itself. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']

const OWNER_GONE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_CONNECT_TIMEOUT'])

function withoutHopByHop (headers: IncomingHttpHeaders, drop: string[]): OutgoingHttpHeaders {
  const skip = new Set([...HOP_BY_HOP, ...drop])
  const listed = headers.connection
  if (listed) for (const name of String(listed).split(',')) skip.add(name.trim().toLowerCase())
  const out: OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !skip.has(name)) out[name] = value
  return out
}

export interface ForwardTarget {
  /** the owner's replica id */
  replica: string
  /** the owner's base URL (REPLICA_URL) */
  url: string
}

export interface ForwardRequest {
  req: IncomingMessage
  res: ServerResponse
  /** the request body as received (Fastify has consumed the stream) */
  body: string | undefined
  requestId: string
  /** headers of this replica's own answers (CORS), used when the owner gives none */
  localHeaders: OutgoingHttpHeaders
  log: FastifyBaseLogger
  /** aborting ends the client's response (cleanly once streaming) and the upstream request */
  signal: AbortSignal
}

export interface ForwarderOptions {
  replica: string
  connectTimeoutMs: number
  metrics: GatewayMetrics
}

export class Forwarder {
  private readonly httpAgent = new http.Agent({ keepAlive: true })
  private readonly httpsAgent = new https.Agent({ keepAlive: true })

  constructor (private readonly opts: ForwarderOptions) {}

  /** Proxies one request; resolves when the client's response has closed. */
  forward (target: ForwardTarget, { req, res, body, requestId, localHeaders, log, signal }: ForwardRequest): Promise<void> {
    const method = req.method ?? 'GET'
    // the path and query only: a request target in absolute form (`POST http://host/mcp`, which the router
    // accepts) must not be glued onto the owner's URL, nor name where the request goes
    const asked = new URL(req.url ?? '/mcp', 'http://request-target.invalid')
    const url = new URL(target.url + asked.pathname + asked.search)
    const payload = body !== undefined && body !== '' ? Buffer.from(body) : undefined
    const headers = withoutHopByHop(req.headers, ['host', 'content-length', FORWARDED_BY])
    headers[FORWARDED_BY] = this.opts.replica
    headers['x-request-id'] = requestId
    if (payload) headers['content-length'] = payload.length
    const count = (outcome: 'proxied' | 'owner_gone' | 'upstream_error'): void => { this.opts.metrics.forwarded.inc({ method, outcome }) }

    return new Promise((resolve) => {
      const transport = url.protocol === 'https:' ? https : http
      const upstream = transport.request(url, { method, headers, agent: url.protocol === 'https:' ? this.httpsAgent : this.httpAgent })
      let answered = false
      let answer: IncomingMessage | null = null
      const abort = (): void => {
        answer?.unpipe(res)
        upstream.destroy()
        if (res.headersSent) res.end()
        else res.destroy()
      }
      if (signal.aborted) abort()
      else signal.addEventListener('abort', abort, { once: true })
      res.once('close', () => {
        signal.removeEventListener('abort', abort)
        // the client went away, or its response ended: stop whatever is still running upstream
        if (!answered) upstream.destroy()
        resolve()
      })
      upstream.once('socket', (socket) => {
        if (!socket.connecting) return
        const timer = setTimeout(() => {
          upstream.destroy(Object.assign(new Error(`no connection to ${target.url} within ${this.opts.connectTimeoutMs} ms`), { code: 'UND_CONNECT_TIMEOUT' }))
        }, this.opts.connectTimeoutMs)
        socket.once('connect', () => clearTimeout(timer))
        socket.once('close', () => clearTimeout(timer))
      })
      upstream.once('response', (incoming) => {
        answer = incoming
        count('proxied')
        res.writeHead(incoming.statusCode ?? 502, withoutHopByHop(incoming.headers, []))
        res.flushHeaders()
        incoming.once('end', () => { answered = true })
        incoming.pipe(res)
        incoming.once('close', () => {
          // the owner's response broke off (not ended): the client's breaks off too
          if (!incoming.complete && !res.destroyed && !signal.aborted) res.destroy()
        })
      })
      upstream.once('error', (err: NodeJS.ErrnoException) => {
        if (signal.aborted) return
        if (res.headersSent) {
          if (!res.destroyed) res.destroy()
          return
        }
        if (res.destroyed) return
        const gone = OWNER_GONE.has(err.code ?? '')
        count(gone ? 'owner_gone' : 'upstream_error')
        log.warn({ err, owner: target.replica, ownerUrl: target.url }, gone ? 'the replica owning the session is gone' : 'forwarding to the replica owning the session failed')
        const refusal = gone
          ? new RpcError(404, RpcCode.SessionNotFound, 'Session not found', { noStore: true })
          : new RpcError(502, RpcCode.InternalError, 'Bad Gateway: the replica holding this session did not answer', { noStore: true })
        writeError(res, refusal, { ...localHeaders, 'x-request-id': requestId })
      })
      upstream.end(payload)
    })
  }

  close (): void {
    this.httpAgent.destroy()
    this.httpsAgent.destroy()
  }
}
