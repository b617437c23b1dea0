/**
 * Prometheus metrics, one registry per app, served at GET /metrics (keep it off the public ingress).
 * Labels are bounded: routes by pattern, refusals by error code.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Registry, Counter, collectDefaultMetrics } from 'prom-client'

export class ApiMetrics {
  readonly registry = new Registry()
  readonly requests = new Counter({ name: 'api_http_requests_total', help: 'HTTP requests answered, by method, route and status', labelNames: ['method', 'route', 'status'] as const, registers: [this.registry] })
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
  // one counter child per (method, route, status), found by a plain string instead of prom-client's label hash
  const children = new Map<string, { inc: () => void }>()
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched'
    const id = `${request.method} ${reply.statusCode} ${route}`
    let child = children.get(id)
    if (child === undefined) {
      child = metrics.requests.labels({ method: request.method, route, status: String(reply.statusCode) })
      children.set(id, child)
    }
    child.inc()
    done()
  })
  app.get('/metrics', { logLevel: 'warn', config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })
}

export default fp(metricsPlugin, { name: 'api-metrics' })
