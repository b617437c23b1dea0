// Clients identified by a metadata document (an https client_id) beside registered ones: listed with
// their kind and host, shown by host in Connected Apps, revoked, disabled and enabled like any client.
import t from 'tap'
import { ClientStore, type Client } from '@uspl/core'
import { setup, bearer } from './helper.ts'

t.test('operators list, revoke and enable a metadata-document client; users see its host', async (t) => {
  const f = await setup(t)
  const key = await f.operatorKey()
  const ann = await f.user('Ann')
  const registered = await f.client('Cursor')
  const url = 'https://claude.ai/oauth/claude-code-client-metadata'
  const store = new ClientStore(f.r.redis, 86400)
  await store.upsertDocumentClient(url, { client_name: 'Claude Code', redirect_uris: ['http://localhost/callback'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] })
  const cimd = await store.get(url) as Client
  await f.grant(ann, cimd, { sessions: 1 })
  await f.grant(ann, registered)

  const list = (await f.app.inject({ url: '/v1/clients', headers: bearer(key) })).json().items as Array<Record<string, unknown>>
  const entry = list.find((c) => c.client_id === url)
  t.same([entry?.kind, entry?.host, entry?.active_grants, entry?.client_name], ['metadata_document', 'claude.ai', 1, 'Claude Code'])
  t.same(list.find((c) => c.client_id === registered.clientId)?.kind, 'registered')
  t.equal(list.find((c) => c.client_id === registered.clientId)?.host, null)
  t.type(entry?.last_used_at, 'string')
  t.equal(entry?.duplicate_of, null, 'no registration hygiene mark')

  const s = await f.signIn(ann)
  const mine = (await f.app.inject({ url: '/v1/connections', headers: { cookie: s.cookie } })).json().items as Array<Record<string, unknown>>
  t.equal(mine.find((c) => c.client_id === url)?.client_host, 'claude.ai', 'Connected Apps shows the document host')
  const page = await f.app.inject({ url: '/connections', headers: { cookie: s.cookie } })
  t.match(page.body, '<p class="host"><bdi>claude.ai</bdi></p>')

  const revoked = await f.app.inject({ method: 'POST', url: `/v1/clients/${encodeURIComponent(url)}/revoke`, headers: bearer(key) })
  t.equal(revoked.statusCode, 200, revoked.body)
  t.same([revoked.json().disabled, revoked.json().grants_revoked, revoked.json().sessions_closed], [true, 1, 1])
  t.not((await store.get(url))?.disabledAt, null, 'disabled')
  t.equal((await store.get(registered.clientId))?.disabledAt, null, 'the registered client is untouched')
  const enabled = await f.app.inject({ method: 'POST', url: `/v1/clients/${encodeURIComponent(url)}/enable`, headers: bearer(key) })
  t.equal(enabled.statusCode, 200)
  t.equal((await store.get(url))?.disabledAt, null, 'enabled again')
  const filtered = await f.app.inject({ url: `/v1/connections?client_id=${encodeURIComponent(url)}`, headers: bearer(key) })
  t.equal(filtered.statusCode, 200, 'a URL client_id filter is accepted')
})
