// The operator command line: every command, --json for scripts, an idempotent seed, one-line errors with
// non-zero exit codes; and once as a real process, as `npm run cli` runs it.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { testRedis, testEnv } from '@uspl/testing'
import { AccountStore, ApiKeyStore, RedisWorkspaceRepository } from '@uspl/core'
import { main } from '../src/cli.ts'

async function cli (env: Record<string, string>, ...args: string[]): Promise<{ code: number, out: string, err: string }> {
  const out: string[] = []
  const err: string[] = []
  const code = await main(args, env, { out: (l) => out.push(l) }, (l) => err.push(l))
  return { code, out: out.join('\n'), err: err.join('\n') }
}

t.test('seed creates the demo workspace once; re-running keeps passwords', async (t) => {
  const r = await testRedis(t)
  const env = testEnv(r)
  const first = await cli(env, 'seed', '--json')
  t.equal(first.code, 0)
  const seeded = JSON.parse(first.out)
  t.equal(seeded.workspace.name, 'Demo Workspace')
  t.same(seeded.users.map((u: { email: string, role: string }) => [u.email, u.role]), [['owner@demo.test', 'owner'], ['admin@demo.test', 'admin'], ['member@demo.test', 'member']])
  t.ok(seeded.users.every((u: { password?: string }) => typeof u.password === 'string' && u.password.length >= 12), 'passwords printed once')
  const accounts = new AccountStore(r.redis)
  const owner = seeded.users[0]
  t.ok(await accounts.verifyPassword('owner@demo.test', owner.password), 'the printed password works')
  const repo = new RedisWorkspaceRepository(r.redis)
  t.equal((await repo.listRecordings(seeded.workspace.id, {})).items.length, 3)
  t.equal((await repo.listRecordingLinks(seeded.workspace.id, {})).items.length, 3)

  const again = await cli(env, 'seed', '--json')
  t.equal(again.code, 0)
  const second = JSON.parse(again.out)
  t.equal(second.workspace.id, seeded.workspace.id)
  t.ok(second.users.every((u: { password?: string }) => u.password === undefined), 'no new passwords on re-run')
  t.equal(second.recordingsCreated, 0)
  t.ok(await accounts.verifyPassword('owner@demo.test', owner.password), 'passwords unchanged')
  t.equal((await repo.listRecordings(seeded.workspace.id, {})).items.length, 3, 'no duplicates')
  const text = await cli(env, 'seed')
  t.match(text.out, /exists; password unchanged/)
})

