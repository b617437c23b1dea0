// LiveCache on a real Redis: kept records answer synchronously and misses are never kept; after fence()
// every write acknowledged before it has been applied (the cache never answers a value older than an
// acknowledged write); reads overtaken by an invalidation, or begun before a loss, are not kept; any lost
// connection, a deaf subscriber (ping timeout) or close() turns the cache off (entries cleared, reads on the
// main connection) until tracking is set up again; FLUSHDB clears everything; maxEntries evicts the oldest.
// Whole-server actions (FLUSHDB, CLIENT PAUSE) run only on a private redis-server.
import t, { type Test } from 'tap'
import { once, type EventEmitter } from 'node:events'
import { testRedis, privateRedis, until, type TestRedis } from '@uspl/testing'
import type { RedisClient } from '@uspl/redis'
import { LiveCache, type LiveCacheOptions, type RecordKind } from '../src/live-cache.ts'

/** a string record; a missing key (null) is not kept */
const TEXT: RecordKind<string | null> = {
  fetch: async (redis, key) => await redis.get(key),
  keep: (value) => value !== null
}

/** Resolves with the event's arguments; rejects when it does not come within `ms` (so a test fails, never hangs). */
async function event (emitter: EventEmitter, name: string, ms = 10_000): Promise<unknown[]> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), ms)
  try {
    return await once(emitter, name, { signal: ac.signal })
  } catch (err) {
    if (ac.signal.aborted) throw new Error(`no '${name}' event within ${ms} ms`)
    throw err
  } finally {
    clearTimeout(timer)
  }
}

/** A started cache on r's Redis and prefix, live, closed at teardown. */
async function liveCache (t: Test, r: TestRedis, opts: Partial<LiveCacheOptions> = {}): Promise<LiveCache> {
  const cache = new LiveCache({ url: r.url, prefix: r.prefix, redis: r.redis, ...opts })
  t.teardown(() => cache.close())
  const live = event(cache, 'live')
  await cache.start()
  await live
  t.equal(cache.live, true, 'live once tracking is set up')
  return cache
}

/** ids of the connections named exactly `name` (CLIENT LIST, on an unprefixed connection) */
async function connectionIds (raw: RedisClient, name: string): Promise<string[]> {
  const list = await raw.client('LIST') as string
  return list.split('\n')
    .filter((line) => line.split(' ').includes(`name=${name}`))
    .map((line) => /(?:^| )id=(\d+)/.exec(line)?.[1] ?? '')
}

async function kill (raw: RedisClient, name: string): Promise<void> {
  const ids = await connectionIds(raw, name)
  if (ids.length !== 1) throw new Error(`expected one connection named ${name}, found ${ids.length}`)
  await raw.client('KILL', 'ID', ids[0])
}

/** a record kind whose fetch reads, says so, then waits for `release` before answering */
function gated (): { kind: RecordKind<string | null>, read: Promise<void>, release: () => void } {
  let readDone!: () => void
  let release!: () => void
  const read = new Promise<void>((resolve) => { readDone = resolve })
  const gate = new Promise<void>((resolve) => { release = resolve })
  return {
    kind: {
      fetch: async (redis, key) => {
        const value = await redis.get(key)
        readDone()
        await gate
        return value
      },
      keep: (value) => value !== null
    },
    read,
    release
  }
}

const isPromise = (v: unknown): boolean => v instanceof Promise

t.test('a kept record answers synchronously; a miss is never kept', async (t) => {
  const r = await testRedis(t)
  t.equal(new LiveCache({ url: r.url, prefix: r.prefix, redis: r.redis }).fence(), false, 'not started: no fence, reads go to Redis')
  const cache = await liveCache(t, r)
  await r.redis.set('a', 'one')

  const first = cache.get(TEXT, 'a')
  t.ok(isPromise(first), 'the first read goes to Redis')
  t.equal(await first, 'one')
  t.equal(cache.size, 1)
  const second = cache.get(TEXT, 'a')
  t.notOk(isPromise(second), 'the second read answers synchronously')
  t.equal(second, 'one')

  for (let i = 0; i < 3; i++) {
    const miss = cache.get(TEXT, 'missing')
    t.ok(isPromise(miss), `a miss is read from Redis every time (${i + 1})`)
    t.equal(await miss, null)
  }
  const both = [cache.get(TEXT, 'missing'), cache.get(TEXT, 'missing')]
  t.equal(both[0], both[1], 'concurrent reads of one key share one read')
  t.same(await Promise.all(both), [null, null])
  t.equal(cache.size, 1, 'the misses were not kept')
})

