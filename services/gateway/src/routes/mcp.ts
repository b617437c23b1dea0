/**
 * POST, GET and DELETE /mcp: every MCP request, as named steps.
 *
 *   verify        (auth/verifier.ts, the route's onRequest hook) the bearer token: signature against the
 *                 cached JWKS, issuer, audience, lifetime, then the denylist in one Redis round trip and
 *                 the scope. The verified token is `verifiedToken(request)` from here on.
 *   findSession   the Mcp-Session-Id header: a session this replica holds, or none;
 *   openSession   an initialize without a session id opens one (per-grant cap and Redis index in one
 *                 script, with this replica's id and URL);
 *   serveStateless a request without a session id that declares protocol 2026-07-28 is answered by the
 *                 v2 SDK, with no session (mcp/stateless.ts);
 *   bindToGrant   a session answers only its own grant's tokens (another grant's token: 404, the session
 *                 untouched);
 *   forwardToOwner an id this replica does not hold costs one index read (only then): another replica's
 *                 session is proxied there (mcp/forward.ts), otherwise 404;
 *   handOver      the session's transport (mcp/http-transport.ts) and its SDK server answer, tracked so a
 *                 revocation or the token's expiry ends what is open.
 *
 * The cheap path (a request on a session held here) is: verify, findSession, bindToGrant, handOver.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import type { SessionIndex } from '@uspl/core'
import type { Config } from '../config.ts'
import { verifiedToken } from '../auth/verifier.ts'
import { McpSession, type SessionRegistry } from '../mcp/sessions.ts'
import { FORWARDED_BY, type Forwarder } from '../mcp/forward.ts'
import type { StatelessEndpoint } from '../mcp/stateless.ts'
import type { ToolCatalog } from '../mcp/catalog.ts'
import { sessionServer } from '../mcp/server.ts'
import { HttpServerTransport } from '../mcp/http-transport.ts'
import { RpcError, RpcCode, writeError } from '@uspl/errors'
import { sendError } from '@uspl/server'

export interface McpEndpointOptions {
  config: Config
  registry: SessionRegistry
  index: SessionIndex
  catalog: ToolCatalog
  /** this replica's REPLICA_ID */
  replica: string
  /** this replica's REPLICA_URL */
  replicaUrl: string
  forwarder: Forwarder
  stateless: StatelessEndpoint
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the /mcp request body as received, for forwarding it unchanged */
    mcpRawBody: string | undefined
  }
}

export type Refusal = 'missing_session_id' | 'unknown_session' | 'other_grant' | 'session_cap'

function isInitialize (body: unknown): boolean {
  return Array.isArray(body) ? body.some((m) => isInitializeRequest(m)) : isInitializeRequest(body)
}

export class McpEndpoint {
  constructor (private readonly app: FastifyInstance, private readonly opts: McpEndpointOptions) {}

