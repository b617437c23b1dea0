// SharedLimit on a real Redis: far from the limit, hits are answered at once and reach Redis on the next
// sync (flush); the last tenth of the limit (at least 20) and a stale view are counted in Redis first, so
// the limit is exact; replicas share one count and pass the limit only when more than the margin lands on
// another replica within one sync interval; decisions carry limit, remaining and reset; a new window starts
// from zero; with Redis away a hit that must be counted fails (the caller answers an error), flush does not
// throw; time is a clock the tests move. Then the same counts as the store of @fastify/rate-limit, and
// through two API replicas over HTTP.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { keys } from '@uspl/core'
import { createRedis, closeRedis, waitReady } from '@uspl/redis'
import { testRedis, privateRedis } from '@uspl/testing'
import Fastify from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { SharedLimit, sharedLimitStore, type LimitDecision, type RateLimitOptions, type SharedLimiterOptions } from '../src/rate-limit.ts'
import { setup, apiApp, bearer } from './helper.ts'

/** one window for centuries (its end is in the year 2286): no window boundary can fall inside a test */
const LONG = 1e13
/** so that no timer syncs or ages a view behind a test's back: the tests sync with flush() */
const QUIET = { syncMs: 600_000, staleMs: 600_000 }

const isPromise = (v: unknown): boolean => v instanceof Promise

function limiter (t: Test, redis: ConstructorParameters<typeof SharedLimit>[0], opts: Omit<RateLimitOptions, 'subject'>): SharedLimit {
  const limit = new SharedLimit(redis, 'key', { subject: 'this API key', ...opts })
  t.teardown(() => limit.stop())
  return limit
}

/** the shared count of `id` in the window of `at` (default: now), as Redis holds it */
async function stored (redis: ConstructorParameters<typeof SharedLimit>[0], id: string, windowMs: number, at = Date.now()): Promise<number> {
  return Number(await redis.get(keys.apiRateLimit('key', id, Math.floor(at / windowMs))) ?? 0)
}

t.test('below the margin: answered at once, counted in Redis by the next sync', async (t) => {
  const r = await testRedis(t)
  const limit = limiter(t, r.redis, { max: 1000, windowMs: LONG, ...QUIET })
  const first = limit.hit('k1')
  t.ok(isPromise(first), 'a subject this replica has no view of is counted in Redis first')
  t.match(await first, { allowed: true, remaining: 999 })
  t.equal(await stored(r.redis, 'k1', LONG), 1)
  for (let i = 2; i <= 50; i++) {
    const d = limit.hit('k1')
    if (isPromise(d)) { t.fail(`hit ${i} waited for Redis`); break }
  }
  t.equal(await stored(r.redis, 'k1', LONG), 1, 'the local hits are not in Redis yet')
  await limit.flush()
  t.equal(await stored(r.redis, 'k1', LONG), 50, 'flush sent them (one INCRBY)')
  await limit.flush()
  t.equal(await stored(r.redis, 'k1', LONG), 50, 'a flush with nothing pending sends nothing')
  t.ok(Number(await r.redis.pttl(keys.apiRateLimit('key', 'k1', Math.floor(Date.now() / LONG)))) > 0, 'the count expires')

  // the timer does the same every syncMs ('synced' once Redis has answered)
  const timed = limiter(t, r.redis, { max: 1000, windowMs: LONG, syncMs: 20, staleMs: 600_000 })
  await timed.hit('k2')
  const synced = once(timed, 'synced')
  for (let i = 0; i < 9; i++) t.notOk(isPromise(timed.hit('k2')))
  await synced
  t.equal(await stored(r.redis, 'k2', LONG), 10, 'the timer synced the local hits')
})

t.test('the margin: the last tenth of the limit, at least 20, is counted in Redis first', async (t) => {
  const r = await testRedis(t)
  for (const [max, margin] of [[1000, 100], [100, 20], [30, 20], [5, 20]]) {
    const limit = limiter(t, r.redis, { max, windowMs: LONG, ...QUIET })
    const id = `m${max}`
    const modes: string[] = []
    for (let i = 1; i <= max + 2; i++) {
      const d = limit.hit(id)
      modes.push(isPromise(d) ? 'redis' : 'local')
      await d
    }
    const local = Math.max(0, max - margin - 1)
    t.same(modes, ['redis', ...Array(local).fill('local'), ...Array(max + 1 - local).fill('redis')],
      `max ${max}: the first hit, then local up to ${max - margin}, then every hit in Redis`)
    t.equal(await stored(r.redis, id, LONG), max + 2, 'every hit counted (the local ones with the first hit in Redis)')
  }
})

