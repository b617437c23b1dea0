/**
 * The safe fetcher for Client ID Metadata Documents (and the JWK sets they point to). Every URL it is given
 * is treated as hostile. The steps of one fetch:
 * 1. the URL: https, a host, a path, no credentials, no fragment, no dot segments;
 * 2. the host: allowed to be private only when listed in CIMD_ALLOW_PRIVATE_HOSTS (`host` or `host:port`);
 *    an IP literal is checked at once;
 * 3. a first resolution, checked, so a name that resolves to a private address is refused before any
 *    socket opens;
 * 4. the connection: the socket's own `lookup` resolves again and checks every address it would use, and
 *    the address the socket actually connected to is checked once more before TLS starts, so a name that
 *    changes its answer between 3 and 4 (DNS rebinding) cannot reach a private address;
 * 5. the answer: 200 only (a 3xx is refused, never followed), JSON, at most `maxBytes` (announced or read:
 *    reading stops and the socket is destroyed past it), the whole fetch within `timeoutMs`;
 * 6. the cache lifetime the answer's Cache-Control / Expires allow, for the caller to clamp.
 * TLS is verified against Node's CA store, which includes NODE_EXTRA_CA_CERTS (a private CA); tests pass
 * their own CA as `ca`. No cookies, no credentials, no connection reuse.
 */
import { request as httpsRequest } from 'node:https'
import { lookup as dnsLookup } from 'node:dns/promises'
import { isIP, type Socket } from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { LookupFunction } from 'node:net'
import { addressProblem } from './addresses.ts'
import { CimdError } from './errors.ts'

export interface ResolvedAddress { address: string, family: number }
/** Resolves a host name to every address it has (dns.lookup with `all`, by default). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>

export interface FetcherOptions {
  /** `host` or `host:port` entries whose addresses may be private (tests, private deployments) */
  allowPrivateHosts?: readonly string[]
  maxBytes?: number
  timeoutMs?: number
  /** extra trusted CAs (PEM) replacing Node's store; production uses NODE_EXTRA_CA_CERTS instead */
  ca?: string | string[]
  resolver?: Resolver
  userAgent?: string
}

export interface FetchedJson {
  body: Record<string, unknown>
  /** seconds the answer says it may be cached (0: no-store / no-cache / none given) */
  maxAgeS: number | null
}

const defaultResolver: Resolver = async (hostname) => dnsLookup(hostname, { all: true, verbatim: true })

/** Why `raw` cannot be a document URL, or null. */
export function documentUrlProblem (raw: string): string | null {
  if (raw.length > 512) return 'is longer than 512 characters'
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'is not a valid URL'
  }
  if (url.protocol !== 'https:') return 'is not an https URL'
  if (!url.hostname) return 'has no host'
  if (url.username || url.password) return 'contains credentials'
  if (raw.includes('#')) return 'contains a fragment'
  if (url.pathname === '/' || url.pathname === '') return 'has no path (a client_id URL names a document, not a site)'
  // the URL parser resolves dot segments; a client_id must be written without them
  const rawPath = raw.replace(/^https:\/\/[^/?]*/i, '').split('?')[0]
  if (/(^|\/)(\.|%2e){1,2}(\/|$)/i.test(rawPath)) return 'contains dot segments'
  return null
}

/** Cache-Control max-age (or Expires − Date), 0 for no-store / no-cache / private, null when absent. */
export function cacheLifetime (headers: IncomingMessage['headers']): number | null {
  const cc = String(headers['cache-control'] ?? '').toLowerCase()
  if (/(^|[,\s])(no-store|no-cache|private)([,\s=]|$)/.test(cc)) return 0
  const maxAge = /(?:^|[,\s])max-age\s*=\s*"?(\d+)/.exec(cc)
  if (maxAge) return Number(maxAge[1])
  const expires = typeof headers.expires === 'string' ? Date.parse(headers.expires) : NaN
  if (!Number.isNaN(expires)) {
    const date = typeof headers.date === 'string' ? Date.parse(headers.date) : Date.now()
    return Math.max(0, Math.floor((expires - (Number.isNaN(date) ? Date.now() : date)) / 1000))
  }
  return null
}

export class SafeFetcher {
  private readonly allow: Set<string>
  private readonly maxBytes: number
  private readonly timeoutMs: number
  private readonly resolver: Resolver

  constructor (private readonly opts: FetcherOptions = {}) {
    this.allow = new Set((opts.allowPrivateHosts ?? []).map((h) => h.trim().toLowerCase()).filter(Boolean))
    this.maxBytes = opts.maxBytes ?? 5 * 1024
    this.timeoutMs = opts.timeoutMs ?? 5000
    this.resolver = opts.resolver ?? defaultResolver
  }

  /** Whether the URL's host (or host:port) is allowed to be private. */
  privateAllowed (url: URL): boolean {
    const host = url.hostname.toLowerCase()
    return this.allow.has(host) || this.allow.has(`${host}:${url.port || '443'}`)
  }

