/**
 * A process cache of Redis records that Redis itself keeps true: server-assisted client-side caching
 * (CLIENT TRACKING, redirect mode). Records are read through a `reader` connection with tracking on; Redis
 * remembers which keys it read, and when any client changes one of them (a revoke, a disable, an expiry,
 * a role change, even a hand-written HSET), it queues the key's name for our `sub` connection on
 * `__redis__:invalidate` before the writer can act on its answer.
 *
 * That alone would leave a race (the request may be read before the invalidation), so a request first
 * waits for a fence: a PING on `sub`. Redis answers it on the same connection, after every invalidation it
 * queued there earlier, so once the PONG is in, every change acknowledged to its writer before the request
 * arrived has been applied here: the next request after a revoke is refused on every replica, exactly as
 * with a read per request. One PING is in flight at a time; the requests that arrive meanwhile share the next.
 *
 * Fails closed: the cache answers only while both connections are up, tracking is on with `sub` as its
 * target, and `sub` answers a PING every second. Any drop clears every entry and sends reads straight to
 * Redis (uncached, as correct as before) until tracking is set up again. A read that an invalidation
 * overtook (the key changed between our read and its answer) is used once and not kept. Misses (a key that
 * does not exist) are never kept, so guessed keys cannot fill the cache.
 *
 * Redis Cluster is not supported by this cache (the redirect target must be on the node that holds the
 * keys); there every read goes to Redis.
 */
import { EventEmitter } from 'node:events'
import { Cluster, createRedis, closeRedis, type RedisClient } from '@uspl/redis'
import type { Redis } from 'ioredis'

const INVALIDATE = '__redis__:invalidate'

/** How a kind of record is read (through whichever connection is given) and turned into its value. */
export interface RecordKind<T> {
  fetch: (redis: RedisClient, key: string) => Promise<T>
  /** false for a value that must not be kept (a missing record) */
  keep: (value: T) => boolean
}

export interface LiveCacheOptions {
  url: string
  prefix: string
  /** the service's main connection: reads go here while the cache is not live */
  redis: RedisClient
  maxEntries?: number
  pingMs?: number
  log?: { info: (o: object, m: string) => void, warn: (o: object, m: string) => void }
}

interface Pending { promise: Promise<unknown>, overtaken: boolean }

/** Emits 'live' when the cache starts answering, 'lost' (reason) when it stops, 'invalidated' (full keys). */
export class LiveCache extends EventEmitter {
  private readonly entries = new Map<string, unknown>()
  private readonly pending = new Map<string, Pending>()
  private readonly maxEntries: number
  private reader: Redis | null = null
  private sub: Redis | null = null
  private pinger: NodeJS.Timeout | null = null
  /** bumped on every loss, so a read begun before it is never kept after it */
  private generation = 0
  private syncing: Promise<void> | null = null
  /** the fence that requests arriving now share; null once its PING is sent */
  private nextFence: Promise<boolean> | null = null
  /** the PING sent and not yet answered (at most one) */
  private inflight: Promise<boolean> | null = null
  private closed = false
  live = false

  constructor (private readonly opts: LiveCacheOptions) {
    super()
    this.maxEntries = opts.maxEntries ?? 10_000
  }

  get size (): number {
    return this.entries.size
  }

