import type { ToolHost } from './host.ts'
import { z } from 'zod'
import { WorkspaceService } from '@uspl/core'
import { callerOf, ok, page, run, workspaceId, type ToolDeps } from './context.ts'

const linkId = z.string().min(1).max(64).describe('The recording link id (e.g. "lnk_…").')
const access = z.enum(['workspace', 'public']).describe('Who can open the link: "workspace" (members only) or "public" (anyone with the URL).')
const title = z.string().trim().min(1).max(200).describe('A title for the link, shown to people who open it.')
const expiresAt = z.string().datetime({ offset: true }).describe('When the link stops working, as an ISO 8601 date-time (e.g. "2030-01-31T12:00:00Z").')

/** The link tools: arguments in, the shared WorkspaceService (membership, rules, repository) does the rest. */
export function registerLinkTools (host: ToolHost, deps: ToolDeps): void {
  const service = new WorkspaceService(deps.accounts, deps.repo)
  host.tool('list_recording_links', {
    title: 'List recording links',
    description: 'Lists the share links of a workspace, newest first, optionally only those of one recording. Pass nextCursor back as cursor for the next page.',
    inputSchema: { workspace_id: workspaceId, recording_id: z.string().min(1).max(64).optional().describe('Only the links of this recording.'), ...page },
    annotations: { readOnlyHint: true }
  }, async (args, extra) => run(deps, async () => {
    const result = await service.listLinks(callerOf(extra), args.workspace_id, { recordingId: args.recording_id, cursor: args.cursor, limit: args.limit })
    return ok(`${result.items.length} link(s)${result.nextCursor ? '; more with nextCursor' : ''}.`, { links: result.items, nextCursor: result.nextCursor })
  }))

  host.tool('get_recording_link', {
    title: 'Get a recording link',
    description: 'Returns one share link: its URL, recording, access, expiry and creator.',
    inputSchema: { workspace_id: workspaceId, link_id: linkId },
    annotations: { readOnlyHint: true }
  }, async (args, extra) => run(deps, async () => {
    const link = await service.getLink(callerOf(extra), args.workspace_id, args.link_id)
    return ok(`Link "${link.title}": ${link.url}`, { link })
  }))

  host.tool('create_recording_link', {
    title: 'Create a recording link',
    description: 'Creates a share link to a recording of the workspace. Any member may create links.',
    inputSchema: { workspace_id: workspaceId, recording_id: z.string().min(1).max(64).describe('The recording to link to.'), title, access: access.optional().describe('Default "workspace". ' + access.description), expires_at: expiresAt.optional() }
  }, async (args, extra) => run(deps, async () => {
    const link = await service.createLink(callerOf(extra), args.workspace_id, { recordingId: args.recording_id, title: args.title, access: args.access, expiresAt: args.expires_at ?? null })
    return ok(`Created link "${link.title}": ${link.url}`, { link })
  }))

  host.tool('update_recording_link', {
    title: 'Update a recording link',
    description: 'Changes a share link\'s title, access or expiry (expires_at null removes the expiry). Any member may update links; fields left out stay as they are.',
    inputSchema: { workspace_id: workspaceId, link_id: linkId, title: title.optional(), access: access.optional(), expires_at: expiresAt.nullable().optional() },
    annotations: { idempotentHint: true }
  }, async (args, extra) => run(deps, async () => {
    const link = await service.updateLink(callerOf(extra), args.workspace_id, args.link_id, { title: args.title, access: args.access, expiresAt: args.expires_at })
    return ok(`Updated link "${link.title}".`, { link })
  }))

  host.tool('delete_recording_link', {
    title: 'Delete a recording link',
    description: 'Deletes a share link; people holding its URL can no longer open it. Allowed for the workspace\'s owners and admins, and for the link\'s creator.',
    inputSchema: { workspace_id: workspaceId, link_id: linkId },
    annotations: { destructiveHint: true, idempotentHint: true }
  }, async (args, extra) => run(deps, async () => {
    const link = await service.deleteLink(callerOf(extra), args.workspace_id, args.link_id)
    return ok(`Deleted link "${link.title}".`, { deleted: { id: link.id } })
  }))
}