  private checkAddresses (hostname: string, addresses: ResolvedAddress[], allowPrivate: boolean): void {
    if (addresses.length === 0) throw new CimdError('dns', `${hostname} has no address`)
    for (const a of addresses) {
      const problem = addressProblem(a.address, { allowPrivate })
      if (problem) throw new CimdError('host_not_allowed', `${hostname} resolves to an address documents may not be fetched from (${problem})`)
    }
  }

  private async resolve (hostname: string): Promise<ResolvedAddress[]> {
    try {
      return await this.resolver(hostname)
    } catch (err) {
      throw new CimdError('dns', `${hostname} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'lookup failed'})`)
    }
  }

  /** Fetches `raw` as a JSON object under every rule above. */
  async fetchJson (raw: string): Promise<FetchedJson> {
    const problem = documentUrlProblem(raw)
    if (problem) throw new CimdError('invalid_url', `the client_id URL ${problem}`)
    const url = new URL(raw)
    const allowPrivate = this.privateAllowed(url)
    const hostname = url.hostname.replace(/^\[|\]$/g, '')
    const startedAt = Date.now()
    const deadline = AbortSignal.timeout(this.timeoutMs)
    const literal = isIP(hostname) !== 0
    if (literal) this.checkAddresses(hostname, [{ address: hostname, family: isIP(hostname) }], allowPrivate)
    else this.checkAddresses(hostname, await this.resolve(hostname), allowPrivate)
    if (deadline.aborted) throw new CimdError('timeout', `fetching the document took longer than ${this.timeoutMs} ms`)

    const lookup: LookupFunction = (name, options, callback) => {
      this.resolve(name).then((addresses) => {
        this.checkAddresses(name, addresses, allowPrivate)
        const family = typeof options.family === 'number' && options.family !== 0 ? options.family : 0
        const usable = family ? addresses.filter((a) => a.family === family) : addresses
        if (usable.length === 0) throw new CimdError('dns', `${name} has no IPv${family} address`)
        if (options.all) (callback as unknown as (e: null, a: ResolvedAddress[]) => void)(null, usable)
        else callback(null, usable[0].address, usable[0].family)
      }).catch((err: Error) => callback(err as NodeJS.ErrnoException, '', 0))
    }

    return await new Promise<FetchedJson>((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => fail(new CimdError('timeout', `fetching the document took longer than ${this.timeoutMs} ms`)), Math.max(1, this.timeoutMs - (Date.now() - startedAt)))
      const fail = (err: Error): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        req.destroy()
        reject(err instanceof CimdError ? err : new CimdError('connection', `the document could not be fetched (${(err as NodeJS.ErrnoException).code ?? err.message})`))
      }
      const req = httpsRequest({
        host: hostname,
        port: url.port || 443,
        path: url.pathname + url.search,
        method: 'GET',
        servername: literal ? undefined : hostname,
        headers: { accept: 'application/json', 'user-agent': this.opts.userAgent ?? 'uspl-auth client-metadata-fetcher' },
        agent: false,
        lookup,
        ca: this.opts.ca
      })
      req.on('socket', (socket: Socket) => {
        // the address actually connected to, before a byte of TLS is sent
        socket.once('connect', () => {
          const remote = socket.remoteAddress ?? ''
          const p = addressProblem(remote, { allowPrivate })
          if (p) fail(new CimdError('host_not_allowed', `the connection for ${hostname} reached an address documents may not be fetched from (${p})`))
        })
      })
      req.on('error', fail)
      req.on('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 0
        if (status >= 300 && status < 400) return fail(new CimdError('redirect', `the document URL answered ${status} (a redirect); redirects are not followed, so the client_id must be the document's own URL`))
        if (status !== 200) return fail(new CimdError('http_status', `the document URL answered ${status}, not 200`))
        const type = String(res.headers['content-type'] ?? '').toLowerCase()
        if (!/^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/.test(type)) return fail(new CimdError('not_json', 'the document is not served as application/json'))
        const announced = Number(res.headers['content-length'] ?? 0)
        if (announced > this.maxBytes) return fail(new CimdError('too_large', `the document is larger than ${this.maxBytes} bytes`))
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > this.maxBytes) return fail(new CimdError('too_large', `the document is larger than ${this.maxBytes} bytes`))
          chunks.push(chunk)
        })
        res.on('error', fail)
        res.on('end', () => {
          if (settled) return
          let body: unknown
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
          } catch {
            return fail(new CimdError('not_json', 'the document is not valid JSON'))
          }
          if (typeof body !== 'object' || body === null || Array.isArray(body)) return fail(new CimdError('not_json', 'the document is not a JSON object'))
          settled = true
          clearTimeout(timer)
          resolve({ body: body as Record<string, unknown>, maxAgeS: cacheLifetime(res.headers) })
        })
      })
      req.end()
    })
  }
}
