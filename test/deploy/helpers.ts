/**
 * Shared by the deployment tests: the production folder (assembled once by `npm test`, whose path comes in
 * USPL_PROD_DIR, or here when a file runs alone), services started from it with their real entries, and
 * the one flow every topology must carry: the MCP SDK's client discovers the authorization server from the
 * gateway's 401, registers, sends a person through sign-in and consent (the HTTP browser), exchanges the
 * code, and calls a tool on its session.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { until, Browser } from '@uspl/testing'
import { createRedis, closeRedis, waitReady } from '@uspl/redis'
import { AccountStore, ApiKeyStore, RedisWorkspaceRepository, randomToken } from '@uspl/core'
import { AppClient, connectViaChallenge, type Connected, type Person } from '../e2e/suite.ts'

export const ROOT = join(import.meta.dirname, '..', '..')

/** The folder the image's runtime stage holds (scripts/assemble-prod.mjs, exactly as the Dockerfile runs it). */
export async function productionFolder (t: Test): Promise<string> {
  const given = process.env.USPL_PROD_DIR
  if (given && existsSync(join(given, 'healthcheck.mjs'))) return given
  t.setTimeout(600000)
  const dir = mkdtempSync(join(tmpdir(), 'uspl-prod-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'assemble-prod.mjs'), dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (d) => { out += d })
  child.stderr?.on('data', (d) => { out += d })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`assemble-prod exited with ${code}: ${out.slice(-2000)}`)
  return dir
}

/** The command a deployment runs, split into the program and its arguments. */
export function programOf (command: string[]): { program: string, args: string[] } {
  const [program, ...args] = command
  // the image's `node` is this Node
  return { program: program === 'node' ? process.execPath : program, args }
}

/** Keeps a started process's output, to show when a test fails. */
export function capture (child: ChildProcess, name: string, t: Test): () => string {
  let out = ''
  const keep = (d: Buffer): void => { out = (out + d.toString()).slice(-6000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  child.once('exit', (code, signal) => { out += `\n[${name} exited ${signal ?? code}]` })
  t.teardown(() => { if (t.passing() === false) t.comment(`--- ${name} ---\n${out}`) })
  return () => out
}

/** Waits for /health/ready to answer 200; on timeout the error carries its last answer. Starting five Node processes on a loaded 2-core machine takes a while, hence the long default. */
export async function waitHealthy (url: string, what: string, timeoutMs = 120000): Promise<void> {
  let last = 'no answer'
  try {
    await until(async () => {
      try {
        const res = await fetch(`${url}/health/ready`)
        last = `${res.status} ${await res.text()}`
        return res.status === 200
      } catch (err) {
        last = String((err as { cause?: { code?: string } }).cause?.code ?? err)
        return false
      }
    }, timeoutMs, `${what} ready at ${url}`)
  } catch (err) {
    throw new Error(`${(err as Error).message} (last answer: ${last})`)
  }
}

export interface Workspace { operatorKey: string, person: Person }

/** A workspace, a member with a password and an operator key, written to the deployment's Redis. */
export async function seed (t: Test, redisUrl: string, prefix: string): Promise<Workspace> {
  const redis = createRedis({ url: redisUrl, prefix, name: 'test-seed', offlineQueue: true })
  t.teardown(() => closeRedis(redis))
  await waitReady(redis, 10000)
  const accounts = new AccountStore(redis)
  const workspace = await accounts.createWorkspace('Deployed Workspace')
  await new RedisWorkspaceRepository(redis).createRecording(workspace.id, { title: 'Launch review', durationSeconds: 600 }, 'seed')
  const password = `pw-${randomToken(9)}`
  const user = await accounts.createUser({ email: `ada-${randomToken(4)}@deploy.test`, name: 'Ada', password })
  await accounts.setRole(workspace.id, user.id, 'member')
  const { key: operatorKey } = await new ApiKeyStore(redis).create('deploy test operator')
  return { operatorKey, person: { user, password, browser: new Browser() } }
}

/**
 * The flow a real client takes against `mcpUrl`, ending in a tool call that reads the seeded workspace.
 * `issuer` is the authorization server's public URL (what the gateway's metadata names).
 */
export async function oauthAndToolCall (t: Test, mcpUrl: string, issuer: string, person: Person, app = new AppClient('Deploy Client', person, issuer, 41100)): Promise<Connected & { app: AppClient }> {
  const conn = await connectViaChallenge(t, mcpUrl, app)
  t.equal(app.consents, 1, 'signed in and consented once')
  const result = await conn.client.callTool({ name: 'list_workspaces', arguments: {} })
  t.notOk(result.isError, 'the tool call succeeds')
  t.match(JSON.stringify(result.content), 'Deployed Workspace', 'and reads the workspace')
  return { ...conn, app }
}
