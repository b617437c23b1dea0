/**
 * The workspace REST API: recordings and recording links for personal `uspl_` keys, under the same role
 * rules as the MCP tools (the WorkspaceService of shared/core, which both doors call). OpenAPI 3 at /docs
 * (JSON at /docs/json), generated from the route schemas. Errors are `{"error":{"code","message"}}`; a
 * refusal by the rules is 403 with the service's sentence, anything the caller cannot see is 404.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { baseFastify, type AppOptions } from '@uspl/server'
import { ErrorBody, apiErrorHandler } from '@uspl/server/api-errors'
import { ApiError } from '@uspl/errors'
import { AccountStore, ROLES, RedisWorkspaceRepository, WorkspaceError, WorkspaceService, keys, type Memberships, type Role, type WorkspaceRepository } from '@uspl/core'
import type { Config } from './config.ts'
import auth from './auth.ts'
import metrics from './metrics.ts'
import { LiveCache, type RecordKind } from './live-cache.ts'
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

/** A workspace's members (user id → role), kept by the cache while the workspace has any. */
const MEMBERS: RecordKind<Record<string, string>> = {
  fetch: async (redis, key) => await redis.hgetall(key),
  keep: (members) => Object.keys(members).length > 0
}

/** Roles read through the cache (a role change reaches the next request on every replica); lists from the store. */
function cachedMemberships (cache: LiveCache, accounts: AccountStore): Memberships {
  const roleIn = (members: Record<string, string>, userId: string): Role | null => {
    const role = members[userId]
    return role !== undefined && (ROLES as string[]).includes(role) ? role as Role : null
  }
  return {
    getRole: (workspaceId, userId) => {
      const members = cache.get(MEMBERS, keys.workspaceMembers(workspaceId))
      return members instanceof Promise ? members.then((m) => roleIn(m, userId)) : roleIn(members, userId)
    },
    listMemberships: async (userId) => await accounts.listMemberships(userId)
  }
}

export async function build (config: Config, options: ApiAppOptions = {}): Promise<FastifyInstance> {
  // requests released by one cache fence resume together and each reads its resource: one write for all
  const app = baseFastify('api', config, { redisAutoPipelining: true, ...options })
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
  // app.redis is decorated from here on (the awaits above loaded the base plugins)
  const cache = new LiveCache({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX, redis: app.redis, log: app.log })
  await cache.start()
  app.addHook('onClose', async () => { await cache.close() })
  app.decorate('workspaces', new WorkspaceService(cachedMemberships(cache, new AccountStore(app.redis)), options.repository ?? new RedisWorkspaceRepository(app.redis)))
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(new ApiError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`, 404).toJSON())
  })

  app.register(async (scope) => {
    scope.setErrorHandler(errorHandler)
    const windowMs = config.API_RATE_LIMIT_WINDOW_S * 1000
    await scope.register(auth, {
      cache,
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
