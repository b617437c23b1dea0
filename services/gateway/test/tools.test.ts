// The workspace tools over MCP (SDK client, real HTTP, real Redis), called by every role: the table's
// outcomes, refusals as tool errors, pagination, and no reach into another workspace.
import t from 'tap'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { testRedis } from '@uspl/testing'
import { AccountStore, RedisWorkspaceRepository } from '@uspl/core'
import { startIssuer, startGateway, grantFor, tokenFor, connect, text } from './helpers.ts'

const TOOLS = ['list_workspaces', 'list_recordings', 'get_recording', 'delete_recording', 'list_recording_links', 'get_recording_link', 'create_recording_link', 'update_recording_link', 'delete_recording_link']

t.test('tools by role', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const accounts = new AccountStore(r.redis)
  const repo = new RedisWorkspaceRepository(r.redis)
  const ws = await accounts.createWorkspace('Acme')
  const other = await accounts.createWorkspace('Other')
  await accounts.setRole(ws.id, 'usr_owner', 'owner')
  await accounts.setRole(ws.id, 'usr_admin', 'admin')
  await accounts.setRole(ws.id, 'usr_member', 'member')
  await accounts.setRole(ws.id, 'usr_creator', 'member')
  await accounts.setRole(other.id, 'usr_stranger', 'owner')
  const byCreator = await repo.createRecording(ws.id, { title: 'Creator demo', durationSeconds: 60 }, 'usr_creator')
  const byOwner = await repo.createRecording(ws.id, { title: 'Owner demo', durationSeconds: 90 }, 'usr_owner')
  const forAdmin = await repo.createRecording(ws.id, { title: 'Admin target', durationSeconds: 30 }, 'usr_member')
  const secret = await repo.createRecording(other.id, { title: 'Other secret', durationSeconds: 10 }, 'usr_stranger')
  const secretLink = await repo.createRecordingLink(other.id, { recordingId: secret.id, title: 'secret link' }, 'usr_stranger')

  const clients: Record<string, Client> = {}
  for (const user of ['owner', 'admin', 'member', 'creator', 'stranger']) {
    const grant = await grantFor(r, `usr_${user}`)
    clients[user] = (await connect(t, gw, tokenFor(issuer, gw, grant))).client
  }
  const call = (user: string, name: string, args: Record<string, unknown> = {}) => clients[user].callTool({ name, arguments: args })

  const { tools } = await clients.member.listTools()
  t.same(tools.map((x) => x.name).sort(), [...TOOLS].sort(), 'the nine tools')
  for (const tool of tools) {
    t.ok((tool.description ?? '').length > 30, `${tool.name} is described`)
    t.equal(tool.inputSchema.type, 'object', `${tool.name} has an input schema`)
  }
  t.ok(tools.find((x) => x.name === 'list_recordings')?.inputSchema.properties?.cursor, 'lists take a cursor')

  // list_workspaces: each sees their own, with their role
  for (const [user, role] of [['owner', 'owner'], ['admin', 'admin'], ['member', 'member'], ['creator', 'member']]) {
    const res = await call(user, 'list_workspaces')
    t.same((res.structuredContent as { workspaces: unknown[] }).workspaces, [{ id: ws.id, name: 'Acme', role }], `${user} sees Acme as ${role}`)
  }
  t.same((await call('stranger', 'list_workspaces')).structuredContent, { workspaces: [{ id: other.id, name: 'Other', role: 'owner' }] })

  // reads: any member; a non-member learns nothing
  for (const user of ['owner', 'admin', 'member', 'creator']) {
    const list = await call(user, 'list_recordings', { workspace_id: ws.id })
    t.notOk(list.isError, `${user} lists recordings`)
    t.equal((list.structuredContent as { recordings: unknown[] }).recordings.length, 3)
    t.notOk((await call(user, 'get_recording', { workspace_id: ws.id, recording_id: byOwner.id })).isError, `${user} gets a recording`)
  }
  const refused = await call('stranger', 'list_recordings', { workspace_id: ws.id })
  t.ok(refused.isError, 'a non-member cannot list')
  t.match(text(refused), /not found among your workspaces/)
  t.ok((await call('stranger', 'get_recording', { workspace_id: ws.id, recording_id: byOwner.id })).isError, 'nor get')
  t.ok((await call('stranger', 'create_recording_link', { workspace_id: ws.id, recording_id: byOwner.id, title: 'x' })).isError, 'nor create a link')
  t.ok((await call('stranger', 'delete_recording', { workspace_id: ws.id, recording_id: byOwner.id })).isError, 'nor delete')

  // another workspace's items are unreachable through one's own workspace id
  t.match(text(await call('member', 'get_recording', { workspace_id: ws.id, recording_id: secret.id })), /No recording/)
  t.match(text(await call('member', 'get_recording_link', { workspace_id: ws.id, link_id: secretLink.id })), /No recording link/)
  t.ok((await call('owner', 'delete_recording_link', { workspace_id: ws.id, link_id: secretLink.id })).isError)
  t.ok((await call('owner', 'create_recording_link', { workspace_id: ws.id, recording_id: secret.id, title: 'steal' })).isError, 'cannot link another workspace\'s recording')
  t.ok((await call('member', 'list_recordings', { workspace_id: other.id })).isError)
  t.ok(await repo.getRecording(other.id, secret.id), 'the other workspace is intact')

  // create and update links: any member
  const links: Record<string, string> = {}
  for (const user of ['owner', 'admin', 'member', 'creator']) {
    const created = await call(user, 'create_recording_link', { workspace_id: ws.id, recording_id: byOwner.id, title: `${user}'s link`, access: 'public', expires_at: '2030-01-31T12:00:00Z' })
    t.notOk(created.isError, `${user} creates a link`)
    const link = (created.structuredContent as { link: { id: string, createdBy: string, access: string, url: string } }).link
    t.equal(link.createdBy, `usr_${user}`)
    t.equal(link.access, 'public')
    links[user] = link.id
    const updated = await call(user, 'update_recording_link', { workspace_id: ws.id, link_id: links.owner, title: `renamed by ${user}`, expires_at: null })
    t.notOk(updated.isError, `${user} updates a link`)
    t.equal((updated.structuredContent as { link: { title: string, expiresAt: null } }).link.title, `renamed by ${user}`)
  }
  t.notOk((await call('member', 'get_recording_link', { workspace_id: ws.id, link_id: links.creator })).isError)
  const linkList = await call('member', 'list_recording_links', { workspace_id: ws.id, recording_id: byOwner.id })
  t.equal((linkList.structuredContent as { links: unknown[] }).links.length, 4)

  // delete a link: admin, owner, or its creator
  const memberDeletes = await call('member', 'delete_recording_link', { workspace_id: ws.id, link_id: links.creator })
  t.ok(memberDeletes.isError, 'a member cannot delete someone else\'s link')
  t.match(text(memberDeletes), /needs the owner or admin role.*or being its creator \(your role: member\)/)
  t.notOk((await call('creator', 'delete_recording_link', { workspace_id: ws.id, link_id: links.creator })).isError, 'its creator can')
  t.notOk((await call('admin', 'delete_recording_link', { workspace_id: ws.id, link_id: links.member })).isError, 'an admin can')
  t.notOk((await call('owner', 'delete_recording_link', { workspace_id: ws.id, link_id: links.admin })).isError, 'an owner can')
  t.match(text(await call('owner', 'delete_recording_link', { workspace_id: ws.id, link_id: links.admin })), /No recording link/, 'gone')

  // delete a recording: admin, owner, or its creator
  t.ok((await call('member', 'delete_recording', { workspace_id: ws.id, recording_id: byCreator.id })).isError, 'a member cannot delete someone else\'s recording')
  t.notOk((await call('creator', 'delete_recording', { workspace_id: ws.id, recording_id: byCreator.id })).isError, 'its creator can')
  t.notOk((await call('admin', 'delete_recording', { workspace_id: ws.id, recording_id: forAdmin.id })).isError, 'an admin can')
  t.notOk((await call('owner', 'delete_recording', { workspace_id: ws.id, recording_id: byOwner.id })).isError, 'an owner can')
  t.equal(await repo.getRecording(ws.id, byOwner.id), null)
  t.equal((await repo.listRecordingLinks(ws.id, {})).items.length, 0, 'its links went with it')

  // roles are read at call time
  await accounts.setRole(ws.id, 'usr_member', 'admin')
  const promoted = await repo.createRecording(ws.id, { title: 'x', durationSeconds: 1 }, 'usr_owner')
  t.notOk((await call('member', 'delete_recording', { workspace_id: ws.id, recording_id: promoted.id })).isError, 'a promotion applies to the next call')
  await accounts.removeMember(ws.id, 'usr_member')
  t.ok((await call('member', 'list_recordings', { workspace_id: ws.id })).isError, 'so does a removal')
})

