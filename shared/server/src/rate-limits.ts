/**
 * Limits on every door that takes a credential, counted in Redis so every replica of a service shares them:
 *
 * 1. failed credentials (an unknown code, refresh token, client, assertion, API key or registration token;
 *    whatever a route marks with `request.countFailure()`), per source address and per client: past
 *    `failures.max` within `failures.windowS` the route answers 429 with Retry-After without looking at the
 *    credential. Failures are counted after they happen, so a burst of N concurrent guesses can pass the
 *    limit by at most N;
 * 2. all requests per address (`@fastify/rate-limit`, IETF draft `RateLimit-*` headers), at a level real
 *    clients behind one company's NAT never reach.
 *
 * Routes opt in with `config.failureLimit` (which also turns on 2., one count over all of them); another
 * route may set its own `config.rateLimit`. The check runs in the first hook (onRequest, before any authentication hook), or
 * after the body is parsed when the client is named there (`clientInBody`). A refusal is what
 * `options.error` builds, so each service answers in its own wire format.
 */
import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@uspl/config'
import { HttpError, OAuthError, ApiError } from '@uspl/errors'
import { runScript, script } from '@uspl/redis'
import { keys } from '@uspl/core/keys'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** count this route's failed credentials per address (and per client, when `client` names one) */
    failureLimit?: FailureLimitRoute
  }
  interface FastifyRequest {
    /** marks this request's credential as failed even when it is answered with success (RFC 7009 /revoke) */
    countFailure: () => void
    failureState: FailureState | null
  }
}

export interface FailureLimitRoute {
  /** the client the request names, if any (for the per-client count) */
  client?: (request: FastifyRequest) => string | undefined
  /** the client is named in the body: check after parsing instead of in onRequest */
  clientInBody?: boolean
}

interface FailureState { keys: string[], failed: boolean }

/** Schema pieces for a service's config (defaults documented in the README). */
export const rateLimitSchema = {
  RATE_LIMIT_FAILURES_MAX: Type.Integer({ minimum: 1, default: 60, description: 'failed credentials one address (and, separately, one client) may present per window before 429' }),
  RATE_LIMIT_FAILURES_WINDOW_S: Type.Integer({ minimum: 1, default: 300, description: 'window of the failed-credential counters' }),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 6000, description: 'requests one address may make per window to a limited route (high: clients behind one NAT share an address)' }),
  RATE_LIMIT_WINDOW_S: Type.Integer({ minimum: 1, default: 60, description: 'window of the per-address request limit' })
}

export interface RateLimitConfig {
  RATE_LIMIT_FAILURES_MAX: number
  RATE_LIMIT_FAILURES_WINDOW_S: number
  RATE_LIMIT_MAX: number
  RATE_LIMIT_WINDOW_S: number
}

export interface RateLimitOptions {
  service: string
  config: RateLimitConfig
  /** the refusal in the service's wire format, carrying `retryAfterS` (its answer's Retry-After) */
  error: (message: string, retryAfterS: number) => HttpError
}

/** The 429 of each wire format. */
export const oauthTooMany = (message: string, retryAfterS: number): HttpError => new OAuthError('temporarily_unavailable', message, 429, { retryAfterS })
export const apiTooMany = (message: string, retryAfterS: number): HttpError => new ApiError('rate_limited', message, 429, { retryAfterS })

export const failureKeys = {
  address: (service: string, address: string) => keys.rateLimitFailuresAddress(service, address),
  client: (service: string, clientId: string) => keys.rateLimitFailuresClient(service, createHash('sha256').update(clientId).digest('base64url'))
}

// KEYS: the counters. ARGV: limit. Returns 0, or the seconds until the first counter at its limit expires.
const CHECK = (n: number) => script(`usplFailureCheck${n}`, n, `
local wait = 0
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[1]) then
    local ttl = redis.call('TTL', KEYS[i])
    if ttl > wait then wait = ttl end
    if ttl < 0 then wait = math.max(wait, 1) end
  end
end
return wait
`)

// KEYS: the counters. ARGV: window. Each is incremented; the first increment sets its expiry.
const RECORD = (n: number) => script(`usplFailureRecord${n}`, n, `
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end
end
return 1
`)

