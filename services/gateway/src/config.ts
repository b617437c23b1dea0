import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { loadConfig as load, baseSchema, common, ConfigError, Type, type Static, type TObject } from '@uspl/config'

export const schema = {
  ...baseSchema(3000),
  ISSUER_URL: common.ISSUER_URL,
  GATEWAY_RESOURCE_URL: common.GATEWAY_RESOURCE_URL,
  ACCESS_TOKEN_TTL_S: common.ACCESS_TOKEN_TTL_S,
  ALLOWED_ORIGINS: Type.String({ default: '', pattern: '^(|\\*|https?://[^\\s,/]+(,\\s*https?://[^\\s,/]+)*)$', description: 'browser origins (comma-separated, or *) that may call /mcp besides the gateway\'s and the issuer\'s own; requests without Origin always may' }),
  JWKS_URL: Type.String({ default: '', pattern: '^(|https?://[^\\s?#]+)$', description: 'where the issuer publishes its keys; empty means ISSUER_URL + /.well-known/jwks.json' }),
  JWKS_CACHE_TTL_MS: Type.Integer({ minimum: 1000, maximum: 86400000, default: 600000, description: 'how long a fetched signing key is used before it is fetched again' }),
  JWKS_REFETCH_MIN_INTERVAL_MS: Type.Integer({ minimum: 0, maximum: 3600000, default: 10000, description: 'a token with an unknown kid triggers a JWKS fetch at most this often; others are refused without a fetch' }),
  JWKS_FETCH_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60000, default: 5000, description: 'timeout of one JWKS fetch' }),
  JWT_CLOCK_SKEW_S: Type.Integer({ minimum: 0, maximum: 60, default: 60, description: 'tolerance on exp/nbf/iat (at most 60 s)' }),
  SESSION_IDLE_TIMEOUT_S: Type.Integer({ minimum: 1, maximum: 86400, default: 1800, description: 'an MCP session without requests (and without an open GET stream) for this long is closed' }),
  SESSION_TOUCH_INTERVAL_S: Type.Integer({ minimum: 1, maximum: 3600, default: 5, description: 'last-active of a session is written to Redis at most this often' }),
  MAX_SESSIONS_PER_GRANT: Type.Integer({ minimum: 1, maximum: 1000, default: 20, description: 'open MCP sessions one grant may hold across all replicas; initialize beyond it answers 429' }),
  REPLICA_ID: Type.String({ default: '', maxLength: 128, description: 'this replica in the session index and its heartbeat; a restart with the same id deletes the entries the previous process left. Empty means hostname-pid-random (in Kubernetes: the pod name)' }),
  REPLICA_URL: Type.String({ default: '', pattern: '^(|https?://[^\\s?#]+)$', description: 'how other replicas reach this one (origin, no /mcp), stored in the session index so a replica that receives a request for a session it does not hold can forward it here; empty means http://127.0.0.1:PORT. In Kubernetes: http://$(POD_IP):3000' }),
  REPLICA_HEARTBEAT_INTERVAL_MS: Type.Integer({ minimum: 50, maximum: 60000, default: 2000, description: 'how often the replica refreshes its heartbeat in Redis (and sweeps the session index entries of replicas whose heartbeat lapsed)' }),
  REPLICA_HEARTBEAT_TTL_MS: Type.Integer({ minimum: 200, maximum: 300000, default: 6000, description: 'a replica whose heartbeat is this old is dead: its sessions stop counting against MAX_SESSIONS_PER_GRANT and in the operator views; at least twice the interval' }),
  FORWARD_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60000, default: 2000, description: 'forwarding a request to the replica that owns its session: a connection not made within this time means the owner is gone (404)' })
}

export type Config = Static<TObject<typeof schema>>

export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const config = load(schema, env)
  if (config.REPLICA_HEARTBEAT_TTL_MS < 2 * config.REPLICA_HEARTBEAT_INTERVAL_MS) {
    // one late refresh must not declare a live replica dead
    throw new ConfigError('REPLICA_HEARTBEAT_TTL_MS', `must be at least twice REPLICA_HEARTBEAT_INTERVAL_MS (got ${config.REPLICA_HEARTBEAT_TTL_MS} and ${config.REPLICA_HEARTBEAT_INTERVAL_MS})`)
  }
  return config
}

const defaultIds = new WeakMap<Config, string>()

/**
 * REPLICA_ID, or hostname-pid-random: apps built in one process (tests, benchmarks) never share an id, and
 * the random part is drawn once per config.
 */
export function replicaId (config: Config): string {
  if (config.REPLICA_ID) return config.REPLICA_ID
  let id = defaultIds.get(config)
  if (!id) defaultIds.set(config, id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`)
  return id
}

/** This replica's internal base URL, without a trailing slash. */
export function replicaUrl (config: Config): string {
  return (config.REPLICA_URL || `http://127.0.0.1:${config.PORT}`).replace(/\/+$/, '')
}

export function jwksUrl (config: Config): string {
  return config.JWKS_URL || `${config.ISSUER_URL.replace(/\/$/, '')}/.well-known/jwks.json`
}

/** RFC 9728 §3.1: the metadata URL inserts the well-known segment between the origin and the resource path. */
export function resourceMetadataUrl (config: Config): string {
  const u = new URL(config.GATEWAY_RESOURCE_URL)
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')
  return `${u.origin}/.well-known/oauth-protected-resource${path}`
}
