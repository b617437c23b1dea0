/**
 * Verifies an access token on every /mcp request (GET streams included), in order:
 *   1. the token comes from the Authorization header only (a query-string token is refused);
 *   2. @fastify/jwt with the issuer's key (cached; see jwks.ts): ES256 only, typ at+jwt, iss exactly the
 *      issuer, aud containing this resource, exp/nbf with JWT_CLOCK_SKEW_S of skew, every claim present;
 *   3. the shared denylist in one Redis round trip (grant, client, jti); Redis unreachable refuses (503);
 *   4. the scope `mcp:tools`.
 * The verified token lands on `request.accessToken`.
 */
import fp from 'fastify-plugin'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Denylist, type DenyReason, type AccessTokenClaims } from '@uspl/core'
import { isRedisUnavailable } from '@uspl/errors'
import { type Config, jwksUrl, resourceMetadataUrl } from '../config.ts'
import { KeySource, UnknownKeyError, JwksUnavailableError } from './jwks.ts'
import { AuthFailure, challenge, REQUIRED_SCOPE } from './challenges.ts'

export interface AccessToken {
  /** the raw JWT, handed to the MCP SDK as authInfo.token; never logged */
  token: string
  userId: string
  clientId: string
  grantId: string
  jti: string
  scopes: string[]
  /** seconds */
  iat: number
  exp: number
  authTime: number
  /** what the MCP SDKs hand the tools as the caller (built once per token) */
  authInfo: AuthInfo
}

/** The token the route's verifier accepted; only called on routes that verify (a bug otherwise). */
export function verifiedToken (request: FastifyRequest): AccessToken {
  const token = request.accessToken
  if (token === null) throw new Error('no verified access token on this request: the route must run the verifier first')
  return token
}

