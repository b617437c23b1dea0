// Issue 12 against the connections API, as an attacker sends it: guessed operator keys from one address,
// then from another replica; the 429 in the API's own error shape.
import t from 'tap'
import { build } from '../src/app.ts'
import { keys, hashSecret } from '@uspl/core'
import { setup, bearer } from './helper.ts'

t.test('no rate limit on the connections API: guessed API keys get 429 after the failure limit, on every replica', async (t) => {
  const f = await setup(t, { RATE_LIMIT_FAILURES_MAX: '5' })
  const second = await build(f.config, { logger: false })
  t.teardown(() => second.close())
  const key = await f.operatorKey()
  for (let i = 0; i < 5; i++) {
    const res = await (i % 2 === 0 ? f.app : second).inject({ url: '/v1/connections', remoteAddress: '192.0.2.10', headers: bearer(`uspl_guess${i}`) })
    t.equal(res.statusCode, 401, `guess ${i}: 401`)
    t.ok(res.headers['ratelimit-limit'], 'RateLimit-* headers on every answer')
  }
  const record = keys.apiKey(hashSecret(key))
  for (const app of [f.app, second]) {
    const res = await app.inject({ url: '/v1/connections', remoteAddress: '192.0.2.10', headers: bearer(key) })
    t.equal(res.statusCode, 429, 'refused whatever the key, also the right one')
    t.same(res.json(), { error: { code: 'rate_limited', message: `too many failed attempts; retry in ${res.headers['retry-after']} seconds` } })
    t.ok(Number(res.headers['retry-after']) > 0 && Number(res.headers['retry-after']) <= 300)
  }
  t.equal(await f.r.redis.hget(record, 'last_used_at'), null, 'a refused request is no use of the key')
  const elsewhere = await f.app.inject({ url: '/v1/connections', remoteAddress: '192.0.2.11', headers: bearer(key) })
  t.equal(elsewhere.statusCode, 200, 'another address is not affected')
  t.ok(Number(await f.r.redis.hget(record, 'last_used_at')) > 0, 'and its use is the one last used records')
  for (const url of ['/v1/clients', '/v1/audit']) {
    const res = await f.app.inject({ url, remoteAddress: '192.0.2.10', headers: bearer(key) })
    t.equal(res.statusCode, 429, `${url}: same limit`)
  }
})

t.test("an operator's unfiltered GET /v1/connections reads every user at once: now it comes in pages", async (t) => {
  const f = await setup(t)
  const key = await f.operatorKey()
  const expected = new Set<string>()
  for (let u = 0; u < 7; u++) {
    const user = await f.user(`User${u}`)
    for (let c = 0; c < (u % 3) + 1; c++) expected.add((await f.grant(user, await f.client(`App ${u}-${c}`))).id)
  }
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const res = await f.app.inject({ url: `/v1/connections?limit=3${cursor ? `&cursor=${cursor}` : ''}`, headers: bearer(key) })
    t.equal(res.statusCode, 200)
    const body = res.json() as { items: Array<{ grant_id: string }>, next_cursor: string | null }
    t.ok(body.items.length <= 3, `page ${pages}: at most limit items`)
    seen.push(...body.items.map((i) => i.grant_id))
    cursor = body.next_cursor
    pages++
  } while (cursor !== null && pages < 20)
  t.equal(seen.length, expected.size, 'every connection once')
  t.same(new Set(seen), expected, 'and no other')
  t.ok(pages >= 4, `in pages (${pages})`)
  const forged = await f.app.inject({ url: '/v1/connections?cursor=bm9wZQ', headers: bearer(key) })
  t.equal(forged.statusCode, 400)
  t.equal(forged.json().error.code, 'invalid_request')
  const tooMany = await f.app.inject({ url: '/v1/connections?limit=100000', headers: bearer(key) })
  t.equal(tooMany.statusCode, 400, 'limit is bounded')
})
