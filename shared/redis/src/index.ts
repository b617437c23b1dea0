/**
 * Redis connections for every service, from one REDIS_URL (standalone, TLS, Sentinel or Cluster), with all
 * keys under one configurable prefix so several deployments or test runs share a Redis safely.
 *
 * Commands fail fast while Redis is away (no offline queue): a caller gets an error it maps to 503 rather
 * than a request that hangs, and the client keeps reconnecting in the background with a capped backoff, so
 * a Redis that refuses or vanishes never turns into a crash loop.
 */
import { Redis, Cluster, type RedisOptions, type ClusterOptions } from 'ioredis'
import { parseRedisUrl, type RedisTarget } from '@uspl/config'

export type RedisClient = Redis | Cluster
export { Redis, Cluster }

export interface RedisFactoryOptions {
  url: string
  prefix: string
  /** connection name shown by CLIENT LIST */
  name?: string
  commandTimeoutMs?: number
  /** queue commands while disconnected (BullMQ and subscribers want this; request paths do not) */
  offlineQueue?: boolean
  /** BullMQ requires null */
  maxRetriesPerRequest?: number | null
  /** leave the prefix off (BullMQ applies its own) */
  noPrefix?: boolean
  /** delay (ms) before reconnection attempt `times` (from 1); default: capped exponential backoff */
  retryStrategy?: (times: number) => number
  /**
   * send the commands issued in one tick of the event loop in one write (ioredis auto-pipelining): for a
   * path where many requests resume together and each sends a read, so they share one system call
   */
  autoPipelining?: boolean
}

/**
 * Reconnection delays: 100, 200, 400 ms, then every 500 ms. The cap keeps a service at most half a second
 * from noticing that Redis is back (issue 10: ready again < 1 s after an outage); an attempt against a
 * Redis that is still away costs one refused connection.
 */
export function retryStrategy (times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 6), 500)
}

export function connectionOptions (target: RedisTarget, opts: RedisFactoryOptions): RedisOptions {
  return {
    username: target.username,
    password: target.password,
    db: target.db,
    tls: target.tls ? {} : undefined,
    keyPrefix: opts.noPrefix ? undefined : opts.prefix,
    connectionName: opts.name,
    enableOfflineQueue: opts.offlineQueue ?? false,
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? 1 : opts.maxRetriesPerRequest,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: 5000,
    retryStrategy: opts.retryStrategy ?? retryStrategy,
    enableReadyCheck: true,
    enableAutoPipelining: opts.autoPipelining ?? false
  }
}

export function createRedis (opts: RedisFactoryOptions): RedisClient {
  const target = parseRedisUrl(opts.url)
  const base = connectionOptions(target, opts)
  if (target.mode === 'cluster') {
    if (!opts.noPrefix && !/\{[^}]+\}/.test(opts.prefix)) {
      throw new Error(`REDIS_PREFIX must contain a hash tag such as "{uspl}:" in cluster mode (got "${opts.prefix}"), so multi-key scripts stay on one slot`)
    }
    const { keyPrefix, enableOfflineQueue, maxRetriesPerRequest, commandTimeout, enableAutoPipelining, ...nodeOptions } = base
    const clusterOptions: ClusterOptions = {
      keyPrefix,
      enableOfflineQueue,
      enableAutoPipelining,
      redisOptions: { ...nodeOptions, maxRetriesPerRequest, commandTimeout },
      clusterRetryStrategy: retryStrategy
    }
    if (target.tls) clusterOptions.dnsLookup = (address, callback) => callback(null, address)
    return new Cluster(target.hosts, clusterOptions)
  }
  if (target.mode === 'sentinel') {
    return new Redis({
      ...base,
      sentinels: target.hosts,
      name: target.masterName,
      sentinelUsername: target.username,
      sentinelPassword: target.password,
      sentinelRetryStrategy: opts.retryStrategy ?? retryStrategy,
      enableTLSForSentinelMode: target.tls
    })
  }
  return new Redis({ ...base, host: target.hosts[0].host, port: target.hosts[0].port })
}

/** Connection options for BullMQ, which manages its own connections and prefix. */
export function bullConnection (url: string): RedisOptions | { sentinels: Array<{ host: string, port: number }>, name?: string } {
  const target = parseRedisUrl(url)
  const base = connectionOptions(target, { url, prefix: '', noPrefix: true, offlineQueue: true, maxRetriesPerRequest: null })
  if (target.mode === 'sentinel') return { ...base, sentinels: target.hosts, name: target.masterName }
  return { ...base, host: target.hosts[0].host, port: target.hosts[0].port }
}

/**
 * Resolves when the client is ready or rejects after `timeoutMs`, naming the last connection error. While
 * it waits it listens for 'error', so a Redis that is not there yet costs one line (the rejection), not
 * ioredis's "[ioredis] Unhandled error event" stack for every reconnect attempt.
 */
export async function waitReady (client: RedisClient, timeoutMs = 5000): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    let last = ''
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`Redis not ready after ${timeoutMs} ms${last ? ` (${last})` : ''}`))
    }, timeoutMs)
    const onReady = (): void => { cleanup(); resolve() }
    const onError = (err: Error): void => { last = err.message }
    const cleanup = (): void => { clearTimeout(timer); client.off('ready', onReady); client.off('error', onError) }
    client.on('ready', onReady)
    client.on('error', onError)
  })
}

export async function closeRedis (client: RedisClient): Promise<void> {
  if (client.status === 'end') return
  try {
    await client.quit()
  } catch {
    client.disconnect()
  }
}

/** The prefix ioredis puts in front of every key the client sends ('' without one): what a script that builds keys itself needs. */
export function prefixOf (redis: RedisClient): string {
  return (redis.options as { keyPrefix?: string }).keyPrefix ?? ''
}

/** A hash as a script returns HGETALL's reply (field, value, field, value…), as ioredis's hgetall gives it. */
export function hashOfReply (flat: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < flat.length; i += 2) out[flat[i]] = flat[i + 1]
  return out
}

/** A Lua script run by name: defined once per client, then sent as EVALSHA (ioredis falls back to EVAL on NOSCRIPT). */
export interface Script {
  name: string
  numberOfKeys: number
  lua: string
}

export function script (name: string, numberOfKeys: number, lua: string): Script {
  return { name, numberOfKeys, lua }
}

const definedScripts = new WeakMap<object, Set<string>>()

/**
 * Runs `s` with its keys (which get the client's prefix) followed by its arguments. Only the script's
 * SHA crosses the wire after the first call, not its source.
 */
export async function runScript (redis: RedisClient, s: Script, ...keysAndArgs: Array<string | number>): Promise<unknown> {
  let names = definedScripts.get(redis)
  if (!names) {
    names = new Set()
    definedScripts.set(redis, names)
  }
  if (!names.has(s.name)) {
    redis.defineCommand(s.name, { numberOfKeys: s.numberOfKeys, lua: s.lua })
    names.add(s.name)
  }
  const command = (redis as unknown as Record<string, (...args: Array<string | number>) => Promise<unknown>>)[s.name]
  return command.apply(redis, keysAndArgs)
}
