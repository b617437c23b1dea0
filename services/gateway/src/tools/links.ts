import type { ToolHost } from './host.ts'
import { z } from 'zod'
import { callerOf, mayDelete, ok, page, refusal, requireMember, run, workspaceId, type ToolDeps } from './context.ts'

const linkId = z.string().min(1).max(64).describe('The recording link id (e.g. "lnk_…").')
const access = z.enum(['workspace', 'public']).describe('Who can open the link: "workspace" (members only) or "public" (anyone with the URL).')
const title = z.string().trim().min(1).max(200).describe('A title for the link, shown to people who open it.')
const expiresAt = z.string().datetime({ offset: true }).describe('When the link stops working, as an ISO 8601 date-time (e.g. "2030-01-31T12:00:00Z").')

export function registerLinkTools (host: ToolHost, deps: ToolDeps): void {
  host.tool('list_recording_links', {
    title: 'List recording links',
    description: 'Lists the share links of a workspace, newest first, optionally only those of one recording. Pass nextCursor back as cursor for the next page.',
    inputSchema: { workspace_id: workspaceId, recording_id: z.string().min(1).max(64).optional().describe('Only the links of this recording.'), ...page },
    annotations: { readOnlyHint: true }
  }, async (args, extra) => run(deps, async () => {
    await requireMember(deps, args.workspace_id, callerOf(extra))
    if (args.recording_id && !await deps.repo.getRecording(args.workspace_id, args.recording_id)) {
      return refusal(`No recording ${args.recording_id} in workspace ${args.workspace_id}.`)
    }
    const result = await deps.repo.listRecordingLinks(args.workspace_id, { recordingId: args.recording_id, cursor: args.cursor, limit: args.limit })
    return ok(`${result.items.length} link(s)${result.nextCursor ? '; more with nextCursor' : ''}.`, { links: result.items, nextCursor: result.nextCursor })
  }))

  host.tool('get_recording_link', {
    title: 'Get a recording link',
    description: 'Returns one share link: its URL, recording, access, expiry and creator.',
    inputSchema: { workspace_id: workspaceId, link_id: linkId },
    annotations: { readOnlyHint: true }
  }, async (args, extra) => run(deps, async () => {
    await requireMember(deps, args.workspace_id, callerOf(extra))
    const link = await deps.repo.getRecordingLink(args.workspace_id, args.link_id)
    if (!link) return refusal(`No recording link ${args.link_id} in workspace ${args.workspace_id}.`)
    return ok(`Link "${link.title}": ${link.url}`, { link })
  }))

  host.tool('create_recording_link', {
    title: 'Create a recording link',
    description: 'Creates a share link to a recording of the workspace. Any member may create links.',
    inputSchema: { workspace_id: workspaceId, recording_id: z.string().min(1).max(64).describe('The recording to link to.'), title, access: access.optional().describe('Default "workspace". ' + access.description), expires_at: expiresAt.optional() }
  }, async (args, extra) => run(deps, async () => {
    const userId = callerOf(extra)
    await requireMember(deps, args.workspace_id, userId)
    const link = await deps.repo.createRecordingLink(args.workspace_id, { recordingId: args.recording_id, title: args.title, access: args.access, expiresAt: args.expires_at ?? null }, userId)
    return ok(`Created link "${link.title}": ${link.url}`, { link })
  }))

  host.tool('update_recording_link', {
    title: 'Update a recording link',
    description: 'Changes a share link\'s title, access or expiry (expires_at null removes the expiry). Any member may update links; fields left out stay as they are.',
    inputSchema: { workspace_id: workspaceId, link_id: linkId, title: title.optional(), access: access.optional(), expires_at: expiresAt.nullable().optional() },
    annotations: { idempotentHint: true }
  }, async (args, extra) => run(deps, async () => {
    await requireMember(deps, args.workspace_id, callerOf(extra))
    if (args.title === undefined && args.access === undefined && args.expires_at === undefined) {
      return refusal('Nothing to change: give at least one of title, access or expires_at.')
    }
    const link = await deps.repo.updateRecordingLink(args.workspace_id, args.link_id, { title: args.title, access: args.access, expiresAt: args.expires_at })
    if (!link) return refusal(`No recording link ${args.link_id} in workspace ${args.workspace_id}.`)
    return ok(`Updated link "${link.title}".`, { link })
  }))

  host.tool('delete_recording_link', {
    title: 'Delete a recording link',
    description: 'Deletes a share link; people holding its URL can no longer open it. Allowed for the workspace\'s owners and admins, and for the link\'s creator.',
    inputSchema: { workspace_id: workspaceId, link_id: linkId },
    annotations: { destructiveHint: true, idempotentHint: true }
  }, async (args, extra) => run(deps, async () => {
    const userId = callerOf(extra)
    const role = await requireMember(deps, args.workspace_id, userId)
    const link = await deps.repo.getRecordingLink(args.workspace_id, args.link_id)
    if (!link) return refusal(`No recording link ${args.link_id} in workspace ${args.workspace_id}.`)
    if (!mayDelete(role, link.createdBy, userId)) {
      return refusal(`You cannot delete the link "${link.title}": deleting a link needs the owner or admin role in this workspace, or being its creator (your role: ${role}).`)
    }
    await deps.repo.deleteRecordingLink(args.workspace_id, args.link_id)
    return ok(`Deleted link "${link.title}".`, { deleted: { id: link.id } })
  }))
}
