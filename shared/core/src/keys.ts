/**
 * Every Redis key the product uses, in one place, relative to the deployment prefix (ioredis applies the
 * prefix to keys). TypeScript calls these functions, and so, through KEYS, does every Lua script: a script
 * gets each key it can be told in advance as KEYS, built here. A script that must build a key from what it
 * reads (a set's members, a hash's fields) gets that layout from keyPatterns below, made from the same
 * functions. Channels are not keys and carry the prefix explicitly.
 */
export const keys = {
  // accounts
  user: (id: string) => `user:${id}`,
  userByEmail: (email: string) => `user:email:${email.toLowerCase()}`,
  users: () => 'users',
  userWorkspaces: (userId: string) => `user:${userId}:workspaces`,
  workspace: (id: string) => `ws:${id}`,
  workspaces: () => 'workspaces',
  workspaceMembers: (id: string) => `ws:${id}:members`,
  workspaceRecordings: (id: string) => `ws:${id}:recordings`,
  workspaceLinks: (id: string) => `ws:${id}:links`,
  recording: (id: string) => `rec:${id}`,
  recordingLinks: (id: string) => `rec:${id}:links`,
  link: (id: string) => `link:${id}`,
  // API keys (operator and personal)
  apiKey: (hash: string) => `apikey:${hash}`,
  apiKeys: () => 'apikeys',
  /** a user's personal keys (ids) */
  userApiKeys: (userId: string) => `user:${userId}:apikeys`,
  /** present for a minute after a key's last used time was written (one write a minute per key) */
  apiKeyUsed: (id: string) => `apikey:used:${id}`,
  /** the workspace API's request count of one address or key in one fixed window (its index since the epoch) */
  apiRateLimit: (subject: 'addr' | 'key', id: string, window: number) => `ratelimit:api:${subject}:${id}:${window}`,
  // browser sessions (cookie `uspl_session`), shared by token and connections
  browserSession: (hash: string) => `bsess:${hash}`,
  // clients (RFC 7591)
  client: (id: string) => `client:${id}`,
  clients: () => 'clients',
  clientGrants: (id: string) => `client:${id}:grants`,
  // Client ID Metadata Documents (an https client_id): the validated document by URL hash, outbound
  // fetches per document host (a window counter), client assertion ids seen (RFC 7523, single use)
  cimdDocument: (urlHash: string) => `cimd:doc:${urlHash}`,
  cimdStaleDocument: (urlHash: string) => `cimd:stale:${urlHash}`,
  cimdHostFetches: (host: string) => `cimd:fetches:${host}`,
  clientAssertionJti: (hash: string) => `cimd:jti:${hash}`,
  // registration hygiene: the first client registered with this (address, metadata) fingerprint
  registrationFingerprint: (hash: string) => `dcr:fp:${hash}`,
  // grants: one user's authorization of one client
  grant: (id: string) => `grant:${id}`,
  grantRefreshTokens: (id: string) => `grant:${id}:rts`,
  userGrants: (userId: string) => `user:${userId}:grants`,
  activeGrant: (userId: string, clientId: string) => `ugc:${userId}:${clientId}`,
  refreshToken: (hash: string) => `rt:${hash}`,
  /** a rotated refresh token's successor, sealed for its holder, for the reuse grace period only; listed in
   *  the grant's refresh token set under this member, so revoking the grant deletes it too */
  refreshTokenSuccessorMember: (hash: string) => `${hash}:next`,
  refreshTokenSuccessor: (hash: string) => `rt:${hash}:next`,
  authCode: (hash: string) => `code:${hash}`,
  usedAuthCode: (hash: string) => `code:used:${hash}`,
  // the denylist the gateway checks on every request
  denyGrant: (grantId: string) => `dl:g:${grantId}`,
  denyClient: (clientId: string) => `dl:c:${clientId}`,
  denyJti: (jti: string) => `dl:j:${jti}`,
  // revocation events: the durable record and its channel
  revocationStream: () => 'events:revocations',
  revocationChannel: (prefix: string) => `${prefix}events:revocations`,
  audit: () => 'audit:revocations',
  auditEntry: (eventId: string) => `audit:revocation:${eventId}`,
  /** hash: sha256(webhook url) -> delivery time (ms), for the event's successful webhook deliveries */
  auditWebhookDeliveries: (eventId: string) => `audit:revocation:${eventId}:webhooks`,
  /** the stream id up to which every event has an audit record (the follow-up worker's sweeper) */
  auditSweepCursor: () => 'audit:revocations:swept',
  // MCP sessions, for operators and cross-replica routing
  mcpSession: (id: string) => `mcps:${id}`,
  grantSessions: (grantId: string) => `grant:${grantId}:sessions`,
  // gateway replicas: a heartbeat that expires when the replica stops refreshing it, the session ids it
  // holds, and the replicas that have either (so a live one can sweep a dead one's entries)
  replicaAlive: (replica: string) => `replica:alive:${replica}`,
  replicaSessions: (replica: string) => `replica:sessions:${replica}`,
  replicas: () => 'replicas',
  // signing keys
  signingKeys: () => 'keys:signing',
  // the token service's pending authorization requests (between /authorize and the consent decision)
  authRequest: (id: string) => `areq:${id}`,
  // shared/server's rate limits, per service: the namespace @fastify/rate-limit puts before each address it
  // counts, and the failed-credential counters per address and per client (a hash of its id)
  rateLimitRequests: (service: string) => `ratelimit:${service}:req:`,
  rateLimitFailuresAddress: (service: string, address: string) => `ratelimit:${service}:fail:ip:${address}`,
  rateLimitFailuresClient: (service: string, clientHash: string) => `ratelimit:${service}:fail:client:${clientHash}`,
  // failed sign-ins, counted per account (email hash) and per source address, for throttling
  signinFailuresAccount: (emailHash: string) => `signin:fail:acct:${emailHash}`,
  signinFailuresAddress: (address: string) => `signin:fail:ip:${address}`,
  // enterprise: trusted issuers (hash issuer -> record), `sub` links, single-use ID-JAG jtis
  enterpriseIssuers: () => 'ent:issuers',
  enterpriseSubjectLinks: (issuerId: string) => `ent:${issuerId}:subs`,
  idJagJti: (issuerId: string, jtiHash: string) => `ent:${issuerId}:jti:${jtiHash}`,
  // Shared Signals: our transmitter's streams, deliveries and poll queues; the receiver's seen jtis and audit
  ssfStreams: () => 'ssf:streams',
  ssfDeliveries: (eventId: string) => `ssf:delivered:${eventId}`,
  ssfPollQueue: (streamId: string) => `ssf:stream:${streamId}:poll`,
  ssfPollSets: (streamId: string) => `ssf:stream:${streamId}:sets`,
  ssfReceivedJti: (issuerId: string, jtiHash: string) => `ssf:rx:${issuerId}:jti:${jtiHash}`,
  // the receiver's poller (RFC 8936), per issuer: the lock one replica holds while it polls (SET NX PX),
  // and the acknowledgements still to send (hash jti -> '' for ack, or the setErrs entry as JSON)
  ssfPollLock: (issuerId: string) => `ssf:rx:${issuerId}:poll:lock`,
  ssfPollPendingAcks: (issuerId: string) => `ssf:rx:${issuerId}:poll:acks`,
  ssfReceiverAudit: () => 'ssf:rx:audit'
} as const

