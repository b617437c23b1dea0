/**
 * GET /health/live answers while the process runs and never touches Redis.
 * GET /health/ready runs every readiness check (Redis first) and answers 503 with the reasons when any fails.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { HttpError, errorHeaders } from '@uspl/errors'

/** not ready: probes and load balancers retry in a second; never cached */
const NOT_READY = new HttpError(503, 'not_ready', 'not ready', { retryAfterS: 1, noStore: true })

async function health (app: FastifyInstance): Promise<void> {
  app.get('/health/live', { logLevel: 'warn', config: { public: true } }, async () => ({ status: 'ok' }))
  app.get('/health/ready', { logLevel: 'warn', config: { public: true } }, async (_request, reply) => {
    const reasons: Record<string, string> = {}
    await Promise.all([...app.readiness.entries()].map(async ([name, check]) => {
      try {
        const problem = await check()
        if (problem) reasons[name] = problem
      } catch (err) {
        reasons[name] = (err as Error).message
      }
    }))
    if (Object.keys(reasons).length > 0) {
      return reply.code(503).headers(errorHeaders(NOT_READY)).send({ status: 'not_ready', reasons })
    }
    return reply.header('cache-control', 'no-store').send({ status: 'ready' })
  })
}

export default fp(health, { name: 'uspl-health', dependencies: ['uspl-redis'] })
