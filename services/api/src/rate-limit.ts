/**
 * The workspace API's rate limits, per source address and per API key, in fixed windows counted in Redis
 * (`keys.apiRateLimit`), so every replica shares one count, without a Redis round trip per request. They
 * run through `@fastify/rate-limit` (auth.ts creates both limiters with its `createRateLimit`); this file is
 * its store (`sharedLimitStore`), one SharedLimit per limiter:
 *
 * - far from the limit, a replica counts hits in memory and adds them to Redis every `syncMs` (one
 *   INCRBY per subject), reading back the total of every replica;
 * - near the limit (within `margin` of it), or when this replica's view of the total is older than
 *   `staleMs`, the hit is counted in Redis before it is answered, so the limit itself is exact.
 *
 * A subject can go past its limit only when more than `margin` of its requests land on other replicas
 * within one sync interval. The decision carries what the IETF RateLimit headers and a 429's Retry-After
 * say; auth.ts writes them.
 */
import { EventEmitter } from 'node:events'
import type { FastifyRequest } from 'fastify'
import type { CreateRateLimitOptions, FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import { keys } from '@uspl/core'
import type { RedisClient } from '@uspl/redis'

export interface RateLimitOptions {
  max: number
  windowMs: number
  /** how the refusal names what is limited ("this API key", "this address") */
  subject: string
  /** how often local counts go to Redis (default 100 ms) */
  syncMs?: number
  /** how old the last view of the shared total may be for a hit to be counted locally (default 1 s) */
  staleMs?: number
  /** the time, in epoch ms (default Date.now; tests move it by hand) */
  clock?: () => number
}

export interface LimitDecision {
  allowed: boolean
  limit: number
  /** the subject's count in this window, this hit included (as far as this replica knows) */
  current: number
  remaining: number
  /** seconds until the window ends */
  resetS: number
}

interface Count {
  window: number
  /** the shared total as of the last answer from Redis */
  known: number
  /** hits counted here and not yet in Redis */
  pending: number
  syncedAt: number
}

/**
 * Redis did not take a sync (a pipeline answers each command's error rather than throwing): the hits stay
 * pending, and the view is stale, so the next hit is counted in Redis first (and fails while it is away).
 */
function unsent (c: Count, n: number): void {
  c.pending += n
  c.syncedAt = -Infinity
}

/** Emits 'synced' after each flush has had its answer from Redis (or failed to). */
export class SharedLimit extends EventEmitter {
  private readonly counts = new Map<string, Count>()
  private readonly margin: number
  private readonly syncMs: number
  private readonly staleMs: number
  private readonly now: () => number
  private timer: NodeJS.Timeout | null = null
  private flushing: Promise<void> | null = null

  constructor (private readonly redis: RedisClient, private readonly kind: 'addr' | 'key', readonly opts: RateLimitOptions) {
    super()
    // the last tenth of the limit (at least 20 requests) is always counted in Redis first
    this.margin = Math.max(20, Math.ceil(opts.max / 10))
    this.syncMs = opts.syncMs ?? 100
    this.staleMs = opts.staleMs ?? 1000
    this.now = opts.clock ?? Date.now
  }

  /** Counts one request of `id`; synchronous unless the hit must be counted in Redis first. */
  hit (id: string): LimitDecision | Promise<LimitDecision> {
    const now = this.now()
    const window = Math.floor(now / this.opts.windowMs)
    let c = this.counts.get(id)
    if (c === undefined || c.window !== window) {
      c = { window, known: 0, pending: 0, syncedAt: -Infinity }
      if (this.counts.size >= 10_000) this.sweep()
      this.counts.set(id, c)
    }
    const resetS = Math.max(1, Math.ceil(((window + 1) * this.opts.windowMs - now) / 1000))
    const estimate = c.known + c.pending + 1
    if (estimate <= this.opts.max - this.margin && now - c.syncedAt < this.staleMs) {
      c.pending++
      this.schedule()
      return { allowed: true, limit: this.opts.max, current: estimate, remaining: this.opts.max - estimate, resetS }
    }
    return this.countNow(id, c, resetS)
  }

  /** Sends what is pending; the process calls this on close so no count is lost. */
  async flush (): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    if (this.flushing) await this.flushing
    const due = [...this.counts].filter(([, c]) => c.pending > 0)
    if (due.length === 0) return
    const pipeline = this.redis.pipeline()
    const sent = due.map(([id, c]) => {
      const n = c.pending
      c.pending = 0
      pipeline.incrby(this.key(id, c.window), n).pexpire(this.key(id, c.window), this.opts.windowMs * 2)
      return { c, window: c.window, n }
    })
    this.flushing = (async () => {
      try {
        const results = (await pipeline.exec()) ?? []
        const now = this.now()
        sent.forEach(({ c, window, n }, i) => {
          const [err, total] = results[i * 2] ?? [new Error('no reply')]
          if (c.window !== window) return
          if (err) { unsent(c, n); return }
          c.known = Math.max(c.known, Number(total))
          c.syncedAt = now
        })
      } catch {
        for (const { c, window, n } of sent) if (c.window === window) unsent(c, n)
      } finally {
        this.flushing = null
        this.sweep()
        this.emit('synced')
      }
    })()
    await this.flushing
  }

  stop (): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private async countNow (id: string, c: Count, resetS: number): Promise<LimitDecision> {
    const n = c.pending + 1
    c.pending = 0
    const key = this.key(id, c.window)
    const results = await this.redis.pipeline().incrby(key, n).pexpire(key, this.opts.windowMs * 2).exec()
    const [err, total] = results?.[0] ?? [new Error('no reply')]
    if (err) throw err
    c.known = Math.max(c.known, Number(total))
    c.syncedAt = this.now()
    const used = Number(total)
    return { allowed: used <= this.opts.max, limit: this.opts.max, current: used, remaining: Math.max(0, this.opts.max - used), resetS }
  }

  private key (id: string, window: number): string {
    return keys.apiRateLimit(this.kind, id, window)
  }

  private schedule (): void {
    if (this.timer) return
    this.timer = setTimeout(() => {
      this.timer = null
      void this.flush()
    }, this.syncMs)
    this.timer.unref()
  }

  /** Forgets subjects of windows that have ended. */
  private sweep (): void {
    const window = Math.floor(this.now() / this.opts.windowMs)
    for (const [id, c] of this.counts) if (c.window < window && c.pending === 0) this.counts.delete(id)
  }
}

