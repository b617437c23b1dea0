// The operator command line's enterprise commands: trust an IdP (inline JWKS from a file, or a jwks_uri),
// list, link a subject, remove; bad input is a usage error (exit 2) naming the field.
import t from 'tap'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { testRedis, testEnv } from '@uspl/testing'
import { TestIdp } from '@uspl/testing/enterprise-idp'
import { AccountStore, EnterpriseIssuerStore, enterpriseIssuerId } from '@uspl/core'
import { main } from '../src/cli.ts'

async function cli (env: Record<string, string>, ...args: string[]): Promise<{ code: number, out: string, err: string }> {
  const out: string[] = []
  const err: string[] = []
  const code = await main(args, env, { out: (l) => out.push(l) }, (l) => err.push(l))
  return { code, out: out.join('\n'), err: err.join('\n') }
}

t.test('add, list, link and remove enterprise issuers', async (t) => {
  const r = await testRedis(t)
  const env = testEnv(r)
  const dir = mkdtempSync(join(tmpdir(), 'ent-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const idp = new TestIdp('https://idp.acme.example')
  const file = join(dir, 'jwks.json')
  writeFileSync(file, JSON.stringify(idp.jwks))

  const added = await cli(env, 'add-enterprise-issuer', '--issuer', idp.issuer, '--jwks-file', file, '--domains', 'Acme.example,acme.co', '--tenant', 'acme', '--json')
  t.equal(added.code, 0, added.err)
  const issuer = JSON.parse(added.out).issuer
  t.equal(issuer.id, enterpriseIssuerId(idp.issuer))
  t.same(issuer.domains, ['acme.example', 'acme.co'])
  t.equal(issuer.tenant, 'acme')
  t.equal(issuer.jwks.keys[0].kid, idp.kid)

  const other = await cli(env, 'add-enterprise-issuer', '--issuer', 'https://login.other.example', '--jwks-uri', 'https://login.other.example/keys', '--domains', 'other.example', '--subject', 'sub')
  t.equal(other.code, 0, other.err)
  const listed = await cli(env, 'list-enterprise-issuers')
  t.match(listed.out, /https:\/\/idp\.acme\.example\tinline JWKS\tdomains acme\.example,acme\.co\ttenant acme\tsubject by email/)
  t.match(listed.out, /https:\/\/login\.other\.example\/keys\tdomains other\.example\tsubject by sub/)

  await new AccountStore(r.redis).createUser({ email: 'lin@other.example', name: 'Lin', password: 'pw-long-enough' })
  const linked = await cli(env, 'link-enterprise-user', '--issuer', 'https://login.other.example', '--sub', '00u42', '--email', 'lin@other.example', '--json')
  t.equal(linked.code, 0, linked.err)
  const store = new EnterpriseIssuerStore(r.redis)
  t.equal(await store.linkedUser(enterpriseIssuerId('https://login.other.example'), '00u42'), JSON.parse(linked.out).userId)

  const removed = await cli(env, 'remove-enterprise-issuer', enterpriseIssuerId('https://login.other.example'))
  t.equal(removed.code, 0, removed.err)
  t.equal(await store.linkedUser(enterpriseIssuerId('https://login.other.example'), '00u42'), null, 'its links are gone too')
  t.equal((await store.list()).length, 1)
  t.equal((await cli(env, 'remove-enterprise-issuer', 'https://nope.example')).code, 1)
})

t.test('a poll endpoint and its authorization: stored, never shown', async (t) => {
  const r = await testRedis(t)
  const env = testEnv(r)
  const dir = mkdtempSync(join(tmpdir(), 'ent-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const secret = 'Bearer cli-poll-secret-1234'
  const file = join(dir, 'poll-auth')
  writeFileSync(file, `${secret}\n`)
  const idp = new TestIdp('https://idp.poll.example')
  const jwks = join(dir, 'jwks.json')
  writeFileSync(jwks, JSON.stringify(idp.jwks))

  const added = await cli(env, 'add-enterprise-issuer', '--issuer', idp.issuer, '--jwks-file', jwks, '--domains', 'poll.example', '--poll-url', 'https://idp.poll.example/ssf/poll', '--poll-authorization-file', file, '--json')
  t.equal(added.code, 0, added.err)
  t.match(JSON.parse(added.out).issuer, { pollUrl: 'https://idp.poll.example/ssf/poll', pollAuthorizationSet: true })
  t.notMatch(added.out, secret, 'the add output does not show the value')
  const stored = await new EnterpriseIssuerStore(r.redis).get(idp.issuer)
  t.equal(stored?.pollAuthorization, secret, 'stored as given, the file\'s final newline dropped')

  const listed = await cli(env, 'list-enterprise-issuers')
  t.match(listed.out, /\tpoll https:\/\/idp\.poll\.example\/ssf\/poll \(authorization set\)/)
  const json = await cli(env, 'list-enterprise-issuers', '--json')
  t.notMatch(json.out, secret)
  t.equal(JSON.parse(json.out).issuers[0].pollAuthorization, undefined)

  const inline = await cli(env, 'add-enterprise-issuer', '--issuer', idp.issuer, '--jwks-file', jwks, '--domains', 'poll.example', '--poll-url', 'https://idp.poll.example/ssf/poll', '--poll-authorization', 'Bearer other')
  t.equal(inline.code, 0, inline.err)
  t.notMatch(inline.out, 'Bearer other')
  const both = await cli(env, 'add-enterprise-issuer', '--issuer', idp.issuer, '--jwks-file', jwks, '--domains', 'poll.example', '--poll-url', 'https://idp.poll.example/ssf/poll', '--poll-authorization', 'x', '--poll-authorization-file', file)
  t.equal(both.code, 2)
  t.match(both.err, /one of --poll-authorization and --poll-authorization-file/)
  const plain = await cli(env, 'add-enterprise-issuer', '--issuer', idp.issuer, '--jwks-file', jwks, '--domains', 'poll.example', '--poll-url', 'http://idp.poll.example/ssf/poll')
  t.equal(plain.code, 2)
  t.match(plain.err, /poll_url must be an https URL/)
})

t.test('bad input is a usage error naming the field', async (t) => {
  const r = await testRedis(t)
  const env = testEnv(r)
  const cases: Array<[string[], RegExp]> = [
    [['--issuer', 'https://i.example', '--domains', 'i.example'], /exactly one of jwks_uri and jwks/],
    [['--issuer', 'not a url', '--jwks-uri', 'https://i.example/k', '--domains', 'i.example'], /issuer must be an absolute URL/],
    [['--issuer', 'https://i.example', '--jwks-uri', 'https://i.example/k', '--domains', 'not_a_domain'], /not a domain name/],
    [['--issuer', 'https://i.example', '--jwks-uri', 'https://i.example/k', '--domains', 'i.example', '--subject', 'upn'], /--subject must be email or sub/],
    [['--issuer', 'https://i.example', '--jwks-uri', 'https://i.example/k'], /--domains is required/]
  ]
  for (const [args, message] of cases) {
    const res = await cli(env, 'add-enterprise-issuer', ...args)
    t.equal(res.code, 2, args.join(' '))
    t.match(res.err, message)
  }
  // a private key in an inline JWKS is refused: only public keys are trusted material
  const dir = mkdtempSync(join(tmpdir(), 'ent-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'private.json')
  const idp = new TestIdp('https://i.example')
  writeFileSync(file, JSON.stringify({ keys: [idp.privateKey.export({ format: 'jwk' })] }))
  const res = await cli(env, 'add-enterprise-issuer', '--issuer', 'https://i.example', '--jwks-file', file, '--domains', 'i.example')
  t.equal(res.code, 2)
  t.match(res.err, /private or symmetric/)
})
