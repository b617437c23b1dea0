// Registration hygiene: identical registrations from one address within the window are served, marked
// duplicate_of the first, and expire fast unless used; different metadata or another address is not one.
import t from 'tap'
import { testRedis, testEnv } from '@uspl/testing'
import { ClientStore } from '@uspl/core'
import { build } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'

t.test('a client re-registering on every start piles up as marked, short-lived duplicates', async (t) => {
  const r = await testRedis(t)
  const app = await build(loadConfig(testEnv(r, { REGISTRATION_URL: 'https://reg.example.com', REGISTRATION_DUPLICATE_TTL_S: '600', TRUST_PROXY: 'true' })), { redis: r.redis, logger: false })
  t.teardown(() => app.close())
  const metadata = { client_name: 'Restarting Client', redirect_uris: ['http://127.0.0.1/callback'] }
  const register = async (payload: object, from = '203.0.113.7'): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: '/register', payload, headers: { 'x-forwarded-for': from } })
    t.equal(res.statusCode, 201)
    t.type(res.json().registration_access_token, 'string', 'each gets its own registration access token')
    return res.json().client_id as string
  }
  const first = await register(metadata)
  const second = await register({ redirect_uris: ['http://127.0.0.1/callback'], client_name: 'Restarting Client' })
  const third = await register(metadata)
  const otherAddress = await register(metadata, '198.51.100.9')
  const otherMetadata = await register({ ...metadata, client_name: 'Another' })
  const store = new ClientStore(r.redis, 86400)
  t.equal((await store.get(first))?.duplicateOf, null, 'the first is no duplicate')
  t.equal((await store.get(second))?.duplicateOf, first, 'same metadata (in any key order), same address: a duplicate of the first')
  t.equal((await store.get(third))?.duplicateOf, first)
  t.equal((await store.get(otherAddress))?.duplicateOf, null, 'another address is not a duplicate')
  t.equal((await store.get(otherMetadata))?.duplicateOf, null, 'other metadata is not a duplicate')
  const ttl = async (id: string): Promise<number> => r.redis.ttl(`client:${id}`)
  t.ok(await ttl(second) <= 600, 'an unused duplicate expires fast')
  t.ok(await ttl(first) > 600, 'the first keeps the idle period')
  await store.touch(second)
  t.ok(await ttl(second) > 600, 'once used, a duplicate lives like any client')
})
