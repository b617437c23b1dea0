/**
 * The keys of a trusted enterprise issuer: its inline JWK set, or its `jwks_uri` fetched under an explicit
 * allow-list. SSRF stance: a URL is fetched only when its origin (scheme, host and port, exactly) is listed
 * in ENTERPRISE_JWKS_ORIGINS, which the operator controls; redirects are refused, the answer is bounded in
 * time and size, and it must be a public JWK set. Nothing else is ever fetched, so no private address can
 * be reached unless an operator listed it. Fetched sets are cached (ENTERPRISE_JWKS_CACHE_S); a `kid` the
 * cache does not know refetches, at most once every REFETCH_MIN_MS per URL (key rotation at the IdP).
 * `fetchAllowListed` is that one bounded fetch, also used by the Shared Signals poller for poll_url.
 */
import { HttpError } from '@uspl/errors'
import { assertPublicJwks, JoseError, verifyJws, type DecodedJws, type EnterpriseIssuer, type Jwk, type Jwks } from '@uspl/core'

export const REFETCH_MIN_MS = 10000
const MAX_BYTES = 64 * 1024

/** An enterprise issuer's keys could not be fetched: ours to retry, not the caller's fault (503). */
export class JwksUnavailableError extends HttpError {
  constructor (message: string) {
    super(503, 'temporarily_unavailable', message, { retryAfterS: 5 })
    this.name = 'JwksUnavailableError'
  }
}

export function parseOrigins (value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean).map((o) => {
    const u = new URL(o)
    if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.origin !== o.replace(/\/$/, '')) throw new Error(`ENTERPRISE_JWKS_ORIGINS: ${o} is not an origin (scheme://host[:port])`)
    return u.origin
  })
}

export class EnterpriseKeys {
  /** the allow-list, for the other fetches bound by it (the poller's) */
  readonly origins: ReadonlySet<string>
  private readonly cache = new Map<string, { at: number, jwks: Jwks }>()
  private readonly inflight = new Map<string, Promise<Jwks>>()

  constructor (private readonly opts: { origins: string, cacheS: number, fetch?: typeof fetch, timeoutMs?: number }) {
    this.origins = new Set(parseOrigins(opts.origins))
  }

  /** Verifies a JWS with the issuer's keys; throws JoseError or JwksUnavailableError. */
  async verify (issuer: EnterpriseIssuer, jws: DecodedJws, opts: { typ?: string[] } = {}): Promise<Jwk> {
    if (issuer.jwks) return verifyJws(jws, issuer.jwks, opts)
    const uri = issuer.jwksUri as string
    try {
      return verifyJws(jws, await this.fetched(uri, false), opts)
    } catch (err) {
      if (!(err instanceof JoseError && err.code === 'unknown_key')) throw err
      const cached = this.cache.get(uri)
      if (cached && Date.now() - cached.at < REFETCH_MIN_MS) throw err
      return verifyJws(jws, await this.fetched(uri, true), opts)
    }
  }

  private async fetched (uri: string, refresh: boolean): Promise<Jwks> {
    const cached = this.cache.get(uri)
    if (!refresh && cached && Date.now() - cached.at < this.opts.cacheS * 1000) return cached.jwks
    let pending = this.inflight.get(uri)
    if (!pending) {
      pending = this.load(uri).finally(() => this.inflight.delete(uri))
      this.inflight.set(uri, pending)
    }
    return pending
  }

  private async load (uri: string): Promise<Jwks> {
    let text: string
    try {
      text = await fetchAllowListed(this.origins, 'jwks_uri', new URL(uri), { method: 'GET', headers: { accept: 'application/json' } }, { fetch: this.opts.fetch, timeoutMs: this.opts.timeoutMs ?? 3000, maxBytes: MAX_BYTES, tooLarge: 'a document too large to be a JWK set' })
    } catch (err) {
      if (err instanceof OutboundFetchError) throw new JwksUnavailableError(err.message)
      throw err
    }
    let jwks: Jwks
    try {
      jwks = assertPublicJwks(JSON.parse(text))
    } catch (err) {
      throw new JwksUnavailableError(`jwks_uri did not answer a public JWK set: ${(err as Error).message}`)
    }
    this.cache.set(uri, { at: Date.now(), jwks })
    return jwks
  }
}

/** An allow-listed fetch failed: not allow-listed, unreachable, not 2xx, or too large. The message names `what`, never a header. */
export class OutboundFetchError extends Error {
  constructor (message: string, readonly status: number | null = null) {
    super(message)
    this.name = 'OutboundFetchError'
  }
}

/**
 * The one outbound fetch to an enterprise IdP (its jwks_uri, its RFC 8936 poll endpoint): only when the
 * URL's origin is in `origins` (ENTERPRISE_JWKS_ORIGINS), redirects refused, bounded in time (the whole
 * exchange) and size; answers the body of a 2xx. `what` names the URL in messages (`jwks_uri`, `poll_url`).
 */
export async function fetchAllowListed (origins: ReadonlySet<string>, what: string, url: URL, init: { method: string, headers: Record<string, string>, body?: string }, opts: { fetch?: typeof fetch, timeoutMs: number, maxBytes: number, tooLarge?: string }): Promise<string> {
  if (!origins.has(url.origin)) throw new OutboundFetchError(`the origin of ${what} ${url.origin} is not in ENTERPRISE_JWKS_ORIGINS`)
  const tooLarge = `${what} answered ${opts.tooLarge ?? `more than ${opts.maxBytes} bytes`}`
  const signal = AbortSignal.timeout(opts.timeoutMs)
  let res: Response
  try {
    res = await (opts.fetch ?? fetch)(url, { ...init, redirect: 'error', signal })
  } catch (err) {
    throw new OutboundFetchError(`${what} could not be fetched: ${(err as Error).message}`)
  }
  if (res.status < 200 || res.status > 299) {
    await res.body?.cancel().catch(() => {})
    throw new OutboundFetchError(`${what} answered ${res.status}`, res.status)
  }
  const length = Number(res.headers.get('content-length') ?? '0')
  if (length > opts.maxBytes) {
    await res.body?.cancel().catch(() => {})
    throw new OutboundFetchError(tooLarge, res.status)
  }
  let text: string
  try {
    text = await res.text()
  } catch (err) {
    throw new OutboundFetchError(`${what} could not be read: ${(err as Error).message}`, res.status)
  }
  if (text.length > opts.maxBytes) throw new OutboundFetchError(tooLarge, res.status)
  return text
}