t.test('fence: requests of one turn share one; after it, a write acknowledged before it is never answered stale', async (t) => {
  const r = await testRedis(t)
  const cache = await liveCache(t, r)

  const f1 = cache.fence()
  t.ok(isPromise(f1), 'live: a fence to wait for')
  t.equal(cache.fence(), f1, 'the same turn shares it')
  await new Promise<void>((resolve) => setImmediate(resolve))
  const f2 = cache.fence()
  t.not(f2, f1, 'once its PING is sent, a new request gets a new fence')
  t.same(await Promise.all([f1, f2]), [true, true])

  await r.redis.set('k', 'v0')
  let stale = 0
  let keptAfterRead = 0
  for (let i = 1; i <= 200; i++) {
    const read = cache.get(TEXT, 'k')
    t.equal(await read, `v${i - 1}`)
    if (!isPromise(cache.get(TEXT, 'k'))) keptAfterRead++
    // another connection writes, and its writer has the reply before the request arrives
    await r.redis.set('k', `v${i}`)
    const fenced = await cache.fence()
    if (fenced !== true) { t.fail(`fence ${i} answered ${String(fenced)}`); break }
    const after = cache.get(TEXT, 'k')
    if (!isPromise(after)) stale++
    if (await after !== `v${i}`) { t.fail(`iteration ${i}: after the fence, read ${String(await after)} instead of v${i}`); break }
  }
  t.equal(keptAfterRead, 200, 'every read was kept (answered synchronously next time)')
  t.equal(stale, 0, 'after each fence the entry was gone: the next read went to Redis and saw the write')
})

t.test('a write from another connection emits invalidated with the full key name', async (t) => {
  const r = await testRedis(t)
  const cache = await liveCache(t, r)
  await r.redis.set('user:u1', 'x')
  t.equal(await cache.get(TEXT, 'user:u1'), 'x')
  t.equal(cache.size, 1)
  const invalidated = event(cache, 'invalidated')
  await r.redis.set('user:u1', 'y')
  const [names] = await invalidated
  t.same(names, [`${r.prefix}user:u1`], 'the prefixed name, as Redis knows it')
  t.equal(cache.size, 0, 'and the entry is gone')
  t.equal(await cache.get(TEXT, 'user:u1'), 'y')
})

t.test('a read raced by a write: after both settle and a fence, the old value is never held', async (t) => {
  const r = await testRedis(t)
  const cache = await liveCache(t, r)
  await r.redis.set('race', 'v0')
  const outcomes = { old: 0, new: 0 }
  for (let i = 1; i <= 300; i++) {
    // the entry from the last iteration goes first (a write and a fence), so this read really reads
    await r.redis.set('race', `v${i - 1}`)
    t.equal(await cache.fence(), true)
    // read first or write first, in the same turn, on two connections
    const write = i % 2 === 0 ? null : r.redis.set('race', `v${i}`)
    const read = cache.get(TEXT, 'race')
    if (!isPromise(read)) { t.fail(`iteration ${i}: the entry survived a write and a fence`); break }
    const [seen] = await Promise.all([read, write ?? r.redis.set('race', `v${i}`)])
    outcomes[seen === `v${i}` ? 'new' : 'old']++
    t.equal(await cache.fence(), true)
    const now = cache.get(TEXT, 'race')
    const value = await now
    if (value !== `v${i}`) { t.fail(`iteration ${i}: after the fence the cache answered ${String(value)} (${isPromise(now) ? 'read' : 'kept'})`); break }
  }
  t.pass(`never stale (the raced read saw the old value ${outcomes.old} times, the new one ${outcomes.new} times)`)
})

t.test('a read overtaken by an invalidation is used once, not kept', async (t) => {
  const r = await testRedis(t)
  const cache = await liveCache(t, r)
  await r.redis.set('k', 'old')
  const g = gated()
  const first = cache.get(g.kind, 'k')
  await g.read
  const invalidated = event(cache, 'invalidated')
  await r.redis.set('k', 'new')
  t.equal(await cache.fence(), true)
  t.same((await invalidated)[0], [`${r.prefix}k`], 'the invalidation came while the read was in flight')
  g.release()
  t.equal(await first, 'old', 'the request that began before the write gets what it read')
  t.equal(cache.size, 0, 'but it is not kept')
  const next = cache.get(TEXT, 'k')
  t.ok(isPromise(next))
  t.equal(await next, 'new')
})

t.test('a request after a write and a fence never joins the read that write overtook', async (t) => {
  const r = await testRedis(t)
  const cache = await liveCache(t, r)
  await r.redis.set('k', 'old')
  const g = gated()
  const first = cache.get(g.kind, 'k')
  await g.read
  await r.redis.set('k', 'new')
  t.equal(await cache.fence(), true)
  const second = cache.get(TEXT, 'k')
  t.not(second, first, 'a read of its own')
  g.release()
  t.equal(await first, 'old', 'the request that began before the write gets what it read')
  t.equal(await second, 'new', 'the request after the acknowledged write and the fence gets the new value')
})

