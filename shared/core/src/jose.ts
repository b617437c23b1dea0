/**
 * Compact JWS for the enterprise features (ID-JAGs and Security Event Tokens from a company's IdP, and the
 * SETs we sign): decode strictly, pick the key from a JWK set by `kid`, verify with node:crypto. Only
 * asymmetric algorithms exist here: `none` and every HMAC `alg` are refused before any key is looked at,
 * and a key is used only for the algorithm family its `kty`/`crv` (and its `alg`, when it names one) fit,
 * so a public key can never be used as an HMAC secret (algorithm confusion).
 */
import { createPublicKey, sign as cryptoSign, verify as cryptoVerify, constants, type KeyObject } from 'node:crypto'

export interface Jwk {
  kty: string
  kid?: string
  alg?: string
  use?: string
  crv?: string
  [member: string]: unknown
}

export interface Jwks { keys: Jwk[] }

export type JoseErrorCode = 'malformed' | 'unsupported_alg' | 'bad_typ' | 'unknown_key' | 'bad_signature'

export class JoseError extends Error {
  constructor (readonly code: JoseErrorCode, message: string) {
    super(message)
    this.name = 'JoseError'
  }
}

interface AlgSpec { hash: string | null, kty: string, crv?: string, dsaEncoding?: 'ieee-p1363', pss?: boolean }

const ALGS: Record<string, AlgSpec> = {
  ES256: { hash: 'sha256', kty: 'EC', crv: 'P-256', dsaEncoding: 'ieee-p1363' },
  ES384: { hash: 'sha384', kty: 'EC', crv: 'P-384', dsaEncoding: 'ieee-p1363' },
  RS256: { hash: 'sha256', kty: 'RSA' },
  PS256: { hash: 'sha256', kty: 'RSA', pss: true },
  EdDSA: { hash: null, kty: 'OKP', crv: 'Ed25519' }
}

export const SUPPORTED_JWS_ALGS = Object.keys(ALGS)

export interface DecodedJws {
  header: Record<string, unknown> & { alg: string, typ?: string, kid?: string }
  claims: Record<string, unknown>
  signingInput: string
  signature: Buffer
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Splits and parses a compact JWS; refuses anything but three base64url parts with JSON objects. */
export function decodeJws (token: string, maxLength = 16384): DecodedJws {
  if (typeof token !== 'string' || token.length > maxLength) throw new JoseError('malformed', 'not a compact JWS')
  const parts = token.split('.')
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) throw new JoseError('malformed', 'not a compact JWS')
  let header: unknown
  let claims: unknown
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString())
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString())
  } catch {
    throw new JoseError('malformed', 'the JWS header or payload is not JSON')
  }
  if (!isObject(header) || !isObject(claims)) throw new JoseError('malformed', 'the JWS header and payload must be JSON objects')
  if (typeof header.alg !== 'string') throw new JoseError('malformed', 'the JWS header has no alg')
  if (header.crit !== undefined) throw new JoseError('malformed', 'no critical header parameter is understood here')
  return { header: header as DecodedJws['header'], claims, signingInput: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2], 'base64url') }
}

function fits (jwk: Jwk, alg: string, spec: AlgSpec): boolean {
  if (jwk.kty !== spec.kty) return false
  if (spec.crv && jwk.crv !== spec.crv) return false
  if (jwk.alg !== undefined && jwk.alg !== alg) return false
  if (jwk.use !== undefined && jwk.use !== 'sig') return false
  return jwk.d === undefined && jwk.k === undefined
}

/** True when the set holds only public signature keys this module can use. */
export function assertPublicJwks (jwks: unknown): Jwks {
  if (!isObject(jwks) || !Array.isArray(jwks.keys) || jwks.keys.length === 0) throw new Error('a JWK set needs a non-empty "keys" array')
  for (const [i, k] of (jwks.keys as unknown[]).entries()) {
    if (!isObject(k) || typeof k.kty !== 'string') throw new Error(`key ${i} is not a JWK`)
    if (k.d !== undefined || k.k !== undefined || k.kty === 'oct') throw new Error(`key ${i} is private or symmetric; give public keys only`)
    if (!['EC', 'RSA', 'OKP'].includes(k.kty)) throw new Error(`key ${i}: kty ${k.kty} is not supported`)
    try { createPublicKey({ key: k as never, format: 'jwk' }) } catch (err) { throw new Error(`key ${i} cannot be loaded: ${(err as Error).message}`) }
  }
  return jwks as unknown as Jwks
}

/**
 * Verifies a decoded JWS against a JWK set: alg among `algs` (asymmetric only), `typ` when given, the key
 * named by `kid` (or the set's only fitting key when the header has none). Throws a JoseError.
 */
export function verifyJws (jws: DecodedJws, jwks: Jwks, opts: { typ?: string[], algs?: string[] } = {}): Jwk {
  const { alg, kid, typ } = jws.header
  const spec = ALGS[alg]
  if (!spec || (opts.algs && !opts.algs.includes(alg))) throw new JoseError('unsupported_alg', `alg ${alg} is not accepted`)
  if (opts.typ && (typeof typ !== 'string' || !opts.typ.includes(typ.toLowerCase()))) throw new JoseError('bad_typ', `typ must be ${opts.typ[0]}`)
  const candidates = jwks.keys.filter((k) => fits(k, alg, spec) && (kid === undefined || k.kid === kid))
  if (candidates.length === 0 || (kid === undefined && candidates.length > 1)) throw new JoseError('unknown_key', kid === undefined ? 'no kid, and the key set has no single key for this alg' : `no ${alg} key with kid ${String(kid)}`)
  const jwk = candidates[0]
  let key: KeyObject
  try { key = createPublicKey({ key: jwk as never, format: 'jwk' }) } catch { throw new JoseError('unknown_key', 'the key cannot be loaded') }
  const data = Buffer.from(jws.signingInput)
  const ok = cryptoVerify(spec.hash, data, spec.pss
    ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
    : spec.dsaEncoding ? { key, dsaEncoding: spec.dsaEncoding } : key, jws.signature)
  if (!ok) throw new JoseError('bad_signature', 'the signature does not verify')
  return jwk
}

const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')

/** Signs claims as a compact ES256 JWS with `typ` and `kid`. */
export function signEs256 (claims: object, key: { privateKey: KeyObject, kid: string }, typ: string): string {
  const input = `${b64({ alg: 'ES256', typ, kid: key.kid })}.${b64(claims)}`
  const signature = cryptoSign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
  return `${input}.${signature.toString('base64url')}`
}
