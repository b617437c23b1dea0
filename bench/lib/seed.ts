/**
 * Benchmark data in Redis, written through the shared domain stores (@uspl/core) under the run's own key
 * prefix, and deleted with it afterwards: a user, a workspace with a recording, registered clients and
 * one grant per client.
 */
import { randomBytes } from 'node:crypto'
import { createRedis, closeRedis, waitReady, type RedisClient } from '@uspl/redis'
import { AccountStore, ClientStore, GrantStore, RedisWorkspaceRepository, ApiKeyStore } from '@uspl/core'

export class BenchRedis {
  readonly redis: RedisClient
  private readonly raw: RedisClient
  constructor (readonly url: string, readonly prefix: string) {
    this.redis = createRedis({ url, prefix, name: 'bench', offlineQueue: true })
    this.raw = createRedis({ url, prefix: '', noPrefix: true, name: 'bench-raw', offlineQueue: true })
    // a Redis that goes away (the faults benchmark kills its own) is reconnected to; commands report it
    for (const c of [this.redis, this.raw]) c.on('error', () => {})
  }

  static async open (url: string, prefix = `bench:${randomBytes(5).toString('hex')}:`): Promise<BenchRedis> {
    const b = new BenchRedis(url, prefix)
    try {
      await Promise.all([waitReady(b.redis, 5000), waitReady(b.raw, 5000)])
    } catch (err) {
      b.redis.disconnect(); b.raw.disconnect()
      throw new Error(`the benchmarks need Redis at ${url} (set REDIS_URL): ${(err as Error).message}`)
    }
    return b
  }

  /** Deletes every key of this run's prefix (SCAN + UNLINK, never FLUSH). */
  async clear (): Promise<void> {
    if (!/^(bench|test):/.test(this.prefix)) throw new Error(`refusing to delete keys outside a bench/test prefix: ${this.prefix}`)
    const stream = (this.raw as import('ioredis').Redis).scanStream({ match: `${this.prefix}*`, count: 1000 })
    for await (const batch of stream) {
      if ((batch as string[]).length > 0) await this.raw.unlink(...(batch as string[]))
    }
  }

  async close (): Promise<void> {
    await this.clear()
    await Promise.all([closeRedis(this.redis), closeRedis(this.raw)])
  }
}

export interface Workspace { userId: string, workspaceId: string, recordingId: string }

export async function seedWorkspace (redis: RedisClient, tag = randomBytes(4).toString('hex')): Promise<Workspace> {
  const accounts = new AccountStore(redis)
  const user = await accounts.createUser({ email: `bench-${tag}@example.com`, name: 'Bench User', password: 'bench-password-1' })
  const ws = await accounts.createWorkspace(`Bench ${tag}`)
  await accounts.setRole(ws.id, user.id, 'member')
  const repo = new RedisWorkspaceRepository(redis)
  const rec = await repo.createRecording(ws.id, { title: 'Quarterly review', durationSeconds: 1800 }, user.id)
  return { userId: user.id, workspaceId: ws.id, recordingId: rec.id }
}

export interface SeededGrant { clientId: string, clientName: string, grantId: string, userId: string }

export const GRANT_TTL_S = 30 * 86400

/** `n` registered public clients, each authorized by `userId` (one grant each). */
export async function seedGrants (redis: RedisClient, prefix: string, userId: string, n: number, opts: { name?: string, resource: string }): Promise<SeededGrant[]> {
  const clients = new ClientStore(redis, GRANT_TTL_S)
  const grants = new GrantStore(redis, prefix)
  const out: SeededGrant[] = []
  const batch = 250
  for (let start = 0; start < n; start += batch) {
    const part = await Promise.all(Array.from({ length: Math.min(batch, n - start) }, async (_, j) => {
      const clientName = `${opts.name ?? 'Bench Client'} ${start + j}`
      const { client } = await clients.create({
        redirect_uris: ['http://127.0.0.1:9/callback'],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        client_name: clientName
      })
      const grant = await grants.ensure({ userId, clientId: client.clientId, scope: 'mcp:tools', resource: opts.resource, authTime: Math.floor(Date.now() / 1000), ttlS: GRANT_TTL_S })
      return { clientId: client.clientId, clientName, grantId: grant.id, userId }
    }))
    out.push(...part)
  }
  return out
}

export async function operatorKey (redis: RedisClient): Promise<string> {
  return (await new ApiKeyStore(redis).create('bench operator')).key
}
