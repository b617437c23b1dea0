// One policy, two doors: the same table of (role, action, resource) run through the MCP tools (the SDK's
// client against a real gateway) and through the workspace REST API (a personal key), on one Redis. Each
// row must end the same way on both: allowed on both or refused on both with the same sentence, and the
// same effect on the data.
import t from 'tap'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { testRedis } from '@uspl/testing'
import { AccountStore, ApiKeyStore, RedisWorkspaceRepository, type Role } from '@uspl/core'
import { startIssuer, startGateway, grantFor, tokenFor, connect, text } from '../services/gateway/test/helpers.ts'
import { apiApp } from '../services/api/test/helper.ts'

type Who = 'owner' | 'admin' | 'member' | 'creator' | 'stranger'
type Action = 'list_recordings' | 'get_recording' | 'delete_recording' | 'list_links' | 'get_link' | 'create_link' | 'update_link' | 'delete_link'

const ROLES: Record<Who, Role | null> = { owner: 'owner', admin: 'admin', member: 'member', creator: 'member', stranger: null }
const ACTIONS: Action[] = ['list_recordings', 'get_recording', 'delete_recording', 'list_links', 'get_link', 'create_link', 'update_link', 'delete_link']
/** the seed's table, as the expected outcome; the test checks both doors agree with it and with each other */
const ALLOWED: Record<Action, Who[]> = {
  list_recordings: ['owner', 'admin', 'member', 'creator'],
  get_recording: ['owner', 'admin', 'member', 'creator'],
  delete_recording: ['owner', 'admin', 'creator'],
  list_links: ['owner', 'admin', 'member', 'creator'],
  get_link: ['owner', 'admin', 'member', 'creator'],
  create_link: ['owner', 'admin', 'member', 'creator'],
  update_link: ['owner', 'admin', 'member', 'creator'],
  delete_link: ['owner', 'admin', 'creator']
}

interface Outcome { allowed: boolean, message: string | null }

t.test('every (role, action) ends the same through the MCP tools and the REST API', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const api = await apiApp(t, r)
  const accounts = new AccountStore(r.redis)
  const apiKeys = new ApiKeyStore(r.redis)
  const repo = new RedisWorkspaceRepository(r.redis)
  const ws = await accounts.createWorkspace('Acme')
  const other = await accounts.createWorkspace('Elsewhere')

  const users = {} as Record<Who, { id: string, mcp: Client, key: string }>
  for (const who of Object.keys(ROLES) as Who[]) {
    const user = await accounts.createUser({ email: `${who}@doors.test`, name: who, password: 'correct horse battery' })
    const role = ROLES[who]
    if (role) await accounts.setRole(ws.id, user.id, role)
    else await accounts.setRole(other.id, user.id, 'owner')
    const { client } = await connect(t, gw, tokenFor(issuer, gw, await grantFor(r, user.id)))
    users[who] = { id: user.id, mcp: client, key: (await apiKeys.create(`${who} key`, { userId: user.id })).key }
  }

  /** a fresh recording and link by the creator, so a destructive row never sees the other door's effect */
  const fixture = async (): Promise<{ rec: string, link: string }> => {
    const rec = await repo.createRecording(ws.id, { title: 'Weekly sync', durationSeconds: 60 }, users.creator.id)
    const link = await repo.createRecordingLink(ws.id, { recordingId: rec.id, title: 'sync link' }, users.creator.id)
    return { rec: rec.id, link: link.id }
  }

  const viaMcp = async (who: Who, action: Action, f: { rec: string, link: string }): Promise<Outcome> => {
    const args: Record<Action, [string, Record<string, unknown>]> = {
      list_recordings: ['list_recordings', {}],
      get_recording: ['get_recording', { recording_id: f.rec }],
      delete_recording: ['delete_recording', { recording_id: f.rec }],
      list_links: ['list_recording_links', { recording_id: f.rec }],
      get_link: ['get_recording_link', { link_id: f.link }],
      create_link: ['create_recording_link', { recording_id: f.rec, title: 'new link' }],
      update_link: ['update_recording_link', { link_id: f.link, title: 'renamed' }],
      delete_link: ['delete_recording_link', { link_id: f.link }]
    }
    const [name, extra] = args[action]
    const result = await users[who].mcp.callTool({ name, arguments: { workspace_id: ws.id, ...extra } })
    return { allowed: result.isError !== true, message: result.isError ? text(result) : null }
  }

  const viaRest = async (who: Who, action: Action, f: { rec: string, link: string }): Promise<Outcome> => {
    const base = `/v1/workspaces/${ws.id}`
    const requests: Record<Action, [string, string, object?]> = {
      list_recordings: ['GET', `${base}/recordings`],
      get_recording: ['GET', `${base}/recordings/${f.rec}`],
      delete_recording: ['DELETE', `${base}/recordings/${f.rec}`],
      list_links: ['GET', `${base}/recordings/${f.rec}/links`],
      get_link: ['GET', `${base}/links/${f.link}`],
      create_link: ['POST', `${base}/recordings/${f.rec}/links`, { title: 'new link' }],
      update_link: ['PATCH', `${base}/links/${f.link}`, { title: 'renamed' }],
      delete_link: ['DELETE', `${base}/links/${f.link}`]
    }
    const [method, url, payload] = requests[action]
    const res = await api.inject({ method: method as 'GET', url, payload, headers: { authorization: `Bearer ${users[who].key}` } })
    if (res.statusCode < 300) return { allowed: true, message: null }
    t.ok([403, 404].includes(res.statusCode), `${who} ${action}: a refusal is 403 or 404 (got ${res.statusCode})`)
    return { allowed: false, message: (res.json() as { error: { message: string } }).error.message }
  }

  const state = async (f: { rec: string, link: string }): Promise<string> => {
    const [rec, link] = await Promise.all([repo.getRecording(ws.id, f.rec), repo.getRecordingLink(ws.id, f.link)])
    return `${rec ? 'rec' : '-'} ${link ? link.title : '-'} ${(await repo.listRecordingLinks(ws.id, { recordingId: f.rec })).items.length}`
  }

  for (const who of Object.keys(ROLES) as Who[]) {
    for (const action of ACTIONS) {
      const a = await fixture()
      const b = await fixture()
      const mcp = await viaMcp(who, action, a)
      const rest = await viaRest(who, action, b)
      const expected = ALLOWED[action].includes(who)
      t.equal(mcp.allowed, expected, `MCP: ${who} ${action} ${expected ? 'allowed' : 'refused'}`)
      t.equal(rest.allowed, expected, `REST: ${who} ${action} ${expected ? 'allowed' : 'refused'}`)
      const unify = (m: string | null): string | null => m?.replaceAll(a.rec, 'REC').replaceAll(a.link, 'LNK').replaceAll(b.rec, 'REC').replaceAll(b.link, 'LNK') ?? null
      t.equal(unify(rest.message), unify(mcp.message), `${who} ${action}: the same sentence on both doors`)
      t.equal(await state(b), await state(a), `${who} ${action}: the same effect on the data`)
    }
  }

  // a role change applies to the next call of either door
  await accounts.setRole(ws.id, users.member.id, 'admin')
  const a = await fixture()
  const b = await fixture()
  t.equal((await viaMcp('member', 'delete_recording', a)).allowed, true, 'MCP: promoted member deletes')
  t.equal((await viaRest('member', 'delete_recording', b)).allowed, true, 'REST: promoted member deletes')
})
