/**
 * The Redis index of MCP sessions, for operators and cross-replica routing, and the only code that touches
 * its keys: the gateway opens, touches, removes and locates entries and keeps its replica's heartbeat
 * through it; the operator views count live sessions and the revocation worker cleans a revoked grant's
 * entries through it too.
 *
 * The layout: keys.mcpSession(id) is a hash (grant, client, user, replica, url, opened, last_active) and
 * keys.grantSessions(grant) the set of a grant's session ids; both expire after the idle timeout and are
 * extended when a session is touched. keys.replicaSessions(replica) lists the ids each replica holds, so a
 * live replica can delete a dead one's entries without a scan, and keys.replicas() the replicas that have
 * either.
 *
 * Liveness: an entry counts only while its hash exists and the replica named in it keeps its heartbeat
 * (keys.replicaAlive, refreshed every few seconds by the gateway, services/gateway/src/mcp/heartbeat.ts).
 * An entry of a replica whose heartbeat lapsed is dead: the replica was killed, or lost Redis for longer
 * than the heartbeat's TTL. Every reader prunes with the same Lua function (prune_grant), in the same
 * script as what it reads, so the cap check, the operator views and the revocation worker agree, and a
 * dead replica's entries stop counting the moment its heartbeat expires, with no scan of the keyspace.
 *
 * The scripts build the keys of a set's members (session ids, replica ids) from keyPatterns of keys.ts;
 * every other key arrives in KEYS.
 */
import { type RedisClient, type Script, runScript, script } from '@uspl/redis'
import { keys, keyPatterns } from './keys.ts'

export interface SessionRecord {
  id: string
  grantId: string
  clientId: string
  userId: string
  replica: string
  /** how other replicas reach the one holding the session (REPLICA_URL) */
  url: string
  /** epoch ms */
  openedAt: number
}

/** Where a session lives, as the index says. */
export interface SessionLocation {
  grantId: string
  replica: string
  /** empty for an entry written before replicas recorded their URL */
  url: string
}

/** What one heartbeat found: 1 refreshed, 0 it had lapsed, 2 another process's boot id was there. */
export interface ReplicaBeat {
  state: 0 | 1 | 2
  /** entries of dead replicas deleted by this beat */
  swept: number
  /** dead replicas still hold entries: beat again at once */
  more: boolean
}

/** What a gateway replica does with the index. */
export interface SessionIndex {
  /** false when the grant already holds `cap` live sessions */
  open (record: SessionRecord, cap: number, ttlS: number): Promise<boolean>
  touch (id: string, grantId: string, at: number, ttlS: number): Promise<void>
  remove (id: string, grantId: string): Promise<void>
  /** one read: who owns the session, or null when the index does not know it (ended, expired, never) */
  locate (id: string): Promise<SessionLocation | null>
  /** claims the replica id: deletes what a previous process with this id left, sets the heartbeat; returns how many entries went */
  claimReplica (bootId: string, ttlMs: number, idleTtlS: number): Promise<number>
  /** refreshes the heartbeat and sweeps a batch of dead replicas' entries */
  beatReplica (bootId: string, ttlMs: number, idleTtlS: number): Promise<ReplicaBeat>
  /** deletes what is left of the replica's entries, and its heartbeat if it is this process's */
  releaseReplica (bootId: string): Promise<void>
}

/** entries of a dead replica deleted by one sweep step; the next beat (or an immediate rerun) takes the rest */
const SWEEP_BATCH = 500

// Session and replica ids are read from sets and hashes, so their keys cannot be KEYS.
const LAYOUTS = {
  session: keys.mcpSession,
  replicaAlive: keys.replicaAlive,
  replicaSessions: keys.replicaSessions,
  grantSessions: keys.grantSessions
}

/**
 * Lua: `prune_grant(set)` removes from a grant's set the ids whose hash expired; deletes the entries of
 * replicas whose heartbeat lapsed (hash, and membership of both sets); returns how many live sessions remain.
 */
export const PRUNE_GRANT_LUA = `
local function prune_grant(set)
  local live = 0
  for _, sid in ipairs(redis.call('SMEMBERS', set)) do
    local replica = redis.call('HGET', key_session(sid), 'replica')
    if not replica then
      redis.call('SREM', set, sid)
    elseif redis.call('EXISTS', key_replicaAlive(replica)) == 0 then
      redis.call('DEL', key_session(sid))
      redis.call('SREM', set, sid)
      redis.call('SREM', key_replicaSessions(replica), sid)
    else
      live = live + 1
    end
  end
  return live
end
`

