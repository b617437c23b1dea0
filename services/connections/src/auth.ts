/**
 * Who is calling, decided per route by `config.auth`:
 *   'user'      a signed-in user (the browser session cookie `uspl_session`, set by the token service);
 *   'operator'  an operator (`Authorization: Bearer uspl_…`, an operator API key; a personal key is 403);
 *   'either'    one or the other.
 * A request that carries an Authorization header is judged by it alone, so an operator key never acts as a
 * user. A state-changing request on a cookie session must carry the session's CSRF token (`x-csrf-token`)
 * and, when the browser sends one, an Origin equal to CONNECTIONS_URL's. Routes with
 * `config.signInRedirect` send an unauthenticated browser to sign in instead of answering 401.
 *
 * Registered inside an encapsulated context; every route of that context must declare `auth` (or `public`),
 * which is checked when the route is added, so a forgotten declaration fails at boot, not in production.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError, bearerChallenge } from '@uspl/errors'
import { ApiKeyStore, BrowserSessionStore, SESSION_COOKIE, constantTimeEqual, type BrowserSession, type KeyLookup } from '@uspl/core'

export type AuthMode = 'user' | 'operator' | 'either'

export type Principal =
  | { type: 'user', userId: string, session: BrowserSession }
  | { type: 'operator', keyId: string, keyName: string }

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthMode
    /** a read the route's handler needs whoever calls, started as the request arrives (earlyRead) */
    earlyRead?: EarlyRead<unknown>
    /** unauthenticated browsers are redirected to sign in (pages) */
    signInRedirect?: boolean
  }
  interface FastifyRequest {
    principal: Principal | null
    /** the check of the request's API key, started as the request arrived (keyLookahead) */
    keyLookup: Promise<KeyLookup> | null
  }
}

export interface AuthOptions {
  issuerUrl: string
  connectionsUrl: string
  sessionTtlS: number
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

export function signInUrl (issuerUrl: string, connectionsUrl: string): string {
  const back = `${connectionsUrl.replace(/\/+$/, '')}/connections`
  return `${issuerUrl.replace(/\/+$/, '')}/signin?return_to=${encodeURIComponent(back)}`
}

const REALM = 'uspl-connections'

/** 401 with its RFC 6750 challenge (`invalid_token` when a credential was presented) */
function unauthenticated (message: string, error?: 'invalid_token'): ApiError {
  return new ApiError('unauthenticated', message, 401, { challenge: bearerChallenge({ realm: REALM, error }) })
}

/** The token of an `Authorization: Bearer …` header; null for any other header. */
function bearerToken (authorization: string): string | null {
  return /^Bearer\s+(\S+)$/i.exec(authorization)?.[1] ?? null
}

/**
 * Starts the check of a request's API key as the request arrives, ahead of the rate limits' hook
 * (register it before them), so the key's read and the limits' counts share one round trip. A request the
 * limits refuse is refused whatever its key (the check's answer is never looked at, its last use is not
 * written and the last-used marker it took is given back); every other request is judged by `auth` below,
 * which waits for this check instead of starting its own.
 */
async function keyLookahead (app: FastifyInstance): Promise<void> {
  const apiKeys = new ApiKeyStore(app.redis)
  app.decorateRequest('keyLookup', null)
  app.addHook('onRequest', async (request: FastifyRequest) => {
    request.routeOptions.config.earlyRead?.start(request)
    const authorization = request.headers.authorization
    if (!request.routeOptions.config.auth || authorization === undefined) return
    const token = bearerToken(authorization)
    if (token === null) return
    const lookup = apiKeys.lookup(token)
    lookup.catch(() => {}) // awaited by `auth`; a request refused before then leaves its failure unobserved
    request.keyLookup = lookup
  })
  // a request refused before `auth` judged it (a rate limit) gives the minute's last-used marker back,
  // before its answer leaves (the caller's next request finds the marker free)
  app.addHook('onSend', async (request: FastifyRequest) => {
    if (!request.keyLookup) return
    const found = await request.keyLookup.catch(() => null)
    if (found) await apiKeys.releaseUse(found)
  })
}

/**
 * A read that a route's handler needs whoever the caller is (the record its URL names), started as the
 * request arrives by the lookahead hook, so that it shares the round trip of the key check and the rate
 * limits instead of following them: set it as the route's `config.earlyRead` and take the answer with
 * `result` in the handler, once the caller is authenticated. A request refused before then never looks
 * at it (its answer and any failure are dropped); the rate limits bound what unauthenticated callers can
 * make it read.
 */
export class EarlyRead<T> {
  private readonly started = new WeakMap<FastifyRequest, Promise<T>>()
  constructor (private readonly read: (request: FastifyRequest) => Promise<T>) {}