/** Whether an error a route raised is a failed credential (not a malformed request or an outage). */
function isCredentialFailure (err: unknown): boolean {
  if (err instanceof OAuthError) return ['invalid_client', 'invalid_grant', 'invalid_token', 'unauthorized_client'].includes(err.error) || err.statusCode === 401
  return (err as { statusCode?: number }).statusCode === 401
}

async function rateLimits (app: FastifyInstance, opts: RateLimitOptions): Promise<void> {
  const { service, config } = opts
  const max = config.RATE_LIMIT_FAILURES_MAX
  const windowS = config.RATE_LIMIT_FAILURES_WINDOW_S

  app.decorateRequest('failureState', null)
  app.decorateRequest('countFailure', function (this: FastifyRequest) {
    if (this.failureState) this.failureState.failed = true
  })

  await app.register(rateLimit, {
    global: false,
    max: config.RATE_LIMIT_MAX,
    timeWindow: config.RATE_LIMIT_WINDOW_S * 1000,
    redis: app.redis,
    nameSpace: keys.rateLimitRequests(service),
    enableDraftSpec: true,
    keyGenerator: (request) => request.ip,
    errorResponseBuilder: (_request, context) => opts.error(`too many requests from this address; retry in ${Math.ceil(context.ttl / 1000)} seconds`, Math.ceil(context.ttl / 1000))
  })
  // one count of all requests per address over every failure-limited route, run from this plugin's own
  // first hook (a route-level hook would run after an authentication hook that already refused)
  const requestLimit = app.rateLimit()

  /** The failure count of the request's address and client: seconds to wait when over the limit, else 0. */
  async function failureWait (request: FastifyRequest, route: FailureLimitRoute): Promise<number> {
    let clientId: string | undefined
    try {
      clientId = route.client?.(request)
    } catch {
      clientId = undefined // a malformed client id is the route's to refuse
    }
    const keys = [failureKeys.address(service, request.ip)]
    if (clientId) keys.push(failureKeys.client(service, clientId))
    request.failureState = { keys, failed: false }
    return await runScript(app.redis, CHECK(keys.length), ...keys, String(max)) as number
  }

  /** Refuses a request over its failure limit (its RateLimit headers say so, whatever the cap wrote). */
  function refuseFailures (request: FastifyRequest, reply: FastifyReply, wait: number): void {
    if (wait <= 0) return
    request.failureState = null // a refusal here is not another failure
    reply.headers({ 'ratelimit-limit': String(max), 'ratelimit-remaining': '0', 'ratelimit-reset': String(wait) })
    throw opts.error(`too many failed attempts; retry in ${wait} seconds`, wait)
  }

  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.config.failureLimit
    if (!route) return
    if (route.clientInBody) {
      await requestLimit.call(app, request, reply)
      return
    }
    // the request cap and the failure count are independent reads: one round trip's wait for both (on the
    // revoke path every round trip before the revocation is latency); the cap's refusal comes first
    const [cap, failures] = await Promise.allSettled([requestLimit.call(app, request, reply), failureWait(request, route)])
    if (cap.status === 'rejected') {
      request.failureState = null // refused before any credential was looked at
      throw cap.reason
    }
    if (failures.status === 'rejected') throw failures.reason
    refuseFailures(request, reply, failures.value)
  })
  app.addHook('preHandler', async (request, reply) => {
    const route = request.routeOptions.config.failureLimit
    if (route?.clientInBody) refuseFailures(request, reply, await failureWait(request, route))
  })
  app.addHook('onError', async (request, _reply, err) => {
    if (request.failureState && isCredentialFailure(err)) request.failureState.failed = true
  })
  // counted before the answer leaves, so the next attempt already sees it
  app.addHook('onSend', async (request, reply) => {
    const state = request.failureState
    if (!state) return
    if (!state.failed && reply.statusCode === 401) state.failed = true
    if (!state.failed) return
    request.failureState = null
    await runScript(app.redis, RECORD(state.keys.length), ...state.keys, String(windowS))
  })
}

export default fp(rateLimits, { name: 'uspl-rate-limits', dependencies: ['uspl-redis'], fastify: '5.x' })
