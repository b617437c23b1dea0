/**
 * Operator command line: `npm run cli -- <command> [options]` from the repository root; in the image (the
 * production folder) `node --conditions=compiled cli/dist/cli.js <command>`. Reads REDIS_URL and
 * REDIS_PREFIX and the rest of the token service's configuration (validated as it validates them); `--json`
 * prints one JSON document for scripts. Exits 0 on success, 1 with one line on stderr on error, 2 on a
 * usage error.
 */
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { randomBytes } from 'node:crypto'
import { createRedis, closeRedis, waitReady, type RedisClient } from '@uspl/redis'
import { readFileSync } from 'node:fs'
import { AccountStore, ApiKeyStore, ClientStore, EnterpriseIssuerStore, RedisWorkspaceRepository, Revoker, ROLES, publicEnterpriseIssuer, type PublicEnterpriseIssuer, type EnterpriseIssuer, type Role, type Workspace, type User, type RevocationActor } from '@uspl/core'
import { rotateKeys, ensureKeyRecords, selectKeys, parseKek } from '@uspl/core/signing-keys'
// the issuer's configuration (keys, token lifetimes, CIMD limits) and its client lookup: the commands act as it would
import { loadConfig, type Config } from '@uspl/token/config'
import { createCimdResolver, type CimdFetchOverrides } from '@uspl/token/lib/cimd/index'
import { ClientResolver } from '@uspl/token/lib/clients'
import { CimdError } from '@uspl/token/lib/cimd/errors'

export const USAGE = `usage: npm run cli -- <command> [options] [--json]

  add-user --email <email> [--name <name>] [--password <pw>] [--workspace <name or id> --role owner|admin|member]
                               create a user (a password is generated and printed once when not given)
  set-role --email <email> --workspace <name or id> --role owner|admin|member
                               add the user to the workspace with that role, or change it
  list-users                   users and their workspaces
  create-api-key --name <name> [--user <email>] [--expires-in-days <n>]
                               create an API key (uspl_…), printed once: with --user a personal key acting
                               as that user (the workspace API), without it an operator key
  list-api-keys [--user <email>]
                               API keys, operator and personal (never the keys themselves)
  revoke-api-key <id>          revoke an API key (operator or personal)
  disable-user --email <email> the user can no longer sign in, their personal keys stop working and their
                               connections are revoked
  enable-user --email <email>  undo disable-user (revoked connections stay revoked)
  rotate-keys [--activate-in <seconds>]
                               add a signing key: published now, signing after the delay
                               (default KEY_ACTIVATION_DELAY_S); the old key stays published until its tokens expired
  list-keys                    signing keys and which one signs
  refresh-client-metadata <https client_id>
                               fetch a client metadata document (CIMD) again now, replacing the cached one
  seed                         create the demo workspace, its users and data (idempotent)
  add-enterprise-issuer --issuer <url> (--jwks-uri <url> | --jwks-file <path>) --domains <d1,d2>
                        [--tenant <id>] [--subject email|sub] [--name <name>]
                        [--poll-url <url> [--poll-authorization <value> | --poll-authorization-file <path>]]
                               trust an enterprise IdP's ID-JAGs and Shared Signals (replaces an existing one);
                               --poll-url: its RFC 8936 poll endpoint, polled with that Authorization value
                               (never shown again; the origin must be in ENTERPRISE_JWKS_ORIGINS)
  list-enterprise-issuers      trusted enterprise issuers
  remove-enterprise-issuer <issuer url or ent_ id>
                               stop trusting an issuer (its managed grants stay until revoked)
  link-enterprise-user --issuer <url> --sub <subject> --email <email>
                               for --subject sub issuers: the IdP subject that is this user

environment: REDIS_URL, REDIS_PREFIX (as the services)`

export class UsageError extends Error {}

export interface CliIo {
  out: (line: string) => void
}

type Flags = Record<string, string | boolean | undefined>

const DEMO_WORKSPACE = { id: 'ws_demo', name: 'Demo Workspace' }
const DEMO_USERS: Array<{ email: string, name: string, role: Role }> = [
  { email: 'owner@demo.test', name: 'Olivia Owner', role: 'owner' },
  { email: 'admin@demo.test', name: 'Adam Admin', role: 'admin' },
  { email: 'member@demo.test', name: 'Mia Member', role: 'member' }
]
const DEMO_RECORDINGS = [
  { title: 'Quarterly planning kickoff', durationSeconds: 1860 },
  { title: 'Customer onboarding walkthrough', durationSeconds: 742 },
  { title: 'Bug triage: checkout flow', durationSeconds: 415 }
]