/** the contract the issuer signs (@uspl/core) */
type Claims = AccessTokenClaims

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Claims
    user: Claims
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    accessToken: AccessToken | null
  }
  interface FastifyInstance {
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

export const REQUIRED_CLAIMS = ['iss', 'sub', 'aud', 'client_id', 'scope', 'jti', 'iat', 'exp', 'auth_time', 'grant_id'] as const

const DENY_REASONS: Record<DenyReason, string> = {
  grant_revoked: 'the authorization this token belongs to was revoked',
  client_revoked: 'this client\'s access was revoked',
  token_revoked: 'this token was revoked'
}

export interface VerifierOptions {
  config: Config
}

/** Maps what @fastify/jwt, fast-jwt and the key source throw to a reason and a status. */
export function classify (err: unknown): AuthFailure {
  if (err instanceof AuthFailure) return err
  if (err instanceof JwksUnavailableError) return new AuthFailure('jwks_unavailable', 503, null, 'the authorization server\'s keys cannot be fetched; retry shortly')
  if (err instanceof UnknownKeyError) return new AuthFailure('unknown_kid', 401, 'invalid_token', 'the token is signed with a key this server does not know')
  const code = (err as { code?: string }).code ?? ''
  const message = (err as Error).message ?? ''
  const invalid = (reason: AuthFailure['reason'], description: string): AuthFailure => new AuthFailure(reason, 401, 'invalid_token', description)
  switch (code) {
    case 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED': return invalid('expired', 'the token has expired')
    case 'FAST_JWT_INACTIVE': return invalid('not_yet_valid', 'the token is not valid yet')
    case 'FST_JWT_BAD_REQUEST': return new AuthFailure('malformed_header', 400, 'invalid_request', 'the Authorization header must be "Bearer <token>"')
    case 'FAST_JWT_INVALID_TYPE': return invalid('bad_type', 'the token is not an access token (typ at+jwt)')
    case 'FAST_JWT_MALFORMED': case 'FAST_JWT_INVALID_PAYLOAD':
      return invalid('malformed_token', 'the token is not a well-formed JWT')
    case 'FAST_JWT_INVALID_ALGORITHM': case 'FST_JWT_AUTHORIZATION_TOKEN_UNSIGNED': case 'FAST_JWT_MISSING_SIGNATURE':
      return invalid('bad_algorithm', 'only ES256 tokens are accepted')
    case 'FST_JWT_AUTHORIZATION_TOKEN_INVALID':
      if (/claim is required/.test(message)) return invalid('missing_claim', 'the token lacks a required claim')
      if (/iss claim/.test(message)) return invalid('wrong_issuer', 'the token was not issued by this server\'s authorization server')
      if (/aud claim/.test(message)) return invalid('wrong_audience', 'the token was not issued for this resource')
      if (/signature/i.test(message)) return invalid('bad_signature', 'the token signature is invalid')
      if (/key/i.test(message)) return invalid('bad_algorithm', 'only ES256 tokens are accepted')
      return invalid('invalid_claim', 'the token is invalid')
  }
  if (/typ/i.test(message)) return invalid('bad_type', 'the token is not an access token (typ at+jwt)')
  return invalid('malformed_token', 'the token is invalid')
}

function isNonEmptyString (v: unknown): v is string {
  return typeof v === 'string' && v.length > 0
}

function isTime (v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

/** Claims beyond what fast-jwt checks: types, and iat not in the future. */
export function toAccessToken (token: string, claims: Claims, skewS: number, resource: URL): AccessToken {
  const bad = (what: string): AuthFailure => new AuthFailure('invalid_claim', 401, 'invalid_token', `the token's ${what} claim is invalid`)
  for (const name of ['sub', 'client_id', 'scope', 'jti', 'grant_id'] as const) if (!isNonEmptyString(claims[name])) throw bad(name)
  for (const name of ['iat', 'exp', 'auth_time'] as const) if (!isTime(claims[name])) throw bad(name)
  if (claims.iat > Date.now() / 1000 + skewS) throw bad('iat')
  const scopes = claims.scope.split(' ').filter(Boolean)
  return {
    token,
    userId: claims.sub,
    clientId: claims.client_id,
    grantId: claims.grant_id,
    jti: claims.jti,
    scopes,
    iat: claims.iat,
    exp: claims.exp,
    authTime: claims.auth_time,
    authInfo: {
      token,
      clientId: claims.client_id,
      scopes,
      expiresAt: claims.exp,
      resource,
      extra: { userId: claims.sub, grantId: claims.grant_id, jti: claims.jti }
    }
  }
}

/** how many verified tokens a replica remembers (each a few hundred bytes) */
const VERIFIED_CACHE_SIZE = 10000

/**
 * Tokens whose signature and claims have been verified, by their exact text, until they expire: a
 * request with a known token skips decoding and the ECDSA verify (the top cost per call in the
 * benchmark). Revocation is unaffected: the denylist is read on every request. When full, the oldest
 * entry goes.
 */
export class VerifiedTokens {
  private readonly tokens = new Map<string, AccessToken>()
  constructor (private readonly max: number, private readonly skewS: number) {}

  get (raw: string, nowS = Date.now() / 1000): AccessToken | undefined {
    const token = this.tokens.get(raw)
    if (token === undefined) return undefined
    if (token.exp + this.skewS > nowS) return token
    this.tokens.delete(raw)
    return undefined
  }

  set (raw: string, token: AccessToken): void {
    if (this.tokens.size >= this.max) this.tokens.delete(this.tokens.keys().next().value as string)
    this.tokens.set(raw, token)
  }

  get size (): number {
    return this.tokens.size
  }
}

function bearerToken (request: FastifyRequest): string {
  const header = request.headers.authorization ?? ''
  return header.slice(header.indexOf(' ') + 1).trim()
}

async function verifier (app: FastifyInstance, opts: VerifierOptions): Promise<void> {
  const { config } = opts
  const metrics = app.metrics
  const keys = new KeySource({
    jwksUrl: jwksUrl(config),
    ttlMs: config.JWKS_CACHE_TTL_MS,
    refetchMinIntervalMs: config.JWKS_REFETCH_MIN_INTERVAL_MS,
    fetchTimeoutMs: config.JWKS_FETCH_TIMEOUT_MS,
    onFetch: (result) => metrics.jwksFetches.inc({ result })
  })
  app.readiness.set('jwks', () => keys.readiness())
  const metadataUrl = resourceMetadataUrl(config)
  const resource = new URL(config.GATEWAY_RESOURCE_URL)
  const denylist = new Denylist(app.redis)
  const verified = new VerifiedTokens(VERIFIED_CACHE_SIZE, config.JWT_CLOCK_SKEW_S)

  await app.register(fastifyJwt, {
    secret: async (_request: FastifyRequest, tokenOrHeader: TokenOrHeader): Promise<string> => {
      const header = 'header' in tokenOrHeader ? tokenOrHeader.header : tokenOrHeader
      // refuse before any key lookup: alg none, HS256 with the public key, RS256…
      if (header.alg !== 'ES256') throw new AuthFailure('bad_algorithm', 401, 'invalid_token', 'only ES256 tokens are accepted')
      if (typeof header.kid !== 'string' || header.kid === '') throw new AuthFailure('malformed_token', 401, 'invalid_token', 'the token names no key (kid)')
      return keys.publicKey(header.kid)
    },
    decode: { complete: true },
    verify: {
      algorithms: ['ES256'],
      checkTyp: 'at+jwt',
      allowedIss: config.ISSUER_URL,
      allowedAud: config.GATEWAY_RESOURCE_URL,
      clockTolerance: config.JWT_CLOCK_SKEW_S * 1000,
      requiredClaims: [...REQUIRED_CLAIMS]
    },
    messages: { authorizationTokenInvalid: (err: Error) => err.message }
  })

  app.decorateRequest('accessToken', null)

  function refuse (request: FastifyRequest, reply: FastifyReply, failure: AuthFailure): FastifyReply {
    metrics.authFailures.inc({ reason: failure.reason })
    request.log.info({ reason: failure.reason, status: failure.statusCode }, 'request refused')
    reply.code(failure.statusCode).header('cache-control', 'no-store')
    if (failure.statusCode === 503) {
      reply.header('retry-after', '2')
    } else {
      reply.header('www-authenticate', challenge(metadataUrl, failure))
    }
    return reply.send({ error: failure.bearerError ?? (failure.statusCode === 503 ? 'temporarily_unavailable' : 'unauthorized'), error_description: failure.message })
  }

  async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const query = request.query as Record<string, unknown> | undefined
    if (query && 'access_token' in query) {
      return void refuse(request, reply, new AuthFailure('token_in_query', 400, 'invalid_request', 'access tokens are accepted only in the Authorization header'))
    }
    if (!request.headers.authorization) {
      return void refuse(request, reply, new AuthFailure('missing_token', 401, null, 'an access token is required'))
    }
    if (!/^Bearer\s/i.test(request.headers.authorization)) {
      return void refuse(request, reply, new AuthFailure('malformed_header', 401, 'invalid_request', 'the Authorization header must be "Bearer <token>"'))
    }
    const raw = bearerToken(request)
    let token = verified.get(raw)
    if (token === undefined) {
      try {
        const claims = await request.jwtVerify<Claims>()
        token = toAccessToken(raw, claims, config.JWT_CLOCK_SKEW_S, resource)
      } catch (err) {
        const failure = classify(err)
        if (failure.statusCode === 503) request.log.warn({ err }, 'token verification could not complete')
        return void refuse(request, reply, failure)
      }
      verified.set(raw, token)
    }
    let denied: DenyReason | null
    try {
      denied = await denylist.check({ grantId: token.grantId, clientId: token.clientId, jti: token.jti, iat: token.iat })
    } catch (err) {
      if (!isRedisUnavailable(err)) request.log.error({ err }, 'denylist check failed')
      else request.log.warn({ err }, 'denylist unavailable')
      return void refuse(request, reply, new AuthFailure('store_unavailable', 503, null, 'the revocation list cannot be checked; retry shortly'))
    }
    if (denied) return void refuse(request, reply, new AuthFailure(denied, 401, 'invalid_token', DENY_REASONS[denied]))
    if (!token.scopes.includes(REQUIRED_SCOPE)) {
      return void refuse(request, reply, new AuthFailure('insufficient_scope', 403, 'insufficient_scope', `the token lacks the ${REQUIRED_SCOPE} scope`))
    }
    request.accessToken = token
  }

  app.decorate('authenticate', authenticate)
}

export default fp(verifier, { name: 'gateway-verifier', dependencies: ['uspl-redis', 'gateway-metrics'] })
