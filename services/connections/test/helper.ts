/** Fixtures for the connections tests: the app on a fresh Redis prefix, users, clients, grants, sessions. */
import type { FastifyInstance } from 'fastify'
import { testRedis, testEnv, type TestRedis } from '@uspl/testing'
import {
  AccountStore, ApiKeyStore, BrowserSessionStore, ClientStore, GrantStore, SESSION_COOKIE, keys, nowSeconds,
  type Grant, type User, type Client
} from '@uspl/core'
import { build } from '../src/app.ts'
import { loadConfig, type Config } from '../src/config.ts'

export interface Teardown { teardown: (fn: () => unknown) => void }

export const CONNECTIONS_URL = 'http://connections.test'
export const ORIGIN = CONNECTIONS_URL

export interface Fixture {
  r: TestRedis
  app: FastifyInstance
  config: Config
  user: (name: string) => Promise<User>
  client: (name: string | undefined, extra?: Record<string, unknown>) => Promise<Client>
  grant: (user: User, client: Client, opts?: { refreshTokens?: number, sessions?: number }) => Promise<Grant>
  signIn: (user: User) => Promise<{ cookie: string, csrf: string, sid: string }>
  operatorKey: () => Promise<string>
}

export async function setup (t: Teardown, env: Record<string, string> = {}, r?: TestRedis): Promise<Fixture> {
  r ??= await testRedis(t)
  const config = loadConfig(testEnv(r, { WORKER_ENABLED: 'false', CONNECTIONS_URL, ISSUER_URL: 'http://issuer.test', ...env }))
  const app = await build(config, { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  const accounts = new AccountStore(r.redis)
  const clients = new ClientStore(r.redis, 86400)
  const grants = new GrantStore(r.redis, r.prefix)
  let n = 0
  return {
    r,
    app,
    config,
    user: (name) => accounts.createUser({ email: `${name.toLowerCase()}-${++n}@example.test`, name, password: 'correct horse battery' }),
    client: async (name, extra = {}) => (await clients.create({
      redirect_uris: ['https://app.example/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...(name === undefined ? {} : { client_name: name }),
      ...extra
    })).client,
    grant: async (user, client, opts = {}) => {
      const g = await grants.ensure({ userId: user.id, clientId: client.clientId, scope: 'recordings:read links:write', resource: 'http://localhost:3000/mcp', authTime: nowSeconds(), ttlS: 86400 })
      for (let i = 0; i < (opts.refreshTokens ?? 0); i++) {
        const hash = `rthash-${g.id}-${i}`
        await r.redis.multi().set(keys.refreshToken(hash), g.id).sadd(keys.grantRefreshTokens(g.id), hash).exec()
      }
      for (let i = 0; i < (opts.sessions ?? 0); i++) {
        // as a gateway replica with a live heartbeat indexes its sessions
        const sid = `sess-${g.id}-${i}`
        await r.redis.multi()
          .hset(keys.mcpSession(sid), { grant: g.id, replica: 'replica-test' })
          .sadd(keys.grantSessions(g.id), sid)
          .sadd(keys.replicaSessions('replica-test'), sid)
          .set(keys.replicaAlive('replica-test'), 'boot', 'PX', 600000)
          .exec()
      }
      return g
    },
    signIn: async (user) => {
      const { sid, session } = await new BrowserSessionStore(r.redis, 3600).create(user.id, nowSeconds())
      return { cookie: `${SESSION_COOKIE}=${sid}`, csrf: session.csrf, sid }
    },
    operatorKey: async () => (await new ApiKeyStore(r.redis).create('ops')).key
  }
}

/** Headers of a state-changing browser request on a cookie session. */
export function browser (s: { cookie: string, csrf: string }): Record<string, string> {
  return { cookie: s.cookie, 'x-csrf-token': s.csrf, origin: ORIGIN }
}

export function bearer (key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` }
}
