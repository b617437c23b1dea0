import type { FastifyInstance } from 'fastify'
import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import { baseFastify, type AppOptions } from '@uspl/server'
import { OAuthError } from '@uspl/errors'
import type { Config } from './config.ts'
import context from './lib/context.ts'
import register from './routes/register.ts'
import clientConfiguration from './routes/client.ts'

export type { Config }

export async function build (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = baseFastify('registration', config, options)
  // any origin may register (browser-based MCP clients do); no cookies are involved
  await app.register(cors, { origin: '*', methods: ['GET', 'POST', 'DELETE'], maxAge: 600 })
  // per source address, counted in Redis so every replica shares the count; routes opt in with `config.rateLimit`
  await app.register(rateLimit, {
    global: false,
    max: config.REGISTRATION_RATE_LIMIT_MAX,
    timeWindow: config.REGISTRATION_RATE_LIMIT_WINDOW_S * 1000,
    redis: app.redis,
    nameSpace: 'ratelimit:register:',
    keyGenerator: (request) => request.ip,
    errorResponseBuilder: (_request, context) => new OAuthError('temporarily_unavailable',
      `too many registration requests from this address; retry in ${Math.ceil(context.ttl / 1000)} seconds`, 429, { 'retry-after': String(Math.ceil(context.ttl / 1000)) })
  })
  await app.register(context, { config })
  await app.register(register)
  await app.register(clientConfiguration)
  return app
}
