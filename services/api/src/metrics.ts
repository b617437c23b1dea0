/**
 * Prometheus metrics, one registry per app, served at GET /metrics (keep it off the public ingress).
 * Labels are bounded: routes by pattern, refusals by error code.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Registry, Counter, collectDefaultMetrics } from 'prom-client'
import { AnswerTally } from '@uspl/server/answer-tally'

export class ApiMetrics {
  readonly registry = new Registry()
  /** counted per request; moved into `requests` when /metrics is read */
  readonly answered = new AnswerTally()
  readonly requests: Counter<'method' | 'route' | 'status'> = new Counter({
    name: 'api_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
    collect: () => { this.answered.drain((labels, n) => { this.requests.inc(labels, n) }) }
  })
  readonly refusals = new Counter({ name: 'api_auth_refusals_total', help: 'requests refused before their route ran, by error code (unauthenticated, operator_key, rate_limited)', labelNames: ['code'] as const, registers: [this.registry] })

  constructor () {
    collectDefaultMetrics({ register: this.registry, prefix: 'api_' })
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    apiMetrics: ApiMetrics
  }
}

async function metricsPlugin (app: FastifyInstance): Promise<void> {
  const metrics = new ApiMetrics()
  app.decorate('apiMetrics', metrics)
  app.addHook('onResponse', (request, reply, done) => {
    metrics.answered.count(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode)
    done()
  })
  app.get('/metrics', { logLevel: 'warn', config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })
}

export default fp(metricsPlugin, { name: 'api-metrics' })
