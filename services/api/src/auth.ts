/**
 * Who is calling: a personal API key (`Authorization: Bearer uspl_…`), checked on every request against
 * Redis (no cache, so a revoke, an expiry or a disabled user answers 401 on the next request on every
 * replica). The steps, in order:
 *   1. the per-address rate limit (counted whatever the key; read side by side with the key's record);
 *   2. the Authorization header: missing or not a Bearer key → 401 with `WWW-Authenticate: Bearer`;
 *   3. the key: unknown, revoked, expired, or its user disabled → 401 `error="invalid_token"`;
 *      an operator key → 403 (it is a key, but not a person's);
 *   4. the per-key rate limit.
 * Registered inside an encapsulated context; every route in it must declare `config.personalKey` or
 * `config.public`, checked when the route is added.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError } from '@uspl/errors'
import { ApiKeyStore, type ApiKey } from '@uspl/core'
import { rateLimiter, type RateLimitOptions } from './rate-limit.ts'

export interface KeyCaller {
  userId: string
  key: ApiKey
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the route needs a personal API key (the hook below) */
    personalKey?: boolean
  }
  interface FastifyRequest {
    keyCaller: KeyCaller | null
  }
}

export interface AuthOptions {
  perAddress: Omit<RateLimitOptions, 'subject'>
  perKey: Omit<RateLimitOptions, 'subject'>
  /** counts refusals by reason (metrics) */
  onRefused?: (reason: string) => void
}

const REALM = 'uspl-api'

/** A 401 with its RFC 6750 challenge (no error code when no credentials were sent, §3.1). */
function unauthenticated (reply: FastifyReply, message: string, error?: 'invalid_request' | 'invalid_token'): ApiError {
  reply.header('www-authenticate', error ? `Bearer realm="${REALM}", error="${error}"` : `Bearer realm="${REALM}"`)
  return new ApiError('unauthenticated', message, 401)
}

const REASONS = {
  unknown: 'the API key is not valid (unknown or revoked)',
  expired: 'the API key has expired; create a new one on your account page',
  user_disabled: 'the API key\'s user is disabled'
} as const

async function auth (app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const apiKeys = new ApiKeyStore(app.redis)
  const byAddress = rateLimiter(app, { ...opts.perAddress, subject: 'this address' }, (request) => `addr:${request.ip}`)
  const byKey = rateLimiter(app, { ...opts.perKey, subject: 'this API key' }, (request) => `key:${callerOf(request).key.id}`)

  app.decorateRequest('keyCaller', null)

  app.addHook('onRoute', (route) => {
    const config = route.config as { personalKey?: boolean, public?: boolean } | undefined
    if (!config?.personalKey && !config?.public && route.method !== 'HEAD') {
      throw new Error(`route ${String(route.method)} ${route.url} declares neither config.personalKey nor config.public`)
    }
  })

  app.addHook('onRequest', async (request, reply) => {
    if (!request.routeOptions.config.personalKey) return
    try {
      const authorization = request.headers.authorization
      const match = authorization === undefined ? null : /^Bearer +(\S+)$/i.exec(authorization)
      // the address count and the key's record are read side by side (one round trip's wait, not two); a
      // limited address is refused whatever the key
      const [, check] = await Promise.all([byAddress(request, reply), match ? apiKeys.authenticate(match[1]) : null])
      if (authorization === undefined) throw unauthenticated(reply, 'send a personal API key: Authorization: Bearer uspl_…')
      if (!match || !check) throw unauthenticated(reply, 'the Authorization header must be "Bearer uspl_…"', 'invalid_request')
      if (!check.ok) throw unauthenticated(reply, REASONS[check.reason], 'invalid_token')
      if (check.key.kind !== 'personal' || !check.key.userId) {
        throw new ApiError('operator_key', 'this is an operator key; the workspace API acts as a person, so use a personal key created on your account page or with create-api-key --user', 403)
      }
      request.keyCaller = { userId: check.key.userId, key: check.key }
      await byKey(request, reply)
    } catch (err) {
      if (err instanceof ApiError) opts.onRefused?.(err.code)
      throw err
    }
  })
}

export default fp(auth, { name: 'uspl-api-auth', fastify: '5.x', dependencies: ['uspl-redis', '@fastify/rate-limit'] })

/** The caller of an authenticated route (the hook has run). */
export function callerOf (request: FastifyRequest): KeyCaller {
  if (!request.keyCaller) throw new ApiError('unauthenticated', 'not authenticated', 401)
  return request.keyCaller
}
