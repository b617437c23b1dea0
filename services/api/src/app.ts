/**
 * The workspace REST API: recordings and recording links for personal `uspl_` keys, under the same role
 * rules as the MCP tools (the WorkspaceService of shared/core, which both doors call). OpenAPI 3 at /docs
 * (JSON at /docs/json), generated from the route schemas. Errors are `{"error":{"code","message"}}`; a
 * refusal by the rules is 403 with the service's sentence, anything the caller cannot see is 404.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { baseFastify, type AppOptions } from '@uspl/server'
import { ErrorBody, apiErrorHandler } from '@uspl/server/api-errors'
import { ApiError } from '@uspl/errors'
import { AccountStore, RedisWorkspaceRepository, WorkspaceError, WorkspaceService, type WorkspaceRepository } from '@uspl/core'
import type { Config } from './config.ts'
import auth from './auth.ts'
import metrics from './metrics.ts'
import { models } from './schemas.ts'
import workspaceRoutes from './routes/workspaces.ts'
import recordingRoutes from './routes/recordings.ts'
import linkRoutes from './routes/links.ts'

export type { Config }

export interface ApiAppOptions extends AppOptions {
  /** where workspace data is read and written; the Redis repository when absent */
  repository?: WorkspaceRepository
}

declare module 'fastify' {
  interface FastifyInstance {
    workspaces: WorkspaceService
  }
}

const STATUS: Record<WorkspaceError['kind'], [number, string]> = {
  not_found: [404, 'not_found'],
  forbidden: [403, 'forbidden'],
  invalid: [400, 'invalid_request']
}

/** The shared API error handler, plus the workspace service's refusals in their HTTP form. */
function errorHandler (this: FastifyInstance, err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof WorkspaceError) {
    const [status, code] = STATUS[err.kind]
    const message = err.kind === 'invalid' && err.field ? `${err.field}: ${err.message}` : err.message
    reply.code(status).send(new ApiError(code, message, status).toJSON())
    return
  }
  apiErrorHandler.call(this, err, request, reply)
}

export async function build (config: Config, options: ApiAppOptions = {}): Promise<FastifyInstance> {
  const app = baseFastify('api', config, options)
  for (const model of [ErrorBody, ...models]) app.addSchema(model)
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'uspl Workspace API',
        version: '1.0.0',
        description: 'Recordings and recording links of your workspaces, for scripts and integrations. Authenticate with a personal API key (`Authorization: Bearer uspl_…`), created on your account page; it acts as you, with your role in each workspace. The same rules as the MCP tools apply: any member reads, creates and updates links; deleting needs the owner or admin role or being the creator. Lists are cursor-paginated (`cursor`, `limit`; `next_cursor` in the body). Errors are `{"error":{"code","message"}}`; rate limits answer 429 with `Retry-After` and send `RateLimit-*` headers.'
      },
      servers: [{ url: config.API_URL }],
      tags: [{ name: 'workspaces' }, { name: 'recordings' }, { name: 'links' }],
      components: {
        securitySchemes: { personalKey: { type: 'http', scheme: 'bearer', description: 'a personal API key (`uspl_…`)' } }
      },
      security: [{ personalKey: [] }]
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  await app.register(metrics)
  // app.redis is decorated from here on (the awaits above loaded the base plugins); the limiters are created per use (auth.ts); the plugin itself limits no route
  await app.register(rateLimit, { global: false, redis: app.redis, nameSpace: 'ratelimit:api:' })
  app.decorate('workspaces', new WorkspaceService(new AccountStore(app.redis), options.repository ?? new RedisWorkspaceRepository(app.redis)))
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(new ApiError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`, 404).toJSON())
  })

  app.register(async (scope) => {
    scope.setErrorHandler(errorHandler)
    const windowMs = config.API_RATE_LIMIT_WINDOW_S * 1000
    await scope.register(auth, {
      perAddress: { max: config.API_RATE_LIMIT_PER_ADDRESS, windowMs },
      perKey: { max: config.API_RATE_LIMIT_PER_KEY, windowMs },
      onRefused: (code) => app.apiMetrics.refusals.inc({ code })
    })
    await scope.register(workspaceRoutes)
    await scope.register(recordingRoutes)
    await scope.register(linkRoutes)
  })
  return app
}
