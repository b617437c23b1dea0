/**
 * Requests answered, by (method, route pattern, status), counted on the request path as plain numbers and
 * handed to a Prometheus counter only when /metrics is read. prom-client's labelled `inc` hashes its labels
 * on every call, a few µs of the workspace API's 35–40 µs GET in its profile; a tally costs one string and
 * one Map lookup.
 */
import { Counter, type Registry } from 'prom-client'

export interface AnswerLabels { method: string, route: string, status: string }

interface Entry { labels: AnswerLabels, answered: number, drained: number }

export class AnswerTally {
  private readonly entries = new Map<string, Entry>()

  count (method: string, route: string, status: number): void {
    const id = `${method} ${status} ${route}`
    let entry = this.entries.get(id)
    if (entry === undefined) {
      entry = { labels: { method, route, status: String(status) }, answered: 0, drained: 0 }
      this.entries.set(id, entry)
    }
    entry.answered++
  }

  /** Hands over what was counted since the last drain, one call per label set with something new. */
  drain (add: (labels: AnswerLabels, n: number) => void): void {
    for (const entry of this.entries.values()) {
      if (entry.answered === entry.drained) continue
      add(entry.labels, entry.answered - entry.drained)
      entry.drained = entry.answered
    }
  }
}

/** `<name>` (a counter by method, route and status) in `registry`, fed by a tally when scraped. */
export class AnswerCounter {
  private readonly tally = new AnswerTally()
  readonly counter: Counter<'method' | 'route' | 'status'>

  constructor (name: string, registry: Registry) {
    const tally = this.tally
    this.counter = new Counter({
      name,
      help: 'HTTP requests answered, by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
      collect () { tally.drain((labels, n) => { this.inc(labels, n) }) }
    })
  }

  count (method: string, route: string, status: number): void {
    this.tally.count(method, route, status)
  }
}
