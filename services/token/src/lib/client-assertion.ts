/**
 * Client authentication at the token and revocation endpoints: `none` (a public client names itself) or
 * `private_key_jwt` (RFC 7523 §2.2, for clients identified by a metadata document that publishes keys).
 * A client proves itself the way its metadata says, and no other way. An assertion's checks, in order:
 * 1. `client_assertion_type` is jwt-bearer; the JWT's `alg` is ES256, RS256, PS256 or EdDSA (never `none`
 *    or a shared-secret HMAC);
 * 2. `iss` = `sub` = the client_id; `aud` names this token endpoint or the issuer;
 * 3. `exp` present, not passed, at most 5 minutes ahead; `nbf` (if any) reached; `jti` present;
 * 4. the signature verifies with a key of the client's `jwks` (or its `jwks_uri`, fetched by the safe
 *    fetcher), chosen by `kid` when the JWT names one;
 * 5. the `jti` has not been seen for this client (remembered in Redis until the assertion expires).
 */
import { createHash, createPublicKey, type JsonWebKey } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { createVerifier, TokenError } from 'fast-jwt'
import { keys, nowSeconds, type Client } from '@uspl/core'
import { OAuthError } from '@uspl/errors'
import type { RedisClient } from '@uspl/redis'
import { presentedClientId } from './client-auth.ts'
import { param } from './oauth.ts'
import type { CimdResolver } from './cimd/resolver.ts'
import type { ClientResolver } from './clients.ts'
import { CimdError } from './cimd/errors.ts'

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
export const CLIENT_ASSERTION_ALGORITHMS = ['ES256', 'RS256', 'PS256', 'EdDSA'] as const
const ALGORITHMS = CLIENT_ASSERTION_ALGORITHMS
const KTY: Record<string, string> = { ES256: 'EC', RS256: 'RSA', PS256: 'RSA', EdDSA: 'OKP' }
const MAX_LIFETIME_S = 300
const SKEW_S = 30

export interface PresentedClient {
  clientId: string | undefined
  assertion: string | undefined
}

const invalidClient = (why: string): OAuthError => new OAuthError('invalid_client', why, 401)

