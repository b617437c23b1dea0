// Entry of the follow-up worker's own process (see worker-app.ts):
//   node --conditions=compiled services/connections/dist/worker.js
import { readdirSync } from 'node:fs'
import { setPriority } from 'node:os'
import { runServer } from '@uspl/server'
import { buildWorker, loadWorkerConfig } from './worker-app.ts'

/**
 * Lowers this process's CPU priority to `nice`. On Linux the nice value belongs to each thread, and the
 * runtime's own threads (the garbage collector's, the compiler's, the I/O pool's) were started before this
 * runs, so each of them is lowered too (threads started later inherit the main thread's). Raising one's own
 * nice value needs no privilege.
 */
function lowerPriority (nice: number): void {
  setPriority(nice)
  let threads: string[]
  try {
    threads = readdirSync('/proc/self/task')
  } catch {
    return // not Linux: the process's priority is one value, set above
  }
  for (const tid of threads) {
    try { setPriority(Number(tid), nice) } catch { /* the thread has exited */ }
  }
}

await runServer({
  service: 'connections-worker',
  loadConfig: () => loadWorkerConfig(),
  build: (config) => {
    // follow-up work (audit, webhooks, Shared Signals, cleanup) can wait a few milliseconds; the revoke path
    // cannot: on a machine it shares with the API and the gateways, the scheduler serves them first.
    // 0 keeps the default priority.
    if (config.WORKER_NICE > 0) lowerPriority(config.WORKER_NICE)
    return buildWorker(config)
  }
})