export const BULL_QUEUE = 'revocation-followup'
export function bullPrefix (prefix: string): string {
  return `${prefix}bull`
}

type Layout = (...ids: string[]) => string

const HOLE = '\u0000'

/** The text around the holes of a layout: one more part than it takes ids. */
function parts (name: string, fn: Layout): string[] {
  const holes = Array.from({ length: fn.length }, () => HOLE)
  const split = fn(...holes).split(HOLE)
  // a layout that transforms its ids (userByEmail lowercases) cannot be filled in by Lua
  const sample = Array.from({ length: fn.length }, (_, i) => `Id${i}`)
  if (split.length !== fn.length + 1 || split.reduce((k, part, i) => i === 0 ? part : k + sample[i - 1] + part, '') !== fn(...sample)) {
    throw new Error(`keys layout ${name} cannot be used as a pattern: it does not place its ids as given`)
  }
  return split
}

export interface KeyPatterns {
  /** Lua defining `key_<name>(ids…)` for each layout, reading its parts from ARGV at the offset given */
  lua: string
  /** how many ARGV the parts take */
  count: number
  /** the parts, to pass as ARGV at that offset, with the deployment prefix in front of each key */
  argv: (prefix: string) => string[]
}

/**
 * For a Lua script that builds keys from ids it reads, so cannot receive them as KEYS: a Lua function per
 * layout (`key_grant(gid)` for `{ grant: keys.grant }`) that fills the ids into the text around them,
 * passed in ARGV from `at` on (ioredis prefixes KEYS, not ARGV, hence the prefix). The layout stays the
 * function's here; in cluster mode such keys share the prefix's hash tag, so they stay on the script's slot.
 */
export function keyPatterns (layouts: Record<string, Layout>, at: number): KeyPatterns {
  const entries = Object.entries(layouts).map(([name, fn]) => [name, parts(name, fn)] as const)
  let next = at
  const lua = entries.map(([name, p]) => {
    const ids = p.slice(1).map((_, i) => `id${i + 1}`)
    const body = p.map((_, i) => i === 0 ? `ARGV[${next + i}]` : ` .. ${ids[i - 1]} .. ARGV[${next + i}]`).join('')
    next += p.length
    return `local function key_${name} (${ids.join(', ')}) return ${body} end\n`
  }).join('')
  return {
    lua,
    count: next - at,
    argv: (prefix) => entries.flatMap(([, p]) => p.map((part, i) => i === 0 ? prefix + part : part))
  }
}