function generatedPassword (): string {
  return randomBytes(12).toString('base64url')
}

function need (flags: Flags, name: string): string {
  const v = flags[name]
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`--${name} is required`)
  return v
}

function role (value: string): Role {
  if (!(ROLES as string[]).includes(value)) throw new UsageError(`--role must be owner, admin or member (got ${value})`)
  return value as Role
}

async function findWorkspace (accounts: AccountStore, nameOrId: string): Promise<Workspace> {
  const ws = await accounts.getWorkspace(nameOrId) ?? await accounts.findWorkspaceByName(nameOrId)
  if (!ws) throw new Error(`no workspace named or with id ${nameOrId}`)
  return ws
}

async function findUser (accounts: AccountStore, email: string): Promise<User> {
  const user = await accounts.findUserByEmail(email)
  if (!user) throw new Error(`no user with email ${email}`)
  return user
}

type Result = { data: unknown, text: string }

const CLI_ACTOR: RevocationActor = { type: 'operator', id: 'cli' }

export async function runCommand (redis: RedisClient, config: Config, command: string, positionals: string[], flags: Flags, cimdFetch?: CimdFetchOverrides): Promise<Result> {
  const accounts = new AccountStore(redis)
  const apiKeys = new ApiKeyStore(redis)
  switch (command) {
    case 'add-user': {
      const email = need(flags, 'email')
      const password = typeof flags.password === 'string' ? flags.password : generatedPassword()
      const user = await accounts.createUser({ email, name: typeof flags.name === 'string' ? flags.name : email, password })
      let membership: { workspace: string, role: Role } | null = null
      if (typeof flags.workspace === 'string') {
        const ws = await findWorkspace(accounts, flags.workspace)
        const r = role(typeof flags.role === 'string' ? flags.role : 'member')
        await accounts.setRole(ws.id, user.id, r)
        membership = { workspace: ws.name, role: r }
      }
      const generated = typeof flags.password !== 'string'
      return {
        data: { user, password: generated ? password : undefined, membership },
        text: `created user ${user.email} (${user.id})${membership ? `, ${membership.role} of ${membership.workspace}` : ''}${generated ? `\npassword (shown once): ${password}` : ''}`
      }
    }
    case 'set-role': {
      const user = await findUser(accounts, need(flags, 'email'))
      const ws = await findWorkspace(accounts, need(flags, 'workspace'))
      const r = role(need(flags, 'role'))
      await accounts.setRole(ws.id, user.id, r)
      return { data: { userId: user.id, email: user.email, workspaceId: ws.id, workspace: ws.name, role: r }, text: `${user.email} is now ${r} of ${ws.name}` }
    }
    case 'list-users': {
      const users = await accounts.listUsers()
      const rows = await Promise.all(users.map(async (u) => ({ ...u, workspaces: (await accounts.listMemberships(u.id)).map((m) => ({ id: m.workspace.id, name: m.workspace.name, role: m.role })) })))
      return { data: { users: rows }, text: rows.map((u) => `${u.email}\t${u.id}\t${u.workspaces.map((w) => `${w.name}:${w.role}`).join(', ') || '-'}`).join('\n') || 'no users' }
    }
    case 'create-api-key': {
      const name = need(flags, 'name')
      const user = typeof flags.user === 'string' ? await findUser(accounts, flags.user) : null
      let expiresAt: number | null = null
      if (typeof flags['expires-in-days'] === 'string') {
        const days = Number(flags['expires-in-days'])
        if (!Number.isInteger(days) || days < 1) throw new UsageError('--expires-in-days must be a whole number of days, at least 1')
        expiresAt = Date.now() + days * 86400_000
      }
      const { key, apiKey } = await apiKeys.create(name, { userId: user?.id, expiresAt, actor: CLI_ACTOR })
      const kind = user ? `personal API key of ${user.email}` : 'operator API key'
      return { data: { ...apiKey, key }, text: `created ${kind} ${apiKey.id} (${apiKey.name})\nkey (shown once): ${key}` }
    }
    case 'list-api-keys': {
      const user = typeof flags.user === 'string' ? await findUser(accounts, flags.user) : null
      const list = await apiKeys.list(user ? { userId: user.id } : {})
      const iso = (ms: number | null): string => ms === null ? 'never' : new Date(ms).toISOString()
      return { data: { apiKeys: list }, text: list.map((k) => `${k.id}\t${k.kind}${k.userId ? ` ${k.userId}` : ''}\t${k.name}\tcreated ${iso(k.createdAt)}\tlast used ${iso(k.lastUsedAt)}\texpires ${iso(k.expiresAt)}`).join('\n') || 'no API keys' }
    }
    case 'revoke-api-key': {
      const id = positionals[0] ?? (typeof flags.id === 'string' ? flags.id : undefined)
      if (!id) throw new UsageError('revoke-api-key needs the key id (see list-api-keys)')
      if (!await apiKeys.revoke(id, { actor: CLI_ACTOR })) throw new Error(`no API key ${id}`)
      return { data: { id, revoked: true }, text: `revoked API key ${id}` }
    }
    case 'disable-user':
    case 'enable-user': {
      const user = await findUser(accounts, need(flags, 'email'))
      const disable = command === 'disable-user'
      await accounts.setDisabled(user.id, disable)
      const revoked = disable ? await new Revoker({ redis, prefix: config.REDIS_PREFIX, accessTokenTtlS: config.ACCESS_TOKEN_TTL_S }).revokeUser(user.id, { path: 'cli', actor: CLI_ACTOR }) : null
      return { data: { userId: user.id, email: user.email, disabled: disable, connectionsRevoked: revoked?.status === 'revoked' }, text: `${user.email} is ${disable ? 'disabled' : 'enabled'}` }
    }
    case 'rotate-keys': {
      if (config.SIGNING_KEYS_FILE) throw new Error('signing keys come from SIGNING_KEYS_FILE; rotate by adding the new key to that file')
      const delay = typeof flags['activate-in'] === 'string' ? Number(flags['activate-in']) : config.KEY_ACTIVATION_DELAY_S
      if (!Number.isInteger(delay) || delay < 0) throw new UsageError('--activate-in must be a whole number of seconds')
      const rotated = await rotateKeys(redis, { activationDelayS: delay, accessTokenTtlS: config.ACCESS_TOKEN_TTL_S, kek: parseKek(config.SIGNING_KEYS_KEK) })
      return {
        data: { ...rotated, activatesAt: new Date(rotated.activatesAt * 1000).toISOString() },
        text: `new signing key ${rotated.kid} published; signs from ${new Date(rotated.activatesAt * 1000).toISOString()}; ${rotated.previousKid} signs until then and stays published until its tokens expired${rotated.removed.length ? `; removed retired keys ${rotated.removed.join(', ')}` : ''}`
      }
    }
    case 'list-keys': {
      const records = await ensureKeyRecords(redis, parseKek(config.SIGNING_KEYS_KEK))
      const { signer, published } = selectKeys(records, Math.floor(Date.now() / 1000), config.ACCESS_TOKEN_TTL_S)
      const rows = records.map((r) => ({ kid: r.kid, activatesAt: new Date(r.activatesAt * 1000).toISOString(), signing: r.kid === signer.kid, published: published.some((p) => p.kid === r.kid) }))
      return { data: { keys: rows }, text: rows.map((r) => `${r.kid}\tactivates ${r.activatesAt}${r.signing ? '\tsigning' : ''}${r.published ? '\tpublished' : '\tretired'}`).join('\n') }
    }
    case 'refresh-client-metadata': {
      const url = positionals[0]
      if (!url) throw new UsageError('refresh-client-metadata needs the client_id URL')
      const cimd = createCimdResolver(redis, config, cimdFetch)
      try {
        const client = await new ClientResolver(new ClientStore(redis, config.CLIENT_IDLE_TTL_S), cimd).refresh(url)
        if (!client) throw new Error(`${url} could not be recorded`)
        const { metadata } = client
        return { data: { clientId: url, clientName: metadata.client_name, redirectUris: metadata.redirect_uris, tokenEndpointAuthMethod: metadata.token_endpoint_auth_method, disabled: client.disabledAt !== null }, text: `refreshed ${url}: ${metadata.client_name ?? ''} (${metadata.redirect_uris.length} redirect URIs, ${metadata.token_endpoint_auth_method})` }
      } catch (e) {
        if (e instanceof CimdError) throw new Error(`the document cannot be used (${e.problem}): ${e.message}`)
        throw e
      }
    }
    case 'seed':
      return seed(redis, accounts)
    case 'add-enterprise-issuer':
    case 'list-enterprise-issuers':
    case 'remove-enterprise-issuer':
    case 'link-enterprise-user':
      return enterpriseCommand(new EnterpriseIssuerStore(redis), accounts, command, positionals, flags)
    default:
      throw new UsageError(command ? `unknown command ${command}` : 'a command is required')
  }
}

