/**
 * This replica's heartbeat in Redis, and the sweep of dead replicas' session index entries.
 *
 * Steps:
 * 1. start (before the replica serves): claim REPLICA_ID. Entries a previous process with the same id left
 *    (it was killed, so its sessions died with it) are deleted, then the heartbeat key is set with a TTL of
 *    REPLICA_HEARTBEAT_TTL_MS and a boot id of this process.
 * 2. every REPLICA_HEARTBEAT_INTERVAL_MS, one script: refresh the heartbeat, and for every replica listed in
 *    keys.replicas() whose heartbeat is gone, delete a batch of the entries it held (from its own set of
 *    session ids, never by a scan). The cap check and the operator views already ignore such entries the
 *    moment the heartbeat expires (shared/core/src/session-liveness.ts); the sweep frees their memory.
 *    If the heartbeat had lapsed (Redis away, or the process stalled, for longer than the TTL), others may
 *    have deleted this replica's entries: the sessions it still holds are written back to the index.
 *    If another process's boot id is there, two replicas share REPLICA_ID: that is logged as an error.
 * 3. stop (graceful shutdown, after the sessions closed): delete what is left and the heartbeat.
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import { type RedisClient, runScript, script } from '@uspl/redis'
import { keys, indexKeyArgs, DROP_REPLICA_LUA } from '@uspl/core'
import type { SessionIndex, SessionRecord } from './session-index.ts'

/** entries of a dead replica deleted by one sweep step; the next tick (or an immediate rerun) takes the rest */
const SWEEP_BATCH = 500

// KEYS[1] this replica's heartbeat, KEYS[2] its session set, KEYS[3] the replicas set.
// ARGV: indexKeyArgs (5), replica, bootId, ttlMs, idleTtlS, batch
const CLAIM = script('usplReplicaClaim', 3, `${DROP_REPLICA_LUA}
local dropped = 0
repeat
  local n = drop_replica_entries(ARGV[6], ARGV[10], 1)
  dropped = dropped + n
until n == 0
redis.call('SET', KEYS[1], ARGV[7], 'PX', ARGV[8])
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[9])
return dropped
`)

// Same KEYS and ARGV as CLAIM. Returns { 1 refreshed | 0 had lapsed | 2 another process's boot id, swept, more }
const BEAT = script('usplReplicaBeat', 3, `${DROP_REPLICA_LUA}
local prev = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[7], 'PX', ARGV[8])
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[9])
redis.call('EXPIRE', KEYS[2], ARGV[9])
local swept, more = 0, 0
for _, r in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if r ~= ARGV[6] and redis.call('EXISTS', ARGV[2] .. r) == 0 then
    swept = swept + drop_replica_entries(r, ARGV[10], 1)
    if redis.call('EXISTS', ARGV[3] .. r) == 0 then redis.call('SREM', KEYS[3], r) else more = 1 end
  end
end
local state = 1
if not prev then state = 0 elseif prev ~= ARGV[7] then state = 2 end
return { state, swept, more }
`)

// KEYS as CLAIM. ARGV: indexKeyArgs (5), replica, bootId, batch. Deletes the heartbeat only if it is ours.
const RELEASE = script('usplReplicaRelease', 3, `${DROP_REPLICA_LUA}
repeat until drop_replica_entries(ARGV[6], ARGV[8], 1) == 0
if redis.call('GET', KEYS[1]) == ARGV[7] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[3], ARGV[6])
return 1
`)

export interface HeartbeatOptions {
  redis: RedisClient
  prefix: string
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
  private readonly keys: [string, string, string]
  private readonly keyArgs: string[]

  constructor (private readonly opts: HeartbeatOptions) {
    super()
    this.keys = [keys.replicaAlive(opts.replica), keys.replicaSessions(opts.replica), keys.replicas()]
    this.keyArgs = indexKeyArgs(opts.prefix)
  }

  /** True while the last refresh is younger than the TTL: this replica's entries count. */
  get alive (): boolean {
    return Date.now() - this.lastBeat < this.opts.ttlMs
  }

  private args (): string[] {
    return [...this.keyArgs, this.opts.replica, this.bootId, String(this.opts.ttlMs), String(this.opts.idleTtlS), String(SWEEP_BATCH)]
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
    const dropped = Number(await runScript(this.opts.redis, CLAIM, ...this.keys, ...this.args()))
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
        const [state, swept, rest] = await runScript(this.opts.redis, BEAT, ...this.keys, ...this.args()) as [number, number, number]
        this.lastBeat = Date.now()
        more = rest === 1
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
      await runScript(this.opts.redis, RELEASE, ...this.keys, ...this.keyArgs, this.opts.replica, this.bootId, String(SWEEP_BATCH))
    } catch (err) {
      // the heartbeat expires by itself and live replicas sweep the rest
      this.opts.log.warn({ err }, 'could not release the replica heartbeat')
    }
  }
}
