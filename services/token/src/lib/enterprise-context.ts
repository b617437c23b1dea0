/**
 * The enterprise models of the token service, decorated as `app.enterprise`: the trusted issuers, their
 * keys (inline or fetched under ENTERPRISE_JWKS_ORIGINS), the Shared Signals stream store, the receiver's
 * intake (what `receiveSet` needs, for push and poll alike) and its poller (started when the app is ready
 * if SSF_POLL_INTERVAL_S > 0, stopped on close). Kept apart from `app.tokenContext` so the enterprise
 * features add no field to the core context.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { EnterpriseIssuerStore, SsfStreamStore } from '@uspl/core'
import type { Config } from '../config.ts'
import { EnterpriseKeys } from './enterprise-keys.ts'
import type { IntakeDeps } from './ssf-receiver.ts'
import { SsfPoller } from './ssf-poller.ts'

export interface EnterpriseContext {
  issuers: EnterpriseIssuerStore
  keys: EnterpriseKeys
  streams: SsfStreamStore
  intake: IntakeDeps
  poller: SsfPoller
}

declare module 'fastify' {
  interface FastifyInstance {
    enterprise: EnterpriseContext
  }
}

async function enterpriseContext (app: FastifyInstance, opts: { config: Config, fetch?: typeof fetch }): Promise<void> {
  const { config } = opts
  const { accounts, grants, revoker } = app.tokenContext
  const issuers = new EnterpriseIssuerStore(app.redis)
  const keys = new EnterpriseKeys({ origins: config.ENTERPRISE_JWKS_ORIGINS, cacheS: config.ENTERPRISE_JWKS_CACHE_S, fetch: opts.fetch })
  const intake: IntakeDeps = { redis: app.redis, issuers, keys, accounts, grants, revoker, config }
  const poller = new SsfPoller(intake, app.log.child({ component: 'ssf-poller' }), { intervalS: config.SSF_POLL_INTERVAL_S, origins: keys.origins, fetch: opts.fetch })
  app.decorate('enterprise', { issuers, keys, streams: new SsfStreamStore(app.redis), intake, poller })
  app.addHook('onReady', async () => poller.start())
  app.addHook('onClose', async () => poller.stop())
}

export default fp(enterpriseContext, { name: 'uspl-token-enterprise', dependencies: ['uspl-redis', 'uspl-token-context'], fastify: '5.x' })
