/**
 * Users, workspaces and memberships. Passwords are hashed with argon2id; emails are unique
 * case-insensitively (claimed with SET NX in the same transaction that writes the user).
 */
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2'
import type { RedisClient } from '@uspl/redis'
import { keys } from './keys.ts'
import { newId } from './crypto.ts'

export type Role = 'owner' | 'admin' | 'member'
export const ROLES: readonly Role[] = ['owner', 'admin', 'member']

export interface User {
  id: string
  email: string
  name: string
  createdAt: number
  /** when an operator disabled the user (no sign-in, no personal key works); null while active */
  disabledAt?: number | null
}

export interface Workspace {
  id: string
  name: string
  createdAt: number
}

/** argon2id (Algorithm.Argon2id = 2; a const enum, so spelled out), OWASP's 19 MiB / t=2 profile */
const ARGON2 = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 }
/** verified against when the email is unknown, so both paths cost the same */
let dummyHash: Promise<string> | undefined

export function hashPassword (password: string): Promise<string> {
  return argon2Hash(password, ARGON2)
}

export class AccountStore {
  constructor (private readonly redis: RedisClient) {}

  async createUser (input: { email: string, name: string, password: string }): Promise<User> {
    const email = input.email.trim().toLowerCase()
    if (!/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 254) throw new Error(`not an email address: ${input.email}`)
    if (input.password.length < 8) throw new Error('password must be at least 8 characters')
    const user: User = { id: newId('usr', 12), email, name: input.name.trim() || email, createdAt: Date.now() }
    const passwordHash = await hashPassword(input.password)
    const claimed = await this.redis.set(keys.userByEmail(email), user.id, 'NX')
    if (claimed !== 'OK') throw new Error(`a user with email ${email} exists`)
    await this.redis.multi()
      .hset(keys.user(user.id), { id: user.id, email, name: user.name, created_at: String(user.createdAt), password_hash: passwordHash })
      .sadd(keys.users(), user.id)
      .exec()
    return user
  }

  async setPassword (userId: string, password: string): Promise<void> {
    if (password.length < 8) throw new Error('password must be at least 8 characters')
    await this.redis.hset(keys.user(userId), 'password_hash', await hashPassword(password))
  }

  async getUser (id: string): Promise<User | null> {
    const h = await this.redis.hgetall(keys.user(id))
    return h.id ? { id: h.id, email: h.email, name: h.name, createdAt: Number(h.created_at), disabledAt: h.disabled_at ? Number(h.disabled_at) : null } : null
  }

  /**
   * Disables (or enables again) a user. A disabled user cannot sign in, and every personal key of theirs
   * is refused from the next request on (api-keys.ts reads this on every request). Their OAuth grants are
   * the revocation module's to cut (the CLI's disable-user does both).
   */
  async setDisabled (userId: string, disabled: boolean): Promise<boolean> {
    if (!await this.redis.exists(keys.user(userId))) return false
    if (disabled) await this.redis.hset(keys.user(userId), 'disabled_at', String(Date.now()))
    else await this.redis.hdel(keys.user(userId), 'disabled_at')
    return true
  }

  async findUserByEmail (email: string): Promise<User | null> {
    const id = await this.redis.get(keys.userByEmail(email.trim().toLowerCase()))
    return id ? this.getUser(id) : null
  }

  /** The user when the password matches; null otherwise. Takes the same time whether or not the email exists. */
  async verifyPassword (email: string, password: string): Promise<User | null> {
    const id = await this.redis.get(keys.userByEmail(email.trim().toLowerCase()))
    const [stored, disabled] = id ? await this.redis.hmget(keys.user(id), 'password_hash', 'disabled_at') : [null, null]
    if (!stored || !id || disabled) {
      dummyHash ??= hashPassword('not-a-real-password-for-timing')
      await argon2Verify(await dummyHash, password).catch(() => false)
      return null
    }
    const ok = await argon2Verify(stored, password).catch(() => false)
    return ok ? this.getUser(id) : null
  }

  async listUsers (): Promise<User[]> {
    const ids = await this.redis.smembers(keys.users())
    const users = await Promise.all(ids.map((id) => this.getUser(id)))
    return users.filter((u): u is User => u !== null).sort((a, b) => a.email.localeCompare(b.email))
  }

  async createWorkspace (name: string, id = newId('ws', 9)): Promise<Workspace> {
    const ws: Workspace = { id, name, createdAt: Date.now() }
    await this.redis.multi()
      .hset(keys.workspace(id), { id, name, created_at: String(ws.createdAt) })
      .sadd(keys.workspaces(), id)
      .exec()
    return ws
  }

  async getWorkspace (id: string): Promise<Workspace | null> {
    const h = await this.redis.hgetall(keys.workspace(id))
    return h.id ? { id: h.id, name: h.name, createdAt: Number(h.created_at) } : null
  }

  async findWorkspaceByName (name: string): Promise<Workspace | null> {
    for (const id of await this.redis.smembers(keys.workspaces())) {
      const ws = await this.getWorkspace(id)
      if (ws?.name === name) return ws
    }
    return null
  }

  async setRole (workspaceId: string, userId: string, role: Role): Promise<void> {
    if (!ROLES.includes(role)) throw new Error(`unknown role ${role} (owner, admin or member)`)
    await this.redis.multi()
      .hset(keys.workspaceMembers(workspaceId), userId, role)
      .sadd(keys.userWorkspaces(userId), workspaceId)
      .exec()
  }

  async removeMember (workspaceId: string, userId: string): Promise<void> {
    await this.redis.multi()
      .hdel(keys.workspaceMembers(workspaceId), userId)
      .srem(keys.userWorkspaces(userId), workspaceId)
      .exec()
  }

  /** The user's role in the workspace, read fresh on every call (a role change applies to the next call). */
  async getRole (workspaceId: string, userId: string): Promise<Role | null> {
    const role = await this.redis.hget(keys.workspaceMembers(workspaceId), userId)
    return role && (ROLES as string[]).includes(role) ? role as Role : null
  }

  async listMemberships (userId: string): Promise<Array<{ workspace: Workspace, role: Role }>> {
    const ids = await this.redis.smembers(keys.userWorkspaces(userId))
    const out: Array<{ workspace: Workspace, role: Role }> = []
    for (const id of ids.sort()) {
      const [ws, role] = await Promise.all([this.getWorkspace(id), this.getRole(id, userId)])
      if (ws && role) out.push({ workspace: ws, role })
    }
    return out
  }
}
