/**
 * Every Redis key the product uses, in one place, relative to the deployment prefix (ioredis applies the
 * prefix to keys; Lua scripts receive it in ARGV for keys they compute). Channels are not keys and carry
 * the prefix explicitly.
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
  ssfReceiverAudit: () => 'ssf:rx:audit'
} as const

export const BULL_QUEUE = 'revocation-followup'
export function bullPrefix (prefix: string): string {
  return `${prefix}bull`
}
