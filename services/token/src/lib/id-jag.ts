/**
 * Verifies an Identity Assertion JWT Authorization Grant (draft-ietf-oauth-identity-assertion-authz-grant,
 * presented as an RFC 7523 jwt-bearer `assertion`), in order:
 *   1. shape: a compact JWS whose header `typ` is `oauth-id-jag+jwt`, asymmetric `alg` only;
 *   2. issuer: `iss` is a trusted enterprise issuer;
 *   3. signature: against that issuer's keys (inline or its allow-listed jwks_uri);
 *   4. claims: `aud` our issuer, `client_id` the presenting client, `resource` our gateway, `scope`
 *      within what we serve, `iat`/`exp` present and the lifetime at most ID_JAG_MAX_LIFETIME_S, `jti`, `sub`;
 *      (the request's `scope` may only narrow it);
 *   5. subject: the user, through the issuer's mapping and governed domains (and tenant);
 *   6. replay: `jti` is recorded (SET NX until exp, per issuer), last, so a refused assertion burns nothing.
 * Every refusal is an OAuthError (`invalid_grant`, or `invalid_scope`/`invalid_target` for those checks)
 * whose description names the failed check; nothing of the assertion is logged.
 */
import { AccountStore, CLOCK_SKEW_S, decodeJws, emailDomain, hashSecret, JoseError, keys, nowSeconds, type DecodedJws, type EnterpriseIssuer, type EnterpriseIssuerStore, type User } from '@uspl/core'
import type { RedisClient } from '@uspl/redis'
import { OAuthError } from '@uspl/errors'
import { SUPPORTED_SCOPES, narrowScope, resourceMatches } from './oauth.ts'
import { JwksUnavailableError, type EnterpriseKeys } from './enterprise-keys.ts'

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
export const ID_JAG_TYP = 'oauth-id-jag+jwt'
export const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag'

export interface VerifiedIdJag {
  issuer: EnterpriseIssuer
  user: User
  scope: string
  /** `auth_time` when the IdP gave one, else `iat` */
  authTime: number
  jti: string
  exp: number
}

export interface IdJagDeps {
  redis: RedisClient
  issuers: EnterpriseIssuerStore
  keys: EnterpriseKeys
  accounts: AccountStore
  config: { ISSUER_URL: string, GATEWAY_RESOURCE_URL: string, ID_JAG_MAX_LIFETIME_S: number }
}

const refuse = (why: string): OAuthError => new OAuthError('invalid_grant', why)

const str = (v: unknown): string | null => typeof v === 'string' && v.length > 0 && v.length <= 2048 ? v : null

function decode (assertion: string): DecodedJws {
  try {
    return decodeJws(assertion)
  } catch (err) {
    throw refuse(`the assertion is not a JWT (${(err as Error).message})`)
  }
}

/** 3. the signature (a JoseError names which part failed; a fetch failure is ours, not the client's). */
async function verifySignature (deps: IdJagDeps, issuer: EnterpriseIssuer, jws: DecodedJws): Promise<void> {
  try {
    await deps.keys.verify(issuer, jws, { typ: [ID_JAG_TYP] })
  } catch (err) {
    if (err instanceof JoseError) throw refuse(`the assertion's signature was not accepted: ${err.message}`)
    if (err instanceof JwksUnavailableError) throw new OAuthError('temporarily_unavailable', 'the enterprise issuer\'s keys could not be read; retry shortly', 503, { retryAfterS: err.retryAfterS })
    throw err
  }
}

