/**
 * The domain this service works on, decorated once: the stores it reads and the one Revoker it revokes
 * through (with the follow-up queue, closed on close). The follow-up worker runs here too unless
 * WORKER_ENABLED=false; deployments (npm start, compose, k8s) run it as its own process instead
 * (src/worker.ts), so its jobs never compete with the revoke path for the API's event loop. Jobs are keyed
 * by event id, so several workers never do one event's work twice.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import {
  AccountStore, ApiKeyStore, ClientStore, GrantStore, createRevocationPipeline, startRevocationWorker, type Revoker,
  type RevocationWorker, type RevocationWorkerOptions
} from '@uspl/core'
import { securityEventTransmitter } from './ssf-transmitter.ts'
import { webhookUrls, type Config } from './config.ts'

export interface Domain {
  accounts: AccountStore
  /** operator and personal API keys; their creation and revocation are audited with the revocations */
  apiKeys: ApiKeyStore
  clients: ClientStore
  grants: GrantStore
  revoker: Revoker
  worker: RevocationWorker | null
}

declare module 'fastify' {
  interface FastifyInstance {
    domain: Domain
  }
}

/** The follow-up worker's options from this service's config (here and in the worker's own process). */
export function workerOptions (app: FastifyInstance, config: Config): RevocationWorkerOptions {
  return {
    redisUrl: config.REDIS_URL,
    prefix: config.REDIS_PREFIX,
    redis: app.redis,
    webhooks: webhookUrls(config).map((url) => ({ url, secret: config.WEBHOOK_SECRET })),
    log: app.log,
    sweepIntervalMs: config.SWEEP_INTERVAL_MS,
    auditRetentionS: config.AUDIT_RETENTION_DAYS * 86400,
    ssf: securityEventTransmitter(app, config)
  }
}

async function domain (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const revocation = createRevocationPipeline({ redis: app.redis, redisUrl: config.REDIS_URL, prefix: config.REDIS_PREFIX, accessTokenTtlS: config.ACCESS_TOKEN_TTL_S, log: app.log })
  const d: Domain = {
    accounts: new AccountStore(app.redis),
    apiKeys: new ApiKeyStore(app.redis, { auditRetentionS: config.AUDIT_RETENTION_DAYS * 86400 }),
    // this service never creates or touches clients, so the idle TTL it would renew is not used here
    clients: new ClientStore(app.redis, 0),
    grants: new GrantStore(app.redis, config.REDIS_PREFIX),
    revoker: revocation.revoker,
    worker: null
  }
  app.decorate('domain', d)
  if (config.WORKER_ENABLED) {
    app.addHook('onReady', async () => {
      d.worker = startRevocationWorker(workerOptions(app, config))
    })
  }
  // preClose: before the Redis plugin closes the client the worker writes with
  app.addHook('preClose', async () => {
    await d.worker?.close()
    await revocation.close()
  })
}

export default fp(domain, { name: 'uspl-connections-domain', fastify: '5.x', dependencies: ['uspl-redis'] })
