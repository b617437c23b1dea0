/**
 * The connections service's context, decorated once as `app.connectionsContext` (each service's is
 * `app.<service>Context`): the stores it reads and the one Revoker it revokes through (with the follow-up
 * queue, closed on close). Unless WORKER_ENABLED=false the follow-up worker (followup-worker.ts) also runs
 * in this process; deployments (npm start, compose, k8s) run it as its own process instead (src/worker.ts),
 * so its jobs never compete with the revoke path for the API's event loop.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { AccountStore, ApiKeyStore, ClientStore, GrantStore, createRevocationPipeline, type Revoker, type RevocationWorker } from '@uspl/core'
import type { Config } from './config.ts'
import { startFollowupWorker } from './followup-worker.ts'

export interface ConnectionsContext {
  accounts: AccountStore
  /** operator and personal API keys; their creation and revocation are audited with the revocations */
  apiKeys: ApiKeyStore
  clients: ClientStore
  grants: GrantStore
  revoker: Revoker
  /** the in-process follow-up worker, once the app is ready (null with WORKER_ENABLED=false) */
  worker: RevocationWorker | null
}

declare module 'fastify' {
  interface FastifyInstance {
    connectionsContext: ConnectionsContext
  }
}

async function context (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const revocation = createRevocationPipeline({ redis: app.redis, redisUrl: config.REDIS_URL, prefix: config.REDIS_PREFIX, accessTokenTtlS: config.ACCESS_TOKEN_TTL_S, log: app.log })
  const ctx: ConnectionsContext = {
    accounts: new AccountStore(app.redis),
    apiKeys: new ApiKeyStore(app.redis, { auditRetentionS: config.AUDIT_RETENTION_DAYS * 86400 }),
    // this service never creates or touches clients, so the idle TTL it would renew is not used here
    clients: new ClientStore(app.redis, 0),
    grants: new GrantStore(app.redis, config.REDIS_PREFIX),
    revoker: revocation.revoker,
    worker: null
  }
  app.decorate('connectionsContext', ctx)
  if (config.WORKER_ENABLED) {
    app.addHook('onReady', async () => {
      ctx.worker = startFollowupWorker(app, config)
    })
  }
  // preClose: before the Redis plugin closes the client the worker writes with
  app.addHook('preClose', async () => {
    await ctx.worker?.close()
    await revocation.close()
  })
}

export default fp(context, { name: 'uspl-connections-context', fastify: '5.x', dependencies: ['uspl-redis'] })
