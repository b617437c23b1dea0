/**
 * Protocol revision 2026-07-28: stateless requests at the same /mcp URL as the 2025 sessions. Such a
 * request has no initialize and no Mcp-Session-Id; it carries its protocol version and client
 * capabilities in params._meta (io.modelcontextprotocol/protocolVersion, .../clientCapabilities) and the
 * MCP-Protocol-Version and Mcp-Method headers. The v2 SDK classifies it (isLegacyRequest, the SDK's own
 * routing decision) and answers it with a fresh protocol layer per request (createMcpHandler, legacy: 'reject'),
 * over the process's tool catalogue (catalog.ts) and the verified token as authInfo. server/discover is the
 * v2 SDK's.
 *
 * The request was authenticated like any other (the route's onRequest verifier and denylist). While it is
 * in flight it is tracked in the registry by grant, client, user and jti, so a revocation event aborts
 * it: an answer not started yet becomes 401 invalid_token with the usual challenge, a started one (SSE)
 * ends. A stream also ends when the token it was opened with expires, and on shutdown.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { createMcpHandler, isLegacyRequest, Server, type AuthInfo, type McpHttpHandler } from '@modelcontextprotocol/server'
import { verifiedToken } from '../auth/verifier.ts'
import { AuthFailure, challenge } from '../auth/challenges.ts'
import type { GatewayMetrics } from '../metrics.ts'
import { INSTRUCTIONS, SERVER_INFO } from './server.ts'
import { RpcError, RpcCode, writeError } from '@uspl/errors'
import type { ToolCatalog } from './catalog.ts'
import type { AbortReason, SessionRegistry } from './sessions.ts'

export const STATELESS_PROTOCOL_VERSION = '2026-07-28'

/**
 * The v2 SDK's protocol layer for one stateless request, over the process's ToolCatalog: the request
 * costs its Server, not a fresh registration of nine tools (the list, JSON Schema and validators are the
 * catalogue's).
 */
export function statelessServer (catalog: ToolCatalog): Server {
  const server = new Server(SERVER_INFO, { capabilities: { tools: {} }, instructions: INSTRUCTIONS })
  server.setRequestHandler('tools/list', () => catalog.listResult as never)
  server.setRequestHandler('tools/call', async (request, ctx) => catalog.call(request.params.name, request.params.arguments, { authInfo: ctx.http?.authInfo }) as never)
  return server
}

const SKIPPED_HEADERS = new Set(['host', 'connection', 'keep-alive', 'content-length', 'transfer-encoding', 'upgrade', 'te', 'trailer'])

/** The Fastify request as a web Request (headers only: the body is passed parsed). */
function webRequest (request: FastifyRequest, base: URL, signal?: AbortSignal): Request {
  const headers = new Headers()
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || SKIPPED_HEADERS.has(name)) continue
    if (Array.isArray(value)) for (const v of value) headers.append(name, v)
    else headers.set(name, value)
  }
  return new Request(new URL(request.raw.url ?? '/mcp', base), { method: request.method, headers, signal })
}

type Outcome = 'completed' | 'revoked' | 'expired' | 'client_gone' | 'shutdown' | 'failed'

export interface StatelessOptions {
  catalog: ToolCatalog
  registry: SessionRegistry
  metrics: GatewayMetrics
  log: FastifyBaseLogger
  resource: URL
  resourceMetadataUrl: string
}

export class StatelessEndpoint {
  private readonly handler: McpHttpHandler

  constructor (private readonly opts: StatelessOptions) {
    this.handler = createMcpHandler(() => statelessServer(opts.catalog), {
      legacy: 'reject',
      onerror: (err) => { opts.log.debug({ err }, 'stateless MCP request rejected or failed') }
    })
  }

  /**
   * Whether a request without Mcp-Session-Id is 2026-07-28 traffic (or claims to be: the v2 SDK then owns
   * the error answer). Only called off the session path.
   */
  async claims (request: FastifyRequest): Promise<boolean> {
    if (request.method !== 'POST') return false
    return !await isLegacyRequest(webRequest(request, this.opts.resource), request.body)
  }

  /** Serves one stateless request; resolves when its response has closed. */
  async serve (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { registry, metrics, log } = this.opts
    const token = verifiedToken(request)
    const res: ServerResponse = reply.raw
    const local = { ...reply.getHeaders(), 'x-request-id': request.id } as OutgoingHttpHeaders
    reply.hijack()
    request.raw.socket.setTimeout(0)

    const controller = new AbortController()
    let reader: ReadableStreamDefaultReader<Uint8Array> | null = null
    let outcome: Outcome | null = null
    const finish = (why: Outcome): void => {
      if (outcome) return
      outcome = why
      clearTimeout(expiry)
      metrics.statelessRequests.inc({ outcome: why })
      if (why === 'completed') return
      controller.abort()
      reader?.cancel().catch(() => {})
      if (res.writableEnded || res.destroyed) return
      if (why === 'client_gone') return void res.destroy()
      if (res.headersSent) return void res.end()
      if (why === 'revoked' || why === 'expired') {
        const failure = new AuthFailure(why === 'revoked' ? 'grant_revoked' : 'expired', 401, 'invalid_token', why === 'revoked' ? 'access was revoked while this request was in flight' : 'the token expired while this request was in flight')
        failure.challenge = challenge(this.opts.resourceMetadataUrl, failure)
        return void writeError(res, failure, local)
      }
      if (why === 'shutdown') {
        return void writeError(res, new RpcError(503, RpcCode.ServerError, 'Service Unavailable: this replica is shutting down; retry', { retryAfterS: 2 }), local)
      }
      writeError(res, new RpcError(500, RpcCode.InternalError, 'Internal error'), local)
    }
    // a stream (subscriptions/listen, a long tool call) ends when its token does, like a 2025 GET stream
    const expiry = setTimeout(() => finish('expired'), Math.max(0, token.exp * 1000 - Date.now()))
    expiry.unref()
    res.once('close', () => finish(res.writableFinished ? 'completed' : 'client_gone'))
    registry.trackSessionless({
      kind: 'stateless',
      grantId: token.grantId,
      clientId: token.clientId,
      userId: token.userId,
      jti: token.jti,
      endsWithToken: true,
      abort: (why: AbortReason) => finish(why)
    }, res)

    let response: Response
    try {
      response = await this.handler.fetch(webRequest(request, this.opts.resource, controller.signal), { authInfo: token.authInfo as AuthInfo, parsedBody: request.body })
    } catch (err) {
      if (outcome) return
      log.error({ err }, 'stateless MCP request failed')
      return finish('failed')
    }
    if (outcome) {
      await response.body?.cancel().catch(() => {})
      return
    }
    const headers: OutgoingHttpHeaders = { ...local }
    response.headers.forEach((value, name) => { headers[name] = value })
    res.writeHead(response.status, headers)
    if (!response.body) {
      res.end()
      return
    }
    res.flushHeaders()
    reader = response.body.getReader()
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done || outcome) break
        if (!res.write(value)) await drained(res)
      }
      if (!outcome && !res.writableEnded) res.end()
    } catch (err) {
      if (outcome) return
      log.warn({ err }, 'stateless MCP response broke off')
      res.destroy()
    }
  }

  async close (): Promise<void> {
    await this.handler.close()
  }
}

function drained (res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.once('drain', done)
    res.once('close', done)
  })
}
