/**
 * The connections service: Connected Apps for users (the page at /connections) and the REST API for users
 * and operators (/v1/…, OpenAPI at /docs), all revoking through the one shared Revoker. The revocation
 * follow-up worker (audit, webhooks, cleanup, sweeper) runs here unless WORKER_ENABLED=false.
 */
import type { FastifyInstance, FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import cookie from '@fastify/cookie'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { baseFastify, type AppOptions } from '@uspl/server'
import { ApiError, isRedisUnavailable } from '@uspl/errors'
import { SESSION_COOKIE } from '@uspl/core'
import type { Config } from './config.ts'
import domain from './revocation.ts'
import auth from './auth.ts'
import { ErrorBody } from './schemas.ts'
import connectionsRoutes from './routes/connections.ts'
import clientRoutes from './routes/clients.ts'
import userRoutes from './routes/users.ts'
import auditRoutes from './routes/audit.ts'
import pageRoutes from './routes/page.ts'
import enterpriseIssuerRoutes from './routes/enterprise-issuers.ts'

export type { Config }

export async function build (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = baseFastify('connections', config, options)
  app.register(cookie)
  app.addSchema(ErrorBody)
  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'uspl Connections API',
        version: '1.0.0',
        description: 'Connected Apps: list and revoke the AI clients that hold access to user accounts. Users call it with their browser session (state-changing calls need the `x-csrf-token` header); operators with an `uspl_` API key as a Bearer token. Errors are `{"error":{"code","message"}}`.'
      },
      servers: [{ url: config.CONNECTIONS_URL }],
      tags: [{ name: 'connections', description: 'users and operators' }, { name: 'operators', description: 'operator API keys only' }],
      components: {
        securitySchemes: {
          operatorKey: { type: 'http', scheme: 'bearer', description: 'an operator API key (`uspl_…`)' },
          userSession: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'the browser session set at sign-in by the token service' }
        }
      }
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` }
  })
  app.register(swaggerUi, { routePrefix: '/docs' })
  app.register(domain, { config })
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(new ApiError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`, 404).toJSON())
  })

  // everything behind authentication: each route names who may call it (config.auth)
  app.register(async (scope) => {
    scope.setErrorHandler(apiErrorHandler)
    await scope.register(auth, { issuerUrl: config.ISSUER_URL, connectionsUrl: config.CONNECTIONS_URL, sessionTtlS: config.SESSION_TTL_S })
    await scope.register(connectionsRoutes)
    await scope.register(clientRoutes)
    await scope.register(userRoutes)
    await scope.register(auditRoutes)
    await scope.register(pageRoutes)
    await scope.register(enterpriseIssuerRoutes)
  })
  return app
}

/** The API's errors in its one shape, `{ error: { code, message } }`. */
function apiErrorHandler (this: FastifyInstance, err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof ApiError) {
    reply.code(err.statusCode).send(err.toJSON())
    return
  }
  if (err.validation) {
    reply.code(400).send(new ApiError('invalid_request', err.message).toJSON())
    return
  }
  if (isRedisUnavailable(err)) {
    request.log.warn({ err }, 'redis unavailable')
    reply.code(503).header('retry-after', '2').send(new ApiError('unavailable', 'the service cannot reach its store; retry shortly', 503).toJSON())
    return
  }
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
  if (status === 500) {
    request.log.error({ err }, 'request failed')
    reply.code(500).send(new ApiError('internal', 'internal error', 500).toJSON())
    return
  }
  reply.code(status).send(new ApiError(err.code?.toLowerCase() ?? 'bad_request', err.message, status).toJSON())
}
