import { loadConfig as load, baseSchema, common, Type, type Static, type TObject } from '@uspl/config'
import { rateLimitSchema } from '@uspl/server/rate-limits'

export const schema = {
  ...baseSchema(3002),
  ISSUER_URL: common.ISSUER_URL,
  REGISTRATION_URL: common.REGISTRATION_URL,
  ACCESS_TOKEN_TTL_S: common.ACCESS_TOKEN_TTL_S,
  ...rateLimitSchema,
  CLIENT_IDLE_TTL_S: Type.Integer({ minimum: 3600, default: 90 * 86400, description: 'a registered client unused this long expires' }),
  REGISTRATION_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 300, description: 'registration requests one source address may make per window (generous: hosted clients share addresses)' }),
  REGISTRATION_RATE_LIMIT_WINDOW_S: Type.Integer({ minimum: 1, default: 60, description: 'window of the registration rate limit' }),
  REGISTRATION_DUPLICATE_WINDOW_S: Type.Integer({ minimum: 0, maximum: 30 * 86400, default: 86400, description: 'a registration identical to one from the same address within this window is marked a duplicate (0: off)' }),
  REGISTRATION_DUPLICATE_TTL_S: Type.Integer({ minimum: 60, maximum: 30 * 86400, default: 3600, description: 'a duplicate registration never used expires after this' })
}

export type Config = Static<TObject<typeof schema>>

export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  return load(schema, env)
}