t.test('a connection that drops and returns while tracking is being set up: the cache comes back anyway', async (t) => {
  const r = await testRedis(t)
  const cache = await liveCache(t, r)
  const sub = `api-cache-sub:${r.prefix}`
  // a blocking read keeps the reader busy, so the next set-up waits on it (for CLIENT TRACKING)
  const BLOCK: RecordKind<unknown> = { fetch: async (redis, key) => await redis.blpop(key, 2), keep: () => false }
  const blocked = cache.get(BLOCK, 'queue')
  const lost = event(cache, 'lost')
  await kill(r.raw, sub)
  await lost
  const subscribed = async (): Promise<boolean> => ((await r.raw.client('LIST')) as string).split('\n')
    .some((line) => line.split(' ').includes(`name=${sub}`) && / sub=1 /.test(line))
  await until(subscribed, 5000, 'the new subscriber subscribed (set-up waiting on the reader)')
  const live = event(cache, 'live')
  await kill(r.raw, sub)
  await blocked
  await live
  t.equal(cache.live, true, 'live again with both connections up')
  await r.redis.set('again', 'v')
  await cache.get(TEXT, 'again')
  t.equal(cache.get(TEXT, 'again'), 'v', 'and caching')
})

t.test('the subscriber connection killed: lost, off and cleared, reads from the main connection; then live again', async (t) => {
  const r = await testRedis(t)
  const cache = await liveCache(t, r)
  await r.redis.mset('a', '1', 'b', '2')
  t.equal(await cache.get(TEXT, 'a'), '1')
  const g = gated()
  const inFlight = cache.get(g.kind, 'b')
  await g.read
  t.equal(cache.size, 1)

  const lost = event(cache, 'lost')
  const live = event(cache, 'live')
  await kill(r.raw, `api-cache-sub:${r.prefix}`)
  const [reason] = await lost
  t.equal(reason, 'connection closed')
  t.equal(cache.live, false)
  t.equal(cache.size, 0, 'every entry cleared')
  t.equal(cache.fence(), false, 'no fence to wait for')
  // a write while the invalidation connection is down: nobody tells the cache about it
  await r.redis.set('a', '1b')
  const read = cache.get(TEXT, 'a')
  t.ok(isPromise(read), 'reads go to Redis')
  t.equal(cache.live, false, 'still off when that read was sent, so through the main connection')
  t.equal(await read, '1b')
  t.equal(cache.size, 0, 'and nothing is kept meanwhile')

  await live
  t.equal(cache.live, true, 'live again after ioredis reconnected')
  g.release()
  t.equal(await inFlight, '2', 'a read begun before the loss is answered')
  t.equal(cache.size, 0, 'but not kept')
  t.ok(isPromise(cache.get(TEXT, 'a')), 'nothing from before the loss is answered from memory')
  t.equal(await cache.get(TEXT, 'a'), '1b', 'the write made while down is seen')
  t.equal(cache.get(TEXT, 'a'), '1b', 'kept again')
  await r.redis.set('a', '1c')
  t.equal(await cache.fence(), true)
  t.ok(isPromise(cache.get(TEXT, 'a')), 'invalidations reach the new subscriber connection')
  t.equal(await cache.get(TEXT, 'a'), '1c')
})

t.test('the reader connection killed: lost, off and cleared; then live again', async (t) => {
  const r = await testRedis(t)
  const cache = await liveCache(t, r)
  await r.redis.set('a', '1')
  t.equal(await cache.get(TEXT, 'a'), '1')
  t.equal(cache.size, 1)

  const lost = event(cache, 'lost')
  const live = event(cache, 'live')
  await kill(r.raw, `api-cache-reader:${r.prefix}`)
  t.equal((await lost)[0], 'connection closed')
  t.equal(cache.live, false)
  t.equal(cache.size, 0)
  t.equal(cache.fence(), false)
  await r.redis.set('a', '2')
  const read = cache.get(TEXT, 'a')
  t.ok(isPromise(read))
  t.equal(await read, '2', 'read through the main connection')
  t.equal(cache.size, 0)

  await live
  t.equal(await cache.fence(), true)
  t.equal(await cache.get(TEXT, 'a'), '2')
  t.equal(cache.get(TEXT, 'a'), '2', 'kept again')
  await r.redis.set('a', '3')
  t.equal(await cache.fence(), true)
  const after = cache.get(TEXT, 'a')
  t.ok(isPromise(after), 'the new reader is tracked, with the subscriber as its target')
  t.equal(await after, '3')
})

