/**
 * Decorates the instance with `redis` (the prefixed client), `readiness` (named checks that
 * /health/ready runs) and closes the client it opened, and only that, on close.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createRedis, closeRedis, type RedisClient } from '@uspl/redis'

export type ReadinessCheck = () => Promise<string | null> | string | null

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisClient
    redisPrefix: string
    readiness: Map<string, ReadinessCheck>
  }
}

export interface RedisPluginOptions {
  url: string
  prefix: string
  name: string
  commandTimeoutMs: number
  /** an existing client (tests, or a client shared with another plugin); not closed by this plugin */
  client?: RedisClient
  /** ioredis auto-pipelining on the client this plugin creates (see createRedis) */
  autoPipelining?: boolean
}

async function redisPlugin (app: FastifyInstance, opts: RedisPluginOptions): Promise<void> {
  const owned = opts.client === undefined
  const client = opts.client ?? createRedis({ url: opts.url, prefix: opts.prefix, name: opts.name, commandTimeoutMs: opts.commandTimeoutMs, autoPipelining: opts.autoPipelining })
  let wasReady = client.status === 'ready'
  client.on('error', (err: Error) => {
    // ioredis emits an error per failed reconnect; log state changes, not the flood
    if (wasReady) app.log.warn({ err }, 'redis connection lost')
    wasReady = false
  })
  client.on('ready', () => {
    if (!wasReady) app.log.info('redis ready')
    wasReady = true
  })
  app.decorate('redis', { getter: () => client })
  app.decorate('redisPrefix', opts.prefix)
  app.decorate('readiness', new Map<string, ReadinessCheck>())
  app.readiness.set('redis', async () => {
    if (client.status !== 'ready') return `redis is ${client.status}`
    try {
      await client.ping()
      return null
    } catch (err) {
      return `redis ping failed: ${(err as Error).message}`
    }
  })
  if (owned) app.addHook('onClose', async () => { await closeRedis(client) })
}

export default fp(redisPlugin, { name: 'uspl-redis', fastify: '5.x' })
