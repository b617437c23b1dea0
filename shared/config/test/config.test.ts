import t from 'tap'
import { loadConfig, baseSchema, parseRedisUrl, ConfigError } from '../src/index.ts'

t.test('defaults and conversions', async (t) => {
  const c = loadConfig(baseSchema(3001), { PORT: '4000', LOG_PRETTY: 'true' })
  t.equal(c.PORT, 4000)
  t.equal(c.LOG_PRETTY, true)
  t.equal(c.REDIS_URL, 'redis://127.0.0.1:6379')
  t.equal(c.REDIS_PREFIX, 'uspl:')
})

t.test('a bad value names the variable', async (t) => {
  t.throws(() => loadConfig(baseSchema(3001), { PORT: 'abc' }), { name: 'ConfigError', variable: 'PORT' })
  t.throws(() => loadConfig(baseSchema(3001), { PORT: '70000' }), { variable: 'PORT' })
  t.throws(() => loadConfig(baseSchema(3001), { LOG_LEVEL: 'loud' }), { variable: 'LOG_LEVEL' })
  const err = t.throws(() => loadConfig(baseSchema(3001), { REDIS_URL: 'http://x:1' })) as ConfigError
  t.match(err.message, /^invalid configuration: REDIS_URL has unknown scheme http:/)
  const secret = t.throws(() => loadConfig(baseSchema(3001), { REDIS_URL: 'redis://u:hunter2@host:99999' })) as ConfigError
  t.notMatch(secret.message, /hunter2/, 'the password never reaches the message')
})

t.test('redis URLs', async (t) => {
  t.match(parseRedisUrl('redis://127.0.0.1:6379/2'), { mode: 'standalone', tls: false, db: 2, hosts: [{ host: '127.0.0.1', port: 6379 }] })
  t.match(parseRedisUrl('rediss://:p%40ss@cache.example:6380'), { mode: 'standalone', tls: true, password: 'p@ss' })
  t.match(parseRedisUrl('redis+sentinel://s1:26379,s2/mymaster/1'), { mode: 'sentinel', masterName: 'mymaster', db: 1, hosts: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }] })
  t.match(parseRedisUrl('redis+cluster://n1:7000,n2:7001'), { mode: 'cluster', hosts: [{ port: 7000 }, { port: 7001 }] })
  t.match(parseRedisUrl('redis://[::1]:6379'), { hosts: [{ host: '::1', port: 6379 }] })
  for (const bad of ['', 'redis://', 'redis://a,b:1', 'redis+sentinel://s1:26379', 'redis://h:1/x', 'redis+cluster://h:1/0', 'redis://h:0', 'redis://h h:1']) {
    t.throws(() => parseRedisUrl(bad), undefined, bad)
  }
})
