/**
 * Access tokens: JWTs per RFC 9068 (header `typ: at+jwt`, ES256, `kid`), signed and verified with
 * node:crypto (ECDSA signatures in the JOSE r||s form).
 */
import { sign as cryptoSign, verify as cryptoVerify } from 'node:crypto'
import { newId, nowSeconds, type AccessTokenClaims } from '@uspl/core'
import type { KeyRing } from '@uspl/core/signing-keys'

export type { AccessTokenClaims }

const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')

const isObject = (value: unknown): boolean => typeof value === 'object' && value !== null && !Array.isArray(value)

export async function signAccessToken (ring: KeyRing, input: { issuer: string, userId: string, resource: string, clientId: string, scope: string, authTime: number, grantId: string, ttlS: number }): Promise<{ token: string, claims: AccessTokenClaims }> {
  const { signer } = await ring.current()
  const iat = nowSeconds()
  const claims: AccessTokenClaims = {
    iss: input.issuer,
    sub: input.userId,
    aud: input.resource,
    client_id: input.clientId,
    scope: input.scope,
    jti: newId('at', 16),
    iat,
    exp: iat + input.ttlS,
    auth_time: input.authTime,
    grant_id: input.grantId
  }
  const signingInput = `${b64({ alg: 'ES256', typ: 'at+jwt', kid: signer.kid })}.${b64(claims)}`
  const signature = cryptoSign('sha256', Buffer.from(signingInput), { key: signer.privateKey, dsaEncoding: 'ieee-p1363' })
  return { token: `${signingInput}.${signature.toString('base64url')}`, claims }
}

/**
 * The claims of an access token this issuer signed, or null when it is not one (bad shape, unknown key,
 * bad signature, other issuer). Expiry is the caller's decision (`/revoke` accepts expired tokens).
 */
export async function readAccessToken (ring: KeyRing, token: string, issuer: string): Promise<AccessTokenClaims | null> {
  if (token.length > 4096) return null
  const parts = token.split('.')
  if (parts.length !== 3) return null
  let header: { alg?: string, typ?: string, kid?: string }
  let claims: AccessTokenClaims
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString()) as typeof header
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString()) as AccessTokenClaims
  } catch {
    return null
  }
  // JSON.parse also answers null, numbers, strings and arrays: only objects are a JOSE header and a claims set
  if (!isObject(header) || !isObject(claims)) return null
  if (header.alg !== 'ES256' || header.typ !== 'at+jwt' || typeof header.kid !== 'string') return null
  const key = await ring.verificationKey(header.kid)
  if (!key) return null
  const ok = cryptoVerify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(parts[2], 'base64url'))
  if (!ok || claims.iss !== issuer || typeof claims.jti !== 'string' || typeof claims.exp !== 'number') return null
  return claims
}