  async start (): Promise<void> {
    if (this.opts.redis instanceof Cluster) {
      this.opts.log?.info({}, 'Redis Cluster: the API reads keys and roles from Redis on every request (no tracking cache)')
      return
    }
    const connect = (name: string, noPrefix: boolean): Redis => createRedis({
      url: this.opts.url, prefix: this.opts.prefix, name: `api-cache-${name}:${this.opts.prefix}`, offlineQueue: false, noPrefix
    }) as Redis
    this.sub = connect('sub', true)
    // sync() subscribes after it has the connection's new id, so ioredis must not resubscribe on its own
    this.sub.options.autoResubscribe = false
    this.reader = connect('reader', false)
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer[] | null) => {
      if (channel.toString() === INVALIDATE) this.invalidate(message)
    })
    for (const conn of [this.sub, this.reader]) {
      // a failed connection shows as 'close' (the cache goes off); the error itself is the main connection's to report
      conn.on('error', () => {})
      conn.on('close', () => this.lose('connection closed'))
      conn.on('ready', () => { void this.sync() })
    }
    const ping = this.opts.pingMs ?? 1000
    this.pinger = setInterval(() => { void this.ping(ping) }, ping)
    this.pinger.unref()
    await this.sync()
  }

  /**
   * Resolves true once every invalidation Redis queued for this process before the call has been applied
   * (or false at once when the cache is not live: then `get` reads from Redis). Call before `get`.
   *
   * One PING is in flight at a time, as in a group commit: the requests that arrive while it is out share
   * the next one, sent when it is answered (and after the turn of the event loop in which it was asked
   * for). Every fence's PING is sent after every request that waits on it arrived, so the guarantee holds
   * for each of them, and under load a PING is shared by everything that arrived during one round trip.
   */
  fence (): Promise<boolean> | false {
    if (!this.live || this.sub === null) return false
    if (this.nextFence !== null) return this.nextFence
    const sub = this.sub
    const timeoutMs = this.opts.pingMs ?? 1000
    const fence = new Promise<boolean>((resolve) => {
      const send = (): void => {
        // from here on, a new request needs a PING sent after it arrived
        if (this.nextFence === fence) this.nextFence = null
        const ping = this.pong(sub, timeoutMs).catch(() => false)
        this.inflight = ping
        void ping.then((ok) => {
          if (this.inflight === ping) this.inflight = null
          resolve(ok)
        })
      }
      const after = this.inflight
      if (after === null) setImmediate(send)
      else void after.then(() => { setImmediate(send) })
    })
    this.nextFence = fence
    return fence
  }

  /**
   * The value of `key`: from the cache when live and known (synchronously), otherwise read (through the
   * tracked reader when live, so the answer can be kept; through the main connection when not).
   */
  get<T> (kind: RecordKind<T>, key: string): T | Promise<T> {
    if (!this.live || this.reader === null) return kind.fetch(this.opts.redis, key)
    const full = this.opts.prefix + key
    if (this.entries.has(full)) return this.entries.get(full) as T
    // a read that an invalidation overtook may answer from before that write: join only a clean one
    const inflight = this.pending.get(full)
    if (inflight && !inflight.overtaken) return inflight.promise as Promise<T>
    const generation = this.generation
    const pending: Pending = { promise: Promise.resolve(), overtaken: false }
    pending.promise = kind.fetch(this.reader, key).then((value) => {
      if (this.pending.get(full) === pending) this.pending.delete(full)
      if (!pending.overtaken && this.live && generation === this.generation && kind.keep(value)) this.remember(full, value)
      return value
    }, (err: unknown) => {
      if (this.pending.get(full) === pending) this.pending.delete(full)
      throw err
    })
    this.pending.set(full, pending)
    return pending.promise as Promise<T>
  }

  async close (): Promise<void> {
    this.closed = true
    this.lose('closing')
    if (this.pinger) clearInterval(this.pinger)
    await Promise.all([this.sub, this.reader].map(async (c) => { if (c) await closeRedis(c) }))
  }

  private remember (full: string, value: unknown): void {
    if (this.entries.size >= this.maxEntries) {
      // the oldest entry goes first (a Map keeps insertion order)
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
    this.entries.set(full, value)
  }

  /** Redis names changed keys; null means everything (FLUSHDB, FLUSHALL, or tracking table overflow). */
  private invalidate (message: Buffer[] | null): void {
    const names = message === null ? null : message.map((b) => b.toString())
    if (names === null) {
      this.entries.clear()
      for (const p of this.pending.values()) p.overtaken = true
    } else {
      for (const name of names) {
        this.entries.delete(name)
        const p = this.pending.get(name)
        if (p) p.overtaken = true
      }
    }
    this.emit('invalidated', names)
  }

  private lose (reason: string): void {
    this.generation++
    this.entries.clear()
    for (const p of this.pending.values()) p.overtaken = true
    if (!this.live) return
    this.live = false
    if (!this.closed) this.opts.log?.warn({ reason }, 'API key cache off until Redis tracking is set up again; reading from Redis meanwhile')
    this.emit('lost', reason)
  }

  /** A PING on the invalidation connection every second, so a deaf connection is noticed while idle too. */
  private async ping (timeoutMs: number): Promise<void> {
    if (this.live && this.sub !== null) await this.pong(this.sub, timeoutMs)
  }

  /** PING on `sub`; true on time. Late or failed: the cache goes off and the connection is replaced. */
  private async pong (sub: Redis, timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), timeoutMs) })
    try {
      if (await Promise.race([sub.ping().then(() => 'ok' as const), late]) === 'ok') return this.live
      this.lose('the invalidation connection did not answer a ping')
    } catch {
      this.lose('the invalidation connection failed a ping')
    } finally {
      clearTimeout(timer)
    }
    if (!this.closed) sub.disconnect(true)
    return false
  }

  /** Sets tracking up when both connections are ready: sub's id, its subscription, then the reader's tracking. */
  private async sync (): Promise<void> {
    if (this.syncing) return this.syncing
    const generation = this.generation
    this.syncing = (async () => {
      const { sub, reader } = this
      if (this.closed || this.live || sub === null || reader === null || sub.status !== 'ready' || reader.status !== 'ready') return
      try {
        if (sub.condition?.subscriber) await sub.unsubscribe(INVALIDATE)
        const id = await sub.client('ID')
        await sub.subscribe(INVALIDATE)
        await reader.client('TRACKING', 'OFF')
        await reader.client('TRACKING', 'ON', 'REDIRECT', String(id))
        if (generation !== this.generation || this.closed) return
        this.live = true
        this.opts.log?.info({}, 'API key cache live (Redis client tracking)')
        this.emit('live')
      } catch (err) {
        this.opts.log?.warn({ err }, 'could not set up Redis client tracking; reading from Redis meanwhile')
      }
    })().finally(() => {
      this.syncing = null
      // a connection dropped and came back while this sync ran: its 'ready' joined this (abandoned) sync,
      // so set up again, or the cache would stay off with both connections up
      if (generation !== this.generation) void this.sync()
    })
    return this.syncing
  }
}
