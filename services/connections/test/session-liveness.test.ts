/**
 * The operator views count only live MCP sessions: an entry whose gateway replica stopped its heartbeat
 * (killed) stops counting as soon as the heartbeat key is gone, and reading the view deletes it.
 */
import t from 'tap'
import { keys } from '@uspl/core'
import { setup, bearer } from './helper.ts'

t.test('open_sessions stops counting the sessions of a replica whose heartbeat lapsed', async (t) => {
  const f = await setup(t)
  const ann = await f.user('Ann')
  const claude = await f.client('Claude')
  const grant = await f.grant(ann, claude, { sessions: 2 })
  // a second replica, "b", holds one more session of the grant
  await f.r.redis.multi()
    .hset(keys.mcpSession('on-b'), { grant: grant.id, replica: 'b' })
    .sadd(keys.grantSessions(grant.id), 'on-b')
    .sadd(keys.replicaSessions('b'), 'on-b')
    .set(keys.replicaAlive('b'), 'boot', 'PX', 600000)
    .exec()
  const key = await f.operatorKey()
  const view = async (): Promise<number> => (await f.app.inject({ url: `/v1/connections?user_id=${ann.id}`, headers: bearer(key) })).json().items[0].open_sessions

  t.equal(await view(), 3, 'both replicas alive: every session counts')
  await f.r.redis.del(keys.replicaAlive('b'))
  t.equal(await view(), 2, 'b\'s heartbeat is gone: its session no longer counts')
  t.equal(await f.r.redis.exists(keys.mcpSession('on-b')), 0, 'and its entry is deleted')
  t.equal(await f.r.redis.scard(keys.replicaSessions('b')), 0, 'from b\'s set too')
  t.equal(await f.r.redis.sismember(keys.grantSessions(grant.id), 'on-b'), 0, 'and from the grant\'s')
})
