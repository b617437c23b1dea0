/**
 * The registration service's context: its configuration and models over the app's Redis client, decorated
 * once as `app.registrationContext` (each service's is `app.<service>Context`), and the revocation follow-up
 * queue (closed on close).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ClientStore, createRevocationPipeline, type Revoker } from '@uspl/core'
import type { Config } from '../config.ts'

export interface RegistrationContext {
  config: Config
  clients: ClientStore
  revoker: Revoker
}

declare module 'fastify' {
  interface FastifyInstance {
    registrationContext: RegistrationContext
  }
}

async function context (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const revocation = createRevocationPipeline({ redis: app.redis, redisUrl: config.REDIS_URL, prefix: config.REDIS_PREFIX, accessTokenTtlS: config.ACCESS_TOKEN_TTL_S, log: app.log })
  app.addHook('onClose', revocation.close)
  app.decorate('registrationContext', {
    config,
    clients: new ClientStore(app.redis, config.CLIENT_IDLE_TTL_S),
    revoker: revocation.revoker
  })
}

export default fp(context, { name: 'uspl-registration-context', dependencies: ['uspl-redis'], fastify: '5.x' })