t.test('pagination and bad arguments', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const accounts = new AccountStore(r.redis)
  const repo = new RedisWorkspaceRepository(r.redis)
  const ws = await accounts.createWorkspace('Paged')
  await accounts.setRole(ws.id, 'usr_p', 'member')
  const ids = new Set<string>()
  for (let i = 0; i < 5; i++) ids.add((await repo.createRecording(ws.id, { title: `r${i}`, durationSeconds: i }, 'usr_p')).id)
  const { client } = await connect(t, gw, tokenFor(issuer, gw, await grantFor(r, 'usr_p')))
  const seen: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const res = await client.callTool({ name: 'list_recordings', arguments: { workspace_id: ws.id, limit: 2, ...(cursor ? { cursor } : {}) } })
    const page = res.structuredContent as { recordings: Array<{ id: string }>, nextCursor: string | null }
    seen.push(...page.recordings.map((x) => x.id))
    cursor = page.nextCursor ?? undefined
    pages++
  } while (cursor)
  t.equal(pages, 3, 'five recordings in pages of two')
  t.same(new Set(seen), ids, 'each exactly once')
  t.equal(seen.length, 5)

  for (const [what, args] of [
    ['limit 0', { workspace_id: ws.id, limit: 0 }],
    ['limit 1000', { workspace_id: ws.id, limit: 1000 }],
    ['a forged cursor', { workspace_id: ws.id, cursor: 'bm9wZQ' }],
    ['no workspace', {}],
    ['a number for the workspace', { workspace_id: 7 }]
  ] as const) {
    const res = await client.callTool({ name: 'list_recordings', arguments: args })
    t.ok(res.isError, `${what}: a tool error`)
    t.ok(text(res).length > 10, `${what}: with a message (${text(res).slice(0, 80)})`)
  }
  const noChange = await client.callTool({ name: 'update_recording_link', arguments: { workspace_id: ws.id, link_id: 'lnk_x' } })
  t.match(text(noChange), /Nothing to change/)
  const badDate = await client.callTool({ name: 'create_recording_link', arguments: { workspace_id: ws.id, recording_id: [...ids][0], title: 't', expires_at: 'tomorrow' } })
  t.ok(badDate.isError, 'a date that is not ISO 8601')
  const unknownRecording = await client.callTool({ name: 'create_recording_link', arguments: { workspace_id: ws.id, recording_id: 'rec_nope', title: 't' } })
  t.match(text(unknownRecording), /no recording rec_nope/)
})

