/**
 * Which entries of the MCP session index still stand for a live session. An entry (keys.mcpSession, listed
 * in keys.grantSessions and in its replica's keys.replicaSessions) counts only while its hash exists and the
 * replica named in it keeps its heartbeat (keys.replicaAlive, refreshed every few seconds by the gateway,
 * services/gateway/src/mcp/heartbeat.ts). An entry of a replica whose heartbeat lapsed is dead: the replica
 * was killed, or lost Redis for longer than the heartbeat's TTL. Every reader of the index prunes with the
 * same Lua function (PRUNE_GRANT_LUA), in the same script as what it reads, so the cap check, the operator
 * views and the revocation worker agree, and a dead replica's entries stop counting the moment its
 * heartbeat expires, with no scan of the keyspace.
 *
 * Lua computes the keys of a set's members from templates made here by the functions of keys.ts, so the
 * layout lives in one place; in cluster mode they share the prefix's hash tag, hence one slot.
 */
import type { RedisClient } from '@uspl/redis'
import { runScript, script } from '@uspl/redis'
import { keys } from './keys.ts'

const HOLE = '\u0000'

/** The text before and after the id in a key of `fn`, with the deployment prefix in front. */
function template (prefix: string, fn: (id: string) => string): [string, string] {
  const [head, tail] = fn(HOLE).split(HOLE)
  return [prefix + head, tail]
}

/**
 * The ARGV a script needs to compute the index's keys: session hash head, heartbeat head, replica set head,
 * grant set head and tail (every key but the grant set ends with the id).
 */
export function indexKeyArgs (prefix: string): [string, string, string, string, string] {
  const [grantHead, grantTail] = template(prefix, keys.grantSessions)
  return [template(prefix, keys.mcpSession)[0], template(prefix, keys.replicaAlive)[0], template(prefix, keys.replicaSessions)[0], grantHead, grantTail]
}

/**
 * Lua: `prune_grant(set, a)` where `a` is the offset in ARGV of indexKeyArgs. Removes from the grant's set
 * the ids whose hash expired; deletes the entries of replicas whose heartbeat lapsed (hash, and membership
 * of both sets); returns how many live sessions remain.
 */
export const PRUNE_GRANT_LUA = `
local function prune_grant(set, a)
  local live = 0
  for _, sid in ipairs(redis.call('SMEMBERS', set)) do
    local replica = redis.call('HGET', ARGV[a] .. sid, 'replica')
    if not replica then
      redis.call('SREM', set, sid)
    elseif redis.call('EXISTS', ARGV[a + 1] .. replica) == 0 then
      redis.call('DEL', ARGV[a] .. sid)
      redis.call('SREM', set, sid)
      redis.call('SREM', ARGV[a + 2] .. replica, sid)
    else
      live = live + 1
    end
  end
  return live
end
`

/**
 * Lua: `drop_replica_entries(replica, batch, a)` deletes up to `batch` entries a replica holds (hash, and
 * the id in its grant's set and in the replica's set); returns how many it deleted.
 */
export const DROP_REPLICA_LUA = `
local function drop_replica_entries(replica, batch, a)
  local n = 0
  for _, sid in ipairs(redis.call('SPOP', ARGV[a + 2] .. replica, batch)) do
    local h = ARGV[a] .. sid
    local owner, grant = unpack(redis.call('HMGET', h, 'replica', 'grant'))
    if owner == replica then
      redis.call('DEL', h)
      if grant then redis.call('SREM', ARGV[a + 3] .. grant .. ARGV[a + 4], sid) end
    end
    n = n + 1
  end
  return n
end
`

// KEYS[1] the grant's session set. ARGV: indexKeyArgs. Returns { live, dropped }
const PRUNE = script('usplSessionsPrune', 1, `${PRUNE_GRANT_LUA}
local before = redis.call('SCARD', KEYS[1])
local live = prune_grant(KEYS[1], 1)
return { live, before - live }
`)

/** Prunes one grant's session set: how many live sessions it has, and how many entries were deleted. */
export async function pruneGrantSessions (redis: RedisClient, prefix: string, grantId: string): Promise<{ live: number, dropped: number }> {
  const [live, dropped] = await runScript(redis, PRUNE, keys.grantSessions(grantId), ...indexKeyArgs(prefix)) as [number, number]
  return { live, dropped }
}

/**
 * The live sessions of each grant (in order), pruning what no longer counts. Sent together, so the whole
 * read costs one round trip.
 */
export async function liveSessionCounts (redis: RedisClient, prefix: string, grantIds: string[]): Promise<number[]> {
  return Promise.all(grantIds.map(async (id) => (await pruneGrantSessions(redis, prefix, id)).live))
}
