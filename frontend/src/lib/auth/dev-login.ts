import { api } from '@/lib/api-client';
import type { User } from '@/types/api';

export type DevLoginResponse = {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  user: User;
};

/** POST /api/auth/dev-login: a token for any email (dev mode only). */
export function devLogin(email: string): Promise<DevLoginResponse> {
  return api.post<DevLoginResponse>('/api/auth/dev-login', { email }, { auth: false });
}
