/**
 * This replica's heartbeat in Redis, and the sweep of dead replicas' session index entries: when each step
 * runs, and what the replica does with its outcome. The Redis side of each step is one script of the
 * session index (shared/core/src/session-index.ts).
 *
 * Steps:
 * 1. start (before the replica serves): claim REPLICA_ID. Entries a previous process with the same id left
 *    (it was killed, so its sessions died with it) are deleted, then the heartbeat key is set with a TTL of
 *    REPLICA_HEARTBEAT_TTL_MS and a boot id of this process.
 * 2. every REPLICA_HEARTBEAT_INTERVAL_MS, one script: refresh the heartbeat, and for every replica listed in
 *    keys.replicas() whose heartbeat is gone, delete a batch of the entries it held (from its own set of
 *    session ids, never by a scan). The cap check and the operator views already ignore such entries the
 *    moment the heartbeat expires (the index's liveness rule); the sweep frees their memory.
 *    If the heartbeat had lapsed (Redis away, or the process stalled, for longer than the TTL), others may
 *    have deleted this replica's entries: the sessions it still holds are written back to the index.
 *    If another process's boot id is there, two replicas share REPLICA_ID: that is logged as an error.
 * 3. stop (graceful shutdown, after the sessions closed): delete what is left and the heartbeat.
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import type { RedisClient } from '@uspl/redis'
import type { SessionIndex, SessionRecord } from '@uspl/core'

export interface HeartbeatOptions {
  redis: RedisClient
  replica: string
  intervalMs: number
  ttlMs: number
  /** how long the replica's own set lives without a beat (the session idle timeout) */
  idleTtlS: number
  index: SessionIndex
  /** this replica's REPLICA_URL, as the index records it */
  url: string
  /** the sessions this replica holds: written back to the index when the heartbeat had lapsed */
  held: () => Iterable<Omit<SessionRecord, 'replica' | 'url'>>
  log: FastifyBaseLogger
}

/** Emits 'beat' after each refresh with { state, swept }; 'lapsed' when the heartbeat had expired. */
export class ReplicaHeartbeat extends EventEmitter {
  readonly bootId = randomUUID()
  private timer: NodeJS.Timeout | null = null
  private lastBeat = 0
  private claimed = false
  /** the beat in flight, which stop waits for so none lands after the release */
  private pending: Promise<void> = Promise.resolve()
  private stopped = false
  private failing = false

  constructor (private readonly opts: HeartbeatOptions) {
    super()
  }

  /** True while the last refresh is younger than the TTL: this replica's entries count. */
  get alive (): boolean {
    return Date.now() - this.lastBeat < this.opts.ttlMs
  }

  /**
   * Claims REPLICA_ID, then beats. Until Redis answers the replica is not ready; each time the client
   * (re)connects it beats at once, so a replica is ready again as soon as Redis is back.
   */
  async start (): Promise<void> {
    this.opts.redis.on('ready', this.onRedisReady)
    if (this.opts.redis.status === 'ready') this.onRedisReady()
    await this.pending
  }

  private readonly onRedisReady = (): void => {
    if (this.stopped) return
    this.pending = this.pending.then(async () => this.beat())
  }

  private schedule (delayMs: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => { this.pending = this.pending.then(async () => this.beat()) }, delayMs)
    this.timer.unref()
  }

  private async claim (): Promise<void> {
    const dropped = await this.opts.index.claimReplica(this.bootId, this.opts.ttlMs, this.opts.idleTtlS)
    this.claimed = true
    this.lastBeat = Date.now()
    if (dropped > 0) this.opts.log.info({ replica: this.opts.replica, dropped }, 'deleted the session index entries a previous process of this replica left')
  }

  private async beat (): Promise<void> {
    if (this.stopped) return
    if (this.timer) clearTimeout(this.timer)
    let more = false
    try {
      if (!this.claimed) {
        await this.claim()
      } else {
        const { state, swept, more: rest } = await this.opts.index.beatReplica(this.bootId, this.opts.ttlMs, this.opts.idleTtlS)
        this.lastBeat = Date.now()
        more = rest
        if (swept > 0) this.opts.log.info({ swept }, 'deleted session index entries of replicas whose heartbeat lapsed')
        if (state === 2) this.opts.log.error({ replica: this.opts.replica }, 'another process refreshes this REPLICA_ID: every replica needs its own')
        if (state === 0) await this.reindex()
        this.emit('beat', { state, swept })
      }
      this.failing = false
    } catch (err) {
      // once per outage, not at every interval
      if (!this.failing) this.opts.log.warn({ err }, 'could not refresh the replica heartbeat; retrying')
      this.failing = true
    }
    this.schedule(more ? 0 : this.opts.intervalMs)
  }

  /** The heartbeat had lapsed: write back the entries of the sessions this replica still holds. */
  private async reindex (): Promise<void> {
    const { replica, url } = this.opts
    const held = [...this.opts.held()].map((s) => ({ id: s.id, grantId: s.grantId, clientId: s.clientId, userId: s.userId, openedAt: s.openedAt, replica, url }))
    this.opts.log.warn({ replica: this.opts.replica, sessions: held.length }, 'the replica heartbeat had lapsed; indexing its sessions again')
    // above the cap if others opened sessions of the same grant meanwhile: the sessions exist, so they are counted
    await Promise.all(held.map(async (r) => this.opts.index.open(r, Number.MAX_SAFE_INTEGER, this.opts.idleTtlS)))
    this.emit('lapsed', held.length)
  }

  /** Stops beating and deletes what is left of this replica's entries, and its heartbeat. */
  async stop (): Promise<void> {
    this.stopped = true
    this.opts.redis.off('ready', this.onRedisReady)
    if (this.timer) clearTimeout(this.timer)
    await this.pending
    if (!this.claimed) return
    try {
      await this.opts.index.releaseReplica(this.bootId)
    } catch (err) {
      // the heartbeat expires by itself and live replicas sweep the rest
      this.opts.log.warn({ err }, 'could not release the replica heartbeat')
    }
  }
}
