/**
 * Renders infra/k8s's Ingress objects into a Debian nginx configuration, as ingress-nginx would for these
 * annotations: one server (the one public origin), a location per path (Prefix `/p` as `= /p` and `/p/`,
 * Exact as `= /p`), an upstream per backend Service listing its endpoints, and per Ingress its
 * annotations: upstream-hash-by (`hash <key> consistent`), configuration-snippet (inlined), proxy-buffering,
 * proxy-read/send-timeout and proxy-body-size. Anything else is 404. The access log records each request's
 * Mcp-Session-Id and the upstream that served it, so a test can see where a session went.
 */
type Obj = Record<string, any>

export interface RenderOptions {
  /** nginx's listen address, e.g. 127.0.0.1:8080 */
  listen: string
  /** Service name → its endpoints (ip:port), as the Endpoints controller would list them */
  endpoints: Record<string, string[]>
  /** a writable directory for the pid file, logs and temp files */
  dir: string
  /** run workers as this user (nginx started as root defaults to nobody) */
  user?: string
}

const A = 'nginx.ingress.kubernetes.io/'

export function renderNginx (ingresses: Obj[], opts: RenderOptions): string {
  const upstreams = new Map<string, { hashBy?: string, servers: string[] }>()
  const locations: string[] = []
  for (const ing of ingresses) {
    const ann: Obj = ing.metadata?.annotations ?? {}
    const hashBy: string | undefined = ann[`${A}upstream-hash-by`]
    for (const rule of ing.spec.rules) {
      for (const p of rule.http.paths) {
        const svc = p.backend.service
        const upstream = `${ing.metadata.name}-${svc.name}-${svc.port.number}`
        const servers = opts.endpoints[svc.name]
        if (!servers?.length) throw new Error(`no endpoints for Service ${svc.name}`)
        upstreams.set(upstream, { hashBy, servers })
        const body = [
          ann[`${A}configuration-snippet`] ?? '',
          ann[`${A}proxy-buffering`] === 'off' ? 'proxy_buffering off;' : '',
          ann[`${A}proxy-read-timeout`] ? `proxy_read_timeout ${ann[`${A}proxy-read-timeout`]}s;` : '',
          ann[`${A}proxy-send-timeout`] ? `proxy_send_timeout ${ann[`${A}proxy-send-timeout`]}s;` : '',
          ann[`${A}proxy-body-size`] ? `client_max_body_size ${ann[`${A}proxy-body-size`]};` : '',
          `proxy_pass http://${upstream};`
        ].filter(Boolean).join('\n      ')
        const matches = p.pathType === 'Exact' ? [`= ${p.path}`] : [`= ${p.path}`, `${p.path.replace(/\/$/, '')}/`]
        for (const m of matches) locations.push(`    location ${m} {\n      ${body}\n    }`)
      }
    }
  }
  const ups = [...upstreams].map(([name, u]) => [
    `  upstream ${name} {`,
    u.hashBy ? `    hash ${u.hashBy} consistent;` : '',
    ...u.servers.map((e) => `    server ${e};`),
    '    keepalive 16;',
    '  }'
  ].filter(Boolean).join('\n'))
  const d = opts.dir
  return `${opts.user ? `user ${opts.user};\n` : ''}worker_processes 1;
daemon off;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 512; }
http {
  log_format session '$status $request_method $uri session=$http_mcp_session_id upstream=$upstream_addr';
  access_log ${d}/access.log session;
  client_body_temp_path ${d}/body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $http_host;
  proxy_set_header X-Forwarded-For $remote_addr;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_set_header X-Request-ID $request_id;
${ups.join('\n')}
  server {
    listen ${opts.listen};
${locations.join('\n')}
    location / { return 404; }
  }
}
`
}