/** A limiter's options for `createRateLimit`: the plugin's, and which count it is (handed to the store). */
export interface SharedLimiterOptions extends CreateRateLimitOptions {
  max: number
  timeWindow: number
  keyGenerator: (req: FastifyRequest) => string
  kind: 'addr' | 'key'
  /** how a refusal names what is limited ("this API key", "this address") */
  subject: string
}

/**
 * The `store` of `@fastify/rate-limit`: each limiter the plugin creates (its `child`) counts in its own
 * SharedLimit; `limits` holds every limiter's, so the service can flush them on close.
 */
export function sharedLimitStore (redis: RedisClient, defaults: Pick<RateLimitOptions, 'syncMs' | 'staleMs' | 'clock'> = {}): {
  Store: FastifyRateLimitStoreCtor
  limits: Set<SharedLimit>
} {
  const limits = new Set<SharedLimit>()
  class Store implements FastifyRateLimitStore {
    private readonly limit: SharedLimit | null
    constructor (params: object) {
      const p = params as Partial<SharedLimiterOptions>
      // the plugin's own (global) store: never counts, only makes children
      if (p.kind === undefined) { this.limit = null; return }
      if (typeof p.max !== 'number' || typeof p.timeWindow !== 'number') throw new Error('a shared limit needs a fixed max and timeWindow')
      this.limit = new SharedLimit(redis, p.kind, { max: p.max, windowMs: p.timeWindow, subject: p.subject ?? p.kind, ...defaults })
      limits.add(this.limit)
    }

    child (params: object): FastifyRateLimitStore {
      return new Store(params)
    }

    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void): void {
      if (this.limit === null) { callback(new Error('create the limiter with its kind (createRateLimit)')); return }
      const answer = (d: LimitDecision): void => { callback(null, { current: d.current, ttl: d.resetS * 1000 }) }
      let d: LimitDecision | Promise<LimitDecision>
      try {
        d = this.limit.hit(key)
      } catch (err) {
        callback(err as Error)
        return
      }
      if (d instanceof Promise) d.then(answer, (err: unknown) => { callback(err as Error) })
      else answer(d)
    }
  }
  return { Store, limits }
}
