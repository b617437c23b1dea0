/**
 * The issuer's signing keys, from its JWKS. Verification on the hot path reads a key from an in-process
 * map (no fetch, no PEM conversion). The whole set is fetched at once and refetched in the background when
 * its max-age (Cache-Control of the JWKS, at most JWKS_CACHE_TTL_MS) has passed, on the next request that
 * finds it so: the token service publishes a rotated key KEY_ACTIVATION_DELAY_S before it signs with it,
 * so the gateway knows a new kid before the first token naming it arrives. A token naming a kid this
 * replica has not seen triggers a fetch at most once per JWKS_REFETCH_MIN_INTERVAL_MS, or at once when the
 * set it holds is past its max-age, so a flood of random kids can neither hammer the token service nor
 * hold back a published key. A key the issuer stopped publishing stops verifying; while the issuer cannot
 * be reached, the keys already held stay usable.
 * readiness() is the gateway's readiness check: not ready until the JWKS has been fetched with a key in it,
 * and not once fetches have failed for longer than JWKS_CACHE_TTL_MS (a wrong JWKS_URL never turns ready).
 */
import { createPublicKey } from 'node:crypto'
import { HttpError } from '@uspl/errors'

/** The token names a key the issuer does not publish (or that we may not ask for yet): the token's fault (401). */
export class UnknownKeyError extends HttpError {
  constructor (readonly kid: string, readonly fetched: boolean) {
    super(401, 'invalid_token', fetched ? `no key ${kid} in the issuer's JWKS` : `unknown key ${kid} (JWKS refetch rate-limited)`)
    this.name = 'UnknownKeyError'
  }
}

/** The issuer's JWKS could not be fetched and no copy of the key is held: not the token's fault (503). */
export class JwksUnavailableError extends HttpError {
  constructor (cause: unknown) {
    super(503, 'temporarily_unavailable', `the issuer's JWKS cannot be fetched: ${(cause as Error).message}`, { cause, retryAfterS: 2 })
    this.name = 'JwksUnavailableError'
  }
}

export interface KeySourceOptions {
  jwksUrl: string
  ttlMs: number
  refetchMinIntervalMs: number
  fetchTimeoutMs: number
  onFetch?: (result: 'ok' | 'error') => void
  /** the clock (tests move it instead of waiting) */
  now?: () => number
}

interface Jwk { kty?: string, crv?: string, kid?: string, alg?: string, use?: string, x?: string, y?: string }

/** The set's max-age from Cache-Control, clamped to [1 s, ttl]; the ttl when none is given. */
function maxAgeMs (cacheControl: string | null, ttlMs: number): number {
  const m = /(?:^|,)\s*max-age=(\d+)/i.exec(cacheControl ?? '')
  return m ? Math.min(Math.max(Number(m[1]) * 1000, 1000), ttlMs) : ttlMs
}

export class KeySource {
  private readonly keys = new Map<string, string>()
  /** the held set is fresh until then; past it, the next request refetches it in the background */
  private freshUntil = Number.NEGATIVE_INFINITY
  private lastUnknownFetch = Number.NEGATIVE_INFINITY
  private loading: Promise<void> | null = null
  private readonly now: () => number
  /** when the set was last fetched with a key in it */
  private lastLoaded = Number.NEGATIVE_INFINITY

  constructor (private readonly opts: KeySourceOptions) {
    this.now = opts.now ?? Date.now
  }

  /** The PEM public key for `kid`; throws UnknownKeyError when the issuer does not have it (or we may not ask). */
  async publicKey (kid: string): Promise<string> {
    const now = this.now()
    const stale = now >= this.freshUntil
    const held = this.keys.get(kid)
    if (held) {
      if (stale) this.refreshInBackground()
      return held
    }
    // an unknown kid: ask the issuer if the limiter allows, or if what we hold is past its max-age
    if (!this.loading) {
      if (!stale && now - this.lastUnknownFetch < this.opts.refetchMinIntervalMs) throw new UnknownKeyError(kid, false)
      this.lastUnknownFetch = now
    }
    await this.load()
    const pem = this.keys.get(kid)
    if (!pem) throw new UnknownKeyError(kid, true)
    return pem
  }

  /**
   * Null when the issuer's JWKS was fetched, with at least one key, less than a quarter of the cache TTL ago
   * (or is fetched now); else the reason. A failed fetch within the TTL of the last good one still counts
   * as ready: the keys held stay valid that long. It shares the one fetch in flight with the hot path.
   */
  async readiness (): Promise<string | null> {
    if (this.now() - this.lastLoaded < this.opts.ttlMs / 4) return null
    try {
      await this.load()
    } catch (err) {
      if (this.now() - this.lastLoaded < this.opts.ttlMs) return null
      const cause = (err as { cause?: { cause?: { code?: string }, message?: string } }).cause
      return `the issuer's JWKS cannot be fetched from ${this.opts.jwksUrl}: ${cause?.cause?.code ?? cause?.message ?? (err as Error).message}`
    }
    if (this.now() - this.lastLoaded < this.opts.ttlMs) return null
    return this.keys.size === 0 ? `the issuer's JWKS cannot be used from ${this.opts.jwksUrl}: no keys (no ES256 signing key in it)` : `the issuer's JWKS cannot be fetched from ${this.opts.jwksUrl}`
  }

  private refreshInBackground (): void {
    this.load().catch(() => {}) // counted by onFetch; the held keys stay usable
  }

  /** Fetches the whole set once (concurrent callers share the fetch). */
  private async load (): Promise<void> {
    this.loading ??= this.fetchSet().finally(() => { this.loading = null })
    await this.loading
  }

  private async fetchSet (): Promise<void> {
    let res: Response
    let body: { keys?: Jwk[] }
    try {
      res = await fetch(this.opts.jwksUrl, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.opts.fetchTimeoutMs) })
      if (res.status !== 200) throw new Error(`JWKS answered HTTP ${res.status}`)
      body = await res.json() as { keys?: Jwk[] }
      if (!Array.isArray(body.keys)) throw new Error('JWKS has no keys array')
    } catch (err) {
      this.opts.onFetch?.('error')
      // back off: a down issuer is asked again after the refetch interval, not on every request
      this.freshUntil = this.now() + this.opts.refetchMinIntervalMs
      if (this.keys.size > 0) return // keys we hold stay usable while the issuer cannot be reached
      throw new JwksUnavailableError(err)
    }
    const next = new Map<string, string>()
    for (const jwk of body.keys) {
      if (typeof jwk.kid !== 'string' || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || (jwk.alg !== undefined && jwk.alg !== 'ES256') || (jwk.use !== undefined && jwk.use !== 'sig')) continue
      try {
        next.set(jwk.kid, this.keys.get(jwk.kid) ?? createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString())
      } catch {
        // a malformed key in the set verifies nothing
      }
    }
    // the issuer no longer publishes a key: retired keys stop verifying
    this.keys.clear()
    for (const [kid, pem] of next) this.keys.set(kid, pem)
    this.freshUntil = this.now() + maxAgeMs(res.headers.get('cache-control'), this.opts.ttlMs)
    if (this.keys.size > 0) this.lastLoaded = this.now()
    this.opts.onFetch?.('ok')
  }
}
