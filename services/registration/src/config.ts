import { loadConfig as load, baseSchema, common, type Static, type TObject } from '@uspl/config'

export const schema = {
  ...baseSchema(3002),
  ISSUER_URL: common.ISSUER_URL,
  REGISTRATION_URL: common.REGISTRATION_URL,
  ACCESS_TOKEN_TTL_S: common.ACCESS_TOKEN_TTL_S
}

export type Config = Static<TObject<typeof schema>>

export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  return load(schema, env)
}
