/**
 * Resolves an https client_id to its validated metadata, through a cache in Redis shared by every
 * replica. Steps for one URL:
 * 1. the cached document, if its entry has not expired;
 * 2. otherwise one fetch per URL at a time in this process (concurrent callers share the promise);
 * 3. the per-host budget: at most `hostFetchesPerWindow` outbound fetches to one host per window, counted
 *    in Redis (one atomic script), so a flood of invented URLs on one host cannot make us hammer it;
 * 4. fetch (SafeFetcher) and validate (document.ts), then cache for what the answer's cache headers allow,
 *    clamped to [cacheMinS, cacheMaxS]; a second, stale copy is kept for cacheMaxS. When the host's budget
 *    is spent (someone is flooding us with invented URLs on that host), a document whose entry just
 *    expired is served from the stale copy, so the flood cannot lock the host's real clients out. Any
 *    other failure (the document changed, vanished or broke) is not papered over.
 * The same path fetches a private_key_jwt client's `jwks_uri`. `refresh` drops a cached entry and fetches
 * again at once (the operator command).
 */
import { createHash } from 'node:crypto'
import { runScript, script, type RedisClient } from '@uspl/redis'
import { keys, type ClientMetadata } from '@uspl/core'
import { CimdError } from './errors.ts'
import { validateDocument, publicJwks } from './document.ts'
import { documentUrlProblem, type SafeFetcher } from './fetch.ts'

export interface ResolverLimits {
  cacheMinS: number
  cacheMaxS: number
  hostFetchesPerWindow: number
  hostWindowS: number
}

export interface ResolvedDocument {
  metadata: ClientMetadata
  /** true when this call fetched the document (it was not cached) */
  fetched: boolean
}

// KEYS: the host's counter. ARGV: window seconds, limit. 1: the fetch may go; 0: over budget.
const HOST_BUDGET = script('usplCimdHostBudget', 1, `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then return 0 end
return 1
`)

const urlHash = (url: string): string => createHash('sha256').update(url).digest('base64url')

export class CimdResolver {
  private readonly inflight = new Map<string, Promise<{ value: unknown, fetched: boolean }>>()

  constructor (private readonly redis: RedisClient, private readonly fetcher: SafeFetcher, private readonly limits: ResolverLimits) {}

  /** The client metadata the document at `url` describes. Throws CimdError when it cannot be used. */
  async resolve (url: string): Promise<ResolvedDocument> {
    const { value, fetched } = await this.cached(`doc:${url}`, url, (body) => validateDocument(url, body))
    return { metadata: value as ClientMetadata, fetched }
  }

  /** The public keys at a private_key_jwt client's `jwks_uri`. */
  async jwks (jwksUri: string): Promise<{ keys: Array<Record<string, unknown>> }> {
    const { value } = await this.cached(`jwks:${jwksUri}`, jwksUri, (body) => publicJwks(body))
    return value as { keys: Array<Record<string, unknown>> }
  }

  /** Drops the cached document of `url` and fetches it again now. */
  async refresh (url: string): Promise<ResolvedDocument> {
    const h = urlHash(`doc:${url}`)
    await this.redis.del(keys.cimdDocument(h), keys.cimdStaleDocument(h))
    return this.resolve(url)
  }

  private async cached (cacheId: string, url: string, validate: (body: Record<string, unknown>) => unknown): Promise<{ value: unknown, fetched: boolean }> {
    const h = urlHash(cacheId)
    const hit = await this.redis.get(keys.cimdDocument(h))
    if (hit !== null) return { value: JSON.parse(hit) as unknown, fetched: false }
    const running = this.inflight.get(cacheId)
    if (running) return running
    const work = this.fetchAndStore(h, url, validate).finally(() => this.inflight.delete(cacheId))
    this.inflight.set(cacheId, work)
    return work
  }

  private async fetchAndStore (h: string, url: string, validate: (body: Record<string, unknown>) => unknown): Promise<{ value: unknown, fetched: boolean }> {
    const problem = documentUrlProblem(url)
    if (problem) throw new CimdError('invalid_url', `the URL ${problem}`)
    const host = new URL(url).host.toLowerCase()
    const allowed = await runScript(this.redis, HOST_BUDGET, keys.cimdHostFetches(host), this.limits.hostWindowS, this.limits.hostFetchesPerWindow)
    if (allowed !== 1) {
      const stale = await this.redis.get(keys.cimdStaleDocument(h))
      if (stale !== null) return { value: JSON.parse(stale) as unknown, fetched: false }
      throw new CimdError('rate_limited', `too many metadata fetches to ${host} right now; try again in a minute`)
    }
    const { body, maxAgeS } = await this.fetcher.fetchJson(url)
    const value = validate(body)
    const ttl = Math.min(this.limits.cacheMaxS, Math.max(this.limits.cacheMinS, maxAgeS ?? 0))
    const json = JSON.stringify(value)
    await this.redis.multi().set(keys.cimdDocument(h), json, 'EX', ttl).set(keys.cimdStaleDocument(h), json, 'EX', this.limits.cacheMaxS).exec()
    return { value, fetched: true }
  }
}
