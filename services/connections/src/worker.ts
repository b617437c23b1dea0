// Entry of the follow-up worker's own process (see worker-app.ts):
//   node --conditions=compiled services/connections/dist/worker.js
import { setPriority } from 'node:os'
import { runServer } from '@uspl/server'
import { buildWorker, loadWorkerConfig } from './worker-app.ts'

await runServer({
  service: 'connections-worker',
  loadConfig: () => loadWorkerConfig(),
  build: (config) => {
    // follow-up work (audit, webhooks, Shared Signals, cleanup) can wait a few milliseconds; the revoke path
    // cannot: on a machine it shares with the API and the gateways, the scheduler serves them first. Raising
    // one's own nice value needs no privilege; 0 keeps the default priority.
    if (config.WORKER_NICE > 0) setPriority(config.WORKER_NICE)
    return buildWorker(config)
  }
})
