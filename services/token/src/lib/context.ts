/**
 * The token service's context: its configuration and models, built once over the app's Redis client and
 * decorated as `app.tokenContext` (each service's is `app.<service>Context`). Also the browser-session
 * helpers every page uses, and the revocation follow-up queue (closed on close).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  AccountStore, ApiKeyStore, BrowserSessionStore, ClientStore, Denylist, GrantStore, Revoker, SESSION_COOKIE,
  createRevocationPipeline, type BrowserSession
} from '@uspl/core'
import type { Config } from '../config.ts'
import { KeyRing, parseKek } from '@uspl/core/signing-keys'
import { AuthRequestStore, CodeStore } from './codes.ts'
import { RefreshTokenStore } from './refresh-tokens.ts'
import { SigninThrottle } from './throttle.ts'
import { createCimdResolver, type CimdFetchOverrides } from './cimd/index.ts'
import type { CimdResolver } from './cimd/resolver.ts'
import { ClientResolver } from './clients.ts'
import { ClientAuthenticator } from './client-assertion.ts'

export interface TokenContext {
  config: Config
  accounts: AccountStore
  apiKeys: ApiKeyStore
  sessions: BrowserSessionStore
  clients: ClientStore
  grants: GrantStore
  denylist: Denylist
  revoker: Revoker
  keyRing: KeyRing
  authRequests: AuthRequestStore
  codes: CodeStore
  refreshTokens: RefreshTokenStore
  throttle: SigninThrottle
  /** Client ID Metadata Documents: the cache and fetcher */
  cimd: CimdResolver
  /** the one lookup of a client by id (registered or metadata document) */
  resolveClient: ClientResolver
  clientAuth: ClientAuthenticator
  /** the signed-in browser session, or null */
  session: (request: FastifyRequest) => Promise<(BrowserSession & { sid: string }) | null>
  setSessionCookie: (reply: FastifyReply, sid: string) => void
  clearSessionCookie: (reply: FastifyReply) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    tokenContext: TokenContext
  }
}

export type { CimdFetchOverrides }

async function context (app: FastifyInstance, opts: { config: Config, cimdFetch?: CimdFetchOverrides }): Promise<void> {
  const { config } = opts
  const redis = app.redis
  // first: a bad SIGNING_KEYS_FILE stops the build before anything is opened
  const keyRing = new KeyRing({ redis, file: config.SIGNING_KEYS_FILE, cacheS: config.SIGNING_KEYS_CACHE_S, accessTokenTtlS: config.ACCESS_TOKEN_TTL_S, kek: parseKek(config.SIGNING_KEYS_KEK) })
  const revocation = createRevocationPipeline({ redis, redisUrl: config.REDIS_URL, prefix: config.REDIS_PREFIX, accessTokenTtlS: config.ACCESS_TOKEN_TTL_S, log: app.log })
  app.addHook('onClose', revocation.close)
  const secure = config.ISSUER_URL.startsWith('https:')
  const sessions = new BrowserSessionStore(redis, config.SESSION_TTL_S)
  const clients = new ClientStore(redis, config.CLIENT_IDLE_TTL_S)
  const cimd = createCimdResolver(redis, config, opts.cimdFetch)
  const ctx: TokenContext = {
    config,
    accounts: new AccountStore(redis),
    apiKeys: new ApiKeyStore(redis),
    sessions,
    clients,
    grants: new GrantStore(redis, config.REDIS_PREFIX),
    denylist: new Denylist(redis),
    revoker: revocation.revoker,
    keyRing,
    authRequests: new AuthRequestStore(redis),
    codes: new CodeStore(redis),
    refreshTokens: new RefreshTokenStore(redis),
    cimd,
    resolveClient: new ClientResolver(clients, cimd),
    clientAuth: new ClientAuthenticator({ redis, cimd, issuer: config.ISSUER_URL, tokenEndpoint: `${config.ISSUER_URL}/token` }),
    throttle: new SigninThrottle(redis, { perAccount: config.SIGNIN_MAX_FAILURES_PER_ACCOUNT, perAddress: config.SIGNIN_MAX_FAILURES_PER_ADDRESS, windowS: config.SIGNIN_FAILURE_WINDOW_S }),
    async session (request) {
      const sid = request.cookies[SESSION_COOKIE]
      const session = await sessions.get(sid)
      return session && sid ? { ...session, sid } : null
    },
    setSessionCookie (reply, sid) {
      reply.setCookie(SESSION_COOKIE, sid, { httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: config.SESSION_TTL_S })
    },
    clearSessionCookie (reply) {
      reply.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'lax', secure, path: '/' })
    }
  }
  app.decorate('tokenContext', ctx)
  app.readiness.set('signing-keys', async () => {
    try {
      await keyRing.current()
      return null
    } catch (err) {
      return `signing keys unavailable: ${(err as Error).message}`
    }
  })
}

export default fp(context, { name: 'uspl-token-context', dependencies: ['uspl-redis'], fastify: '5.x' })
