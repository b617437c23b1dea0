/**
 * The connections service: Connected Apps for users (the page at /connections) and the REST API for users
 * and operators (/v1/…, OpenAPI at /docs), all revoking through the one shared Revoker. The revocation
 * follow-up worker (audit, webhooks, cleanup, sweeper) runs here unless WORKER_ENABLED=false.
 */
import type { FastifyInstance } from 'fastify'
import cookie from '@fastify/cookie'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { baseFastify, rateLimits, apiTooMany, sendError, apiErrorHandler, type AppOptions } from '@uspl/server'
import { ApiError } from '@uspl/errors'
import { SESSION_COOKIE } from '@uspl/core'
import type { Config } from './config.ts'
import context from './context.ts'
import auth, { credentialLookahead } from './auth.ts'
import { ErrorBody } from './schemas.ts'
import connectionsRoutes from './routes/connections.ts'
import clientRoutes from './routes/clients.ts'
import userRoutes from './routes/users.ts'
import auditRoutes from './routes/audit.ts'
import apiKeyRoutes from './routes/api-keys.ts'
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
  app.register(context, { config })
  // an API key's check starts as its request arrives, beside the rate limits' counts (one round trip)
  app.register(credentialLookahead)
  // failed API keys and sessions per address on every /v1 route (config.failureLimit), shared by replicas
  app.register(rateLimits, { service: 'connections', config, error: apiTooMany })
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new ApiError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`, 404))
  })

  // everything behind authentication: each route names who may call it (config.auth)
  app.register(async (scope) => {
    scope.setErrorHandler(apiErrorHandler) // the shared handler, in the API's format
    await scope.register(auth, { issuerUrl: config.ISSUER_URL, connectionsUrl: config.CONNECTIONS_URL, sessionTtlS: config.SESSION_TTL_S })
    await scope.register(connectionsRoutes)
    await scope.register(clientRoutes)
    await scope.register(userRoutes)
    await scope.register(auditRoutes)
    await scope.register(apiKeyRoutes)
    await scope.register(pageRoutes, { config })
    await scope.register(enterpriseIssuerRoutes)
  })
  return app
}
