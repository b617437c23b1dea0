/**
 * What every service's app and server entry share: the base Fastify options (logger, request ids, body
 * limit, timeouts), the Redis and health plugins, the error handler, and `runServer`, which loads config,
 * listens, and shuts down gracefully (in-flight requests finish, Redis closes, exit 0 on SIGTERM).
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions, type FastifyError } from 'fastify'
import closeWithGrace from 'close-with-grace'
import { randomUUID } from 'node:crypto'
import { ConfigError, type BaseConfig } from '@uspl/config'
import { loggerOptions } from '@uspl/logger'
import { OAuthError, ApiError, isRedisUnavailable } from '@uspl/errors'
import redisPlugin, { type RedisPluginOptions } from './redis-plugin.ts'
import health from './health.ts'
import { securityHeaders } from './security-headers.ts'
import type { RedisClient } from '@uspl/redis'

export { redisPlugin, health }
export type { ReadinessCheck } from './redis-plugin.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** route needs no authentication (health, metadata) */
    public?: boolean
  }
}

export interface AppOptions {
  /** reuse an existing Redis client (tests); otherwise one is created from config */
  redis?: RedisClient
  /** override the logger (tests pass false) */
  logger?: FastifyServerOptions['logger']
}

export function baseFastify (service: string, config: BaseConfig, options: AppOptions = {}): FastifyInstance {
  const app = Fastify({
    logger: options.logger ?? loggerOptions(service, config),
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID()
    },
    requestIdHeader: false,
    bodyLimit: 64 * 1024,
    connectionTimeout: config.CONNECTION_TIMEOUT_MS,
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    trustProxy: trustProxy(config.TRUST_PROXY) as boolean | string,
    return503OnClosing: true
  })
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  app.addHook('onSend', securityHeaders)
  const redisOptions: RedisPluginOptions = {
    url: config.REDIS_URL,
    prefix: config.REDIS_PREFIX,
    name: service,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
    client: options.redis
  }
  app.register(redisPlugin, redisOptions)
  app.register(health)
  app.setErrorHandler(errorHandler)
  return app
}

function trustProxy (value: string): boolean | number | string {
  if (value === '' || value === 'false') return false
  if (value === 'true') return true
  if (/^\d+$/.test(value)) return Number(value)
  return value
}

/**
 * Maps errors to their wire format: OAuth errors per RFC 6749 §5.2, API errors as `{error:{code,message}}`,
 * Redis outages as 503 with Retry-After (fail closed), validation errors as 400.
 */
export function errorHandler (this: FastifyInstance, err: FastifyError, request: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply): void {
  if (err instanceof OAuthError) {
    if (err.statusCode >= 500) request.log.error({ err }, 'oauth server error')
    reply.code(err.statusCode).headers({ 'cache-control': 'no-store', ...err.headers }).send(err.toJSON())
    return
  }
  if (err instanceof ApiError) {
    reply.code(err.statusCode).send(err.toJSON())
    return
  }
  if (isRedisUnavailable(err)) {
    request.log.warn({ err }, 'redis unavailable')
    reply.code(503).header('retry-after', '2').send({ error: 'temporarily_unavailable', error_description: 'the service cannot reach its store; retry shortly' })
    return
  }
  if (err.validation) {
    reply.code(400).send({ error: 'invalid_request', error_description: err.message })
    return
  }
  const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500
  if (status >= 500) request.log.error({ err }, 'request failed')
  reply.code(status).send({ error: status >= 500 ? 'server_error' : 'invalid_request', error_description: status >= 500 ? 'internal error' : err.message })
}

export interface RunOptions<C extends BaseConfig> {
  service: string
  loadConfig: () => C
  build: (config: C) => Promise<FastifyInstance> | FastifyInstance
  /** grace period for in-flight requests on shutdown */
  graceMs?: number
}

/** Server entry: validated config (exit 1 with one line naming the variable), listen, graceful shutdown. */
export async function runServer<C extends BaseConfig> (opts: RunOptions<C>): Promise<FastifyInstance> {
  let config: C
  try {
    config = opts.loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${opts.service}: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
  if (process.env.LOG_PRETTY === undefined && process.stdout.isTTY) (config as BaseConfig).LOG_PRETTY = true
  let app: FastifyInstance
  try {
    app = await opts.build(config)
  } catch (err) {
    process.stderr.write(`${opts.service}: cannot start: ${(err as Error).message}\n`)
    process.exit(1)
  }
  closeWithGrace({ delay: opts.graceMs ?? 10000, logger: app.log }, async ({ err, signal }) => {
    if (err) app.log.error({ err }, 'closing after an error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
  })
  await app.listen({ port: config.PORT, host: config.HOST })
  return app
}
export { default as rateLimits, rateLimitSchema, oauthTooMany, apiTooMany, failureKeys, type RateLimitConfig, type FailureLimitRoute } from './rate-limits.ts'
