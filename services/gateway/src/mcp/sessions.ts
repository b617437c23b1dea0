/**
 * The MCP sessions this replica holds, by id, and with them the requests it serves without a session, in
 * one AccessIndex (grant, client, user and, for what ends with its token, jti), so a revocation event
 * finds exactly what it names without a scan. Closing a session ends its SSE streams,
 * aborts its in-flight requests, forgets its id (the next request with it answers 404) and removes its
 * Redis index entry. Idle sessions close after SESSION_IDLE_TIMEOUT_S (an open GET stream counts as
 * activity). When the token that opened a GET stream expires, the stream ends; if that was also the newest
 * token the session was used with (the client has not refreshed), the whole session closes with it.
 */
import { EventEmitter } from 'node:events'
import type { ServerResponse } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { Server } from '@modelcontextprotocol/sdk/server/index.js'
import type { RevocationEvent, SessionIndex } from '@uspl/core'
import type { HttpServerTransport } from './http-transport.ts'
import { AccessIndex } from './access-index.ts'
import type { GatewayMetrics } from '../metrics.ts'

export type CloseReason = 'revoked' | 'idle' | 'deleted' | 'shutdown' | 'failed' | 'expired'

export interface GetStream {
  jti: string
  res: ServerResponse
  timer: NodeJS.Timeout
}

/**
 * A request this replica serves without holding a session for it: one forwarded to the replica that owns
 * its session, or a stateless (2026-07-28) request. Indexed like sessions, so a revocation event aborts it.
 */
export interface TrackedRequest {
  kind: 'forwarded' | 'stateless'
  grantId: string
  clientId: string
  userId: string
  jti: string
  /** a token-scope revocation of its jti ends it too (a stream opened with that token) */
  endsWithToken: boolean
  /** ends the response and whatever it waits on */
  abort: (why: AbortReason) => void
}

/** Why a sessionless request is aborted: its access was revoked, or this replica is shutting down. */
export type AbortReason = 'revoked' | 'shutdown'

export class McpSession {
  lastActive: number
  lastTouchWritten: number
  stream: GetStream | null = null
  readonly inflight = new Set<ServerResponse>()
  idleTimer: NodeJS.Timeout | null = null
  closed = false
  /** the latest expiry (epoch seconds) of the tokens this session has been used with */
  tokenExp = 0

  constructor (
    readonly id: string,
    readonly grantId: string,
    readonly clientId: string,
    readonly userId: string,
    readonly openedAt: number,
    readonly transport: HttpServerTransport,
    readonly server: Server
  ) {
    this.lastActive = openedAt
    this.lastTouchWritten = openedAt
  }
}

export interface SessionRegistryOptions {
  index: SessionIndex
  metrics: GatewayMetrics
  log: FastifyBaseLogger
  idleTimeoutS: number
  touchIntervalS: number
}

export class SessionRegistry extends EventEmitter {
  private readonly sessions = new Map<string, McpSession>()
  private readonly requests = new Set<TrackedRequest>()
  /** sessions and sessionless requests alike, for revocation */
  private readonly held = new AccessIndex<McpSession | TrackedRequest>()

  constructor (private readonly opts: SessionRegistryOptions) {
    super()
  }

  get size (): number {
    return this.sessions.size
  }

  get (id: string): McpSession | undefined {
    return this.sessions.get(id)
  }

  /** Every session this replica holds (the heartbeat indexes them again after a lapse). */
  all (): IterableIterator<McpSession> {
    return this.sessions.values()
  }

  /** Sessionless requests in flight on this replica (forwarded and stateless). */
  get requestCount (): number {
    return this.requests.size
  }

  /** Sessionless requests of one grant in flight here (for tests and operators). */
  requestsOfGrant (grantId: string): TrackedRequest[] {
    return this.held.ofGrant(grantId).filter((x): x is TrackedRequest => !(x instanceof McpSession))
  }

  /** Sessions of one grant on this replica (for tests and operators). */
  ofGrant (grantId: string): McpSession[] {
    return this.held.ofGrant(grantId).filter((x): x is McpSession => x instanceof McpSession)
  }

  /** Tracks a sessionless request until its response closes; revocation and shutdown abort it. */
  trackSessionless (request: TrackedRequest, res: ServerResponse): void {
    this.requests.add(request)
    this.held.add(request)
    if (request.endsWithToken) this.held.trackToken(request.jti, request)
    res.once('close', () => {
      this.requests.delete(request)
      this.held.remove(request)
      if (request.endsWithToken) this.held.untrackToken(request.jti, request)
      this.emit('request-closed', request)
    })
    this.emit('request-tracked', request)
  }

  add (session: McpSession): void {
    this.sessions.set(session.id, session)
    this.held.add(session)
    this.opts.metrics.sessionsOpen.set(this.sessions.size)
    this.opts.metrics.sessionsOpened.inc()
    this.armIdle(session, this.opts.idleTimeoutS * 1000)
  }

  /** Records activity; writes last-active to Redis at most every SESSION_TOUCH_INTERVAL_S. */
  touch (session: McpSession, now = Date.now()): void {
    session.lastActive = now
    if (now - session.lastTouchWritten >= this.opts.touchIntervalS * 1000) this.writeTouch(session, now)
  }

