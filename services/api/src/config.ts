import { loadConfig as load, baseSchema, common, Type, type Static, type TObject } from '@uspl/config'

export const schema = {
  ...baseSchema(3004),
  /** the workspace API's public URL (the OpenAPI document's server) */
  API_URL: common.url('http://localhost:3004'),
  API_RATE_LIMIT_PER_KEY: Type.Integer({ minimum: 1, default: 600, description: 'requests one API key may make per window, shared by every replica' }),
  API_RATE_LIMIT_PER_ADDRESS: Type.Integer({ minimum: 1, default: 1200, description: 'requests one source address may make per window, counted before the key is checked' }),
  API_RATE_LIMIT_WINDOW_S: Type.Integer({ minimum: 1, maximum: 3600, default: 60, description: 'window of both rate limits' })
}

export type Config = Static<TObject<typeof schema>>

export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  return load(schema, env)
}
