import { loadConfig as load, baseSchema, common, Type, ConfigError, type Static, type TObject } from '@uspl/config'
import { rateLimitSchema } from '@uspl/server/rate-limits'

export const schema = {
  ...baseSchema(3003),
  ISSUER_URL: common.ISSUER_URL,
  CONNECTIONS_URL: common.CONNECTIONS_URL,
  ACCESS_TOKEN_TTL_S: common.ACCESS_TOKEN_TTL_S,
  ...rateLimitSchema,
  WORKER_NICE: Type.Integer({ minimum: 0, maximum: 19, default: 10, description: 'the follow-up worker process (src/worker.ts) lowers its CPU priority to this nice value, so on a shared machine its jobs never delay the revoke path; 0: unchanged' }),
  WORKER_ENABLED: Type.Boolean({ default: true, description: 'run the revocation follow-up worker (audit, webhooks, cleanup, sweeper) in this process' }),
  WEBHOOK_URLS: Type.String({ default: '', pattern: '^(|https?://[^\\s,]+(,\\s*https?://[^\\s,]+)*)$', description: 'comma-separated URLs that receive a signed JSON notification of every revocation' }),
  WEBHOOK_SECRET: Type.String({ default: '', description: 'HMAC-SHA256 key for the X-Uspl-Signature header of webhook notifications; required (16+ characters) when WEBHOOK_URLS is set' }),
  SWEEP_INTERVAL_MS: Type.Integer({ minimum: 1000, maximum: 86400000, default: 60000, description: 'how often the worker re-queues revocation events that have no audit record yet' }),
  AUDIT_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 365, description: 'how long revocation audit records are kept' }),
  SIGNING_KEYS_KEK: Type.String({ default: '', pattern: '^(|[A-Za-z0-9+/_-]{43}=?)$', description: "the token service's SIGNING_KEYS_KEK, when its keys are kept in Redis: the worker unseals them to sign Shared Signals SETs" }),
  SIGNING_KEYS_FILE: Type.String({ default: '', description: "the token service's SIGNING_KEYS_FILE, when it uses one: Shared Signals SETs are signed with the issuer's keys (empty: the keys in Redis)" }),
  SESSION_TTL_S: Type.Integer({ minimum: 60, maximum: 30 * 86400, default: 86400, description: 'browser session lifetime (sessions are created by the token service; read here)' })
}

export type Config = Static<TObject<typeof schema>>

export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const config = load(schema, env)
  if (webhookUrls(config).length > 0 && config.WEBHOOK_SECRET.length < 16) {
    throw new ConfigError('WEBHOOK_SECRET', 'must be at least 16 characters when WEBHOOK_URLS is set')
  }
  return config
}

export function webhookUrls (config: Pick<Config, 'WEBHOOK_URLS'>): string[] {
  return config.WEBHOOK_URLS.split(',').map((u) => u.trim()).filter((u) => u.length > 0)
}
