import { describe, expect, it } from 'vitest';

import { EnvError, parseEnv } from './env';

describe('parseEnv', () => {
  it('defaults to the same origin', () => {
    expect(parseEnv({})).toEqual({ apiUrl: '', wsUrl: '' });
  });

  it('accepts URLs and trims the trailing slash', () => {
    expect(parseEnv({ VITE_API_URL: 'https://api.example.com/', VITE_WS_URL: 'wss://api.example.com/ws' })).toEqual({
      apiUrl: 'https://api.example.com',
      wsUrl: 'wss://api.example.com/ws',
    });
  });

  it('names every bad value at once', () => {
    expect(() => parseEnv({ VITE_API_URL: 'ftp://x', VITE_WS_URL: 'nope' })).toThrow(EnvError);
    expect(() => parseEnv({ VITE_API_URL: 'ftp://x', VITE_WS_URL: 'nope' })).toThrow(/VITE_API_URL[\s\S]*VITE_WS_URL/);
  });
});
