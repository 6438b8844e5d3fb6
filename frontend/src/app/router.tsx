import { Route, Routes } from 'react-router';

import { AppLayout } from './app-layout';
import { ApprovalsRoute } from './routes/approvals';
import { CollaborationRoute } from './routes/collaboration';
import { CollaborationsRoute } from './routes/collaborations';
import { NotFoundRoute } from './routes/not-found';
import { SignInRoute } from './routes/sign-in';

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/sign-in" element={<SignInRoute />} />
      <Route element={<AppLayout />}>
        <Route index element={<CollaborationsRoute />} />
        <Route path="collaborations/:collaborationId" element={<CollaborationRoute />} />
        <Route path="approvals" element={<ApprovalsRoute />} />
        <Route path="*" element={<NotFoundRoute />} />
      </Route>
    </Routes>
  );
}