t.test('decisions: limit, remaining going down, resetS within the window, refused past max', async (t) => {
  const r = await testRedis(t)
  const limit = limiter(t, r.redis, { max: 30, windowMs: LONG, ...QUIET })
  const decisions: LimitDecision[] = []
  for (let i = 0; i < 33; i++) decisions.push(await limit.hit('d'))
  t.ok(decisions.every((d) => d.limit === 30), 'limit is max')
  t.same(decisions.map((d) => d.remaining), [...Array.from({ length: 30 }, (_, i) => 29 - i), 0, 0, 0], 'remaining: 29 down to 0, then 0')
  t.same(decisions.map((d) => d.allowed), [...Array(30).fill(true), false, false, false], 'the 31st and later are refused')

  const minute = limiter(t, r.redis, { max: 10, windowMs: 60_000, ...QUIET })
  for (let i = 0; i < 12; i++) {
    const d = await minute.hit('reset')
    t.ok(Number.isInteger(d.resetS) && d.resetS >= 1 && d.resetS <= 60, `resetS ${d.resetS} within 1..60`)
  }
})

t.test('two replicas share one count: flushing every 10 hits, exactly max allowed', async (t) => {
  const r = await testRedis(t)
  const opts = { max: 100, windowMs: LONG, ...QUIET }
  const a = limiter(t, r.redis, opts)
  const b = limiter(t, r.redis, opts)
  // 60 hits on each, in turns of 10 with a sync after each turn, as the timer would: the other replica adds
  // at most 10 (less than the margin, 20) between two syncs, so the limit holds exactly
  const allowed: boolean[] = []
  for (let turn = 0; turn < 12; turn++) {
    const replica = turn % 2 === 0 ? a : b
    for (let i = 0; i < 10; i++) allowed.push((await replica.hit('shared')).allowed)
    await replica.flush()
  }
  const yes = allowed.filter(Boolean).length
  t.ok(yes <= 100 + 20, 'never more than max + margin')
  t.equal(yes, 100, 'exactly max, since fewer than the margin landed on the other replica between syncs')
  t.same(allowed, [...Array(100).fill(true), ...Array(20).fill(false)], 'and the last ones are refused')
  t.equal(await stored(r.redis, 'shared', LONG), 120, 'every hit of both replicas counted')
})

t.test('two replicas near the limit: every hit counted in Redis, exactly max allowed', async (t) => {
  const r = await testRedis(t)
  const opts = { max: 100, windowMs: LONG, ...QUIET }
  const a = limiter(t, r.redis, opts)
  const b = limiter(t, r.redis, opts)
  for (let i = 0; i < 80; i++) t.ok((await a.hit('near')).allowed)
  await a.flush()
  t.equal(await stored(r.redis, 'near', LONG), 80, 'A brought the count to the margin')

  // alternating hit by hit: within the margin both count in Redis before answering
  const seen: Array<{ sync: boolean, allowed: boolean }> = []
  for (let i = 0; i < 30; i++) {
    const d = (i % 2 === 0 ? b : a).hit('near')
    seen.push({ sync: !isPromise(d), allowed: (await d).allowed })
  }
  t.equal(seen.filter((s) => s.sync).length, 0, 'no hit answered without Redis')
  t.same(seen.map((s) => s.allowed), [...Array(20).fill(true), ...Array(10).fill(false)], '80 + 20 = max, then refused on both')

  // the same with the hits of both in flight at once (one turn): the count in Redis orders them
  for (let i = 0; i < 80; i++) await a.hit('burst')
  await a.flush()
  const burst = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).hit('burst'))
  t.ok(burst.every(isPromise))
  t.equal((await Promise.all(burst)).filter((d) => d.allowed).length, 20, 'concurrent hits: exactly max in total')
  t.equal(await stored(r.redis, 'burst', LONG), 120)
})