/**
 * Lua: `drop_replica_entries(replica, batch)` deletes up to `batch` entries a replica holds (hash, and the
 * id in its grant's set and in the replica's set); returns how many it deleted.
 */
const DROP_REPLICA_LUA = `
local function drop_replica_entries(replica, batch)
  local n = 0
  for _, sid in ipairs(redis.call('SPOP', key_replicaSessions(replica), batch)) do
    local h = key_session(sid)
    local owner, grant = unpack(redis.call('HMGET', h, 'replica', 'grant'))
    if owner == replica then
      redis.call('DEL', h)
      if grant then redis.call('SREM', key_grantSessions(grant), sid) end
    end
    n = n + 1
  end
  return n
end
`

/**
 * A script whose ARGV ends with the layouts' parts, after `argc` arguments of its own; its body may call
 * the index's key functions (`key_session(sid)`…) and, when it includes PRUNE_GRANT_LUA, `prune_grant(set)`.
 */
export function indexScript (name: string, numberOfKeys: number, argc: number, body: (patterns: string) => string): { script: Script, argv: (prefix: string) => string[] } {
  const patterns = keyPatterns(LAYOUTS, argc + 1)
  return { script: script(name, numberOfKeys, body(patterns.lua)), argv: patterns.argv }
}

// KEYS[1] the grant's session set, KEYS[2] the session hash, KEYS[3] the replica's session set.
// ARGV: id, cap, ttlS, grant, client, user, replica, openedMs, url, then the layouts
const OPEN = indexScript('usplSessionOpen', 3, 9, (patterns) => `${patterns}${PRUNE_GRANT_LUA}
if prune_grant(KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], 'grant', ARGV[4], 'client', ARGV[5], 'user', ARGV[6], 'replica', ARGV[7], 'url', ARGV[9], 'opened', ARGV[8], 'last_active', ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return 1
`)

// KEYS[1] the grant's session set. ARGV: the layouts. Returns { live, dropped }
const PRUNE = indexScript('usplSessionsPrune', 1, 0, (patterns) => `${patterns}${PRUNE_GRANT_LUA}
local before = redis.call('SCARD', KEYS[1])
local live = prune_grant(KEYS[1])
return { live, before - live }
`)

// KEYS[1] the grant's session set, KEYS[2] the grant. ARGV: ttlS, then the layouts. A grant that is not
// revoked (a token-scope event names a live one) is left alone: -1.
const RETIRE = indexScript('usplSessionsRetire', 2, 1, (patterns) => `${patterns}${PRUNE_GRANT_LUA}
if redis.call('HEXISTS', KEYS[2], 'revoked_at') ~= 1 then return -1 end
local before = redis.call('SCARD', KEYS[1])
local live = prune_grant(KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return before - live
`)

// KEYS[1] this replica's heartbeat, KEYS[2] its session set, KEYS[3] the replicas set.
// ARGV: replica, bootId, ttlMs, idleTtlS, batch, then the layouts
const CLAIM = indexScript('usplReplicaClaim', 3, 5, (patterns) => `${patterns}${DROP_REPLICA_LUA}
local dropped = 0
repeat
  local n = drop_replica_entries(ARGV[1], ARGV[5])
  dropped = dropped + n
until n == 0
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[4])
return dropped
`)

// Same KEYS and ARGV as CLAIM. Returns { 1 refreshed | 0 had lapsed | 2 another process's boot id, swept, more }
const BEAT = indexScript('usplReplicaBeat', 3, 5, (patterns) => `${patterns}${DROP_REPLICA_LUA}
local prev = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
local swept, more = 0, 0
for _, r in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if r ~= ARGV[1] and redis.call('EXISTS', key_replicaAlive(r)) == 0 then
    swept = swept + drop_replica_entries(r, ARGV[5])
    if redis.call('EXISTS', key_replicaSessions(r)) == 0 then redis.call('SREM', KEYS[3], r) else more = 1 end
  end
end
local state = 1
if not prev then state = 0 elseif prev ~= ARGV[2] then state = 2 end
return { state, swept, more }
`)

// KEYS as CLAIM. ARGV: replica, bootId, batch, then the layouts. Deletes the heartbeat only if it is ours.
const RELEASE = indexScript('usplReplicaRelease', 3, 3, (patterns) => `${patterns}${DROP_REPLICA_LUA}
repeat until drop_replica_entries(ARGV[1], ARGV[3]) == 0
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[3], ARGV[1])
return 1
`)

