// Issue 12, as an attacker sends it: raw HTTP to the listening service, no cookies, forged credentials.
// Each test is named after the hole it pins.
import t from 'tap'
import { startStack, registerClient } from './helpers.ts'

function basic (id: string, secret = 'guessed-secret'): string {
  return 'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')
}

async function post (url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() })
}

t.test('invalid_client after HTTP Basic carries WWW-Authenticate: Basic at /token and /revoke (RFC 6749 §5.2)', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const cases: Array<{ name: string, path: string, form: Record<string, string>, authorization: string }> = [
    { name: '/token, unknown client', path: '/token', form: { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43) }, authorization: basic('cli_forged') },
    { name: '/token, malformed Basic', path: '/token', form: { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43) }, authorization: 'Basic ' + Buffer.from('%E0%A4%A:x').toString('base64') },
    { name: '/revoke, malformed Basic', path: '/revoke', form: { token: 'x'.repeat(43) }, authorization: 'Basic ' + Buffer.from('%zz:x').toString('base64') }
  ]
  for (const c of cases) {
    const res = await post(stack.issuer + c.path, c.form, { authorization: c.authorization })
    t.equal(res.status, 401, `${c.name}: 401`)
    t.equal((await res.json()).error, 'invalid_client', `${c.name}: invalid_client`)
    t.match(res.headers.get('www-authenticate'), /^Basic realm="[^"]+"/, `${c.name}: Basic challenge`)
  }
  // a known client over Basic is not challenged; the same refusal without Basic is not either
  const known = await post(`${stack.issuer}/token`, { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43) }, { authorization: basic(client.client_id) })
  t.equal(known.status, 400, 'known client: the grant is what is refused')
  t.equal(known.headers.get('www-authenticate'), null)
  const noBasic = await post(`${stack.issuer}/token`, { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43), client_id: 'cli_forged' })
  t.equal(noBasic.status, 401)
  t.equal(noBasic.headers.get('www-authenticate'), null, 'no Basic used: no Basic challenge')
})
