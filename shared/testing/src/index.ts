/**
 * Test helpers. Tests run against a real Redis (REDIS_URL, default 127.0.0.1:6379), each under its own
 * key prefix; teardown deletes that prefix's keys and nothing else. A missing Redis fails the test: it
 * never skips.
 */
import { randomBytes } from 'node:crypto'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { createRedis, closeRedis, waitReady, type RedisClient } from '@uspl/redis'

export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

interface Teardown { teardown: (fn: () => unknown) => void }

/** A fresh key prefix for one test file or test. */
export function testPrefix (): string {
  return `test:${randomBytes(6).toString('hex')}:`
}

/** Deletes every key under `prefix` (SCAN, never FLUSH). `client` must be unprefixed. */
export async function deletePrefix (client: RedisClient, prefix: string): Promise<void> {
  if (!prefix.startsWith('test:')) throw new Error(`refusing to delete keys outside a test prefix: ${prefix}`)
  const stream = (client as import('ioredis').Redis).scanStream({ match: `${prefix}*`, count: 500 })
  for await (const batch of stream) {
    if ((batch as string[]).length > 0) await client.unlink(...(batch as string[]))
  }
}

export interface TestRedis {
  url: string
  prefix: string
  /** prefixed, like the services' own client */
  redis: RedisClient
  /** unprefixed, for inspection across prefixes of this test only */
  raw: RedisClient
}

/** A Redis client under a fresh prefix, closed and cleaned up at teardown. Fails when Redis is missing. */
export async function testRedis (t: Teardown, url = TEST_REDIS_URL): Promise<TestRedis> {
  const prefix = testPrefix()
  const redis = createRedis({ url, prefix, name: 'test', offlineQueue: true })
  const raw = createRedis({ url, prefix: '', noPrefix: true, name: 'test-raw', offlineQueue: true })
  try {
    await Promise.all([waitReady(redis, 5000), waitReady(raw, 5000)])
  } catch (err) {
    redis.disconnect()
    raw.disconnect()
    throw new Error(`tests need a real Redis at ${url} (set REDIS_URL): ${(err as Error).message}`)
  }
  t.teardown(async () => {
    await deletePrefix(raw, prefix)
    await Promise.all([closeRedis(redis), closeRedis(raw)])
  })
  return { url, prefix, redis, raw }
}

/** The environment a service's loadConfig reads in tests: this test's Redis and prefix, quiet logs. */
export function testEnv (r: { url: string, prefix: string }, extra: Record<string, string> = {}): Record<string, string> {
  return { REDIS_URL: r.url, REDIS_PREFIX: r.prefix, LOG_LEVEL: 'silent', NODE_ENV: 'test', ...extra }
}

/** Listens on an ephemeral loopback port and returns the base URL; the app closes at teardown. */
export async function listen (t: Teardown, app: FastifyInstance): Promise<string> {
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('no address')
  return `http://127.0.0.1:${address.port}`
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  if (!address || typeof address === 'string') throw new Error('no address')
  return address.port
}

/**
 * A private redis-server on its own port, for tests that stop and restart Redis, or that need a
 * Sentinel (`sentinel: { masterPort }`) or cluster nodes (`args: ['--cluster-enabled', 'yes', …]`).
 */
export class PrivateRedis {
  private proc: ChildProcess | null = null
  readonly dir = mkdtempSync(join(tmpdir(), 'uspl-redis-'))
  constructor (readonly port: number, private readonly opts: { args?: string[], sentinel?: { masterPort: number, name: string } } = {}) {}

  get url (): string { return `redis://127.0.0.1:${this.port}` }

  async start (): Promise<void> {
    let args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...(this.opts.args ?? [])]
    let ready = 'Ready to accept connections'
    if (this.opts.sentinel) {
      // a sentinel rewrites its config file, so it gets one of its own
      const file = join(this.dir, 'sentinel.conf')
      writeFileSync(file, `port ${this.port}\nbind 127.0.0.1\ndir ${this.dir}\nsentinel monitor ${this.opts.sentinel.name} 127.0.0.1 ${this.opts.sentinel.masterPort} 1\n`)
      args = [file, '--sentinel']
      ready = '+monitor master'
    }
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc = proc
    let out = ''
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        out += chunk.toString()
        if (out.includes(ready)) { proc.stdout?.off('data', onData); resolve() }
      }
      proc.stdout?.on('data', onData)
      proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out.slice(-500)}`)))
      proc.once('error', reject)
    })
  }

  async stop (): Promise<void> {
    const proc = this.proc
    if (!proc || proc.exitCode !== null) return
    this.proc = null
    proc.kill('SIGKILL')
    await once(proc, 'exit')
  }

  async cleanup (): Promise<void> {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

export async function privateRedis (t: Teardown, opts: ConstructorParameters<typeof PrivateRedis>[1] = {}): Promise<PrivateRedis> {
  const r = new PrivateRedis(await freePort(), opts)
  await r.start()
  t.teardown(() => r.cleanup())
  return r
}

/**
 * Polls `check` every 25 ms until it holds. Only for state that announces itself with no event: a
 * readiness endpoint seen over HTTP, a cluster agreeing on its slots. Anything with an event waits on it.
 */
export async function until (check: () => Promise<boolean> | boolean, timeoutMs = 10000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

export { Browser, hiddenField, location, authorizeInBrowser } from './browser.ts'
export { servedJwks } from './jwks.ts'
export { NetTopology, type NetHost } from './netns.ts'