export class RedisSessionIndex implements SessionIndex {
  /**
   * `replica`: this replica's id, whose set of session ids `remove` keeps and whose heartbeat the replica
   * methods keep; readers of the index (operator views, the revocation worker) have none.
   */
  constructor (private readonly redis: RedisClient, private readonly prefix: string, private readonly replica: string | null = null) {}

  private get own (): string {
    if (this.replica === null) throw new Error('this session index has no replica id: only a gateway replica writes its own entries')
    return this.replica
  }

  private replicaKeys (): [string, string, string] {
    return [keys.replicaAlive(this.own), keys.replicaSessions(this.own), keys.replicas()]
  }

  async open (r: SessionRecord, cap: number, ttlS: number): Promise<boolean> {
    const ok = await runScript(this.redis, OPEN.script, keys.grantSessions(r.grantId), keys.mcpSession(r.id), keys.replicaSessions(r.replica),
      r.id, String(cap), String(ttlS), r.grantId, r.clientId, r.userId, r.replica, String(r.openedAt), r.url, ...OPEN.argv(this.prefix)) as number
    return ok === 1
  }

  async touch (id: string, grantId: string, at: number, ttlS: number): Promise<void> {
    await this.redis.multi()
      .hset(keys.mcpSession(id), 'last_active', String(at))
      .expire(keys.mcpSession(id), ttlS)
      .expire(keys.grantSessions(grantId), ttlS)
      .exec()
  }

  async locate (id: string): Promise<SessionLocation | null> {
    const [grantId, replica, url] = await this.redis.hmget(keys.mcpSession(id), 'grant', 'replica', 'url')
    if (!grantId || !replica) return null
    return { grantId, replica, url: url ?? '' }
  }

  async remove (id: string, grantId: string): Promise<void> {
    await this.redis.multi()
      .del(keys.mcpSession(id))
      .srem(keys.grantSessions(grantId), id)
      .srem(keys.replicaSessions(this.own), id)
      .exec()
  }

  /** Prunes one grant's session set: how many live sessions it has, and how many entries were deleted. */
  async prune (grantId: string): Promise<{ live: number, dropped: number }> {
    const [live, dropped] = await runScript(this.redis, PRUNE.script, keys.grantSessions(grantId), ...PRUNE.argv(this.prefix)) as [number, number]
    return { live, dropped }
  }

  /**
   * The live sessions of each grant (in order), pruning what no longer counts. Sent together, so the whole
   * read costs one round trip.
   */
  async liveCounts (grantIds: string[]): Promise<number[]> {
    return Promise.all(grantIds.map(async (id) => (await this.prune(id)).live))
  }

  /**
   * A revoked grant's entries: those of ended sessions and of dead replicas go (the gateways close the live
   * ones), and the set expires after `ttlS`, kept that long for replicas replaying. Returns how many went,
   * or null when the grant is not revoked (then nothing changes). One script, one round trip.
   */
  async retireGrant (grantId: string, ttlS: number): Promise<number | null> {
    const dropped = Number(await runScript(this.redis, RETIRE.script, keys.grantSessions(grantId), keys.grant(grantId), String(ttlS), ...RETIRE.argv(this.prefix)))
    return dropped < 0 ? null : dropped
  }

  async claimReplica (bootId: string, ttlMs: number, idleTtlS: number): Promise<number> {
    return Number(await runScript(this.redis, CLAIM.script, ...this.replicaKeys(),
      this.own, bootId, String(ttlMs), String(idleTtlS), String(SWEEP_BATCH), ...CLAIM.argv(this.prefix)))
  }

  async beatReplica (bootId: string, ttlMs: number, idleTtlS: number): Promise<ReplicaBeat> {
    const [state, swept, more] = await runScript(this.redis, BEAT.script, ...this.replicaKeys(),
      this.own, bootId, String(ttlMs), String(idleTtlS), String(SWEEP_BATCH), ...BEAT.argv(this.prefix)) as [0 | 1 | 2, number, number]
    return { state, swept, more: more === 1 }
  }

  async releaseReplica (bootId: string): Promise<void> {
    await runScript(this.redis, RELEASE.script, ...this.replicaKeys(), this.own, bootId, String(SWEEP_BATCH), ...RELEASE.argv(this.prefix))
  }
}
