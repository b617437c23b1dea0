/**
 * The keys of a trusted enterprise issuer: its inline JWK set, or its `jwks_uri` fetched under an explicit
 * allow-list. SSRF stance: a URL is fetched only when its origin (scheme, host and port, exactly) is listed
 * in ENTERPRISE_JWKS_ORIGINS, which the operator controls; redirects are refused, the answer is bounded in
 * time and size, and it must be a public JWK set. Nothing else is ever fetched, so no private address can
 * be reached unless an operator listed it. Fetched sets are cached (ENTERPRISE_JWKS_CACHE_S); a `kid` the
 * cache does not know refetches, at most once every REFETCH_MIN_MS per URL (key rotation at the IdP).
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
  private readonly origins: Set<string>
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
    const url = new URL(uri)
    if (!this.origins.has(url.origin)) throw new JwksUnavailableError(`the origin of jwks_uri ${url.origin} is not in ENTERPRISE_JWKS_ORIGINS`)
    let res: Response
    try {
      res = await (this.opts.fetch ?? fetch)(url, { redirect: 'error', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 3000) })
    } catch (err) {
      throw new JwksUnavailableError(`jwks_uri could not be fetched: ${(err as Error).message}`)
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {})
      throw new JwksUnavailableError(`jwks_uri answered ${res.status}`)
    }
    const length = Number(res.headers.get('content-length') ?? '0')
    if (length > MAX_BYTES) {
      await res.body?.cancel().catch(() => {})
      throw new JwksUnavailableError('jwks_uri answered a document too large to be a JWK set')
    }
    const text = await res.text()
    if (text.length > MAX_BYTES) throw new JwksUnavailableError('jwks_uri answered a document too large to be a JWK set')
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