t.test('ids that name other Redis keys (rec_…:links, a:b) are simply not found, never a store error', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer)
  const accounts = new AccountStore(r.redis)
  const repo = new RedisWorkspaceRepository(r.redis)
  const ws = await accounts.createWorkspace('Keys')
  await accounts.setRole(ws.id, 'usr_k', 'owner')
  const rec = await repo.createRecording(ws.id, { title: 'kept', durationSeconds: 1 }, 'usr_k')
  const link = await repo.createRecordingLink(ws.id, { recordingId: rec.id, title: 'kept link' }, 'usr_k')
  const { client } = await connect(t, gw, tokenFor(issuer, gw, await grantFor(r, 'usr_k')))
  const pathLike = [`${rec.id}:links`, `${ws.id}:links`, `../${rec.id}`, '*', `${rec.id}\u0000`]
  for (const id of pathLike) {
    for (const [name, args] of [
      ['get_recording', { workspace_id: ws.id, recording_id: id }],
      ['delete_recording', { workspace_id: ws.id, recording_id: id }],
      ['list_recording_links', { workspace_id: ws.id, recording_id: id }],
      ['create_recording_link', { workspace_id: ws.id, recording_id: id, title: 't' }],
      ['get_recording_link', { workspace_id: ws.id, link_id: id }],
      ['update_recording_link', { workspace_id: ws.id, link_id: id, title: 't' }],
      ['delete_recording_link', { workspace_id: ws.id, link_id: id }],
      ['list_recordings', { workspace_id: `${ws.id}:x` }]
    ] as const) {
      const res = await client.callTool({ name, arguments: args as Record<string, unknown> })
      t.ok(res.isError, `${name}(${JSON.stringify(id)}): a tool error`)
      t.notMatch(text(res), /WRONGTYPE|ERR |Redis/i, `${name}(${JSON.stringify(id)}): no store error reaches the client`)
    }
  }
  t.ok(await repo.getRecording(ws.id, rec.id), 'the recording is intact')
  t.ok(await repo.getRecordingLink(ws.id, link.id), 'and its link')
})

/** A repository whose reads fail the way a store does, with internals in the message. */
class BrokenRepository extends RedisWorkspaceRepository {
  override async getRecording (): Promise<null> {
    throw new Error('WRONGTYPE Operation against a key holding the wrong kind of value (rec:internal:key)')
  }
}

t.test('tool-errors-leak-internals: an unexpected failure is a generic isError result with a reference', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer, {}, undefined, { repository: new BrokenRepository(r.redis) })
  const accounts = new AccountStore(r.redis)
  const ws = await accounts.createWorkspace('Broken')
  await accounts.setRole(ws.id, 'usr_a', 'member')
  const { client } = await connect(t, gw, tokenFor(issuer, gw, await grantFor(r, 'usr_a')))
  const result = await client.callTool({ name: 'get_recording', arguments: { workspace_id: ws.id, recording_id: 'rec_1' } })
  t.equal(result.isError, true)
  t.match(text(result), /^Something went wrong on our side; try again later \(reference [0-9a-f]{8}\)\.$/)
  t.notMatch(text(result), /WRONGTYPE|rec:internal/, 'no store internals reach the client')
})
