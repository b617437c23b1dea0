import type { ToolHost } from './host.ts'
import { z } from 'zod'
import { WorkspaceService } from '@uspl/core'
import { callerOf, ok, page, run, workspaceId, type ToolDeps } from './context.ts'

const recordingId = z.string().min(1).max(64).describe('The recording id (e.g. "rec_…").')

/** The recording tools: arguments in, the shared WorkspaceService (membership, rules, repository) does the rest. */
export function registerRecordingTools (host: ToolHost, deps: ToolDeps): void {
  const service = new WorkspaceService(deps.accounts, deps.repo)
  host.tool('list_recordings', {
    title: 'List recordings',
    description: 'Lists the recordings of a workspace, newest first, one page at a time. Pass nextCursor back as cursor for the next page.',
    inputSchema: { workspace_id: workspaceId, ...page },
    annotations: { readOnlyHint: true }
  }, async (args, extra) => run(deps, async () => {
    const result = await service.listRecordings(callerOf(extra), args.workspace_id, { cursor: args.cursor, limit: args.limit })
    return ok(`${result.items.length} recording(s)${result.nextCursor ? '; more with nextCursor' : ''}.`, { recordings: result.items, nextCursor: result.nextCursor })
  }))

  host.tool('get_recording', {
    title: 'Get a recording',
    description: 'Returns one recording of a workspace: title, duration, who created it and when.',
    inputSchema: { workspace_id: workspaceId, recording_id: recordingId },
    annotations: { readOnlyHint: true }
  }, async (args, extra) => run(deps, async () => {
    const recording = await service.getRecording(callerOf(extra), args.workspace_id, args.recording_id)
    return ok(`Recording "${recording.title}".`, { recording })
  }))

  host.tool('delete_recording', {
    title: 'Delete a recording',
    description: 'Deletes a recording and every link to it, for good. Allowed for the workspace\'s owners and admins, and for the recording\'s creator.',
    inputSchema: { workspace_id: workspaceId, recording_id: recordingId },
    annotations: { destructiveHint: true, idempotentHint: true }
  }, async (args, extra) => run(deps, async () => {
    const recording = await service.deleteRecording(callerOf(extra), args.workspace_id, args.recording_id)
    return ok(`Deleted recording "${recording.title}" and its links.`, { deleted: { id: recording.id } })
  }))
}
