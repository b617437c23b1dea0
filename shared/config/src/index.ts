/**
 * Configuration comes only from environment variables, validated once at start by one TypeBox schema
 * per service. Types come from the schema (`Static<>`), never written twice by hand.
 */
import { Type, type TObject, type TProperties, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { FormatRegistry } from '@sinclair/typebox'
import { parseRedisUrl } from './redis-url.ts'

FormatRegistry.Set('redis-url', (value) => {
  try {
    parseRedisUrl(value)
    return true
  } catch {
    return false
  }
})

export { Type, type Static, type TObject, type TProperties }
export { parseRedisUrl, type RedisTarget } from './redis-url.ts'

export class ConfigError extends Error {
  readonly variable: string
  constructor (variable: string, problem: string) {
    super(`invalid configuration: ${variable} ${problem}`)
    this.name = 'ConfigError'
    this.variable = variable
  }
}

const HTTP_URL = '^https?://[^\\s/?#]+(/[^\\s?#]*)?$'

/** Schema pieces every service shares. */
export const common = {
  PORT: (port: number) => Type.Integer({ minimum: 0, maximum: 65535, default: port, description: 'port to listen on' }),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  LOG_PRETTY: Type.Boolean({ default: false, description: 'human-readable logs; on by default when stdout is a terminal' }),
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', format: 'redis-url' }),
  REDIS_PREFIX: Type.String({ default: 'uspl:', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_:{}.-]+$' }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 60000, default: 2000 }),
  /** a public URL (origin plus optional path, no query or fragment) */
  url: (def: string) => Type.String({ default: def, pattern: HTTP_URL }),
  ISSUER_URL: Type.String({ default: 'http://localhost:3001', pattern: HTTP_URL }),
  GATEWAY_RESOURCE_URL: Type.String({ default: 'http://localhost:3000/mcp', pattern: HTTP_URL }),
  REGISTRATION_URL: Type.String({ default: 'http://localhost:3002', pattern: HTTP_URL }),
  CONNECTIONS_URL: Type.String({ default: 'http://localhost:3003', pattern: HTTP_URL }),
  ACCESS_TOKEN_TTL_S: Type.Integer({ minimum: 30, maximum: 3600, default: 900 }),
  CONNECTION_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 10000 }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 30000 }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 72000 }),
  TRUST_PROXY: Type.String({ default: '', pattern: '^(|true|false|[0-9]{1,2}|[0-9a-fA-F.:/, ]+)$', description: 'behind an ingress: true, a hop count, or trusted addresses/CIDRs' })
}

/** The part of every service's config that the platform (server, logger, redis) reads. */
export const baseSchema = (port: number) => ({
  PORT: common.PORT(port),
  HOST: common.HOST,
  NODE_ENV: common.NODE_ENV,
  LOG_LEVEL: common.LOG_LEVEL,
  LOG_PRETTY: common.LOG_PRETTY,
  REDIS_URL: common.REDIS_URL,
  REDIS_PREFIX: common.REDIS_PREFIX,
  REDIS_COMMAND_TIMEOUT_MS: common.REDIS_COMMAND_TIMEOUT_MS,
  CONNECTION_TIMEOUT_MS: common.CONNECTION_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS: common.REQUEST_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS: common.KEEP_ALIVE_TIMEOUT_MS,
  TRUST_PROXY: common.TRUST_PROXY
})

export type BaseConfig = Static<TObject<ReturnType<typeof baseSchema>>>

function describe (value: unknown): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value)
  return s.length > 60 ? JSON.stringify(s.slice(0, 57) + '...') : JSON.stringify(s)
}

/**
 * Reads `env` against `properties`: applies defaults, converts strings to the schema's types, and throws a
 * ConfigError naming the first bad variable. Unknown variables are ignored (the environment has many).
 */
export function loadConfig<P extends TProperties> (properties: P, env: Record<string, string | undefined> = process.env): Static<TObject<P>> {
  const schema = Type.Object(properties)
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(properties)) {
    const v = env[key]
    if (v !== undefined && v !== '') raw[key] = v
  }
  const converted = Value.Convert(schema, Value.Default(schema, raw)) as Record<string, unknown>
  for (const [key, prop] of Object.entries(properties)) {
    if ((prop as { format?: string }).format === 'redis-url') {
      try {
        parseRedisUrl(converted[key] as string)
      } catch (err) {
        throw new ConfigError(key, `${(err as Error).message} (got ${describe(redactUrl(String(converted[key])))})`)
      }
    }
  }
  for (const error of Value.Errors(schema, converted)) {
    const variable = error.path.replace(/^\//, '').split('/')[0] || '(config)'
    throw new ConfigError(variable, `${error.message.toLowerCase()} (got ${describe(raw[variable])})`)
  }
  return converted as Static<TObject<P>>
}

/** A URL with its password replaced, for messages and logs. */
export function redactUrl (url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@')
}
