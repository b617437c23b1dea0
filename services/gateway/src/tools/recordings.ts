import type { ToolHost } from './host.ts'
import { z } from 'zod'
import { callerOf, mayDelete, ok, page, refusal, requireMember, run, workspaceId, type ToolDeps } from './context.ts'

const recordingId = z.string().min(1).max(64).describe('The recording id (e.g. "rec_…").')

export function registerRecordingTools (host: ToolHost, deps: ToolDeps): void {
  host.tool('list_recordings', {
    title: 'List recordings',
    description: 'Lists the recordings of a workspace, newest first, one page at a time. Pass nextCursor back as cursor for the next page.',
    inputSchema: { workspace_id: workspaceId, ...page },
    annotations: { readOnlyHint: true }
  }, async (args, extra) => run(deps, async () => {
    await requireMember(deps, args.workspace_id, callerOf(extra))
    const result = await deps.repo.listRecordings(args.workspace_id, { cursor: args.cursor, limit: args.limit })
    return ok(`${result.items.length} recording(s)${result.nextCursor ? '; more with nextCursor' : ''}.`, { recordings: result.items, nextCursor: result.nextCursor })
  }))

  host.tool('get_recording', {
    title: 'Get a recording',
    description: 'Returns one recording of a workspace: title, duration, who created it and when.',
    inputSchema: { workspace_id: workspaceId, recording_id: recordingId },
    annotations: { readOnlyHint: true }
  }, async (args, extra) => run(deps, async () => {
    await requireMember(deps, args.workspace_id, callerOf(extra))
    const recording = await deps.repo.getRecording(args.workspace_id, args.recording_id)
    if (!recording) return refusal(`No recording ${args.recording_id} in workspace ${args.workspace_id}.`)
    return ok(`Recording "${recording.title}".`, { recording })
  }))

  host.tool('delete_recording', {
    title: 'Delete a recording',
    description: 'Deletes a recording and every link to it, for good. Allowed for the workspace\'s owners and admins, and for the recording\'s creator.',
    inputSchema: { workspace_id: workspaceId, recording_id: recordingId },
    annotations: { destructiveHint: true, idempotentHint: true }
  }, async (args, extra) => run(deps, async () => {
    const userId = callerOf(extra)
    const role = await requireMember(deps, args.workspace_id, userId)
    const recording = await deps.repo.getRecording(args.workspace_id, args.recording_id)
    if (!recording) return refusal(`No recording ${args.recording_id} in workspace ${args.workspace_id}.`)
    if (!mayDelete(role, recording.createdBy, userId)) {
      return refusal(`You cannot delete "${recording.title}": deleting a recording needs the owner or admin role in this workspace, or being its creator (your role: ${role}).`)
    }
    await deps.repo.deleteRecording(args.workspace_id, args.recording_id)
    return ok(`Deleted recording "${recording.title}" and its links.`, { deleted: { id: recording.id } })
  }))
}
