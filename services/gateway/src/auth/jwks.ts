/**
 * The issuer's signing keys, from its JWKS via get-jwks. Verification on the hot path reads a key from an
 * in-process map (no fetch, no PEM conversion). A token naming a kid this replica has not seen triggers at
 * most one JWKS fetch per JWKS_REFETCH_MIN_INTERVAL_MS; every other unknown kid in that window is refused
 * without touching the token service, so a flood of random kids cannot hammer it. A known key whose TTL
 * ran out is refreshed through get-jwks, which serves the stale copy if the token service is unreachable.
 * readiness() is the gateway's readiness check: not ready until the JWKS has been fetched with a key in it,
 * and not once a fetch has failed for longer than the keys' cache TTL (a wrong JWKS_URL never turns ready).
 */
import buildGetJwks from 'get-jwks'

export class UnknownKeyError extends Error {
  constructor (readonly kid: string, readonly fetched: boolean) {
    super(fetched ? `no key ${kid} in the issuer's JWKS` : `unknown key ${kid} (JWKS refetch rate-limited)`)
    this.name = 'UnknownKeyError'
  }
}

/** The issuer's JWKS could not be fetched and no copy of the key is held: not the token's fault (503). */
export class JwksUnavailableError extends Error {
  constructor (cause: unknown) {
    super(`the issuer's JWKS cannot be fetched: ${(cause as Error).message}`, { cause })
    this.name = 'JwksUnavailableError'
  }
}

export interface KeySourceOptions {
  jwksUrl: string
  ttlMs: number
  refetchMinIntervalMs: number
  fetchTimeoutMs: number
  onFetch?: (result: 'ok' | 'error') => void
}

interface CachedKey { pem: string, expiresAt: number }

export class KeySource {
  private readonly getJwks: ReturnType<typeof buildGetJwks>
  private readonly keys = new Map<string, CachedKey>()
  private readonly refreshing = new Map<string, Promise<string>>()
  private lastUnknownFetch = Number.NEGATIVE_INFINITY
  private readonly domain: string
  private lastJwksOk = Number.NEGATIVE_INFINITY
  private jwksCheck: Promise<string | null> | null = null

  constructor (private readonly opts: KeySourceOptions) {
    const url = new URL(opts.jwksUrl)
    this.domain = url.origin
    this.getJwks = buildGetJwks({ ttl: opts.ttlMs, max: 50, jwksPath: url.pathname + url.search })
  }

  /** The PEM public key for `kid`; throws UnknownKeyError when the issuer does not have it (or we may not ask). */
  async publicKey (kid: string): Promise<string> {
    const now = Date.now()
    const cached = this.keys.get(kid)
    if (cached && cached.expiresAt > now) return cached.pem
    const pending = this.refreshing.get(kid)
    if (pending) return pending
    if (!cached) {
      if (now - this.lastUnknownFetch < this.opts.refetchMinIntervalMs) throw new UnknownKeyError(kid, false)
      this.lastUnknownFetch = now
    }
    const p = this.fetch(kid, cached).finally(() => this.refreshing.delete(kid))
    this.refreshing.set(kid, p)
    return p
  }

  /**
   * Null when the issuer's JWKS was fetched, with at least one key, less than a quarter of the cache TTL ago
   * (or is fetched now); else the reason. A failed fetch within the TTL of the last good one still counts
   * as ready: the keys held stay valid that long. One fetch at a time, however often the probe asks.
   */
  readiness (): Promise<string | null> | null {
    if (Date.now() - this.lastJwksOk < this.opts.ttlMs / 4) return null
    this.jwksCheck ??= this.checkJwks().finally(() => { this.jwksCheck = null })
    return this.jwksCheck
  }

  private async checkJwks (): Promise<string | null> {
    try {
      const res = await fetch(this.opts.jwksUrl, { signal: AbortSignal.timeout(this.opts.fetchTimeoutMs), headers: { accept: 'application/json' } })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const body = await res.json() as { keys?: unknown }
      if (!Array.isArray(body.keys) || body.keys.length === 0) throw new Error('no keys in it')
      this.lastJwksOk = Date.now()
      return null
    } catch (err) {
      if (Date.now() - this.lastJwksOk < this.opts.ttlMs) return null
      const cause = (err as { cause?: { code?: string, message?: string } }).cause
      return `the issuer's JWKS cannot be fetched from ${this.opts.jwksUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message}`
    }
  }

  private async fetch (kid: string, cached: CachedKey | undefined): Promise<string> {
    let timer: NodeJS.Timeout | undefined
    try {
      const pem = await Promise.race([
        this.getJwks.getPublicKey({ domain: this.domain, alg: 'ES256', kid }),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('JWKS fetch timed out')), this.opts.fetchTimeoutMs) })
      ])
      this.opts.onFetch?.('ok')
      this.keys.set(kid, { pem, expiresAt: Date.now() + this.opts.ttlMs })
      return pem
    } catch (err) {
      this.opts.onFetch?.('error')
      if ((err as { code?: string }).code === 'JWK_NOT_FOUND') {
        // the issuer no longer publishes it: retired keys stop verifying
        this.keys.delete(kid)
        throw new UnknownKeyError(kid, true)
      }
      // a key we had stays usable while the issuer cannot be reached
      if (cached) return cached.pem
      throw new JwksUnavailableError(err)
    } finally {
      clearTimeout(timer)
    }
  }
}