/** 4. the claims, against this server and the presenting client. */
function checkClaims (deps: IdJagDeps, claims: Record<string, unknown>, clientId: string, now: number): { scope: string, exp: number, jti: string, sub: string, iat: number } {
  const aud = claims.aud
  const audiences = Array.isArray(aud) ? aud : [aud]
  if (!audiences.includes(deps.config.ISSUER_URL)) throw refuse(`the assertion's aud must be ${deps.config.ISSUER_URL}`)
  if (claims.client_id !== clientId) throw refuse('the assertion was issued to another client (client_id)')
  const resource = str(claims.resource)
  if (!resource || !resourceMatches(deps.config.GATEWAY_RESOURCE_URL, resource)) throw new OAuthError('invalid_target', `the assertion's resource must be ${deps.config.GATEWAY_RESOURCE_URL}`)
  const { exp, iat } = claims
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw refuse('the assertion has no exp')
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw refuse('the assertion has no iat')
  if (exp <= now - CLOCK_SKEW_S) throw refuse('the assertion has expired')
  if (iat > now + CLOCK_SKEW_S) throw refuse('the assertion was issued in the future (iat)')
  const max = deps.config.ID_JAG_MAX_LIFETIME_S
  if (exp - iat > max || exp - now > max + CLOCK_SKEW_S) throw refuse(`the assertion lives longer than ${max} s`)
  const jti = str(claims.jti)
  if (!jti) throw refuse('the assertion has no jti')
  const sub = str(claims.sub)
  if (!sub) throw refuse('the assertion has no sub')
  const requested = claims.scope === undefined ? [] : typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : null
  if (requested === null) throw new OAuthError('invalid_scope', 'the assertion\'s scope must be a string')
  const extra = requested.filter((s) => !(SUPPORTED_SCOPES as readonly string[]).includes(s))
  if (extra.length > 0) throw new OAuthError('invalid_scope', `the assertion's scope exceeds what this server grants (${extra.join(' ')})`)
  const scope = requested.length > 0 ? [...new Set(requested)].join(' ') : SUPPORTED_SCOPES.join(' ')
  return { scope, exp, jti, sub, iat }
}

/** 5. our user, through the issuer's subject mapping; the user's domain must be one it governs. */
async function resolveUser (deps: IdJagDeps, issuer: EnterpriseIssuer, claims: Record<string, unknown>, sub: string): Promise<User> {
  if (issuer.tenant !== null && claims.tenant !== issuer.tenant) throw refuse('the assertion is from another tenant of this issuer')
  let user: User | null
  if (issuer.subject === 'email') {
    const email = str(claims.email)
    const domain = emailDomain(email)
    if (!email || !domain) throw refuse('the assertion has no email claim (this issuer maps users by email)')
    if (!issuer.domains.includes(domain)) throw refuse(`the issuer does not govern the domain ${domain}`)
    user = await deps.accounts.findUserByEmail(email)
  } else {
    const userId = await deps.issuers.linkedUser(issuer.id, sub)
    user = userId ? await deps.accounts.getUser(userId) : null
  }
  if (!user) throw refuse('no user of this server matches the assertion\'s subject (users are not created from assertions)')
  const domain = emailDomain(user.email)
  if (!domain || !issuer.domains.includes(domain)) throw refuse(`the issuer does not govern the domain ${domain ?? '(none)'}`)
  return user
}

/** `requestedScope` (the token request's `scope`) may only narrow the assertion's. */
export async function verifyIdJag (deps: IdJagDeps, assertion: string, clientId: string, requestedScope?: string): Promise<VerifiedIdJag> {
  const now = nowSeconds()
  // 1. shape
  const jws = decode(assertion)
  if (typeof jws.header.typ !== 'string' || jws.header.typ.toLowerCase() !== ID_JAG_TYP) throw refuse(`the assertion's typ must be ${ID_JAG_TYP}`)
  // 2. issuer
  const iss = str(jws.claims.iss)
  const issuer = iss ? await deps.issuers.get(iss) : null
  if (!issuer) throw refuse('the assertion\'s issuer is not a trusted enterprise issuer')
  // 3. signature, 4. claims, 5. subject
  await verifySignature(deps, issuer, jws)
  const checked = checkClaims(deps, jws.claims, clientId, now)
  const scope = narrowScope(checked.scope, requestedScope)
  const user = await resolveUser(deps, issuer, jws.claims, checked.sub)
  // 6. replay: the jti is remembered until the assertion could no longer be accepted
  const ttl = Math.max(1, checked.exp - now + CLOCK_SKEW_S)
  const first = await deps.redis.set(keys.idJagJti(issuer.id, hashSecret(checked.jti)), String(now), 'EX', ttl, 'NX')
  if (first !== 'OK') throw refuse('the assertion was already used (jti)')
  const authTime = typeof jws.claims.auth_time === 'number' ? jws.claims.auth_time : checked.iat
  return { issuer, user, scope, authTime, jti: checked.jti, exp: checked.exp }
}
