/**
 * The workspace API's rate limits, per source address and per API key, counted by @fastify/rate-limit on
 * its Redis store (one count shared by every replica). Both run on the same request, so each is a limiter
 * from `createRateLimit` (the plugin's own route hooks run at most one limiter per request) and the
 * headers are written here: the IETF draft's `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`
 * of the tighter limit, and `Retry-After` with a 429 when one is exceeded.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError } from '@uspl/errors'

export interface RateLimitOptions {
  max: number
  windowMs: number
  /** how the refusal names what is limited ("this API key", "this address") */
  subject: string
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the remaining count of the limiter that ran last, so the tighter limit's headers win */
    rateLimitRemaining: number | null
  }
}

export type Limiter = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

export function rateLimiter (app: FastifyInstance, opts: RateLimitOptions, keyOf: (request: FastifyRequest) => string): Limiter {
  const check = app.createRateLimit({ max: opts.max, timeWindow: opts.windowMs, keyGenerator: keyOf })
  if (!app.hasRequestDecorator('rateLimitRemaining')) app.decorateRequest('rateLimitRemaining', null)
  return async (request, reply) => {
    const result = await check(request)
    if (result.isAllowed) return
    if (result.isExceeded) {
      reply.headers({ 'ratelimit-limit': result.max, 'ratelimit-remaining': 0, 'ratelimit-reset': result.ttlInSeconds, 'retry-after': result.ttlInSeconds })
      throw new ApiError('rate_limited', `too many requests from ${opts.subject}; retry in ${result.ttlInSeconds} seconds`, 429)
    }
    if (request.rateLimitRemaining !== null && request.rateLimitRemaining <= result.remaining) return
    request.rateLimitRemaining = result.remaining
    reply.headers({ 'ratelimit-limit': result.max, 'ratelimit-remaining': result.remaining, 'ratelimit-reset': result.ttlInSeconds })
  }
}
