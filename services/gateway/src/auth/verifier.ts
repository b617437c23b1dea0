/**
 * Verifies an access token on every /mcp request (GET streams included), in order:
 *   1. the token comes from the Authorization header only (a query-string token is refused);
 *   2. fast-jwt with the issuer's key (cached; see jwks.ts): ES256 only, typ at+jwt, exp/nbf with
 *      JWT_CLOCK_SKEW_S of skew, every claim present; then aud containing this resource, iss exactly the issuer;
 *   3. the shared denylist in one Redis round trip (grant, client, jti); Redis unreachable refuses (503);
 *      a grant or token whose revocation event this replica applied is refused from memory, with no trip;
 *   4. the scope `mcp:tools`.
 * The verified token lands on `request.accessToken`. A refusal is an AuthFailure (challenges.ts), whose
 * reason comes from what failed, read from fast-jwt's `TokenError.codes` and our own checks, never from
 * an error's wording.
 */
import fp from 'fastify-plugin'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { createDecoder, createVerifier, TokenError } from 'fast-jwt'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Denylist, type DenyReason, type AccessTokenClaims } from '@uspl/core'
import { isRedisUnavailable } from '@uspl/errors'
import { sendError } from '@uspl/server'
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

declare module 'fastify' {
  interface FastifyRequest {
    accessToken: AccessToken | null
  }
  interface FastifyInstance {
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** the denylist every request is checked against; the MCP plugin tells it of each revocation it applies */
    denylist: Denylist
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

const invalid = (reason: AuthFailure['reason'], description: string): AuthFailure => new AuthFailure(reason, 401, 'invalid_token', description)

/** fast-jwt's failures by their code (TokenError.codes); a code not listed is an invalid token. */
const TOKEN_ERRORS: Partial<Record<string, () => AuthFailure>> = {
  [TokenError.codes.expired]: () => invalid('expired', 'the token has expired'),
  [TokenError.codes.inactive]: () => invalid('not_yet_valid', 'the token is not valid yet'),
  [TokenError.codes.invalidType]: () => invalid('bad_type', 'the token is not an access token (typ at+jwt)'),
  [TokenError.codes.malformed]: () => invalid('malformed_token', 'the token is not a well-formed JWT'),
  [TokenError.codes.invalidPayload]: () => invalid('malformed_token', 'the token is not a well-formed JWT'),
  [TokenError.codes.invalidAlgorithm]: () => invalid('bad_algorithm', 'only ES256 tokens are accepted'),
  [TokenError.codes.missingSignature]: () => invalid('bad_algorithm', 'only ES256 tokens are accepted'),
  [TokenError.codes.invalidKey]: () => invalid('bad_algorithm', 'only ES256 tokens are accepted'),
  [TokenError.codes.invalidSignature]: () => invalid('bad_signature', 'the token signature is invalid'),
  [TokenError.codes.missingRequiredClaim]: () => invalid('missing_claim', 'the token lacks a required claim'),
  [TokenError.codes.invalidClaimType]: () => invalid('invalid_claim', 'the token is invalid'),
  [TokenError.codes.invalidClaimValue]: () => invalid('invalid_claim', 'the token is invalid')
}

/** Maps what fast-jwt, the key source and our own checks throw to a reason and a status. */
export function classify (err: unknown): AuthFailure {
  if (err instanceof AuthFailure) return err
  if (err instanceof JwksUnavailableError) return new AuthFailure('jwks_unavailable', 503, null, 'the authorization server\'s keys cannot be fetched; retry shortly')
  if (err instanceof UnknownKeyError) return new AuthFailure('unknown_kid', 401, 'invalid_token', 'the token is signed with a key this server does not know')
  return (err instanceof TokenError ? TOKEN_ERRORS[err.code]?.() : undefined) ?? invalid('malformed_token', 'the token is invalid')
}

/** The audience and the issuer, checked here (after fast-jwt's exp and nbf) so each failure is named by its step. */
function checkAudienceAndIssuer (claims: Claims, resource: string, issuer: string): void {
  const aud: unknown = claims.aud
  const audiences: unknown[] = Array.isArray(aud) ? aud : [aud]
  if (!audiences.every((a) => typeof a === 'string') || !audiences.includes(resource)) throw invalid('wrong_audience', 'the token was not issued for this resource')
  if (claims.iss !== issuer) throw invalid('wrong_issuer', 'the token was not issued by this server\'s authorization server')
}

/** `Bearer <token>` with exactly one space and a token, or null (RFC 6750 §2.1) */
function headerToken (authorization: string): string | null {
  const parts = authorization.split(' ')
  return parts.length === 2 && parts[1] ? parts[1] : null
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
 * benchmark). Revocation is unaffected: the denylist is checked on every request. When full, the oldest
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

  const decode = createDecoder({ complete: true })
  /** one fast-jwt verifier per issuer key (a handful: the keys the JWKS published while this replica ran) */
  const verifiers = new Map<string, (token: string) => Claims>()
  const verifierFor = (pem: string): (token: string) => Claims => {
    let verify = verifiers.get(pem)
    if (verify === undefined) {
      verify = createVerifier({
        key: pem,
        algorithms: ['ES256'],
        checkTyp: 'at+jwt',
        clockTolerance: config.JWT_CLOCK_SKEW_S * 1000,
        requiredClaims: [...REQUIRED_CLAIMS]
      }) as (token: string) => Claims
      verifiers.set(pem, verify)
    }
    return verify
  }

  /** 2. the signature and the claims: decode the header, fetch its key, verify, then aud and iss. */
  async function verifyJwt (raw: string): Promise<Claims> {
    const { header } = decode(raw) as { header: { alg?: unknown, kid?: unknown } }
    // refuse before any key lookup: alg none, HS256 with the public key, RS256…
    if (header.alg !== 'ES256') throw new AuthFailure('bad_algorithm', 401, 'invalid_token', 'only ES256 tokens are accepted')
    if (typeof header.kid !== 'string' || header.kid === '') throw new AuthFailure('malformed_token', 401, 'invalid_token', 'the token names no key (kid)')
    const claims = verifierFor(await keys.publicKey(header.kid))(raw)
    checkAudienceAndIssuer(claims, config.GATEWAY_RESOURCE_URL, config.ISSUER_URL)
    return claims
  }

  app.decorateRequest('accessToken', null)

  function refuse (request: FastifyRequest, reply: FastifyReply, failure: AuthFailure): FastifyReply {
    metrics.authFailures.inc({ reason: failure.reason })
    request.log.info({ reason: failure.reason, status: failure.statusCode }, 'request refused')
    // a 503 is not the token's fault: no challenge, a Retry-After instead (the failure carries it)
    if (failure.statusCode !== 503) failure.challenge = challenge(metadataUrl, failure)
    return sendError(reply, failure)
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
    let token = verified.get(bearerToken(request))
    if (token === undefined) {
      const raw = headerToken(request.headers.authorization)
      if (raw === null) {
        return void refuse(request, reply, new AuthFailure('malformed_header', 400, 'invalid_request', 'the Authorization header must be "Bearer <token>"'))
      }
      try {
        token = toAccessToken(raw, await verifyJwt(raw), config.JWT_CLOCK_SKEW_S, resource)
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
  app.decorate('denylist', denylist)
}

export default fp(verifier, { name: 'gateway-verifier', dependencies: ['uspl-redis', 'gateway-metrics'] })