function describeIssuer (i: PublicEnterpriseIssuer): string {
  const poll = i.pollUrl ? `\tpoll ${i.pollUrl}${i.pollAuthorizationSet ? ' (authorization set)' : ''}` : ''
  return `${i.id}\t${i.issuer}\t${i.jwksUri ?? 'inline JWKS'}\tdomains ${i.domains.join(',')}${i.tenant ? `\ttenant ${i.tenant}` : ''}\tsubject by ${i.subject}${poll}`
}

async function enterpriseCommand (store: EnterpriseIssuerStore, accounts: AccountStore, command: string, positionals: string[], flags: Flags): Promise<Result> {
  switch (command) {
    case 'add-enterprise-issuer': {
      const jwksFile = typeof flags['jwks-file'] === 'string' ? flags['jwks-file'] : undefined
      let jwks: unknown
      if (jwksFile) {
        try { jwks = JSON.parse(readFileSync(jwksFile, 'utf8')) } catch (e) { throw new Error(`--jwks-file ${jwksFile}: ${(e as Error).message}`) }
      }
      const subject = typeof flags.subject === 'string' ? flags.subject : 'email'
      if (subject !== 'email' && subject !== 'sub') throw new UsageError('--subject must be email or sub')
      // the poll credential: from a file keeps it out of the shell history and the process list
      let pollAuthorization = typeof flags['poll-authorization'] === 'string' ? flags['poll-authorization'] : null
      const authFile = flags['poll-authorization-file']
      if (typeof authFile === 'string') {
        if (pollAuthorization !== null) throw new UsageError('give one of --poll-authorization and --poll-authorization-file')
        try { pollAuthorization = readFileSync(authFile, 'utf8').replace(/\r?\n$/, '') } catch (e) { throw new Error(`--poll-authorization-file ${authFile}: ${(e as Error).message}`) }
      }
      let issuer: EnterpriseIssuer
      try {
        issuer = await store.put({
          issuer: need(flags, 'issuer'),
          jwksUri: typeof flags['jwks-uri'] === 'string' ? flags['jwks-uri'] : null,
          jwks,
          domains: need(flags, 'domains').split(','),
          tenant: typeof flags.tenant === 'string' ? flags.tenant : null,
          subject,
          name: typeof flags.name === 'string' ? flags.name : undefined,
          pollUrl: typeof flags['poll-url'] === 'string' ? flags['poll-url'] : null,
          pollAuthorization
        })
      } catch (e) {
        if (e instanceof UsageError) throw e
        throw new UsageError((e as Error).message)
      }
      const shown = publicEnterpriseIssuer(issuer)
      return { data: { issuer: shown }, text: `trusted enterprise issuer ${issuer.issuer}\n${describeIssuer(shown)}` }
    }
    case 'list-enterprise-issuers': {
      const list = (await store.list()).map(publicEnterpriseIssuer)
      return { data: { issuers: list }, text: list.map(describeIssuer).join('\n') || 'no enterprise issuers' }
    }
    case 'remove-enterprise-issuer': {
      const which = positionals[0] ?? (typeof flags.issuer === 'string' ? flags.issuer : undefined)
      if (!which) throw new UsageError('remove-enterprise-issuer needs the issuer URL or its ent_ id')
      const removed = await store.remove(which)
      if (!removed) throw new Error(`no enterprise issuer ${which}`)
      return { data: { id: removed.id, issuer: removed.issuer, removed: true }, text: `removed enterprise issuer ${removed.issuer}` }
    }
    default: {
      const issuer = await store.get(need(flags, 'issuer'))
      if (!issuer) throw new Error(`no enterprise issuer ${String(flags.issuer)}`)
      const user = await findUser(accounts, need(flags, 'email'))
      const sub = need(flags, 'sub')
      await store.linkSubject(issuer.id, sub, user.id)
      return { data: { issuer: issuer.issuer, sub, userId: user.id }, text: `${issuer.issuer} subject ${sub} is ${user.email}` }
    }
  }
}

