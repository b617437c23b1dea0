import { randomBytes, createHash, timingSafeEqual } from 'node:crypto'

/** A random secret, base64url, `bytes` of entropy (default 32 = 256 bits). */
export function randomToken (bytes = 32): string {
  return randomBytes(bytes).toString('base64url')
}

/** A random identifier with a readable prefix (`grt_…`, `cli_…`). */
export function newId (prefix: string, bytes = 16): string {
  return `${prefix}_${randomBytes(bytes).toString('base64url')}`
}

/** SHA-256 of a secret, hex: what is stored in place of codes, tokens and keys. */
export function hashSecret (secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

/** Compares two strings in time independent of where they differ (lengths are hashed first). */
export function constantTimeEqual (a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest()
  const hb = createHash('sha256').update(b).digest()
  return timingSafeEqual(ha, hb) && a.length === b.length
}

/** PKCE S256: base64url(sha256(verifier)). */
export function s256 (verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url')
}

export function nowSeconds (): number {
  return Math.floor(Date.now() / 1000)
}
