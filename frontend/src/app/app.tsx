import { BrowserRouter } from 'react-router';

import { Notifications } from '@/components/ui/notifications';
import { AuthProvider } from '@/lib/auth/auth-provider';

import { AppRoutes } from './router';

export function App() {
  return (
    <BrowserRouter>
      <AuthProvider>
        <AppRoutes />
        <Notifications />
      </AuthProvider>
    </BrowserRouter>
  );
}