t.test('FLUSHDB (private Redis): every entry goes, and pending reads are not kept', async (t) => {
  const server = await privateRedis(t)
  const r = await testRedis(t, server.url)
  const cache = await liveCache(t, r)
  await r.redis.mset('a', '1', 'b', '2', 'c', '3')
  for (const k of ['a', 'b']) await cache.get(TEXT, k)
  t.equal(cache.size, 2)
  const g = gated()
  const inFlight = cache.get(g.kind, 'c')
  await g.read

  const invalidated = event(cache, 'invalidated')
  await r.raw.flushdb()
  t.equal(await cache.fence(), true)
  t.equal(cache.size, 0, 'gone after a fence')
  t.same(await invalidated, [null], 'everything invalidated (a null message)')
  g.release()
  t.equal(await inFlight, '3')
  t.equal(cache.size, 0, 'the read in flight was not kept')
  t.equal(await cache.get(TEXT, 'a'), null, 'the record is really gone')

  await r.redis.set('a', 'again')
  // the miss above had 'a' tracked: the fence applies that write's invalidation before the next read, which
  // it would otherwise overtake (and the read would rightly not be kept)
  t.equal(await cache.fence(), true)
  t.equal(await cache.get(TEXT, 'a'), 'again')
  t.equal(cache.get(TEXT, 'a'), 'again', 'the cache goes on keeping')
  t.equal(cache.live, true)
})

t.test('a ping not answered within pingMs (CLIENT PAUSE on a private Redis): lost, then live again', async (t) => {
  const server = await privateRedis(t)
  const r = await testRedis(t, server.url)
  const cache = await liveCache(t, r, { pingMs: 200 })
  await r.redis.set('a', '1')
  t.equal(await cache.get(TEXT, 'a'), '1')
  t.equal(cache.size, 1)

  const lost = event(cache, 'lost')
  const live = event(cache, 'live', 15_000)
  await r.raw.call('CLIENT', 'PAUSE', '2500', 'ALL')
  const [reason] = await lost
  t.match(reason, /did not answer a ping/)
  t.equal(cache.live, false)
  t.equal(cache.size, 0)
  t.equal(cache.fence(), false)
  const read = cache.get(TEXT, 'a')
  t.ok(isPromise(read), 'reads go to the main connection (they wait for the pause like any command)')
  t.equal(await read, '1')

  await live
  t.equal(cache.live, true, 'live again after the pause')
  t.equal(await cache.get(TEXT, 'a'), '1')
  t.equal(cache.get(TEXT, 'a'), '1', 'kept again')
  await r.redis.set('a', '2')
  t.equal(await cache.fence(), true)
  t.equal(await cache.get(TEXT, 'a'), '2', 'and kept true')
})

t.test('maxEntries: the oldest entry goes first', async (t) => {
  const r = await testRedis(t)
  const cache = await liveCache(t, r, { maxEntries: 3 })
  await r.redis.mset('k1', '1', 'k2', '2', 'k3', '3', 'k4', '4')
  for (const k of ['k1', 'k2', 'k3', 'k4']) t.equal(await cache.get(TEXT, k), k.slice(1))
  t.equal(cache.size, 3)
  for (const k of ['k2', 'k3', 'k4']) t.equal(cache.get(TEXT, k), k.slice(1), `${k} kept`)
  const first = cache.get(TEXT, 'k1')
  t.ok(isPromise(first), 'k1, read first, was evicted')
  t.equal(await first, '1')
  t.equal(cache.size, 3, 'still three after reading it again')
  t.ok(isPromise(cache.get(TEXT, 'k2')), 'and that evicted the next oldest, k2')
})

t.test('close(): no more caching, connections closed', async (t) => {
  const r = await testRedis(t)
  const cache = await liveCache(t, r)
  await r.redis.set('a', '1')
  t.equal(await cache.get(TEXT, 'a'), '1')
  t.equal(cache.size, 1)
  t.equal((await connectionIds(r.raw, `api-cache-sub:${r.prefix}`)).length, 1)
  t.equal((await connectionIds(r.raw, `api-cache-reader:${r.prefix}`)).length, 1)

  const lost = event(cache, 'lost')
  await cache.close()
  t.equal((await lost)[0], 'closing')
  t.equal(cache.live, false)
  t.equal(cache.size, 0)
  t.equal(cache.fence(), false)
  for (let i = 0; i < 2; i++) {
    const read = cache.get(TEXT, 'a')
    t.ok(isPromise(read), 'reads go to the main connection')
    t.equal(await read, '1')
  }
  t.equal(cache.size, 0, 'nothing kept')
  // the server frees a client that sent QUIT just after its reply: no event to wait on
  await until(async () => (await connectionIds(r.raw, `api-cache-sub:${r.prefix}`)).length === 0 &&
    (await connectionIds(r.raw, `api-cache-reader:${r.prefix}`)).length === 0, 5000, 'the cache\'s connections to close')
  t.pass('both connections are gone from CLIENT LIST')
})
