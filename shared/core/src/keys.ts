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
  // operators
  apiKey: (hash: string) => `apikey:${hash}`,
  apiKeys: () => 'apikeys',
  // browser sessions (cookie `uspl_session`), shared by token and connections
  browserSession: (hash: string) => `bsess:${hash}`,
  // clients (RFC 7591)
  client: (id: string) => `client:${id}`,
  clients: () => 'clients',
  clientGrants: (id: string) => `client:${id}:grants`,
  // grants: one user's authorization of one client
  grant: (id: string) => `grant:${id}`,
  grantRefreshTokens: (id: string) => `grant:${id}:rts`,
  userGrants: (userId: string) => `user:${userId}:grants`,
  activeGrant: (userId: string, clientId: string) => `ugc:${userId}:${clientId}`,
  refreshToken: (hash: string) => `rt:${hash}`,
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
  signinFailuresAddress: (address: string) => `signin:fail:ip:${address}`
} as const

export const BULL_QUEUE = 'revocation-followup'
export function bullPrefix (prefix: string): string {
  return `${prefix}bull`
}