/** The demo workspace, three users (one per role) and some data; re-running changes nothing that exists. */
async function seed (redis: RedisClient, accounts: AccountStore): Promise<Result> {
  const ws = await accounts.getWorkspace(DEMO_WORKSPACE.id) ?? await accounts.createWorkspace(DEMO_WORKSPACE.name, DEMO_WORKSPACE.id)
  const users: Array<{ email: string, id: string, role: Role, password: string | null }> = []
  for (const u of DEMO_USERS) {
    let user = await accounts.findUserByEmail(u.email)
    let password: string | null = null
    if (!user) {
      password = generatedPassword()
      user = await accounts.createUser({ email: u.email, name: u.name, password })
    }
    await accounts.setRole(ws.id, user.id, u.role)
    users.push({ email: user.email, id: user.id, role: u.role, password })
  }
  const repo = new RedisWorkspaceRepository(redis)
  const existing = await repo.listRecordings(ws.id, { limit: 100 })
  const byTitle = new Map(existing.items.map((r) => [r.title, r]))
  let created = 0
  const ownerId = users[0].id
  const memberId = users[2].id
  for (const [i, rec] of DEMO_RECORDINGS.entries()) {
    if (byTitle.has(rec.title)) continue
    const recording = await repo.createRecording(ws.id, rec, i === 2 ? memberId : ownerId)
    created++
    if (i === 0) await repo.createRecordingLink(ws.id, { recordingId: recording.id, title: 'Planning kickoff (team)', access: 'workspace' }, ownerId)
    if (i === 1) await repo.createRecordingLink(ws.id, { recordingId: recording.id, title: 'Onboarding for customers', access: 'public' }, ownerId)
    if (i === 2) await repo.createRecordingLink(ws.id, { recordingId: recording.id, title: 'Checkout bug repro', access: 'workspace' }, memberId)
  }
  const lines = [`workspace ${ws.name} (${ws.id})`]
  for (const u of users) lines.push(`${u.role.padEnd(6)} ${u.email}  ${u.password ? `password (shown once): ${u.password}` : 'exists; password unchanged'}`)
  lines.push(created > 0 ? `created ${created} recordings with links` : 'recordings already present')
  return { data: { workspace: ws, users: users.map((u) => ({ ...u, password: u.password ?? undefined })), recordingsCreated: created }, text: lines.join('\n') }
}

