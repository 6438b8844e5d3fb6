import { describe, expect, it } from 'vitest';

import { parseRuntimeConfig, RuntimeConfigError } from './runtime-config';

describe('parseRuntimeConfig', () => {
  it('reads both auth modes', () => {
    expect(parseRuntimeConfig({ authMode: 'dev' })).toEqual({ authMode: 'dev' });
    expect(
      parseRuntimeConfig({ authMode: 'supabase', supabaseUrl: 'https://x.supabase.co', supabaseAnonKey: 'anon' }),
    ).toEqual({ authMode: 'supabase', supabaseUrl: 'https://x.supabase.co', supabaseAnonKey: 'anon' });
  });

  it('refuses incomplete settings', () => {
    expect(() => parseRuntimeConfig({ authMode: 'supabase' })).toThrow(RuntimeConfigError);
    expect(() => parseRuntimeConfig({})).toThrow(RuntimeConfigError);
  });
});