t.test('the edge of the guarantee: more than the margin on each replica between syncs can pass the limit', async (t) => {
  const r = await testRedis(t)
  const opts = { max: 100, windowMs: LONG, ...QUIET }
  const a = limiter(t, r.redis, opts)
  const b = limiter(t, r.redis, opts)
  let allowed = 0
  // 60 each, alternating, with no sync in between: each replica's view stays below max - margin
  for (let i = 0; i < 120; i++) if ((await (i % 2 === 0 ? a : b).hit('edge')).allowed) allowed++
  t.ok(allowed > 100, `past the limit (${allowed} allowed), as documented`)
  t.ok(allowed <= 2 * (100 - 20), 'each replica answers locally only up to max - margin of its own view')
  await a.flush()
  await b.flush()
  t.equal(await stored(r.redis, 'edge', LONG), 120, 'all counted once synced')
  const d = b.hit('edge')
  t.ok(isPromise(d), 'B synced last: its view (120) is past the margin, so its hit is counted in Redis')
  t.equal((await d).allowed, false, 'and refused')
  // A's view is the total when A synced (61: its own 60 and B's first hit); it answers locally up to
  // max - margin of that view, and refuses from its first hit counted in Redis
  const onA: Array<{ sync: boolean, allowed: boolean }> = []
  for (let i = 0; i < 25; i++) {
    const hit = a.hit('edge')
    onA.push({ sync: !isPromise(hit), allowed: (await hit).allowed })
  }
  t.same(onA, [...Array(19).fill({ sync: true, allowed: true }), ...Array(6).fill({ sync: false, allowed: false })],
    'A: 19 more local hits (61 + 19 = 80), then counted in Redis and refused')
})

/** a clock the test moves by hand: no test waits for time to pass */
function manualClock (start: number): { now: () => number, advance: (ms: number) => void, to: (ms: number) => void } {
  let at = start
  return { now: () => at, advance: (ms) => { at += ms }, to: (ms) => { at = ms } }
}

t.test('a new window starts from zero', async (t) => {
  const r = await testRedis(t)
  const windowMs = 1000
  const clock = manualClock(Math.floor(Date.now() / windowMs) * windowMs + 100)
  const limit = limiter(t, r.redis, { max: 3, windowMs, ...QUIET, clock: clock.now })
  const window = Math.floor(clock.now() / windowMs)
  const allowed: boolean[] = []
  for (let i = 0; i < 4; i++) allowed.push((await limit.hit('w')).allowed)
  t.same(allowed, [true, true, true, false], 'the fourth hit of the window is refused')
  t.equal(Number(await r.redis.get(keys.apiRateLimit('key', 'w', window))), 4)
  t.match(await limit.hit('w'), { allowed: false, remaining: 0, resetS: 1 }, '900 ms before the end: retry in 1 s')

  clock.to((window + 1) * windowMs + 5)
  const d = await limit.hit('w')
  t.match(d, { allowed: true, limit: 3, current: 1, remaining: 2, resetS: 1 }, 'the next window: allowed again, counted from 1')
  t.equal(Number(await r.redis.get(keys.apiRateLimit('key', 'w', window + 1))), 1, 'under the new window\'s key')
  t.equal(Number(await r.redis.get(keys.apiRateLimit('key', 'w', window))), 5, 'the old window\'s count is left to expire')
  t.ok(Number(await r.redis.pttl(keys.apiRateLimit('key', 'w', window))) > 0)
})

t.test('a stale view is counted in Redis first', async (t) => {
  const r = await testRedis(t)
  const staleMs = 50
  const clock = manualClock(Date.now())
  const limit = limiter(t, r.redis, { max: 1000, windowMs: LONG, syncMs: 600_000, staleMs, clock: clock.now })
  await limit.hit('s')
  clock.advance(staleMs - 1)
  t.notOk(isPromise(limit.hit('s')), 'a view younger than staleMs: local')
  clock.advance(1)
  const d = limit.hit('s')
  t.ok(isPromise(d), `a view staleMs (${staleMs} ms) old, far below the margin: counted in Redis`)
  t.match(await d, { allowed: true, remaining: 997 })
  t.equal(await stored(r.redis, 's', LONG), 3, 'in Redis without a flush, with the local hit pending before it')
  t.notOk(isPromise(limit.hit('s')), 'that count renewed the view: local again')

  // a flush renews the view too
  clock.advance(staleMs - 10)
  await limit.flush()
  clock.advance(staleMs - 1)
  t.notOk(isPromise(limit.hit('s')), 'flushed staleMs - 1 ago: local')
})

