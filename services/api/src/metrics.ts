/**
 * Prometheus metrics, one registry per app, served at GET /metrics (keep it off the public ingress).
 * Labels are bounded: routes by pattern, refusals by error code.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Registry, Counter, collectDefaultMetrics } from 'prom-client'
import { AnswerCounter } from '@uspl/server/answer-tally'

export class ApiMetrics {
  readonly registry = new Registry()
  /** answers by method, route and status: counted per request, moved into prom-client when scraped */
  readonly requests = new AnswerCounter('api_http_requests_total', this.registry)
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
    metrics.requests.count(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode)
    done()
  })
  app.get('/metrics', { logLevel: 'warn', config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })
}

export default fp(metricsPlugin, { name: 'api-metrics' })
