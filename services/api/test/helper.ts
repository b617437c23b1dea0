/** Fixtures for the workspace API tests: the app on a fresh Redis prefix, a seeded workspace, personal keys. */
import type { FastifyInstance } from 'fastify'
import { testRedis, testEnv, type TestRedis } from '@uspl/testing'
import { AccountStore, ApiKeyStore, RedisWorkspaceRepository, type Role, type User, type Workspace } from '@uspl/core'
import { build } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'

export interface Teardown { teardown: (fn: () => unknown) => void }

export async function apiApp (t: Teardown, r: TestRedis, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = await build(loadConfig(testEnv(r, { API_URL: 'http://api.test', ...env })), { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

export interface Fixture {
  r: TestRedis
  app: FastifyInstance
  accounts: AccountStore
  keys: ApiKeyStore
  repo: RedisWorkspaceRepository
  ws: Workspace
  /** a user with this role in ws, and a personal key acting as them */
  member: (name: string, role: Role) => Promise<{ user: User, key: string, keyId: string }>
}

let n = 0
export async function setup (t: Teardown, env: Record<string, string> = {}): Promise<Fixture> {
  const r = await testRedis(t)
  const app = await apiApp(t, r, env)
  const accounts = new AccountStore(r.redis)
  const keys = new ApiKeyStore(r.redis)
  const ws = await accounts.createWorkspace('Acme')
  return {
    r,
    app,
    accounts,
    keys,
    repo: new RedisWorkspaceRepository(r.redis),
    ws,
    member: async (name, role) => {
      const user = await accounts.createUser({ email: `${name}-${++n}@example.test`, name, password: 'correct horse battery' })
      await accounts.setRole(ws.id, user.id, role)
      const { key, apiKey } = await keys.create(`${name}'s key`, { userId: user.id })
      return { user, key, keyId: apiKey.id }
    }
  }
}

export function bearer (key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` }
}
