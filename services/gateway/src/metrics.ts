/**
 * Prometheus metrics, one registry per app (two gateways in one test process do not collide), served at
 * GET /metrics. Labels are bounded: routes by pattern, auth failures by reason, revocations by scope.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { ServerResponse } from 'node:http'
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client'
import { AnswerCounter } from '@uspl/server/answer-tally'

export class GatewayMetrics {
  readonly registry = new Registry()
  /** answers by method, route and status: counted per request, moved into prom-client when scraped */
  readonly requests = new AnswerCounter('gateway_http_requests_total', this.registry)
  readonly authFailures = new Counter({ name: 'gateway_auth_failures_total', help: 'requests refused before reaching MCP, by reason', labelNames: ['reason'] as const, registers: [this.registry] })
  readonly sessionsOpen = new Gauge({ name: 'gateway_mcp_sessions_open', help: 'MCP sessions open on this replica', registers: [this.registry] })
  readonly sessionsOpened = new Counter({ name: 'gateway_mcp_sessions_opened_total', help: 'MCP sessions created on this replica', registers: [this.registry] })
  readonly sessionsClosed = new Counter({ name: 'gateway_mcp_sessions_closed_total', help: 'MCP sessions closed, by why', labelNames: ['reason'] as const, registers: [this.registry] })
  readonly sessionRefusals = new Counter({ name: 'gateway_mcp_session_refusals_total', help: 'session requests refused (unknown id, another grant\'s session, cap reached, missing id)', labelNames: ['reason'] as const, registers: [this.registry] })
  readonly forwarded = new Counter({ name: 'gateway_mcp_forwarded_requests_total', help: 'requests for a session held by another replica, forwarded to it, by method and outcome (proxied: the owner answered; owner_gone: 404; upstream_error: 502)', labelNames: ['method', 'outcome'] as const, registers: [this.registry] })
  readonly statelessRequests = new Counter({ name: 'gateway_mcp_stateless_requests_total', help: 'stateless (2026-07-28) requests served, by outcome (completed, revoked, expired, client_gone, shutdown, failed)', labelNames: ['outcome'] as const, registers: [this.registry] })
  readonly revocationsApplied = new Counter({ name: 'gateway_revocations_applied_total', help: 'revocation events applied, by scope and source (live channel or stream replay)', labelNames: ['scope', 'source'] as const, registers: [this.registry] })
  readonly revokedSessions = new Counter({ name: 'gateway_revoked_sessions_closed_total', help: 'sessions and streams closed because of a revocation event', registers: [this.registry] })
  readonly revocationLag = new Histogram({ name: 'gateway_revocation_lag_seconds', help: 'from the revocation (event time) to its sessions being closed on this replica', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] })
  readonly jwksFetches = new Counter({ name: 'gateway_jwks_fetches_total', help: 'fetches of the issuer\'s JWKS, by result', labelNames: ['result'] as const, registers: [this.registry] })

  constructor () {
    collectDefaultMetrics({ register: this.registry, prefix: 'gateway_' })
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatewayMetrics
  }
}

const ROUTE = Symbol('uspl.route')
type CountedResponse = ServerResponse & { [ROUTE]: string }

async function metricsPlugin (app: FastifyInstance): Promise<void> {
  const metrics = new GatewayMetrics()
  app.decorate('metrics', metrics)
  // counted on the raw response's close so hijacked MCP streams are counted too; one listener function for
  // every response (no closure per request), reading the route the hook left on the response
  function answered (this: CountedResponse): void {
    metrics.requests.count(this.req.method ?? 'unknown', this[ROUTE], this.statusCode)
  }
  app.addHook('onRequest', (request, reply, done) => {
    const res = reply.raw as CountedResponse
    res[ROUTE] = request.routeOptions.url ?? 'unmatched'
    res.on('close', answered)
    done()
  })
  app.get('/metrics', { logLevel: 'warn', config: { public: true } }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })
}

export default fp(metricsPlugin, { name: 'gateway-metrics' })
