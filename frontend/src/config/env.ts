// Build-time settings, validated once. Both are optional: by default the SPA
// talks to the origin that served it (Nginx or the Vite dev server proxies
// /api and /ws to the API).

type Env = {
  /** Base URL of the HTTP API, without a trailing slash; '' means same origin. */
  apiUrl: string;
  /** Full WebSocket URL; '' means derive ws(s)://<current host>/ws. */
  wsUrl: string;
};

export class EnvError extends Error {}

export function parseEnv(raw: Record<string, unknown>): Env {
  const problems: string[] = [];
  const apiUrl = readUrl(raw.VITE_API_URL, ['http:', 'https:'], 'VITE_API_URL', problems);
  const wsUrl = readUrl(raw.VITE_WS_URL, ['ws:', 'wss:'], 'VITE_WS_URL', problems);
  if (problems.length > 0) {
    throw new EnvError(`Invalid build settings:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return { apiUrl: apiUrl.replace(/\/+$/, ''), wsUrl };
}

function readUrl(value: unknown, protocols: string[], name: string, problems: string[]): string {
  if (value === undefined || value === null || value === '') return '';
  if (typeof value !== 'string') {
    problems.push(`${name} must be a string`);
    return '';
  }
  try {
    const url = new URL(value);
    if (!protocols.includes(url.protocol)) {
      problems.push(`${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
    }
  } catch {
    problems.push(`${name} is not a URL: ${value}`);
  }
  return value;
}

export const env: Env = parseEnv(import.meta.env);
