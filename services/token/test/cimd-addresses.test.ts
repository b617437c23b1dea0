// Which addresses a client metadata document may be fetched from (SSRF rules), IPv4 and IPv6.
import t from 'tap'
import { addressProblem, embeddedIpv4 } from '../src/lib/cimd/addresses.ts'
import { documentUrlProblem, cacheLifetime } from '../src/lib/cimd/fetch.ts'

t.test('refused: loopback, private, link-local, CGNAT, multicast, unspecified, 0/8, ULA, mapped, metadata', async (t) => {
  for (const a of ['127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.10.10', '100.64.0.1', '100.127.255.254',
    '224.0.0.251', '239.255.255.250', '0.0.0.0', '0.1.2.3', '255.255.255.255', '240.0.0.1', '198.18.0.1', '192.0.2.1',
    '::', '::1', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:192.168.0.1',
    '64:ff9b::a9fe:a9fe', '2002:c0a8:0101::1', '::127.0.0.1', '2001:db8::1']) {
    t.ok(addressProblem(a), `${a} refused`)
  }
  for (const a of ['169.254.169.254', 'fd00:ec2::254', '::ffff:169.254.169.254', '100.100.100.200']) {
    t.match(addressProblem(a, { allowPrivate: true }), /cloud metadata/, `${a} refused even where private addresses are allowed`)
  }
  t.equal(addressProblem('127.0.0.1', { allowPrivate: true }), null, 'an allowed host may be private')
})

t.test('allowed: public addresses', async (t) => {
  for (const a of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::6810:84e5', '2a00:1450:4007:80e::200e', '::ffff:8.8.8.8']) {
    t.equal(addressProblem(a), null, `${a} allowed`)
  }
  t.equal(embeddedIpv4('::ffff:7f00:1'), '127.0.0.1')
  t.equal(embeddedIpv4('2606:4700::1'), null)
})

t.test('document URLs and cache lifetimes', async (t) => {
  t.equal(documentUrlProblem('https://claude.ai/oauth/claude-code-client-metadata'), null)
  t.equal(documentUrlProblem('https://chatgpt.com/oauth/client.json?v=2'), null, 'a query is allowed')
  for (const [url, why] of [['http://claude.ai/x', /https/], ['https://claude.ai', /no path/], ['https://claude.ai/', /no path/], ['https://u:p@claude.ai/x', /credentials/],
    ['https://claude.ai/x#f', /fragment/], ['https://claude.ai/a/../b', /dot segments/], ['https://claude.ai/./b', /dot segments/], ['https://claude.ai/%2e%2e/b', /dot segments/], ['nonsense', /valid URL/]] as const) {
    t.match(documentUrlProblem(url), why, url)
  }
  t.equal(cacheLifetime({ 'cache-control': 'public, max-age=600' }), 600)
  t.equal(cacheLifetime({ 'cache-control': 'no-store' }), 0)
  t.equal(cacheLifetime({ 'cache-control': 'private, max-age=600' }), 0)
  t.equal(cacheLifetime({ expires: new Date(Date.now() + 120000).toUTCString(), date: new Date().toUTCString() }) as number > 100, true)
  t.equal(cacheLifetime({}), null)
})