  private writeTouch (session: McpSession, now: number): void {
    session.lastTouchWritten = now
    this.opts.index.touch(session.id, session.grantId, now, this.opts.idleTimeoutS).catch((err: unknown) => {
      this.opts.log.warn({ err, sessionId: session.id }, 'could not record session activity')
    })
  }

  private armIdle (session: McpSession, delayMs: number): void {
    session.idleTimer = setTimeout(() => this.checkIdle(session), delayMs)
    session.idleTimer.unref()
  }

  private checkIdle (session: McpSession): void {
    if (session.closed) return
    const idleMs = this.opts.idleTimeoutS * 1000
    const now = Date.now()
    if (session.stream || session.inflight.size > 0) {
      // a client holding a stream is not idle; keep the Redis entry alive with it
      this.writeTouch(session, now)
      session.lastActive = now
      this.armIdle(session, idleMs)
      return
    }
    const idleFor = now - session.lastActive
    if (idleFor >= idleMs) void this.close(session, 'idle')
    else this.armIdle(session, idleMs - idleFor)
  }

  /** Tracks a request's response so closing the session can abort it. */
  trackRequest (session: McpSession, res: ServerResponse): void {
    session.inflight.add(res)
    res.once('close', () => session.inflight.delete(res))
  }

  /** Records the session's GET stream: closed when its token expires or that token is revoked. */
  trackStream (session: McpSession, res: ServerResponse, jti: string, expS: number): void {
    const timer = setTimeout(() => {
      // compared with the stream's own expiry, not the clock: a timer may fire a millisecond before Date.now() reaches it
      if (session.tokenExp <= expS) {
        // no newer token has been used on the session: the session's access has expired with the stream
        this.opts.log.info({ sessionId: session.id }, 'closing the session: its token expired while its stream was open')
        void this.close(session, 'expired')
        return
      }
      this.opts.log.info({ sessionId: session.id }, 'closing the GET stream: the token that opened it expired')
      this.endStream(session)
    }, Math.max(0, expS * 1000 - Date.now()))
    timer.unref()
    const stream: GetStream = { jti, res, timer }
    session.stream = stream
    this.held.trackToken(jti, session)
    res.once('close', () => {
      clearTimeout(timer)
      if (session.stream === stream) session.stream = null
      this.held.untrackToken(jti, session)
      this.emit('stream-closed', session)
    })
  }

  /** Ends a session's GET stream; the session stays. */
  private endStream (session: McpSession): void {
    session.transport.closeStandaloneSSEStream()
    if (session.stream && !session.stream.res.writableEnded) session.stream.res.end()
  }

  /** Closes a session: streams end, in-flight requests abort, the id is forgotten here and in Redis. */
  async close (session: McpSession, reason: CloseReason): Promise<void> {
    if (session.closed) return
    // the GET stream ends first, before the index write and the SDK's close: on a revocation its end is
    // what the client is waiting for
    if (reason === 'revoked' && session.stream) this.endStream(session)
    if (!this.forget(session, reason)) return
    try {
      // ends the session's SSE streams and aborts its in-flight handlers (the SDK's Protocol aborts them on close)
      await session.server.close()
    } catch (err) {
      this.opts.log.warn({ err, sessionId: session.id }, 'closing an MCP session failed')
    }
    for (const res of session.inflight) if (!res.writableEnded) res.destroy()
    if (session.stream && !session.stream.res.writableEnded) session.stream.res.end()
  }

  /**
   * Removes the session from every index (called by close, and by the transport's onclose after a
   * DELETE). Returns false when it was already gone.
   */
  forget (session: McpSession, reason: CloseReason): boolean {
    if (session.closed) return false
    session.closed = true
    if (session.idleTimer) clearTimeout(session.idleTimer)
    if (session.stream) {
      clearTimeout(session.stream.timer)
      this.held.untrackToken(session.stream.jti, session)
    }
    this.sessions.delete(session.id)
    this.held.remove(session)
    this.opts.metrics.sessionsOpen.set(this.sessions.size)
    this.opts.metrics.sessionsClosed.inc({ reason })
    this.opts.index.remove(session.id, session.grantId).catch((err: unknown) => {
      // the hash expires with the idle timeout anyway
      this.opts.log.warn({ err, sessionId: session.id }, 'could not remove a session from the index')
    })
    this.emit('closed', session, reason)
    return true
  }

  /**
   * Applies a revocation event to what it names; returns how many sessions (or, for one token, streams)
   * and sessionless requests it closed. One token revoked: the grant lives on, but what was opened with
   * that token (a GET stream, a stateless stream) ends.
   */
  applyRevocation (event: RevocationEvent): number {
    const matched = this.held.matching(event)
    for (const item of matched) {
      if (!(item instanceof McpSession)) item.abort('revoked')
      else if (event.scope === 'token') this.endStream(item)
      else void this.close(item, 'revoked')
    }
    return matched.size
  }

  async closeAll (reason: CloseReason): Promise<void> {
    for (const r of [...this.requests]) r.abort('shutdown')
    await Promise.all([...this.sessions.values()].map((s) => this.close(s, reason)))
  }
}
