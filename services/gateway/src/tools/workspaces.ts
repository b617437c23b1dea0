import type { ToolHost } from './host.ts'
import { WorkspaceService } from '@uspl/core'
import { callerOf, ok, run, type ToolDeps } from './context.ts'

export function registerWorkspaceTools (host: ToolHost, deps: ToolDeps): void {
  const service = new WorkspaceService(deps.accounts, deps.repo)
  host.tool('list_workspaces', {
    title: 'List workspaces',
    description: 'Lists the workspaces you belong to, with your role in each (owner, admin or member). Every other tool takes one of these workspace ids.',
    inputSchema: {},
    annotations: { readOnlyHint: true }
  }, async (_args, extra) => run(deps, async () => {
    const workspaces = await service.listWorkspaces(callerOf(extra))
    return ok(workspaces.length === 0 ? 'You are not a member of any workspace.' : `You belong to ${workspaces.length} workspace(s).`, { workspaces })
  }))
}
