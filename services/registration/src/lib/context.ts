/**
 * The registration service's models over the app's Redis client, decorated as `app.registration`, and the
 * revocation follow-up queue (closed on close).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ClientStore, Revoker, createFollowupQueue, closeQueue } from '@uspl/core'
import type { Config } from '../config.ts'

export interface RegistrationContext {
  config: Config
  clients: ClientStore
  revoker: Revoker
}

declare module 'fastify' {
  interface FastifyInstance {
    registration: RegistrationContext
  }
}

async function context (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const queue = createFollowupQueue(config.REDIS_URL, config.REDIS_PREFIX)
  queue.on('error', (err) => app.log.warn({ err }, 'revocation follow-up queue error'))
  app.addHook('onClose', async () => { await closeQueue(queue) })
  app.decorate('registration', {
    config,
    clients: new ClientStore(app.redis, config.CLIENT_IDLE_TTL_S),
    revoker: new Revoker({ redis: app.redis, prefix: config.REDIS_PREFIX, accessTokenTtlS: config.ACCESS_TOKEN_TTL_S, queue, log: app.log })
  })
}

export default fp(context, { name: 'uspl-registration-context', dependencies: ['uspl-redis'], fastify: '5.x' })
