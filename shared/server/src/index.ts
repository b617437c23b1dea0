/**
 * What every service's app and server entry share: the base Fastify options (logger, request ids, body
 * limit, timeouts), the Redis and health plugins, the error handler, and `runServer`, which loads config,
 * listens, and shuts down gracefully (in-flight requests finish, Redis closes, exit 0 on SIGTERM).
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import closeWithGrace from 'close-with-grace'
import { randomUUID } from 'node:crypto'
import { ConfigError, type BaseConfig } from '@uspl/config'
import { loggerOptions } from '@uspl/logger'
import redisPlugin, { type RedisPluginOptions } from './redis-plugin.ts'
import health from './health.ts'
import { securityHeaders } from './security-headers.ts'
import { errorHandler } from './error-handler.ts'
import type { RedisClient } from '@uspl/redis'

export { redisPlugin, health }
export { errorHandler, errorHandlerFor, apiErrorHandler, sendError } from './error-handler.ts'
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
  /** ioredis auto-pipelining on the service's Redis client (createRedis's `autoPipelining`) */
  redisAutoPipelining?: boolean
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
    client: options.redis,
    autoPipelining: options.redisAutoPipelining
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
