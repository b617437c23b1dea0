/**
 * The tool the MCP-methods benchmark calls, on the gateway and on the bare baseline alike: a read of one
 * recording in a workspace (the gateway adds its role check, reading the caller's membership).
 */
export const TOOL = {
  name: 'get_recording',
  /** [workspace id, recording id] argument names, in that order */
  argNames: ['workspace_id', 'recording_id'] as [string, string]
}

export function toolArgs (workspaceId: string, recordingId: string): Record<string, string> {
  return { [TOOL.argNames[0]]: workspaceId, [TOOL.argNames[1]]: recordingId }
}
