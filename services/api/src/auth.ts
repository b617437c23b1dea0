/**
 * Who is calling: a personal API key (`Authorization: Bearer uspl_…`). The steps, in order:
 *   1. the per-address rate limit (counted whatever the key, while the fence below is out);
 *   2. the Authorization header: missing or not a Bearer key → 401 with `WWW-Authenticate: Bearer`;
 *   3. the key: unknown, revoked, expired, or its user disabled → 401 `error="invalid_token"`;
 *      an operator key → 403 (it is a key, but not a person's);
 *   4. the per-key rate limit;
 *   5. last used, written once a minute per key (the minute's marker is shared by every replica).
 *
 * The key's record, its user, the last-used marker and (in the routes) the caller's role are read through
 * the LiveCache, which Redis keeps true: the hook first waits for the cache's fence, so a revoke, a disable,
 * an expiry or a role change acknowledged before the request arrived is refused by it on every replica, as
 * with a read per request. Both limits are `@fastify/rate-limit` limiters (`createRateLimit`) on a store
 * shared by the replicas (rate-limit.ts); the address is counted while the fence is out. When everything
 * is known, the hook waits for the fence (one PING in flight at a time, shared by the requests that arrived
 * before it was sent) and nothing else. Registered inside an encapsulated context; every route in it must declare
 * `config.personalKey` or `config.public`, checked when the route is added.
 */
import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError, bearerChallenge } from '@uspl/errors'
import { ApiKeyStore, apiKeyHash, judgeKey, keyOfRecord, keys, type ApiKey, type UserFields } from '@uspl/core'
import type { RedisClient } from '@uspl/redis'
import type { LiveCache, RecordKind } from './live-cache.ts'
import { sharedLimitStore, type SharedLimiterOptions } from './rate-limit.ts'

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
  cache: LiveCache
  perAddress: { max: number, windowMs: number }
  perKey: { max: number, windowMs: number }
  /** counts refusals by reason (metrics) */
  onRefused?: (reason: string) => void
}

const REALM = 'uspl-api'

/** A 401 with its RFC 6750 challenge (no error code when no credentials were sent, §3.1). */
function unauthenticated (message: string, error?: 'invalid_request' | 'invalid_token'): ApiError {
  return new ApiError('unauthenticated', message, 401, { challenge: bearerChallenge({ realm: REALM, error }) })
}

const REASONS = {
  unknown: 'the API key is not valid (unknown or revoked)',
  expired: 'the API key has expired; create a new one on your account page',
  user_disabled: 'the API key\'s user is disabled'
} as const

/** The records the hook reads, and which of them the cache may keep. */
const KEY_RECORD: RecordKind<Record<string, string>> = {
  fetch: async (redis, key) => await redis.hgetall(key),
  keep: (record) => Boolean(record.id)
}
const USER_FIELDS: RecordKind<UserFields> = {
  fetch: async (redis, key) => await redis.hmget(key, 'id', 'disabled_at'),
  keep: ([id]) => id !== null
}
/** until when (epoch ms) this minute's last-used marker stands; 0 when there is none */
const USED_UNTIL: RecordKind<number> = {
  fetch: async (redis: RedisClient, key) => {
    const ttl = await redis.pttl(key)
    return ttl > 0 ? Date.now() + ttl : 0
  },
  keep: (until) => until > 0
}

/**
 * The key each kept record describes. A kept record is the answer to the read of `keys.apiKey(hash)`,
 * so once `keyOfRecord` has checked it against that hash (in constant time), the same object stands for
 * the same key until the cache lets it go; a changed record is a new object.
 */
const parsedKeys = new WeakMap<Record<string, string>, ApiKey | null>()
function keyOf (record: Record<string, string>, hash: string): ApiKey | null {
  let key = parsedKeys.get(record)
  if (key === undefined) {
    key = keyOfRecord(record, hash)
    parsedKeys.set(record, key)
  }
  return key
}

type Limited = Awaited<ReturnType<ReturnType<FastifyInstance['createRateLimit']>>>
/** what the RateLimit headers say: the limit with the least remaining of those counted so far */
interface Tightest { limit: number, remaining: number, resetS: number }

/** f(v), without waiting when v is already there. */
function after<T, R> (v: T | Promise<T>, f: (v: T) => R | Promise<R>): R | Promise<R> {
  return v instanceof Promise ? v.then(f) : f(v)
}

