/**
 * The subscriber side of revocation events, for every gateway replica. Events arrive on the channel (the
 * fast path); when the subscription drops, the feed reports not-ready at once, reconnects without waiting
 * (subscriberRetry), and on reconnection it first re-subscribes, then replays every event after the last one it saw from the Redis Stream, and only then
 * reports ready again, so no revoked session survives a network blip. Events are applied once, in order.
 */
import { EventEmitter } from 'node:events'
import type { RedisClient } from '@uspl/redis'
import { createRedis, closeRedis, retryStrategy } from '@uspl/redis'
import { keys } from './keys.ts'
import { parseMessage, parseEvent, compareStreamIds, type RevocationEvent } from './revocation.ts'

export interface RevocationFeedOptions {
  url: string
  prefix: string
  /** the service's main client, used to read the stream */
  redis: RedisClient
  onEvent: (event: RevocationEvent, source: 'live' | 'replay') => void
  log?: { info: (o: object, m: string) => void, warn: (o: object, m: string) => void, error: (o: object, m: string) => void }
}

/**
 * The subscriber reconnects at once after a drop (a killed connection, a failover), so a revocation issued
 * meanwhile lands within a few milliseconds by replay; only when that first attempt fails does it back off
 * like every other connection.
 */
export function subscriberRetry (times: number): number {
  return times === 1 ? 0 : retryStrategy(times - 1)
}

/** Emits 'lost' when the subscription drops, 'reconnecting' (delay ms) before each attempt, 'ready' once caught up. */
export class RevocationFeed extends EventEmitter {
  private sub: RedisClient | null = null
  private lastId = '0-0'
  private replaying = false
  private buffered: RevocationEvent[] = []
  private closed = false
  /** set after the first catch-up: later ones replay from lastId even when no event was ever seen */
  private caughtUpOnce = false
  /** true while subscribed and caught up */
  ready = false
  readonly channel: string

  constructor (private readonly opts: RevocationFeedOptions) {
    super()
    this.channel = keys.revocationChannel(opts.prefix)
  }

  get lastEventId (): string {
    return this.lastId
  }

  async start (): Promise<void> {
    const sub = createRedis({
      url: this.opts.url,
      prefix: this.opts.prefix,
      name: `revocation-feed:${this.opts.prefix}`,
      offlineQueue: true,
      maxRetriesPerRequest: null,
      retryStrategy: subscriberRetry
    })
    this.sub = sub
    sub.on('error', () => { /* reconnects by itself; state changes below are what matter */ })
    sub.on('reconnecting', (delayMs: number) => this.emit('reconnecting', delayMs))
    sub.on('close', () => this.lost())
    sub.on('ready', () => { void this.catchUp() })
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return
      let event: RevocationEvent
      try {
        event = parseMessage(message)
      } catch (err) {
        this.opts.log?.error({ err }, 'malformed revocation message')
        return
      }
      if (this.replaying) this.buffered.push(event)
      else this.apply(event, 'live')
    })
  }

  private lost (): void {
    if (this.ready) this.opts.log?.warn({ lastEventId: this.lastId }, 'revocation subscription lost; not ready until replayed')
    this.ready = false
    this.emit('lost')
  }

  private apply (event: RevocationEvent, source: 'live' | 'replay'): void {
    if (compareStreamIds(event.id, this.lastId) <= 0) return
    this.lastId = event.id
    try {
      this.opts.onEvent(event, source)
    } catch (err) {
      this.opts.log?.error({ err, eventId: event.id }, 'applying a revocation event failed')
    }
  }

  /** Subscribe, then replay what was missed, then drain what arrived meanwhile. Retries until it succeeds. */
  private async catchUp (): Promise<void> {
    if (this.closed || this.replaying || !this.sub) return
    this.replaying = true
    try {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          await this.sub.subscribe(this.channel)
          const first = !this.caughtUpOnce
          if (first) {
            // a fresh replica has no sessions yet: start from the newest event
            const newest = await this.opts.redis.xrevrange(keys.revocationStream(), '+', '-', 'COUNT', 1)
            if (newest.length > 0) this.lastId = newest[0][0]
          } else {
            let from = `(${this.lastId}`
            let replayed = 0
            for (;;) {
              const entries = await this.opts.redis.xrange(keys.revocationStream(), from, '+', 'COUNT', 500)
              for (const [id, fields] of entries) {
                const body = fields[fields.indexOf('event') + 1]
                this.apply(parseEvent(id, body), 'replay')
                replayed++
              }
              if (entries.length < 500) break
              from = `(${entries[entries.length - 1][0]}`
            }
            this.opts.log?.info({ replayed, lastEventId: this.lastId }, 'revocation feed caught up')
          }
          this.caughtUpOnce = true
          break
        } catch (err) {
          this.opts.log?.warn({ err, attempt }, 'revocation replay failed; retrying')
          await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2000)))
        }
      }
      const pending = this.buffered
      this.buffered = []
      pending.sort((a, b) => compareStreamIds(a.id, b.id))
      for (const event of pending) this.apply(event, 'live')
      if (!this.closed && this.sub.status === 'ready') {
        this.ready = true
        this.emit('ready')
      }
    } finally {
      this.replaying = false
    }
  }

  /** Resolves once the feed is subscribed and caught up. */
  async waitReady (timeoutMs = 10000): Promise<void> {
    if (this.ready) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { this.off('ready', done); reject(new Error('revocation feed not ready in time')) }, timeoutMs)
      const done = (): void => { clearTimeout(timer); resolve() }
      this.once('ready', done)
    })
  }

  async close (): Promise<void> {
    this.closed = true
    this.ready = false
    if (this.sub) await closeRedis(this.sub)
  }
}