  start (request: FastifyRequest): void {
    const reading = this.read(request)
    reading.catch(() => {}) // awaited by `result`; a request refused before then leaves its failure unobserved
    this.started.set(request, reading)
  }

  /** The read started as the request arrived (or now, when no hook started it). */
  result (request: FastifyRequest): Promise<T> {
    return this.started.get(request) ?? this.read(request)
  }
}

export const credentialLookahead = fp(keyLookahead, { name: 'uspl-connections-key-lookahead', fastify: '5.x', dependencies: ['uspl-redis'] })

async function auth (app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const apiKeys = new ApiKeyStore(app.redis)
  const sessions = new BrowserSessionStore(app.redis, opts.sessionTtlS)
  const expectedOrigin = new URL(opts.connectionsUrl).origin

  app.decorateRequest('principal', null)

  app.addHook('onRoute', (route) => {
    const config = route.config as { auth?: AuthMode, public?: boolean } | undefined
    if (!config?.auth && !config?.public && route.method !== 'HEAD') {
      throw new Error(`route ${String(route.method)} ${route.url} declares neither config.auth nor config.public`)
    }
  })

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const mode = request.routeOptions.config.auth
    if (!mode) return
    const authorization = request.headers.authorization
    if (authorization !== undefined) {
      const token = bearerToken(authorization)
      const found = token === null ? null : await (request.keyLookup ?? apiKeys.lookup(token))
      if (found) await apiKeys.settleUse(found)
      const check = found?.check
      if (!check?.ok) {
        throw unauthenticated('the API key is missing, malformed or revoked', 'invalid_token')
      }
      const key = check.key
      // a personal key acts as a person on the workspace API; it is never an operator's
      if (key.kind !== 'operator') throw new ApiError('personal_key', 'this is a personal API key; the connections API needs an operator key (or sign in to manage your own keys)', 403)
      if (mode === 'user') throw new ApiError('forbidden', 'this endpoint is for signed-in users, not API keys', 403)
      request.principal = { type: 'operator', keyId: key.id, keyName: key.name }
      return
    }
    const session = await sessions.get(request.cookies[SESSION_COOKIE])
    if (!session) {
      if (request.routeOptions.config.signInRedirect && SAFE_METHODS.has(request.method)) {
        return reply.redirect(signInUrl(opts.issuerUrl, opts.connectionsUrl), 302)
      }
      throw unauthenticated('sign in, or send an operator API key as a Bearer token')
    }
    if (mode === 'operator') throw new ApiError('forbidden', 'this endpoint needs an operator API key', 403)
    if (!SAFE_METHODS.has(request.method)) {
      const origin = request.headers.origin
      if (origin !== undefined && origin !== expectedOrigin) throw new ApiError('bad_origin', 'cross-origin request refused', 403)
      if (origin === undefined && request.headers['sec-fetch-site'] !== undefined && request.headers['sec-fetch-site'] !== 'same-origin') {
        throw new ApiError('bad_origin', 'cross-site request refused', 403)
      }
      const csrf = request.headers['x-csrf-token']
      if (typeof csrf !== 'string' || !constantTimeEqual(csrf, session.csrf)) {
        throw new ApiError('csrf_failed', 'missing or wrong x-csrf-token header', 403)
      }
    }
    request.principal = { type: 'user', userId: session.userId, session }
  })
}

export default fp(auth, { name: 'uspl-connections-auth', fastify: '5.x', dependencies: ['uspl-redis', '@fastify/cookie'] })

/** The principal of an authenticated route (the hook has run). */
export function principalOf (request: FastifyRequest): Principal {
  if (!request.principal) throw new ApiError('unauthenticated', 'not authenticated', 401)
  return request.principal
}

/** Who acted, as the revocation event and the logs record it (never the session or its CSRF token). */
export function actorOf (principal: Principal): { type: 'user' | 'operator', id: string } {
  return principal.type === 'user' ? { type: 'user', id: principal.userId } : { type: 'operator', id: principal.keyId }
}
