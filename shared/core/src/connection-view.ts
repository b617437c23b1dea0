/**
 * One connection as the connections API's revoke route reads it before it revokes: the grant, its client
 * (for the name the caller must type) and how many MCP sessions are open on it. One script, one round trip,
 * where reading the grant and then its client took two; on the revoke path every round trip is time before
 * the revocation lands. Open sessions are counted as RedisSessionIndex.liveCounts counts them (pruning what
 * no longer counts), and only for a grant that is not revoked.
 */
import { runScript, hashOfReply, type RedisClient } from '@uspl/redis'
import { keys, keyPatterns } from './keys.ts'
import { toGrant, type Grant } from './grants.ts'
import { toClient, type Client } from './clients.ts'
import { indexScript, PRUNE_GRANT_LUA } from './session-index.ts'

export interface ConnectionView {
  grant: Grant
  /** null when the client's record is gone (a deleted client's grants are revoked with it) */
  client: Client | null
  /** open MCP sessions of the grant (0 once it is revoked) */
  openSessions: number
}

const CLIENT_KEY = keyPatterns({ client: keys.client }, 1)

// KEYS[1] the grant, KEYS[2] its session set. ARGV: CLIENT_KEY, then the index's layouts. Returns {} for no
// grant, else { the grant (HGETALL), its client (HGETALL, {} when gone), open sessions }.
const READ = indexScript('usplConnectionRead', 2, CLIENT_KEY.count, (patterns) => `${CLIENT_KEY.lua}${patterns}${PRUNE_GRANT_LUA}
local g = redis.call('HGETALL', KEYS[1])
local f = {}
for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
if not f.id then return {} end
local c = {}
if f.client_id then c = redis.call('HGETALL', key_client(f.client_id)) end
local live = 0
if not f.revoked_at then live = prune_grant(KEYS[2]) end
return { g, c, live }
`)

export async function readConnection (redis: RedisClient, prefix: string, grantId: string): Promise<ConnectionView | null> {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(grantId)) return null
  const reply = await runScript(redis, READ.script, keys.grant(grantId), keys.grantSessions(grantId),
    ...CLIENT_KEY.argv(prefix), ...READ.argv(prefix)) as [] | [string[], string[], number]
  if (reply.length === 0) return null
  const grant = toGrant(hashOfReply(reply[0]))
  if (!grant) return null
  return { grant, client: toClient(hashOfReply(reply[1])), openSessions: Number(reply[2]) }
}