t.test('Redis away: a hit that must be counted in Redis fails, flush does not throw', async (t) => {
  const server = await privateRedis(t)
  const redis = createRedis({ url: server.url, prefix: 'test:rl-away:', name: 'test-rl-away', offlineQueue: false })
  redis.on('error', () => {})
  t.teardown(() => closeRedis(redis))
  await waitReady(redis)
  const limit = limiter(t, redis, { max: 1000, windowMs: LONG, ...QUIET })
  await limit.hit('x')
  for (let i = 0; i < 3; i++) t.notOk(isPromise(limit.hit('x')), 'local while Redis is there')

  const closed = once(redis, 'close')
  await server.stop()
  await closed
  await t.resolves(limit.flush(), 'flush with Redis away does not throw')
  const after = limit.hit('x')
  t.ok(isPromise(after), 'after a sync Redis did not take, the view is stale: the next hit is counted in Redis first')
  await t.rejects(Promise.resolve(after), 'and fails while Redis is away')
  const fresh = limit.hit('y')
  t.ok(isPromise(fresh), 'a subject with no view must be counted in Redis')
  await t.rejects(Promise.resolve(fresh), 'and fails: the caller turns it into an error, never a pass')
  const other = limiter(t, redis, { max: 1000, windowMs: LONG, ...QUIET })
  await t.rejects(async () => await other.hit('x'), 'so does a first hit on another replica')

  await server.start()
  await waitReady(redis, 10_000)
  t.match(await limit.hit('y'), { allowed: true, remaining: 999 }, 'counted again once Redis is back (an empty one)')
})

t.test('over HTTP: two API replicas share one per-key count', async (t) => {
  const f = await setup(t, { API_RATE_LIMIT_PER_KEY: '5', API_RATE_LIMIT_PER_ADDRESS: '1000', API_RATE_LIMIT_WINDOW_S: '3600' })
  const second = await apiApp(t, f.r, { API_RATE_LIMIT_PER_KEY: '5', API_RATE_LIMIT_PER_ADDRESS: '1000', API_RATE_LIMIT_WINDOW_S: '3600' })
  const replicas = [f.app, second]
  const mia = await f.member('mia', 'member')
  const remaining: string[] = []
  for (let i = 0; i < 5; i++) {
    const res = await replicas[i % 2].inject({ url: '/v1/workspaces', headers: bearer(mia.key) })
    t.equal(res.statusCode, 200, `request ${i + 1} on replica ${(i % 2) + 1}`)
    remaining.push(String(res.headers['ratelimit-remaining']))
  }
  t.same(remaining, ['4', '3', '2', '1', '0'], 'each replica counts the other\'s requests')
  for (const [i, app] of replicas.entries()) {
    const res = await app.inject({ url: '/v1/workspaces', headers: bearer(mia.key) })
    t.equal(res.statusCode, 429, `the sixth is refused on replica ${i + 1}`)
    t.match(res.json().error.message, /this API key/)
  }
})

t.test('the store of @fastify/rate-limit: each createRateLimit limiter counts in its own SharedLimit', async (t) => {
  const r = await testRedis(t)
  const app = Fastify()
  t.teardown(() => app.close())
  const shared = sharedLimitStore(r.redis, QUIET)
  await app.register(rateLimit, { global: false, store: shared.Store })
  const options: SharedLimiterOptions = { kind: 'key', subject: 'this API key', max: 30, timeWindow: LONG, keyGenerator: (req) => String(req.headers['x-subject']) }
  const check = app.createRateLimit(options)
  app.get('/', async (req) => await check(req))
  await app.ready()
  t.equal(shared.limits.size, 1, 'the plugin\'s own store counts nothing; the limiter has one SharedLimit')
  const results = []
  for (let i = 0; i < 31; i++) results.push((await app.inject({ url: '/', headers: { 'x-subject': 'a' } })).json())
  t.match(results[0], { isAllowed: false, key: 'a', max: 30, remaining: 29, isExceeded: false })
  t.ok(results[0].ttlInSeconds > 1e6, 'ttl: until the window ends')
  t.same(results.map((x) => x.remaining), [...Array.from({ length: 30 }, (_, i) => 29 - i), 0])
  t.same(results.map((x) => x.isExceeded), [...Array(30).fill(false), true], 'the 31st is over the limit')
  t.match((await app.inject({ url: '/', headers: { 'x-subject': 'b' } })).json(), { remaining: 29 }, 'another subject counts apart')
  await Promise.all([...shared.limits].map(async (l) => { await l.flush() }))
  t.equal(await stored(r.redis, 'a', LONG), 31, 'in Redis under the limiter\'s kind')

  const away = createRedis({ url: 'redis://127.0.0.1:1', prefix: 'test:rl-none:', name: 'test-rl-none', offlineQueue: false, retryStrategy: () => 1000 })
  away.on('error', () => {})
  t.teardown(() => closeRedis(away))
  const broken = Fastify()
  t.teardown(() => broken.close())
  await broken.register(rateLimit, { global: false, store: sharedLimitStore(away, QUIET).Store })
  const refuse = broken.createRateLimit(options)
  broken.get('/', async (req) => await refuse(req))
  const res = await broken.inject({ url: '/', headers: { 'x-subject': 'a' } })
  t.equal(res.statusCode, 500, 'a count Redis cannot take is an error, never a pass')
})
