// keyPatterns: the keys a Lua script builds from ids it reads are the keys keys.ts builds, prefix and all,
// so a layout renamed in keys.ts is renamed in every script that fills it in.
import t from 'tap'
import { runScript, script } from '@uspl/redis'
import { testRedis } from '@uspl/testing'
import { keys, keyPatterns } from '../src/index.ts'

t.test('a script fills in the layouts of keys.ts exactly as the TypeScript does', async (t) => {
  const r = await testRedis(t)
  const patterns = keyPatterns({ grant: keys.grant, grantRefreshTokens: keys.grantRefreshTokens, activeGrant: keys.activeGrant }, 4)
  t.equal(patterns.count, 7, 'the text around each hole: two parts for one id, three for two')
  // ARGV[1..3] are the script's own arguments; the layouts' parts follow from ARGV[4]
  const probe = script('usplTestKeyPatterns', 0, `${patterns.lua}
return { key_grant(ARGV[1]), key_grantRefreshTokens(ARGV[1]), key_activeGrant(ARGV[2], ARGV[3]) }
`)
  const built = await runScript(r.redis, probe, 'grt_1', 'usr_1', 'https://app.example/client.json', ...patterns.argv(r.prefix))
  t.same(built, [
    r.prefix + keys.grant('grt_1'),
    r.prefix + keys.grantRefreshTokens('grt_1'),
    r.prefix + keys.activeGrant('usr_1', 'https://app.example/client.json')
  ])
})

t.test('a layout that transforms its ids cannot be a pattern', async (t) => {
  t.throws(() => keyPatterns({ userByEmail: keys.userByEmail }, 1), /userByEmail cannot be used as a pattern/)
})
