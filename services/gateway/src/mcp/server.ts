/** One McpServer per session, with the workspace tools. */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { ToolDeps } from '../tools/context.ts'
import { registerWorkspaceTools } from '../tools/workspaces.ts'
import { registerRecordingTools } from '../tools/recordings.ts'
import { registerLinkTools } from '../tools/links.ts'

export const SERVER_INFO = { name: 'uspl-workspace', version: '0.1.0' }

export function createMcpServer (deps: ToolDeps): McpServer {
  const server = new McpServer(SERVER_INFO, {
    capabilities: { tools: {} },
    instructions: 'Tools for the signed-in user\'s workspaces: recordings and their share links. Start with list_workspaces; every other tool takes a workspace_id from it.'
  })
  registerWorkspaceTools(server, deps)
  registerRecordingTools(server, deps)
  registerLinkTools(server, deps)
  return server
}