t.test('users, roles and API keys', async (t) => {
  const r = await testRedis(t)
  const env = testEnv(r)
  await cli(env, 'seed')
  const added = await cli(env, 'add-user', '--email', 'Grace@Example.test', '--name', 'Grace', '--workspace', 'Demo Workspace', '--role', 'admin', '--json')
  t.equal(added.code, 0)
  const user = JSON.parse(added.out)
  t.equal(user.user.email, 'grace@example.test')
  t.ok(user.password, 'generated password shown')
  t.same(user.membership, { workspace: 'Demo Workspace', role: 'admin' })
  const dup = await cli(env, 'add-user', '--email', 'grace@example.test')
  t.equal(dup.code, 1)
  t.equal(dup.err.split('\n').length, 1, 'one line')
  t.match(dup.err, /exists/)
  t.equal((await cli(env, 'set-role', '--email', 'grace@example.test', '--workspace', 'ws_demo', '--role', 'member')).code, 0)
  t.equal(await new AccountStore(r.redis).getRole('ws_demo', user.user.id), 'member')
  const badRole = await cli(env, 'set-role', '--email', 'grace@example.test', '--workspace', 'ws_demo', '--role', 'king')
  t.equal(badRole.code, 2)
  t.match(badRole.err, /--role must be owner, admin or member/)
  t.equal((await cli(env, 'set-role', '--email', 'nobody@example.test', '--workspace', 'ws_demo', '--role', 'member')).code, 1)
  const listed = JSON.parse((await cli(env, 'list-users', '--json')).out)
  t.equal(listed.users.length, 4)

  const created = JSON.parse((await cli(env, 'create-api-key', '--name', 'ops', '--json')).out)
  t.match(created.key, /^uspl_/)
  const keys = new ApiKeyStore(r.redis)
  t.ok(await keys.verify(created.key))
  const list = await cli(env, 'list-api-keys', '--json')
  t.same(JSON.parse(list.out).apiKeys.map((k: { id: string }) => k.id), [created.id])
  t.notMatch(list.out, created.key, 'keys are never listed')
  t.equal((await cli(env, 'revoke-api-key', created.id)).code, 0)
  t.equal(await keys.verify(created.key), null)
  t.equal((await cli(env, 'revoke-api-key', created.id)).code, 1, 'unknown id')

  // --user: a personal key acting as that user, not an operator key
  const personal = JSON.parse((await cli(env, 'create-api-key', '--name', 'ci', '--user', 'grace@example.test', '--expires-in-days', '30', '--json')).out)
  t.equal(personal.kind, 'personal')
  t.equal(personal.userId, user.user.id)
  t.ok(personal.expiresAt > Date.now() + 29 * 86400_000)
  t.equal(await keys.verify(personal.key), null, 'a personal key is not an operator key')
  t.match(await keys.authenticate(personal.key), { ok: true, key: { userId: user.user.id } })
  t.same(JSON.parse((await cli(env, 'list-api-keys', '--user', 'grace@example.test', '--json')).out).apiKeys.map((k: { id: string }) => k.id), [personal.id])
  t.equal((await cli(env, 'create-api-key', '--name', 'x', '--user', 'nobody@example.test')).code, 1, 'unknown user')
  t.equal((await cli(env, 'create-api-key', '--name', 'x', '--user', 'grace@example.test', '--expires-in-days', 'soon')).code, 2)
  t.equal((await cli(env, 'disable-user', '--email', 'grace@example.test')).code, 0)
  t.match(await keys.authenticate(personal.key), { ok: false, reason: 'user_disabled' }, 'disabling the user stops the key')
  t.equal(await new AccountStore(r.redis).verifyPassword('grace@example.test', 'correct horse battery staple'), null, 'and the sign-in')
  t.equal((await cli(env, 'enable-user', '--email', 'grace@example.test')).code, 0)
  t.match(await keys.authenticate(personal.key), { ok: true })
})

t.test('rotate-keys and list-keys', async (t) => {
  const r = await testRedis(t)
  const env = testEnv(r)
  const rotated = JSON.parse((await cli(env, 'rotate-keys', '--activate-in', '0', '--json')).out)
  t.ok(rotated.kid)
  t.not(rotated.kid, rotated.previousKid)
  const keys = JSON.parse((await cli(env, 'list-keys', '--json')).out).keys as Array<{ kid: string, signing: boolean, published: boolean }>
  t.equal(keys.length, 2)
  t.equal(keys.find((k) => k.signing)?.kid, rotated.kid)
  t.ok(keys.every((k) => k.published))
  t.equal((await cli(env, 'rotate-keys', '--activate-in', 'soon')).code, 2)
})

t.test('usage errors and bad configuration', async (t) => {
  const r = await testRedis(t)
  const env = testEnv(r)
  t.equal((await cli(env)).code, 2, 'no command')
  t.equal((await cli(env, '--help')).code, 0)
  const unknown = await cli(env, 'frobnicate')
  t.equal(unknown.code, 2)
  t.match(unknown.err, /unknown command frobnicate/)
  t.equal((await cli(env, 'seed', '--colour')).code, 2, 'unknown option')
  const bad = await cli({ ...env, REDIS_PREFIX: 'bad prefix!' }, 'seed')
  t.equal(bad.code, 1)
  t.match(bad.err, /^cli: invalid configuration: REDIS_PREFIX/)
})

t.test('runs as a process the way `npm run cli` does', async (t) => {
  const r = await testRedis(t)
  const root = join(import.meta.dirname, '..', '..', '..')
  const child = spawn(process.execPath, ['--import', 'tsx', 'shared/cli/src/cli.ts', 'create-api-key', '--name', 'proc', '--json'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...testEnv(r) }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.match(JSON.parse(out).key, /^uspl_/)
  const failing = spawn(process.execPath, ['--import', 'tsx', 'shared/cli/src/cli.ts', 'revoke-api-key', 'key_nope'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...testEnv(r) }, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  failing.stderr.on('data', (d) => { err += d })
  const [failCode] = await once(failing, 'exit')
  t.equal(failCode, 1)
  t.equal(err.trim(), 'cli: revoke-api-key: no API key key_nope')
})
