/** One McpServer (v1 SDK) per session, with the workspace tools; the tools are shared with the stateless server (stateless.ts). */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { ToolDeps } from '../tools/context.ts'
import { registerWorkspaceTools } from '../tools/workspaces.ts'
import { registerRecordingTools } from '../tools/recordings.ts'
import { registerLinkTools } from '../tools/links.ts'
import { v1Host, type ToolHost } from '../tools/host.ts'

export const SERVER_INFO = { name: 'uspl-workspace', version: '0.1.0' }

export const INSTRUCTIONS = 'Tools for the signed-in user\'s workspaces: recordings and their share links. Start with list_workspaces; every other tool takes a workspace_id from it.'

/** The nine workspace tools, on either SDK's server. */
export function registerTools (host: ToolHost, deps: ToolDeps): void {
  registerWorkspaceTools(host, deps)
  registerRecordingTools(host, deps)
  registerLinkTools(host, deps)
}

export function createMcpServer (deps: ToolDeps): McpServer {
  const server = new McpServer(SERVER_INFO, { capabilities: { tools: {} }, instructions: INSTRUCTIONS })
  registerTools(v1Host(server), deps)
  return server
}
