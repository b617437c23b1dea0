/**
 * The enterprise models of the token service, decorated as `app.enterprise`: the trusted issuers, their
 * keys (inline or fetched under ENTERPRISE_JWKS_ORIGINS), and the Shared Signals stream store. Kept apart
 * from `app.tokenContext` so the enterprise features add no field to the core context.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { EnterpriseIssuerStore, SsfStreamStore } from '@uspl/core'
import type { Config } from '../config.ts'
import { EnterpriseKeys } from './enterprise-keys.ts'

export interface EnterpriseContext {
  issuers: EnterpriseIssuerStore
  keys: EnterpriseKeys
  streams: SsfStreamStore
}

declare module 'fastify' {
  interface FastifyInstance {
    enterprise: EnterpriseContext
  }
}

async function enterpriseContext (app: FastifyInstance, opts: { config: Config, fetch?: typeof fetch }): Promise<void> {
  const { config } = opts
  app.decorate('enterprise', {
    issuers: new EnterpriseIssuerStore(app.redis),
    keys: new EnterpriseKeys({ origins: config.ENTERPRISE_JWKS_ORIGINS, cacheS: config.ENTERPRISE_JWKS_CACHE_S, fetch: opts.fetch }),
    streams: new SsfStreamStore(app.redis)
  })
}

export default fp(enterpriseContext, { name: 'uspl-token-enterprise', dependencies: ['uspl-redis'], fastify: '5.x' })
