/**
 * What the page's scripts share: its elements by id, the event target's nearest match, and the call to the
 * API with the session's CSRF token (from the page's `csrf-token` meta).
 */

/** An element the page always renders (a missing one is a broken page, so it throws). */
export function byId<T extends HTMLElement = HTMLElement> (id: string): T {
  const el = document.getElementById(id)
  if (!el) throw new Error(`the page has no #${id}`)
  return el as T
}

/** The nearest element matching `selector` from an event's target, itself included. */
export function closest (target: EventTarget | null, selector: string): HTMLElement | null {
  return target instanceof Element ? target.closest<HTMLElement>(selector) : null
}

/** Every element matching `selector` under `root`, as an array. */
export function all<T extends HTMLElement = HTMLElement> (root: ParentNode, selector: string): T[] {
  return Array.from(root.querySelectorAll<T>(selector))
}

/** The API's answer: the response, and its JSON body (`{}` when it has none). */
export interface Answer<T> {
  res: Response
  body: Partial<T> & { error?: { code?: string, message?: string } }
}

const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? ''

/** Calls the API (a path relative to the page) as the signed-in user; rejects only when the server cannot be reached. */
export async function call<T> (method: string, path: string, body: unknown): Promise<Answer<T>> {
  const res = await fetch(new URL(path, document.baseURI), {
    method,
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' },
    body: JSON.stringify(body)
  })
  const parsed = await res.json().catch(() => ({})) as Answer<T>['body']
  return { res, body: parsed }
}

/** What to tell the person when a call failed: an ended session, the API's own message, or `fallback`. */
export function failure (r: Answer<unknown>, fallback: string): string {
  if (r.res.status === 401) return 'Your session has ended. Reload the page to sign in again.'
  return r.body?.error?.message || fallback
}

export const UNREACHABLE = 'Could not reach the server. Check your connection and try again.'