async function auth (app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const { cache } = opts
  const apiKeys = new ApiKeyStore(app.redis)
  const shared = sharedLimitStore(app.redis)
  // no limit of its own on any route (global: false): the hook below asks both limiters
  await app.register(rateLimit, { global: false, enableDraftSpec: true, store: shared.Store })
  app.addHook('onClose', async () => { await Promise.all([...shared.limits].map(async (l) => { await l.flush() })) })
  const limiter = (o: SharedLimiterOptions): { subject: string, check: (req: FastifyRequest) => Promise<Limited> } =>
    ({ subject: o.subject, check: app.createRateLimit(o) })
  const byAddress = limiter({ kind: 'addr', subject: 'this address', max: opts.perAddress.max, timeWindow: opts.perAddress.windowMs, keyGenerator: (req) => req.ip })
  const byKey = limiter({ kind: 'key', subject: 'this API key', max: opts.perKey.max, timeWindow: opts.perKey.windowMs, keyGenerator: (req) => callerOf(req).key.id })

  app.decorateRequest('keyCaller', null)

  app.addHook('onRoute', (route) => {
    const config = route.config as { personalKey?: boolean, public?: boolean } | undefined
    if (!config?.personalKey && !config?.public && route.method !== 'HEAD') {
      throw new Error(`route ${String(route.method)} ${route.url} declares neither config.personalKey nor config.public`)
    }
  })

  /** Refuses when over the limit; otherwise keeps the count with the least remaining for the headers. */
  const counted = (reply: FastifyReply, subject: string, r: Limited, tightest: Tightest | null): Tightest | null => {
    if (r.isAllowed) return tightest
    if (r.isExceeded) {
      reply.headers({ 'ratelimit-limit': r.max, 'ratelimit-remaining': 0, 'ratelimit-reset': r.ttlInSeconds })
      throw new ApiError('rate_limited', `too many requests from ${subject}; retry in ${r.ttlInSeconds} seconds`, 429, { retryAfterS: r.ttlInSeconds })
    }
    return tightest !== null && tightest.remaining <= r.remaining ? tightest : { limit: r.max, remaining: r.remaining, resetS: r.ttlInSeconds }
  }

  const lastUsed = (key: ApiKey, hash: string): void | Promise<void> => after(cache.get(USED_UNTIL, keys.apiKeyUsed(key.id)), (until) => {
    if (until > Date.now()) return
    return apiKeys.claimUse(key).then(async (won) => { if (won) await apiKeys.recordUse(key, hash, Date.now()) })
  })

  const authenticate = (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const address = byAddress.check(request)
    const fence = cache.fence()
    return address.then((perAddress) => after(fence, () => {
      const addressCount = counted(reply, byAddress.subject, perAddress, null)
      const authorization = request.headers.authorization
      if (authorization === undefined) throw unauthenticated('send a personal API key: Authorization: Bearer uspl_…')
      const match = /^Bearer +(\S+)$/i.exec(authorization)
      if (!match) throw unauthenticated('the Authorization header must be "Bearer uspl_…"', 'invalid_request')
      const hash = apiKeyHash(match[1])
      if (hash === null) throw unauthenticated(REASONS.unknown, 'invalid_token')
      return after(cache.get(KEY_RECORD, keys.apiKey(hash)), (record) => {
        const key = keyOf(record, hash)
        if (key === null) throw unauthenticated(REASONS.unknown, 'invalid_token')
        const user = key.userId ? cache.get(USER_FIELDS, keys.user(key.userId)) : null
        return after(user, (fields) => {
          const check = judgeKey(key, fields, Date.now())
          if (!check.ok) throw unauthenticated(REASONS[check.reason], 'invalid_token')
          if (key.kind !== 'personal' || !key.userId) {
            throw new ApiError('operator_key', 'this is an operator key; the workspace API acts as a person, so use a personal key created on your account page or with create-api-key --user', 403)
          }
          request.keyCaller = { userId: key.userId, key }
          return byKey.check(request).then((perKey) => {
            const d = counted(reply, byKey.subject, perKey, addressCount)
            if (d !== null) reply.headers({ 'ratelimit-limit': d.limit, 'ratelimit-remaining': d.remaining, 'ratelimit-reset': d.resetS })
            return lastUsed(key, hash)
          })
        })
      })
    }))
  }

  const refused = (err: unknown): unknown => {
    if (err instanceof ApiError) opts.onRefused?.(err.code)
    return err
  }

  app.addHook('onRequest', (request, reply, done) => {
    if (!request.routeOptions.config.personalKey) { done(); return }
    authenticate(request, reply).then(() => done(), (err: unknown) => done(refused(err) as Error))
  })
}

export default fp(auth, { name: 'uspl-api-auth', fastify: '5.x', dependencies: ['uspl-redis'] })

/** The caller of an authenticated route (the hook has run). */
export function callerOf (request: FastifyRequest): KeyCaller {
  if (!request.keyCaller) throw new ApiError('unauthenticated', 'not authenticated', 401)
  return request.keyCaller
}
