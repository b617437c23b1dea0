import { loadConfig as load, baseSchema, common, Type, ConfigError, type Static, type TObject } from '@uspl/config'
import { rateLimitSchema } from '@uspl/server/rate-limits'

export const schema = {
  ...baseSchema(3001),
  ISSUER_URL: common.ISSUER_URL,
  GATEWAY_RESOURCE_URL: common.GATEWAY_RESOURCE_URL,
  REGISTRATION_URL: common.REGISTRATION_URL,
  CONNECTIONS_URL: common.CONNECTIONS_URL,
  ACCESS_TOKEN_TTL_S: common.ACCESS_TOKEN_TTL_S,
  ...rateLimitSchema,
  REFRESH_TOKEN_TTL_S: Type.Integer({ minimum: 300, maximum: 365 * 86400, default: 30 * 86400, description: 'refresh token lifetime (each rotation starts a new one); a grant unused this long expires' }),
  REFRESH_REUSE_GRACE_S: Type.Integer({ minimum: 0, maximum: 120, default: 10, description: 'a rotated refresh token presented again within this many seconds is a concurrent retry, not a replay' }),
  SESSION_TTL_S: Type.Integer({ minimum: 300, maximum: 90 * 86400, default: 7 * 86400, description: 'browser session (sign-in) lifetime' }),
  CLIENT_IDLE_TTL_S: Type.Integer({ minimum: 3600, default: 90 * 86400, description: 'a registered client unused this long expires' }),
  SIGNING_KEYS_FILE: Type.String({ default: '', description: 'a JWK set (JSON) with private ES256 keys; the first signs. Empty: keys are generated and kept in Redis' }),
  SIGNING_KEYS_KEK: Type.String({ default: '', pattern: '^(|[A-Za-z0-9+/_-]{43}=?)$', description: 'key-encryption key of the signing keys kept in Redis: 32 random bytes, base64 (openssl rand -base64 32). Required when NODE_ENV=production without SIGNING_KEYS_FILE' }),
  SIGNING_KEYS_CACHE_S: Type.Integer({ minimum: 0, maximum: 300, default: 30, description: 'how long a replica caches the signing keys it read from Redis (a rotation reaches it within this)' }),
  KEY_ACTIVATION_DELAY_S: Type.Integer({ minimum: 0, maximum: 86400, default: 600, description: 'rotate-keys: how long a new key is published in the JWKS before it signs (longer than JWKS_MAX_AGE_S)' }),
  JWKS_MAX_AGE_S: Type.Integer({ minimum: 0, maximum: 86400, default: 300, description: 'Cache-Control max-age of the JWKS and metadata documents' }),
  SIGNIN_MAX_FAILURES_PER_ACCOUNT: Type.Integer({ minimum: 1, default: 10, description: 'failed sign-ins on one account within the window before it is throttled' }),
  SIGNIN_MAX_FAILURES_PER_ADDRESS: Type.Integer({ minimum: 1, default: 50, description: 'failed sign-ins from one address within the window before it is throttled' }),
  SIGNIN_FAILURE_WINDOW_S: Type.Integer({ minimum: 1, default: 900, description: 'window of the failed sign-in counters' }),
  CIMD_ALLOW_PRIVATE_HOSTS: Type.String({ default: '', description: 'comma-separated host or host:port whose client metadata documents may be fetched from private addresses (tests, private deployments)' }),
  CIMD_CACHE_MIN_S: Type.Integer({ minimum: 60, maximum: 86400, default: 300, description: 'a client metadata document is cached at least this long, whatever its cache headers say' }),
  CIMD_CACHE_MAX_S: Type.Integer({ minimum: 60, maximum: 86400, default: 86400, description: 'a client metadata document is cached at most this long' }),
  CIMD_FETCH_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 5000, default: 5000, description: 'the whole fetch of a client metadata document (DNS, connect, TLS, body)' }),
  CIMD_MAX_DOCUMENT_BYTES: Type.Integer({ minimum: 512, maximum: 5120, default: 5120, description: 'a client metadata document (or its JWK set) larger than this is refused' }),
  CIMD_HOST_FETCHES_PER_MINUTE: Type.Integer({ minimum: 1, maximum: 10000, default: 30, description: 'outbound metadata fetches to one host per minute, across replicas' }),
  // enterprise (ID-JAG, Shared Signals): see README "Enterprise"
  ENTERPRISE_JWKS_ORIGINS: Type.String({ default: '', pattern: '^[^\\s]*$', description: 'comma-separated origins (scheme://host[:port]) from which trusted enterprise issuers\' jwks_uri and poll_url may be fetched; empty: inline JWKS only, no poll' }),
  ENTERPRISE_JWKS_CACHE_S: Type.Integer({ minimum: 0, maximum: 86400, default: 300, description: 'how long a fetched enterprise JWKS is cached (an unknown kid refetches, at most every 10 s)' }),
  ID_JAG_MAX_LIFETIME_S: Type.Integer({ minimum: 30, maximum: 300, default: 300, description: 'longest ID-JAG lifetime accepted (exp - iat, and exp - now)' }),
  SSF_MAX_SET_AGE_S: Type.Integer({ minimum: 30, maximum: 86400, default: 300, description: 'Shared Signals receiver: a SET whose iat is older than this is stale and refused' }),
  SSF_POLL_INTERVAL_S: Type.Integer({ minimum: 0, maximum: 3600, default: 30, description: 'Shared Signals receiver: how often the enterprise issuers with a poll_url are polled (RFC 8936); 0: never' })
}

export type Config = Static<TObject<typeof schema>>

export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const config = load(schema, env)
  // private keys never sit unencrypted in a production Redis
  if (config.NODE_ENV === 'production' && config.SIGNING_KEYS_FILE === '' && config.SIGNING_KEYS_KEK === '') {
    throw new ConfigError('SIGNING_KEYS_KEK', 'is required when NODE_ENV=production and SIGNING_KEYS_FILE is not set (32 random bytes, base64: openssl rand -base64 32)')
  }
  return config
}
