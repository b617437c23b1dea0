/**
 * MCP over Streamable HTTP at /mcp, with the SDK inside Fastify. Each request is authenticated first
 * (route onRequest hook), then, as steps:
 *   1. find the session: an initialize without Mcp-Session-Id opens one (per-grant cap, Redis index, with
 *      this replica's id and URL); any other request needs the id (400 without it). An id this replica does
 *      not hold costs one index read (only then): when another replica owns it and the request was not
 *      forwarded already, it is forwarded there (forward.ts); otherwise 404;
 *      A request without the id that declares protocol 2026-07-28 is stateless: served per request by the
 *      v2 SDK (stateless.ts), tracked for revocation, no session;
 *   2. bind: a session answers only its own grant's tokens (404 otherwise; the session is untouched);
 *   3. hand the raw request and response to the session's StreamableHTTPServerTransport (reply hijacked)
 *      with authInfo, tracking the request (and a GET stream with its token's expiry) for revocation.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { Config } from '../config.ts'
import type { AccessToken } from '../auth/verifier.ts'
import type { ToolDeps } from '../tools/context.ts'
import { McpSession, type SessionRegistry } from './sessions.ts'
import type { SessionIndex } from './session-index.ts'
import { FORWARDED_BY, type Forwarder } from './forward.ts'
import type { StatelessEndpoint } from './stateless.ts'
import { mcpServerFactory } from './server.ts'

export interface TransportOptions {
  config: Config
  registry: SessionRegistry
  index: SessionIndex
  deps: ToolDeps
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

type Refusal = 'missing_session_id' | 'unknown_session' | 'other_grant' | 'session_cap'

function jsonRpcError (reply: FastifyReply, status: number, code: number, message: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ jsonrpc: '2.0', error: { code, message }, id: null })
}

export function authInfo (token: AccessToken, resource: URL): AuthInfo {
  return {
    token: token.token,
    clientId: token.clientId,
    scopes: token.scopes,
    expiresAt: token.exp,
    resource,
    extra: { userId: token.userId, grantId: token.grantId, jti: token.jti }
  }
}

function isInitialize (body: unknown): boolean {
  return Array.isArray(body) ? body.some((m) => isInitializeRequest(m)) : isInitializeRequest(body)
}

export function mcpRoutes (app: FastifyInstance, opts: TransportOptions): void {
  const { config, registry, index, deps } = opts
  const newServer = mcpServerFactory(deps)
  const resource = new URL(config.GATEWAY_RESOURCE_URL)

  function refuse (reply: FastifyReply, reason: Refusal): FastifyReply {
    app.metrics.sessionRefusals.inc({ reason })
    switch (reason) {
      case 'missing_session_id': return jsonRpcError(reply, 400, -32000, 'Bad Request: Mcp-Session-Id header is required')
      case 'session_cap': return jsonRpcError(reply.header('retry-after', '60'), 429, -32000, `Too many open sessions for this authorization (at most ${config.MAX_SESSIONS_PER_GRANT}); close one (HTTP DELETE) or wait for idle ones to expire`)
      default: return jsonRpcError(reply, 404, -32001, 'Session not found')
    }
  }

  /** Step 3: the SDK writes the response itself; headers Fastify's hooks set so far (CORS, request id) go along. */
  async function handOver (request: FastifyRequest, reply: FastifyReply, session: McpSession): Promise<void> {
    const token = request.accessToken as AccessToken
    const req = request.raw as IncomingMessage & { auth?: AuthInfo }
    const res: ServerResponse = reply.raw
    req.auth = authInfo(token, resource)
    if (token.exp > session.tokenExp) session.tokenExp = token.exp
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value as string)
    res.setHeader('x-request-id', request.id)
    reply.hijack()
    registry.trackRequest(session, res)
    if (request.method === 'GET' && session.stream === null) {
      // an SSE stream outlives the socket's idle timeout; it ends on expiry, revocation or session close
      request.raw.socket.setTimeout(0)
      registry.trackStream(session, res, token.jti, token.exp)
    }
    try {
      await session.transport.handleRequest(req, res, request.body)
    } catch (err) {
      request.log.error({ err, sessionId: session.id }, 'MCP request failed')
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }))
      } else if (!res.writableEnded) {
        res.destroy()
      }
    }
  }

  /** Step 1 for initialize: a new session, counted against the grant's cap before the SDK answers. */
  async function open (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const token = request.accessToken as AccessToken
    const id = randomUUID()
    const openedAt = Date.now()
    const allowed = await index.open({ id, grantId: token.grantId, clientId: token.clientId, userId: token.userId, replica: opts.replica, url: opts.replicaUrl, openedAt }, config.MAX_SESSIONS_PER_GRANT, config.SESSION_IDLE_TIMEOUT_S)
    if (!allowed) return void refuse(reply, 'session_cap')
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => id })
    const server = newServer()
    const session = new McpSession(id, token.grantId, token.clientId, token.userId, openedAt, transport, server)
    // set before connect: the SDK chains it, and it runs when a DELETE (or anything else) closes the transport
    transport.onclose = () => { registry.forget(session, 'deleted') }
    await server.connect(transport)
    registry.add(session)
    request.log.info({ sessionId: id, grantId: token.grantId, clientId: token.clientId }, 'MCP session opened')
    await handOver(request, reply, session)
    if (transport.sessionId === undefined) {
      // the SDK refused the initialize (bad params): nothing was opened
      await registry.close(session, 'failed')
    }
  }

  /** Step 1 for an id this replica does not hold: forward to the replica that does, if any. */
  async function elsewhere (request: FastifyRequest, reply: FastifyReply, sessionId: string): Promise<void> {
    const token = request.accessToken as AccessToken
    // forwarded once already: the sender read the index and chose this replica; never forward again
    if (request.headers[FORWARDED_BY] !== undefined) return void refuse(reply, 'unknown_session')
    let owner
    try {
      owner = await index.locate(sessionId)
    } catch (err) {
      request.log.warn({ err, sessionId }, 'the session index cannot be read')
      return void jsonRpcError(reply.header('retry-after', '2'), 503, -32000, 'Service Unavailable: the session index cannot be read; retry shortly')
    }
    if (!owner || owner.replica === opts.replica || owner.url === '' || owner.url === opts.replicaUrl) return void refuse(reply, 'unknown_session')
    if (owner.grantId !== token.grantId) {
      // the owner would refuse it too; refused here, it never crosses
      request.log.warn({ sessionId, grantId: token.grantId, clientId: token.clientId }, 'session used with another grant\'s token')
      return void refuse(reply, 'other_grant')
    }
    const res = reply.raw
    const localHeaders = reply.getHeaders()
    reply.hijack()
    if (request.method === 'GET') request.raw.socket.setTimeout(0)
    const controller = new AbortController()
    registry.trackSessionless({
      kind: 'forwarded',
      grantId: token.grantId,
      clientId: token.clientId,
      userId: token.userId,
      jti: token.jti,
      endsWithToken: request.method === 'GET',
      abort: () => { controller.abort() }
    }, res)
    request.log.debug({ sessionId, owner: owner.replica }, 'forwarding to the replica holding the session')
    await opts.forwarder.forward(owner, { req: request.raw, res, body: request.mcpRawBody, requestId: request.id, localHeaders: localHeaders as Record<string, string>, log: request.log, signal: controller.signal })
  }

  async function handle (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const token = request.accessToken as AccessToken
    const header = request.headers['mcp-session-id']
    const sessionId = Array.isArray(header) ? header[0] : header
    if (!sessionId) {
      if (request.method === 'POST' && isInitialize(request.body)) return open(request, reply)
      if (await opts.stateless.claims(request)) return opts.stateless.serve(request, reply)
      return void refuse(reply, 'missing_session_id')
    }
    const session = registry.get(sessionId)
    if (!session) return elsewhere(request, reply, sessionId)
    if (session.grantId !== token.grantId) {
      // another grant's token on this session: refused without a trace on the session (no touch, no close)
      request.log.warn({ sessionId, grantId: token.grantId, clientId: token.clientId }, 'session used with another grant\'s token')
      return void refuse(reply, 'other_grant')
    }
    registry.touch(session)
    await handOver(request, reply, session)
  }

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
    scope.post('/mcp', routeOptions, handle)
    scope.get('/mcp', routeOptions, handle)
    scope.delete('/mcp', routeOptions, handle)
  })
}