  /** The route handler: the steps above, in order. */
  readonly handle = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const sessionId = this.sessionIdOf(request)
    if (sessionId === undefined) {
      if (request.method === 'POST' && isInitialize(request.body)) return this.openSession(request, reply)
      if (await this.opts.stateless.claims(request)) return this.opts.stateless.serve(request, reply)
      return void this.refuse(reply, 'missing_session_id')
    }
    const session = this.findSession(sessionId)
    if (session === undefined) return this.forwardToOwner(request, reply, sessionId)
    if (!this.bindToGrant(request, session)) return void this.refuse(reply, 'other_grant')
    this.opts.registry.touch(session)
    this.handOver(request, reply, session)
  }

  sessionIdOf (request: FastifyRequest): string | undefined {
    const header = request.headers['mcp-session-id']
    const id = Array.isArray(header) ? header[0] : header
    return id === '' ? undefined : id
  }

  findSession (sessionId: string): McpSession | undefined {
    return this.opts.registry.get(sessionId)
  }

  /** Whether the request's token belongs to the session's grant; a mismatch is logged and leaves no trace on the session. */
  bindToGrant (request: FastifyRequest, session: McpSession): boolean {
    const token = verifiedToken(request)
    if (session.grantId === token.grantId) return true
    request.log.warn({ sessionId: session.id, grantId: token.grantId, clientId: token.clientId }, 'session used with another grant\'s token')
    return false
  }

  refuse (reply: FastifyReply, reason: Refusal): FastifyReply {
    this.app.metrics.sessionRefusals.inc({ reason })
    switch (reason) {
      case 'missing_session_id': return sendError(reply, new RpcError(400, RpcCode.ServerError, 'Bad Request: Mcp-Session-Id header is required', { noStore: true }))
      case 'session_cap': return sendError(reply, new RpcError(429, RpcCode.ServerError, `Too many open sessions for this authorization (at most ${this.opts.config.MAX_SESSIONS_PER_GRANT}); close one (HTTP DELETE) or wait for idle ones to expire`, { noStore: true, retryAfterS: 60 }))
      default: return sendError(reply, new RpcError(404, RpcCode.SessionNotFound, 'Session not found', { noStore: true }))
    }
  }

  /** A new session for an initialize, counted against the grant's cap before the SDK answers. */
  async openSession (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { config, index, registry } = this.opts
    const token = verifiedToken(request)
    const id = randomUUID()
    const openedAt = Date.now()
    const allowed = await index.open({ id, grantId: token.grantId, clientId: token.clientId, userId: token.userId, replica: this.opts.replica, url: this.opts.replicaUrl, openedAt }, config.MAX_SESSIONS_PER_GRANT, config.SESSION_IDLE_TIMEOUT_S)
    if (!allowed) return void this.refuse(reply, 'session_cap')
    const transport = new HttpServerTransport(id)
    const server = sessionServer(this.opts.catalog)
    const session = new McpSession(id, token.grantId, token.clientId, token.userId, openedAt, transport, server)
    // set before connect: the SDK chains it, and it runs when a DELETE (or anything else) closes the transport
    transport.onclose = () => { registry.forget(session, 'deleted') }
    await server.connect(transport)
    registry.add(session)
    request.log.info({ sessionId: id, grantId: token.grantId, clientId: token.clientId }, 'MCP session opened')
    this.handOver(request, reply, session)
  }

  /** An id this replica does not hold: forwarded to the replica that does, if any. */
  async forwardToOwner (request: FastifyRequest, reply: FastifyReply, sessionId: string): Promise<void> {
    const token = verifiedToken(request)
    // forwarded once already: the sender read the index and chose this replica; never forward again
    if (request.headers[FORWARDED_BY] !== undefined) return void this.refuse(reply, 'unknown_session')
    let owner
    try {
      owner = await this.opts.index.locate(sessionId)
    } catch (err) {
      request.log.warn({ err, sessionId }, 'the session index cannot be read')
      return void sendError(reply, new RpcError(503, RpcCode.ServerError, 'Service Unavailable: the session index cannot be read; retry shortly', { noStore: true, retryAfterS: 2 }))
    }
    if (!owner || owner.replica === this.opts.replica || owner.url === '' || owner.url === this.opts.replicaUrl) return void this.refuse(reply, 'unknown_session')
    if (owner.grantId !== token.grantId) {
      // the owner would refuse it too; refused here, it never crosses
      request.log.warn({ sessionId, grantId: token.grantId, clientId: token.clientId }, 'session used with another grant\'s token')
      return void this.refuse(reply, 'other_grant')
    }
    const res = reply.raw
    const localHeaders = reply.getHeaders()
    reply.hijack()
    if (request.method === 'GET') request.raw.socket.setTimeout(0)
    const controller = new AbortController()
    this.opts.registry.trackSessionless({
      kind: 'forwarded',
      grantId: token.grantId,
      clientId: token.clientId,
      userId: token.userId,
      jti: token.jti,
      endsWithToken: request.method === 'GET',
      abort: () => { controller.abort() }
    }, res)
    request.log.debug({ sessionId, owner: owner.replica }, 'forwarding to the replica holding the session')
    await this.opts.forwarder.forward(owner, { req: request.raw, res, body: request.mcpRawBody, requestId: request.id, localHeaders: localHeaders as Record<string, string>, log: request.log, signal: controller.signal })
  }

  /**
   * The session's transport answers (it writes the response itself; the headers Fastify's hooks set so
   * far, CORS and the request id, go along). The request is tracked so closing the session aborts it; a
   * GET stream is tracked with its token, which ends it on expiry or revocation.
   */
  handOver (request: FastifyRequest, reply: FastifyReply, session: McpSession): void {
    const { registry } = this.opts
    const token = verifiedToken(request)
    const res = reply.raw
    if (token.exp > session.tokenExp) session.tokenExp = token.exp
    const headers = reply.getHeaders()
    headers['x-request-id'] = request.id
    reply.hijack()
    registry.trackRequest(session, res)
    const opens = request.method === 'GET' && !session.transport.streaming
    try {
      session.transport.handle(request.raw, res, request.body, { authInfo: token.authInfo, headers })
    } catch (err) {
      request.log.error({ err, sessionId: session.id }, 'MCP request failed')
      if (!res.headersSent) writeError(res, new RpcError(500, RpcCode.InternalError, 'Internal error'))
      else if (!res.writableEnded) res.destroy()
      return
    }
    if (opens && session.transport.streaming) {
      // an SSE stream outlives the socket's idle timeout; it ends on expiry, revocation or session close
      request.raw.socket.setTimeout(0)
      registry.trackStream(session, res, token.jti, token.exp)
    }
  }
}

export function mcpRoutes (app: FastifyInstance, endpoint: McpEndpoint): void {
  const routeOptions = { onRequest: app.authenticate, bodyLimit: 1024 * 1024 }
  void app.register(async (scope) => {
    // clients may send Content-Type: application/json on a bodyless DELETE; that is not a malformed body
    const json = scope.getDefaultJsonParser('error', 'error')
    scope.decorateRequest('mcpRawBody', undefined)
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      request.mcpRawBody = body as string
      if (body === '' && request.method !== 'POST') return done(null, undefined)
      json(request, body as string, done)
    })
    scope.post('/mcp', routeOptions, endpoint.handle)
    scope.get('/mcp', routeOptions, endpoint.handle)
    scope.delete('/mcp', routeOptions, endpoint.handle)
  })
}
