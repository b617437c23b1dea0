import type { FastifyInstance } from 'fastify'
import cors from '@fastify/cors'
import { baseFastify, rateLimits, oauthTooMany, type AppOptions } from '@uspl/server'
import type { Config } from './config.ts'
import context from './lib/context.ts'
import register from './routes/register.ts'
import clientConfiguration from './routes/client.ts'

export type { Config }

export async function build (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = baseFastify('registration', config, options)
  // any origin may register (browser-based MCP clients do); no cookies are involved
  await app.register(cors, { origin: '*', methods: ['GET', 'POST', 'DELETE'], maxAge: 600 })
  // per source address, counted in Redis so every replica shares the count: registrations (config.rateLimit
  // of POST /register), and failed registration access tokens at RFC 7592 read/delete (config.failureLimit)
  await app.register(rateLimits, { service: 'registration', config, error: oauthTooMany })
  await app.register(context, { config })
  await app.register(register)
  await app.register(clientConfiguration)
  return app
}