/** Runs one command line; returns the exit code. */
export async function main (argv: string[], env: Record<string, string | undefined>, io: CliIo = { out: (l) => process.stdout.write(l + '\n') }, err: (line: string) => void = (l) => process.stderr.write(l + '\n')): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        email: { type: 'string' },
        name: { type: 'string' },
        password: { type: 'string' },
        workspace: { type: 'string' },
        role: { type: 'string' },
        id: { type: 'string' },
        user: { type: 'string' },
        'expires-in-days': { type: 'string' },
        'activate-in': { type: 'string' },
        issuer: { type: 'string' },
        'jwks-uri': { type: 'string' },
        'jwks-file': { type: 'string' },
        domains: { type: 'string' },
        tenant: { type: 'string' },
        subject: { type: 'string' },
        sub: { type: 'string' },
        'poll-url': { type: 'string' },
        'poll-authorization': { type: 'string' },
        'poll-authorization-file': { type: 'string' }
      }
    })
  } catch (e) {
    err(`cli: ${(e as Error).message}`)
    return 2
  }
  const [command, ...positionals] = parsed.positionals
  if (parsed.values.help) {
    io.out(USAGE)
    return 0
  }
  if (!command) {
    err(USAGE)
    return 2
  }
  let config: Config
  try {
    config = loadConfig(env)
  } catch (e) {
    err(`cli: ${(e as Error).message}`)
    return 1
  }
  const redis = createRedis({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX, name: 'cli', offlineQueue: true, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
  try {
    await waitReady(redis, 5000)
    const result = await runCommand(redis, config, command, positionals, parsed.values as Flags)
    io.out(parsed.values.json ? JSON.stringify(result.data) : result.text)
    return 0
  } catch (e) {
    err(`cli: ${command}: ${(e as Error).message.split('\n')[0]}`)
    return e instanceof UsageError ? 2 : 1
  } finally {
    await closeRedis(redis).catch(() => redis.disconnect())
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2), process.env)
}
