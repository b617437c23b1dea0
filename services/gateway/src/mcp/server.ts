/** One McpServer (v1 SDK) per session, with the workspace tools; the tools are shared with the stateless server (stateless.ts). */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv'
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

/**
 * Makes the per-session servers. The tool definitions (their zod schemas, descriptions and bodies) are
 * built once per app and the JSON Schema validator is shared: a session then costs its McpServer and
 * transport, not a fresh copy of every schema (the session-cost benchmark found those were most of it).
 */
export function mcpServerFactory (deps: ToolDeps): () => McpServer {
  const tools: Array<Parameters<ToolHost['tool']>> = []
  registerTools({ tool: (...definition) => { tools.push(definition as unknown as Parameters<ToolHost['tool']>) } }, deps)
  const jsonSchemaValidator = new AjvJsonSchemaValidator()
  return () => {
    const server = new McpServer(SERVER_INFO, { capabilities: { tools: {} }, instructions: INSTRUCTIONS, jsonSchemaValidator })
    const host = v1Host(server)
    for (const [name, config, body] of tools) host.tool(name, config, body)
    return server
  }
}
