import { Link } from 'react-router';

export function NotFoundRoute() {
  return (
    <div className="card narrow stack">
      <h1>Page not found</h1>
      <p>There is nothing at this address.</p>
      <Link to="/">Back to my collaborations</Link>
    </div>
  );
}
