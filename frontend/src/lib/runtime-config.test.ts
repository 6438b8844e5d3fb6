import { describe, expect, it } from 'vitest';

import { parseRuntimeConfig, RuntimeConfigError } from './runtime-config';

describe('parseRuntimeConfig', () => {
  it('reads both auth modes', () => {
    expect(parseRuntimeConfig({ authMode: 'dev', maxMessageChars: 4000 })).toEqual({ authMode: 'dev', maxMessageChars: 4000 });
    expect(
      parseRuntimeConfig({ authMode: 'supabase', supabaseUrl: 'https://x.supabase.co', supabaseAnonKey: 'anon', maxMessageChars: 500 }),
    ).toEqual({ authMode: 'supabase', supabaseUrl: 'https://x.supabase.co', supabaseAnonKey: 'anon', maxMessageChars: 500 });
  });

  it("reads the server's message limit, 4000 when an older server does not say", () => {
    expect(parseRuntimeConfig({ authMode: 'dev', maxMessageChars: 120 }).maxMessageChars).toBe(120);
    expect(parseRuntimeConfig({ authMode: 'dev' }).maxMessageChars).toBe(4000);
    expect(() => parseRuntimeConfig({ authMode: 'dev', maxMessageChars: 'lots' })).toThrow(RuntimeConfigError);
    expect(() => parseRuntimeConfig({ authMode: 'dev', maxMessageChars: 0 })).toThrow(RuntimeConfigError);
  });

  it('refuses incomplete settings', () => {
    expect(() => parseRuntimeConfig({ authMode: 'supabase' })).toThrow(RuntimeConfigError);
    expect(() => parseRuntimeConfig({})).toThrow(RuntimeConfigError);
  });
});