function decodePart (jwt: string, index: 0 | 1): Record<string, unknown> {
  try {
    const part = jwt.split('.')[index]
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {}
  throw invalidClient('client_assertion is not a well-formed JWT')
}

/** Who the request says it is: a client_id (body or Basic) and, for private_key_jwt, its assertion. */
export function presentedClient (request: FastifyRequest, body: unknown, required = true): PresentedClient {
  const type = param(body, 'client_assertion_type', 200)
  const assertion = param(body, 'client_assertion', 8192)
  if (type === undefined && assertion === undefined) return { clientId: presentedClientId(request, body, required), assertion: undefined }
  if (type !== JWT_BEARER_ASSERTION) throw new OAuthError('invalid_request', `client_assertion_type must be ${JWT_BEARER_ASSERTION}`)
  if (!assertion) throw new OAuthError('invalid_request', 'client_assertion is required with client_assertion_type')
  const named = presentedClientId(request, body, false)
  const sub = decodePart(assertion, 1).sub
  if (typeof sub !== 'string' || sub.length === 0) throw invalidClient('client_assertion has no sub')
  if (named !== undefined && named !== sub) throw invalidClient('client_id differs from the client_assertion\'s subject')
  return { clientId: sub, assertion }
}

/**
 * The client a token-endpoint request comes from, found (registered or metadata document) and
 * authenticated; null when none is named and none is `required`. Unknown or unusable: invalid_client.
 * Whether a disabled client is refused, and how, is the caller's step.
 */
export async function requestingClient (oauth: { resolveClient: ClientResolver, clientAuth: ClientAuthenticator }, request: FastifyRequest, body: unknown, required = true): Promise<Client | null> {
  const presented = presentedClient(request, body, required)
  if (presented.clientId === undefined) return null
  let client: Client | null
  try {
    client = await oauth.resolveClient.find(presented.clientId)
  } catch (err) {
    if (err instanceof CimdError) throw invalidClient(`the client's metadata document cannot be used: ${err.message}`)
    throw err
  }
  if (!client) throw invalidClient('unknown client (not registered, or its registration expired)')
  await oauth.clientAuth.authenticate(client, presented)
  return client
}

export class ClientAuthenticator {
  constructor (private readonly opts: { redis: RedisClient, cimd: CimdResolver, issuer: string, tokenEndpoint: string }) {}

  /** Refuses (invalid_client) unless the request proves it is `client` the way its metadata says. */
  async authenticate (client: Client, presented: PresentedClient): Promise<void> {
    const method = client.metadata.token_endpoint_auth_method
    if (method !== 'private_key_jwt') {
      if (presented.assertion !== undefined) throw invalidClient('this client does not authenticate with private_key_jwt')
      return
    }
    if (presented.assertion === undefined) throw invalidClient('this client authenticates with private_key_jwt: send client_assertion and client_assertion_type')
    await this.verifyAssertion(client, presented.assertion)
  }

  private async signingKeys (client: Client): Promise<Array<Record<string, unknown>>> {
    if (client.metadata.jwks) return client.metadata.jwks.keys
    if (!client.metadata.jwks_uri) return []
    try {
      return (await this.opts.cimd.jwks(client.metadata.jwks_uri)).keys
    } catch (err) {
      if (err instanceof CimdError) throw invalidClient(`the client's jwks_uri cannot be used: ${err.message}`)
      throw err
    }
  }

  private async verifyAssertion (client: Client, assertion: string): Promise<void> {
    // step 1: the algorithm
    const header = decodePart(assertion, 0)
    const alg = header.alg
    if (typeof alg !== 'string' || !(ALGORITHMS as readonly string[]).includes(alg)) throw invalidClient(`client_assertion alg must be one of ${ALGORITHMS.join(', ')}`)
    // step 4 first selects the keys, so that steps 2 and 3 run inside the verifier
    const candidates = (await this.signingKeys(client)).filter((k) =>
      k.kty === KTY[alg] && (k.use === undefined || k.use === 'sig') && (header.kid === undefined || k.kid === header.kid))
    if (candidates.length === 0) throw invalidClient('no key of the client matches the client_assertion (kid, key type)')
    let payload: Record<string, unknown> | null = null
    let lastError: unknown = null
    for (const jwk of candidates) {
      let pem: string
      try {
        pem = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
      } catch {
        continue
      }
      const verify = createVerifier({
        key: pem,
        algorithms: [alg as typeof ALGORITHMS[number]],
        allowedIss: client.clientId,
        allowedSub: client.clientId,
        allowedAud: [this.opts.tokenEndpoint, this.opts.issuer],
        requiredClaims: ['exp', 'jti', 'iss', 'sub', 'aud'],
        clockTolerance: SKEW_S * 1000,
        cache: false
      })
      try {
        payload = verify(assertion) as Record<string, unknown>
        break
      } catch (err) {
        lastError = err
        if (err instanceof TokenError && err.code === TokenError.codes.invalidSignature) continue
        break
      }
    }
    if (!payload) throw invalidClient(describe(lastError))
    // step 3: short-lived, single use
    const now = nowSeconds()
    const exp = payload.exp as number
    if (typeof exp !== 'number' || exp - now > MAX_LIFETIME_S + SKEW_S) throw invalidClient(`client_assertion must expire within ${MAX_LIFETIME_S} seconds`)
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256) throw invalidClient('client_assertion needs a jti')
    const seen = createHash('sha256').update(`${client.clientId}\n${payload.jti}`).digest('base64url')
    const first = await this.opts.redis.set(keys.clientAssertionJti(seen), '1', 'EX', Math.max(1, exp - now + SKEW_S), 'NX')
    if (first !== 'OK') throw invalidClient('client_assertion was already used (jti seen before)')
  }
}

function describe (err: unknown): string {
  if (!(err instanceof TokenError)) return 'client_assertion signature cannot be verified with the client\'s keys'
  switch (err.code) {
    case TokenError.codes.invalidSignature: return 'client_assertion signature does not verify with the client\'s keys'
    case TokenError.codes.expired: return 'client_assertion has expired'
    case TokenError.codes.inactive: return 'client_assertion is not valid yet (nbf)'
    case TokenError.codes.missingRequiredClaim: return 'client_assertion lacks a required claim (iss, sub, aud, exp, jti)'
    case TokenError.codes.invalidClaimValue: return 'client_assertion iss and sub must be the client_id, and aud this token endpoint or the issuer'
    case TokenError.codes.invalidAlgorithm: case TokenError.codes.invalidKey: return 'client_assertion alg does not fit the client\'s key'
    default: return 'client_assertion is invalid'
  }
}
